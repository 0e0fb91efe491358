/**
 * disk-full: the tiny pipeline with its runs folder on a small tmpfs, sized at fractions of what a
 * whole run writes, so the disk fills mid-stage — at a checkpoint, a trace, a metrics line, run.json.
 * The trainer must exit non-zero with an error naming the path and ENOSPC, leave run.json `failed`
 * with the reason, leave no file cut under its final name and no temporary file; after the tmpfs is
 * enlarged, `train --resume` must finish the pipeline, equal to an uninterrupted run.
 *
 * Needs root (mount). Without it the suite would need a fault-injecting write in the trainer, which
 * it does not have: the family is then skipped, saying so.
 *   RELIABILITY_DISKFULL_COUNT   how many sizes (default below)
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  ensureDir,
  envCount,
  exited,
  Family,
  freezeWhen,
  listTree,
  requireBuild,
  scratchDir,
  startTrainer,
  tail,
  unreadableFiles,
} from './harness';
import { newestRun, pipelineDifferences, resumeUntilDone, runFolders, writeTinyConfig } from './pipelineRuns';

const sizes = envCount('RELIABILITY_DISKFULL_COUNT', 12);
const family = new Family('disk-full');
const root = scratchDir('diskfull');
const configFile = writeTinyConfig(root);
const referenceRoot = path.join(root, 'reference', 'runs');
const page = 4096;
/** Pages the reference run's files take on a tmpfs (each file rounds up to whole pages). */
let referencePages = 0;
const mounted = new Set<string>();

