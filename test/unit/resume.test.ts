// Resume through the real command line (`node dist/trainer.js`; run `npm run build` first): a tiny
// four-stage pipeline (SFT → preferences → reward → PPO, wasm) killed with SIGKILL at chosen points,
// then `train --resume` from another working folder, compared with the same pipeline run without a
// break; and stages that fail (an uncaught error, a full disk) recording `failed` with the reason.
//
// The kill points are chosen exactly by a preload (`node --require`) that wraps node:fs in the trainer
// process and acts at the n-th write to a file matching a pattern: SIGKILL (optionally after writing
// the first bytes of that write only, as a kill in the middle of a line leaves it), an uncaught error,
// or a full disk. Polling files from outside would miss windows this short (a batch of judgments is
// appended in well under a millisecond).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { isTemporaryName } from '../../src/shared/durableWrite';

const trainer = path.join(__dirname, '..', '..', 'dist', 'trainer.js');
const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-resume-'));
const faultHook = path.join(workDir, 'fault.cjs');
const configFile = path.join(workDir, 'tiny.rlhf.json');

/** 96 prompts are 6 batches of 16; every stage takes about a second on one core. */
const tinyPipeline = {
  name: 'tiny',
  seed: 3,
  backend: 'wasm',
  model: { n_layer: 1, n_head: 2, n_embd: 32, block_size: 40, dropout: 0 },
  tokenizer: { vocab_size: 300 },
  stages: [
    {
      type: 'sft',
      dataset: { source: 'demo', num_examples: 2000 },
      learning_rate: 0.005,
      max_steps: 40,
      warmup_steps: 5,
      eval_steps: 20,
      save_steps: 20,
    },
    {
      type: 'preferences',
      policy: 'sft',
      prompts: { source: 'demo' },
      num_prompts: 96,
      completions_per_prompt: 2,
      max_new_tokens: 12,
    },
    {
      type: 'reward',
      init_from: 'sft',
      preferences: 'preferences',
      num_train_epochs: 1,
      per_device_train_batch_size: 8,
      eval_steps: 4,
      save_steps: 4,
    },
    {
      type: 'ppo',
      policy: 'sft',
      reward_model: 'reward',
      prompts: { source: 'demo' },
      total_episodes: 32,
      batch_size: 8,
      num_mini_batches: 2,
      num_ppo_epochs: 1,
      max_new_tokens: 10,
      eval_steps: 2,
      num_eval_prompts: 8,
      save_steps: 2,
    },
  ],
};

/**
 * The preload. RLHF_TEST_FAULT = {"match": regex source, "at": n, "action": …} acts at the n-th write to
 * a path matching `match` — an appendFileSync, or a writeSync on a descriptor opened for such a path:
 *   kill       SIGKILL before the write
 *   kill-torn  write the first 20 bytes of it, then SIGKILL
 *   throw      an error thrown outside any promise (uncaught), after the write
 *   disk-full  that write and every later one fail with ENOSPC, until a temporary (`*.rlhf-tmp`) is removed
 */
