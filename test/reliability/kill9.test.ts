/**
 * kill9: SIGKILL the trainer at seeded random moments and at chosen points (inside a checkpoint
 * write, a trace write, a run.json write, a preferences batch; before a stage's first checkpoint;
 * between stages), then `train --resume` the newest run folder, from another working folder, until
 * the pipeline finishes. The result must equal an uninterrupted run of the same config and seed bit
 * for bit (final checkpoints, preference labels), and every file in the runs folder must read back.
 *
 * Every other random case also kills its first resume, so resuming a resumed-and-killed run is tested too.
 *   RELIABILITY_KILL9_COUNT   random kills (default below, sized to keep the suite within minutes on two cores)
 *   RELIABILITY_KILL9_SEED    their seed (printed with each kill time, so a failure can be replayed)
 */
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  envCount,
  ensureDir,
  exited,
  Family,
  killWhen,
  requireBuild,
  scratchDir,
  startTrainer,
  tail,
  unreadableFiles,
  isTemporaryName,
} from './harness';
import { newestRun, pipelineDifferences, resumeUntilDone, writeTinyConfig } from './pipelineRuns';

const randomKills = envCount('RELIABILITY_KILL9_COUNT', 20);
const seed = envCount('RELIABILITY_KILL9_SEED', 20261130);
/**
 * Tries per chosen point: a point can be missed (the trainer passed it between two polls); then the run is repeated.
 */
const triesPerPoint = 3;

const family = new Family('kill9');
const root = scratchDir('kill9');
const configFile = writeTinyConfig(root);
const referenceRoot = path.join(root, 'reference', 'runs');
let referenceMs = 0;

before(async () => {
  requireBuild();
  const first = await resumeUntilDone(configFile, referenceRoot, ensureDir(path.join(root, 'reference', 'cwd')), 1);
  assert.ok(first.finished, `the uninterrupted reference run failed: ${first.why}`);
  // Equality with a resumed run only means something if two uninterrupted runs are equal.
  const againRoot = path.join(root, 'reference-again', 'runs');
  const again = await resumeUntilDone(configFile, againRoot, ensureDir(path.join(root, 'reference-again', 'cwd')), 1);
  assert.ok(again.finished, `the second reference run failed: ${again.why}`);
  // Random kill times are fractions of the faster run (the first pays for cold caches), so few land after the end.
  referenceMs = Math.min(first.attempts[0].ms, again.attempts[0].ms);
  assert.deepEqual(
    pipelineDifferences(referenceRoot, againRoot),
    [],
    'two uninterrupted runs of the same config and seed differ: training is not deterministic',
  );
  console.log(
    `kill9: uninterrupted pipeline ${(referenceMs / 1000).toFixed(1)} s; ${randomKills} random kills with seed ${seed}`,
  );
});

/** The stage each random kill landed in, for the summary: random points should spread over the pipeline. */
const landedIn: string[] = [];

after(() => {
  const counts = new Map<string, number>();
  for (const stage of landedIn) counts.set(stage, (counts.get(stage) ?? 0) + 1);
  const spread = [...counts].map(([stage, hits]) => `${stage} ×${hits}`).join(', ');
  if (spread) console.log(`kill9: random kills landed in ${spread}`);
  console.log(
    family.report(
      `${family.ratio('resumed')} resumed, ${family.ratio('equal')} equal, ${family.sum('unreadable')} ` +
        `unreadable files, ${family.ratio('landed')} chosen points hit`,
    ),
  );
  if (process.env.RELIABILITY_KEEP !== '1') rmSync(root, { recursive: true, force: true });
});

/** The run folder of a stage (ids are `<name>-<stage>-<time>`), once it exists. */
function stageFolder(runsRoot: string, stage: string): string | undefined {
  if (!existsSync(runsRoot)) return undefined;
  const name = readdirSync(runsRoot).find((entry) => entry.startsWith(`k9-${stage}-`));
  return name === undefined ? undefined : path.join(runsRoot, name);
}

const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const hasCheckpoint = (runDir: string) =>
  entries(path.join(runDir, 'checkpoints')).some((name) => /^step-\d+$/.test(name));