function whyNoTmpfs(): string | undefined {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0)
    return (
      'not root, so no tmpfs can be mounted, and the trainer ' +
      'has no fault-injecting write to fill a disk without one'
    );
  const probe = ensureDir(path.join(root, 'probe'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed (${(error as Error).message.split('\n')[0]}): the container may lack CAP_SYS_ADMIN`;
  }
}
const skipReason = whyNoTmpfs();
if (skipReason) console.log(`disk-full: SKIPPED — ${skipReason}`);

function mountTmpfs(dir: string, bytes: number): void {
  ensureDir(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounted.add(dir);
}

function unmount(dir: string): void {
  if (!mounted.delete(dir)) return;
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    // something still holds it open: detach now, free when released
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
}

before(async () => {
  if (skipReason) return;
  requireBuild();
  const reference = await resumeUntilDone(configFile, referenceRoot, ensureDir(path.join(root, 'reference', 'cwd')), 1);
  assert.ok(reference.finished, `the uninterrupted reference run failed: ${reference.why}`);
  referencePages = listTree(referenceRoot)
    .filter((entry) => !entry.endsWith('/'))
    .reduce((pages, entry) => pages + Math.max(1, Math.ceil(statSync(path.join(referenceRoot, entry)).size / page)), 0);
  console.log(
    `disk-full: an uninterrupted run writes ${((referencePages * page) / 1024).toFixed(0)} KiB; ${sizes} ` +
      `cases: ${Math.min(sizes, moments.length)} fill the disk at a chosen moment, the rest have tmpfs sizes ` +
      `from 5% to 90% of a run`,
  );
});

/** The run folder of a stage, once it exists. */
function stageFolder(runsRoot: string, stage: string): string | undefined {
  const name = existsSync(runsRoot)
    ? readdirSync(runsRoot).find((entry) => entry.startsWith(`k9-${stage}-`))
    : undefined;
  return name === undefined ? undefined : path.join(runsRoot, name);
}
const sizeOf = (file: string | undefined) => (file !== undefined && existsSync(file) ? statSync(file).size : -1);
const inStage = (stage: string, relative: string) => {
  const run = stageFolder(runsRoot_, stage);
  return run === undefined ? undefined : path.join(run, relative);
};
let runsRoot_ = '';

/**
 * Moments to fill the disk at: when `near` holds, the trainer is frozen, the tmpfs shrunk to what it
 * holds plus `headroom` pages, and the trainer let go, so the next write that needs more fails.
 */
const moments: { name: string; near: () => boolean; headroom: number }[] = [
  {
    name: 'a preferences.jsonl append (inside a batch)',
    near: () => sizeOf(inStage('preferences', 'preferences.jsonl')) > 0,
    headroom: 0,
  },
  {
    name: 'a metrics line crossing a page (ppo, last step)',
    near: () => sizeOf(inStage('ppo', 'traces/step-4.arrow')) > 0 && sizeOf(inStage('ppo', 'metrics.jsonl')) > 3000,
    headroom: 0,
  },
  { name: 'a trace (reward)', near: () => sizeOf(inStage('reward', 'metrics.jsonl')) > 0, headroom: 0 },
  {
    name: 'a trace (ppo, after its first)',
    near: () => sizeOf(inStage('ppo', 'traces/step-1.arrow')) > 0,
    headroom: 0,
  },
  { name: 'a trace (dpo)', near: () => sizeOf(inStage('dpo', 'metrics.jsonl')) > 0, headroom: 0 },
  {
    name: 'model.safetensors (sft, second checkpoint)',
    near: () => sizeOf(inStage('sft', 'checkpoints/step-4/model.safetensors')) > 0,
    headroom: 4,
  },
  {
    name: 'optimizer.safetensors (ppo, second checkpoint)',
    near: () => sizeOf(inStage('ppo', 'traces/step-3.arrow')) > 0,
    headroom: 10,
  },
];

/** The pages a tmpfs holds now. */
function usedPages(dir: string): number {
  const stats = statfsSync(dir);
  return Math.ceil(((stats.blocks - stats.bfree) * stats.bsize) / page);
}

after(() => {
  for (const dir of [...mounted]) unmount(dir);
  if (!skipReason)
    console.log(
      family.report(
        `${family.ratio('failedCleanly')} failed cleanly, ${family.ratio('namesEnospc')} name ENOSPC, ` +
          `${family.sum('cutFiles')} cut files, ${family.sum('tempFiles')} temp files left, ` +
          `${family.ratio('resumed')} resumed after space freed, ${family.ratio('equal')} equal`,
      ),
    );
  rmSync(root, { recursive: true, force: true });
});

Array.from({ length: sizes }, (_, i) => i).forEach((i) => {
  test(
    `disk full (tmpfs case ${i + 1} of ${sizes}): a clean failure, then resume after space is freed`,
    { skip: skipReason },
    async () => {
      const caseDir = ensureDir(path.join(root, `size-${i + 1}`));
      const runsRoot = path.join(caseDir, 'runs');
      const moment = moments[i];
      const fraction = 0.05 + (0.85 * Math.max(0, i - moments.length)) / Math.max(1, sizes - moments.length - 1);
      let bytes = moment ? referencePages * 2 * page : Math.max(4, Math.round(referencePages * fraction)) * page;
      const aim = moment ? moment.name : `${(fraction * 100).toFixed(0)}% of a run`;
      const failures: string[] = [];
      const facts: Record<string, boolean | number> = {};
      mountTmpfs(runsRoot, bytes);
      try {
        const logFile = path.join(caseDir, 'trainer.log');
        const child = startTrainer(['train', configFile, '--runs-dir', runsRoot], {
          cwd: ensureDir(path.join(caseDir, 'cwd')),
          logFile,
        });
        if (moment) {
          runsRoot_ = runsRoot;
          if (freezeWhen(child, moment.near, 60_000)) {
            bytes = (usedPages(runsRoot) + moment.headroom) * page;
            execFileSync('mount', ['-o', `remount,size=${bytes}`, runsRoot], { stdio: 'pipe' });
            process.kill(child.pid!, 'SIGCONT');
          } else failures.push(`the moment (${moment.name}) never came: the disk was not shrunk`);
        }
        const { code } = await exited(child);
        const result = { code, stderr: readFileSync(logFile, 'utf8') };
        const newest = newestRun(runsRoot);
        // The last error is the one the run ended with (an earlier one may be about recording it).
        const errorLine =
          result.stderr
            .split('\n')
            .filter((line) => line.startsWith('error: '))
            .at(-1) ?? '';
        const failedPath = errorLine.includes(runsRoot)
          ? /[^\s:]+/.exec(errorLine.slice(errorLine.indexOf(runsRoot) + runsRoot.length + 1))?.[0]
          : undefined;
        const where = failedPath
          ? `writing ${failedPath}`
          : newest
            ? `in ${newest.runJson.stage} at step ${(newest.runJson as { step?: number }).step ?? 0}`
            : 'before any run folder';
        const problems = unreadableFiles(runsRoot);
        const cut = problems.filter((problem) => !problem.includes('a temporary'));
        const temporaries = problems.filter((problem) => problem.includes('a temporary'));
        let clean = true;
        if (result.code === 0) {
          failures.push(`the run fit in ${bytes / 1024} KiB: the disk never filled`);
          clean = false;
        } else {
          // The path and the reason in words are what a user needs; the errno (ENOSPC) is what they search for: both
          // are asked.
          if (!/ENOSPC|no space left|disk is full/i.test(errorLine) || !errorLine.includes(runsRoot)) {
            failures.push(
              `the error does not name the path and a full disk: ${errorLine.slice(0, 240) || tail(result.stderr, 2)}`,
            );
            clean = false;
          } else if (!/ENOSPC/.test(errorLine))
            failures.push(`the error says the disk is full but not "ENOSPC": ${errorLine.slice(0, 200)}`);
          facts.namesEnospc = /ENOSPC/.test(errorLine);
          const failed = runFolders(runsRoot).at(-1);
          const runJson = failed?.runJson as { status?: string; error?: string } | undefined;
          if (!runJson || runJson.status !== 'failed' || !/ENOSPC|no space|disk is full/i.test(runJson.error ?? '')) {
            const reason = runJson?.error ? ` (${runJson.error.slice(0, 120)})` : ' with no reason';
            const says = runJson ? `"${runJson.status}"${reason}` : 'nothing (none readable)';
            failures.push(`run.json says ${says}, not "failed" with the full disk as the reason`);
            clean = false;
          }
        }
        for (const problem of cut) failures.push(`cut: ${problem}`);
        for (const problem of temporaries) failures.push(`left: ${problem}`);
        facts.failedCleanly = clean && cut.length === 0 && temporaries.length === 0;
        facts.cutFiles = cut.length;
        facts.tempFiles = temporaries.length;

        // Free space, then resume to the end from another working folder.
        execFileSync('mount', ['-o', `remount,size=${Math.max(bytes, referencePages * page) * 4}`, runsRoot], {
          stdio: 'pipe',
        });
        const resumed = await resumeUntilDone(configFile, runsRoot, ensureDir(path.join(caseDir, 'elsewhere')));
        facts.resumed = resumed.finished;
        if (!resumed.finished) failures.push(`resume after freeing space: ${resumed.why}`);
        const differences = resumed.finished ? pipelineDifferences(referenceRoot, runsRoot) : [];
        for (const difference of differences) failures.push(`not equal: ${difference}`);
        facts.equal = resumed.finished && differences.length === 0;
        for (const problem of resumed.finished ? unreadableFiles(runsRoot) : [])
          failures.push(`after resume: ${problem}`);
        family.record(`aimed at ${aim} (${bytes / 1024} KiB; filled ${where}: exit ${result.code})`, facts, failures);
      } finally {
        unmount(runsRoot);
      }
      assert.deepEqual(failures, []);
    },
  );
});