const faultHookSource = String.raw`
const fs = require('node:fs');
const fault = JSON.parse(process.env.RLHF_TEST_FAULT);
const pattern = new RegExp(fault.match);
const original = {
  appendFileSync: fs.appendFileSync,
  openSync: fs.openSync,
  writeSync: fs.writeSync,
  rmSync: fs.rmSync,
};
const paths = new Map();
let seen = 0, full = false, nested = false;
// As Node words a failed writeSync.
const enospc = () =>
  Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
function act(file, writeFirstBytes) {
  if (full) throw enospc();
  if (!pattern.test(file) || ++seen !== fault.at) return;
  if (fault.action === 'kill-torn') writeFirstBytes();
  if (fault.action.startsWith('kill')) process.kill(process.pid, 'SIGKILL');
  if (fault.action === 'throw') setImmediate(() => { throw new Error('injected uncaught error at ' + file); });
  if (fault.action === 'disk-full') { full = true; throw enospc(); }
}
fs.appendFileSync = function (file, data, ...rest) {
  if (!nested) act(String(file), () => original.appendFileSync.call(fs, file, String(data).slice(0, 20)));
  nested = true;
  try { return original.appendFileSync.call(fs, file, data, ...rest); } finally { nested = false; }
};
fs.openSync = function (file, ...rest) {
  const fd = original.openSync.call(fs, file, ...rest);
  paths.set(fd, String(file));
  return fd;
};
fs.writeSync = function (fd, data, ...rest) {
  const writeFirstBytes = () => original.writeSync.call(fs, fd, Buffer.from(data).subarray(0, 20));
  if (!nested && paths.has(fd)) act(paths.get(fd), writeFirstBytes);
  return original.writeSync.call(fs, fd, data, ...rest);
};
fs.rmSync = function (file, ...rest) {
  if (String(file).endsWith('.rlhf-tmp')) full = false;
  return original.rmSync.call(fs, file, ...rest);
};
`;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Runs the trainer with `args` in `cwd`, with a fault injected when one is given. */
function cli(
  args: string[],
  options: {
    cwd?: string;
    fault?: { match: string; at: number; action: 'kill' | 'kill-torn' | 'throw' | 'disk-full' };
  } = {},
): Promise<Exit> {
  const preload = options.fault ? ['--require', faultHook] : [];
  const env = options.fault ? { ...process.env, RLHF_TEST_FAULT: JSON.stringify(options.fault) } : process.env;
  const child = spawn(process.execPath, [...preload, trainer, ...args], {
    cwd: options.cwd ?? workDir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
}

/** The run directories of a runs folder by stage, oldest first. */
function runsByStage(runsRoot: string): Record<string, string[]> {
  const byStage: Record<string, string[]> = {};
  for (const id of readdirSync(runsRoot).sort()) {
    const runJson = JSON.parse(readFileSync(path.join(runsRoot, id, 'run.json'), 'utf8')) as { stage: string };
    (byStage[runJson.stage] ??= []).push(path.join(runsRoot, id));
  }
  return byStage;
}

const runJsonOf = (runDir: string) =>
  JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { status: string; error?: string; step?: number };
const finalWeights = (ppoRunDir: string) =>
  readFileSync(path.join(ppoRunDir, 'checkpoints', 'step-4', 'model.safetensors'));
/** The judgments without what names their run or time: what the same seed must reproduce. */
const judgments = (preferencesRunDir: string) =>
  readFileSync(path.join(preferencesRunDir, 'preferences.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const { prompt, completions, ranking, shown_order, annotator } = JSON.parse(line) as Record<string, unknown>;
      return { prompt, completions, ranking, shown_order, annotator };
    });
const deterministicMetrics = (runDir: string) =>
  readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) =>
      Object.fromEntries(
        Object.entries(JSON.parse(line) as Record<string, number>).filter(
          ([key]) => key !== 'time' && !key.includes('per_s') && !key.startsWith('time/') && key !== 'eps',
        ),
      ),
    );

/** A fresh, empty working folder: resumes start there, so the runs folder is not found by accident. */
const elsewhere = () => mkdtempSync(path.join(workDir, 'cwd-'));

let reference: Record<string, string[]>;

before(async () => {
  assert.ok(existsSync(trainer), 'run npm run build first');
  writeFileSync(faultHook, faultHookSource);
  writeFileSync(configFile, JSON.stringify(tinyPipeline, null, 2));
  const whole = await cli(['train', configFile, '--runs-dir', path.join(workDir, 'reference')]);
  assert.equal(whole.code, 0, whole.stderr);
  reference = runsByStage(path.join(workDir, 'reference'));
});

after(() => rmSync(workDir, { recursive: true, force: true }));