const completed = (runDir: string | undefined) =>
  runDir !== undefined && /"status":\s*"completed"/.test(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
const metricLines = (runDir: string) =>
  existsSync(path.join(runDir, 'metrics.jsonl'))
    ? readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').split('\n').length - 1
    : 0;

/**
 * A stage that has written the checkpoint of its last step: it is about to end (used to step the trainer up to the next
 * stage).
 */
function atLastCheckpoint(runDir: string | undefined): boolean {
  if (runDir === undefined) return false;
  const maxSteps = (JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { max_steps?: number })
    .max_steps;
  return maxSteps !== undefined && existsSync(path.join(runDir, 'checkpoints', `step-${maxSteps}`));
}

/**
 * Chosen points: a predicate on the runs folder that is true while the trainer is inside that point (and, for brief
 * points, one true just before).
 */
const chosenPoints: { name: string; inside: (runsRoot: string) => boolean; near?: (runsRoot: string) => boolean }[] = [
  // SFT and PPO: a later checkpoint (an earlier one exists); the reward model writes only one, at its end.
  ...(['sft', 'reward', 'ppo'] as const).map((stage) => ({
    name: `inside a checkpoint write (${stage}${stage === 'reward' ? ', its only one' : ', not its first'})`,
    inside: (runsRoot: string) => {
      const run = stageFolder(runsRoot, stage);
      return (
        run !== undefined &&
        (stage === 'reward' || hasCheckpoint(run)) &&
        entries(path.join(run, 'checkpoints')).some((name) => !/^step-\d+$/.test(name))
      );
    },
  })),
  {
    name: 'inside a trace write (ppo)',
    inside: (runsRoot) => {
      const run = stageFolder(runsRoot, 'ppo');
      return run !== undefined && entries(path.join(run, 'traces')).some((name) => !/^step-\d+\.arrow$/.test(name));
    },
  },
  {
    name: 'inside a run.json write (reward)',
    inside: (runsRoot) => {
      const run = stageFolder(runsRoot, 'reward');
      return run !== undefined && entries(run).some((name) => isTemporaryName(name) && name.includes('run.json'));
    },
  },
  {
    name: 'inside a preferences batch',
    inside: (runsRoot) => {
      const run = stageFolder(runsRoot, 'preferences');
      if (run === undefined || !existsSync(path.join(run, 'preferences.jsonl'))) return false;
      const text = readFileSync(path.join(run, 'preferences.jsonl'), 'utf8');
      const lines = text.split('\n').length - 1;
      return (lines % 16 !== 0 || !text.endsWith('\n')) && lines < 48;
    },
  },
  ...(['sft', 'reward', 'ppo', 'dpo'] as const).map((stage) => ({
    name: `before the first checkpoint (${stage})`,
    inside: (runsRoot: string) => {
      const run = stageFolder(runsRoot, stage);
      return run !== undefined && metricLines(run) >= 1 && !hasCheckpoint(run);
    },
  })),
  ...(
    [
      ['sft', 'preferences'],
      ['reward', 'ppo'],
      ['ppo', 'dpo'],
    ] as const
  ).map(([done, next]) => ({
    name: `between stages (${done} → ${next})`,
    inside: (runsRoot: string) => completed(stageFolder(runsRoot, done)) && stageFolder(runsRoot, next) === undefined,
    near: (runsRoot: string) =>
      atLastCheckpoint(stageFolder(runsRoot, done)) && !completed(stageFolder(runsRoot, done)),
  })),
];

/**
 * What a case checks after its kill: resume to the end, equality, readable files, nothing in the resume's working
 * folder.
 */
async function resumeAndCompare(
  caseDir: string,
  runsRoot: string,
  failures: string[],
): Promise<Record<string, boolean | number>> {
  // Files under their final names must read back right after the kill; temporaries are allowed until resume cleans
  // them.
  const afterKill = unreadableFiles(runsRoot).filter((problem) => !problem.includes('a temporary'));
  for (const problem of afterKill) failures.push(`after the kill: ${problem}`);
  const resumeCwd = ensureDir(path.join(caseDir, 'elsewhere'));
  const resumed = await resumeUntilDone(configFile, runsRoot, resumeCwd);
  if (!resumed.finished) failures.push(`resume: ${resumed.why}`);
  const differences = resumed.finished ? pipelineDifferences(referenceRoot, runsRoot) : ['not finished'];
  if (resumed.finished) for (const difference of differences) failures.push(`not equal: ${difference}`);
  const afterResume = unreadableFiles(runsRoot);
  for (const problem of afterResume) failures.push(`after resume: ${problem}`);
  return {
    resumed: resumed.finished,
    equal: resumed.finished && differences.length === 0,
    unreadable: afterKill.length + afterResume.length,
    resumes: resumed.resumes,
  };
}

/** Where a killed pipeline stood: the newest run folder and its step, for the report. */
function position(runsRoot: string): string {
  const newest = newestRun(runsRoot);
  if (!newest) return 'no run folder yet';
  const run = newest.runJson as { stage?: string; status?: string; step?: number };
  return `${run.stage} ${run.status} at step ${run.step ?? 0}`;
}

for (const point of chosenPoints) {
  test(`kill -9 ${point.name}, then resume`, async () => {
    const failures: string[] = [];
    let facts: Record<string, boolean | number> = {};
    let landed = false;
    for (let attempt = 1; attempt <= triesPerPoint && !landed; attempt++) {
      const caseDir = ensureDir(path.join(root, `${point.name.replace(/[^a-z0-9]+/gi, '-')}-${attempt}`));
      const runsRoot = path.join(caseDir, 'runs');
      const child = startTrainer(['train', configFile, '--runs-dir', runsRoot], {
        cwd: ensureDir(path.join(caseDir, 'cwd')),
        logFile: path.join(caseDir, 'trainer.log'),
      });
      const outcome = killWhen(
        child,
        () => point.inside(runsRoot),
        referenceMs * 4 + 30_000,
        point.near && (() => point.near!(runsRoot)),
      );
      if (!outcome.landed) child.kill('SIGKILL');
      await exited(child);
      if (!outcome.landed && attempt < triesPerPoint) continue;
      landed = outcome.landed;
      if (!outcome.landed)
        failures.push(
          `the kill never landed ${point.name} in ${triesPerPoint} tries (${outcome.why}); resumed from where ` +
            `it was killed instead`,
        );
      facts = { landed, ...(await resumeAndCompare(caseDir, runsRoot, failures)) };
    }
    family.record(point.name, facts, failures);
    assert.deepEqual(failures, []);
  });
}

/** mulberry32: a tiny seeded generator, so kill times replay from the seed. */
function seeded(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(seed);
/**
 * Each random case: when to kill the training, and for every other case when to kill its first resume too (a resume is
 * a run like any other).
 */
const randomCases = Array.from({ length: randomKills }, (_, i) => ({
  fraction: 0.05 + 0.9 * random(),
  resumeFraction: i % 2 === 1 ? 0.05 + 0.6 * random() : undefined,
}));

/** Starts `args`, SIGKILLs it after `ms` (unless it ends first); the exit code, or null when killed. */
async function runAndKill(args: string[], cwd: string, logFile: string, ms: number): Promise<number | null> {
  const child = startTrainer(args, { cwd, logFile });
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const { code } = await exited(child);
  clearTimeout(timer);
  return code;
}

randomCases.forEach(({ fraction, resumeFraction }, i) => {
  const label =
    `${(fraction * 100).toFixed(1)}% of the uninterrupted run` +
    `${resumeFraction === undefined ? '' : `, its resume killed too at ${(resumeFraction * 100).toFixed(1)}%`}`;
  test(`kill -9 at random point ${i + 1}/${randomKills} (seed ${seed}, ${label}), then resume`, async () => {
    const caseDir = ensureDir(path.join(root, `random-${i + 1}`));
    const runsRoot = path.join(caseDir, 'runs');
    const logFile = path.join(caseDir, 'trainer.log');
    const killAtMs = Math.round(fraction * referenceMs);
    const code = await runAndKill(
      ['train', configFile, '--runs-dir', runsRoot],
      ensureDir(path.join(caseDir, 'cwd')),
      logFile,
      killAtMs,
    );
    let where = code === null ? position(runsRoot) : `it finished first (exit ${code})`;
    landedIn.push(code === null ? (newestRun(runsRoot)?.runJson.stage ?? 'startup') : 'after the end');
    const failures: string[] = [];
    if (code !== null && code !== 0)
      failures.push(`the trainer failed before the kill: ${tail(readFileSync(logFile, 'utf8'), 3)}`);
    if (resumeFraction !== undefined && code === null) {
      const newest = newestRun(runsRoot);
      const resumeKillMs = Math.round(resumeFraction * referenceMs);
      const args = newest ? ['train', '--resume', newest.dir] : ['train', configFile, '--runs-dir', runsRoot];
      const resumeCode = await runAndKill(args, ensureDir(path.join(caseDir, 'elsewhere')), logFile, resumeKillMs);
      if (resumeCode !== null && resumeCode !== 0)
        failures.push(`the first resume failed before its kill: ${tail(readFileSync(logFile, 'utf8'), 3)}`);
      where +=
        resumeCode === null
          ? `; its resume killed at ${resumeKillMs} ms: ${position(runsRoot)}`
          : `; its resume ended first (exit ${resumeCode})`;
    }
    const facts = await resumeAndCompare(caseDir, runsRoot, failures);
    family.record(`random ${i + 1} (seed ${seed}, killed at ${killAtMs} ms: ${where})`, facts, failures);
    assert.deepEqual(failures, [], `seed ${seed}, kill at ${killAtMs} ms (${where})`);
  });
});