test(
  'killed inside a preferences batch (its last line cut), resume from another ' +
    'folder redoes that batch and finishes the pipeline as an uninterrupted run',
  async () => {
    const runsRoot = path.join(workDir, 'in-batch');
    // Judgment 40 is the 8th of batch 3 (16 a batch): 39 whole lines, then 20 bytes of the 40th.
    const killed = await cli(['train', configFile, '--runs-dir', runsRoot], {
      fault: { match: 'preferences\\.jsonl$', at: 40, action: 'kill-torn' },
    });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const preferencesRun = runsByStage(runsRoot).preferences[0];
    const file = readFileSync(path.join(preferencesRun, 'preferences.jsonl'), 'utf8');
    assert.equal(file.split('\n').length, 40, 'the kill left 39 judgments and a cut one');
    assert.ok(!file.endsWith('\n'));
    assert.equal(runJsonOf(preferencesRun).status, 'running');

    const cwd = elsewhere();
    const resumed = await cli(['train', '--resume', path.relative(cwd, preferencesRun)], { cwd });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stderr,
      /keeping the 32 judgments of whole batches and dropping the 8 lines after them; batch 3 is written again/,
    );
    assert.deepEqual(readdirSync(cwd), [], 'nothing is written in the working folder');
    const runs = runsByStage(runsRoot);
    assert.deepEqual(
      Object.fromEntries(Object.entries(runs).map(([stage, dirs]) => [stage, dirs.length])),
      { sft: 1, preferences: 1, reward: 1, ppo: 1 },
      "the later stages went to the pipeline's own runs folder",
    );
    assert.ok(Object.values(runs).every(([dir]) => runJsonOf(dir).status === 'completed'));
    assert.deepEqual(judgments(preferencesRun), judgments(reference.preferences[0]));
    assert.deepEqual(
      deterministicMetrics(preferencesRun).map((row) => row.step),
      [1, 2, 3, 4, 5, 6],
      'one metrics line per batch, none doubled',
    );
    assert.ok(
      finalWeights(runs.ppo[0]).equals(finalWeights(reference.ppo[0])),
      "the PPO policy equals the uninterrupted run's, byte for byte",
    );

    // Resuming the completed reward stage (as if killed before PPO began) continues with PPO; resuming
    // the last stage of a finished pipeline says so.
    const next = await cli(['train', '--resume', runs.reward[0]], { cwd });
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /completed; continuing with stage 4 of 4/);
    const ppoRuns = runsByStage(runsRoot).ppo;
    assert.equal(ppoRuns.length, 2);
    assert.ok(finalWeights(ppoRuns[1]).equals(finalWeights(reference.ppo[0])));
    const finished = await cli(['train', '--resume', ppoRuns[1]], { cwd });
    assert.equal(finished.code, 0, finished.stderr);
    assert.match(
      finished.stderr,
      /nothing to resume: the pipeline "tiny" has finished; .* is its last stage \(4 of 4\) and completed/,
    );
    assert.equal(runsByStage(runsRoot).ppo.length, 2, 'no stage ran again');
  },
);

test(
  'killed after a batch of judgments but before its metrics line, resume ' +
    'writes that batch again: every batch has its judgments and one metrics line',
  async () => {
    const runsRoot = path.join(workDir, 'before-metrics');
    const killed = await cli(['train', configFile, '--runs-dir', runsRoot], {
      fault: { match: '-preferences-.*metrics\\.jsonl$', at: 3, action: 'kill' },
    });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const preferencesRun = runsByStage(runsRoot).preferences[0];
    assert.equal(
      readFileSync(path.join(preferencesRun, 'preferences.jsonl'), 'utf8').split('\n').length,
      49,
      '3 whole batches written, metrics of 2',
    );
    const resumed = await cli(['train', '--resume', preferencesRun], { cwd: elsewhere() });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stderr,
      /keeping the 32 judgments of whole batches and dropping the 16 lines after them; batch 3 is written again/,
    );
    assert.deepEqual(deterministicMetrics(preferencesRun), deterministicMetrics(reference.preferences[0]));
    assert.deepEqual(judgments(preferencesRun), judgments(reference.preferences[0]));
  },
);

test(
  "killed before PPO's first checkpoint, resume restarts only PPO, in its own " +
    'run directory, from the recorded outputs; it equals an uninterrupted run',
  async () => {
    const runsRoot = path.join(workDir, 'before-checkpoint');
    // PPO's 2nd metrics line is step 1 (after the step-0 baseline); its first checkpoint is at step 2.
    const killed = await cli(['train', configFile, '--runs-dir', runsRoot], {
      fault: { match: '-ppo-.*metrics\\.jsonl$', at: 2, action: 'kill' },
    });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const before = runsByStage(runsRoot);
    const ppoRun = before.ppo[0];
    assert.deepEqual(readdirSync(path.join(ppoRun, 'checkpoints')), [], 'no checkpoint yet');
    assert.ok(
      existsSync(path.join(ppoRun, 'traces', 'step-1.arrow')),
      "but step 1's trace and the baseline metrics were written",
    );
    const earlierRunJson = ['sft', 'preferences', 'reward'].map((stage) =>
      readFileSync(path.join(before[stage][0], 'run.json'), 'utf8'),
    );

    const cwd = elsewhere();
    const resumed = await cli(['train', '--resume', ppoRun], { cwd });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /has no checkpoint yet: stage "ppo" starts again from the beginning/);
    assert.match(resumed.stderr, /finished 1 stage\n/);
    assert.deepEqual(runsByStage(runsRoot), before, 'no run directory was added');
    assert.deepEqual(
      ['sft', 'preferences', 'reward'].map((stage) => readFileSync(path.join(before[stage][0], 'run.json'), 'utf8')),
      earlierRunJson,
      'the earlier stages were not touched',
    );
    assert.equal(runJsonOf(ppoRun).status, 'completed');
    assert.deepEqual(
      deterministicMetrics(ppoRun),
      deterministicMetrics(reference.ppo[0]),
      "the metrics of the restarted stage, the first rows included, equal the uninterrupted run's",
    );
    assert.deepEqual(
      readdirSync(path.join(ppoRun, 'traces')).sort(),
      readdirSync(path.join(reference.ppo[0], 'traces')).sort(),
    );
    assert.ok(
      finalWeights(ppoRun).equals(finalWeights(reference.ppo[0])),
      "the PPO policy equals the uninterrupted run's, byte for byte",
    );
  },
);

test('an uncaught error in a stage leaves its run.json failed with the error, not running', async () => {
  const runsRoot = path.join(workDir, 'uncaught');
  const failed = await cli(['train', configFile, '--runs-dir', runsRoot], {
    fault: { match: '-sft-.*metrics\\.jsonl$', at: 1, action: 'throw' },
  });
  assert.notEqual(failed.code, 0);
  const runs = runsByStage(runsRoot);
  assert.deepEqual(Object.keys(runs), ['sft']);
  const runJson = runJsonOf(runs.sft[0]);
  assert.equal(runJson.status, 'failed', failed.stderr);
  assert.match(runJson.error ?? '', /^injected uncaught error at .*metrics\.jsonl$/);
});

test(
  'a disk that fills up inside a checkpoint write leaves run.json ' +
    'failed with ENOSPC, its temporary files removed to make room for it',
  async () => {
    const runsRoot = path.join(workDir, 'disk-full');
    // From the reward model's first checkpoint write on, every write fails until a temporary is removed:
    // run.json too, so recording the failure has to free space first.
    const failed = await cli(['train', configFile, '--runs-dir', runsRoot], {
      fault: { match: '-reward-.*checkpoints', at: 1, action: 'disk-full' },
    });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /ENOSPC/);
    const rewardRun = runsByStage(runsRoot).reward[0];
    const runJson = runJsonOf(rewardRun);
    assert.equal(runJson.status, 'failed');
    assert.match(runJson.error ?? '', /^could not write .*: no space left on device \(ENOSPC\)/);
    const leftovers = [rewardRun, path.join(rewardRun, 'checkpoints')].flatMap((dir) =>
      readdirSync(dir).filter(isTemporaryName),
    );
    assert.deepEqual(leftovers, []);
  },
);

/** A small tmpfs, where the tests run as root and may mount; undefined elsewhere. */
function mountSmallDisk(): string | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined;
  const dir = path.join(workDir, 'small-disk');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return undefined;
  }
}

test('on a real full disk (a 1.2 MB tmpfs) the stage that ran out of space says failed with ENOSPC', async (t) => {
  const disk = mountSmallDisk();
  if (!disk) return t.skip('needs root and mount on Linux (the injected full disk above runs everywhere)');
  try {
    const failed = await cli(['train', configFile, '--runs-dir', path.join(disk, 'runs')]);
    assert.equal(failed.code, 1, failed.stderr);
    const statuses = Object.values(runsByStage(path.join(disk, 'runs')))
      .flat()
      .map((dir) => runJsonOf(dir));
    assert.equal(statuses.filter((runJson) => runJson.status === 'running').length, 0, 'no run says running');
    const last = statuses.find((runJson) => runJson.status === 'failed');
    assert.match(last?.error ?? '', /ENOSPC/, failed.stderr);
  } finally {
    execFileSync('umount', [disk]);
  }
});
