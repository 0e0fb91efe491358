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
import { rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDir, envCount, Family, listTree, requireBuild, runCli, scratchDir, tail, unreadableFiles } from './harness';
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
  if (process.getuid?.() !== 0) return 'not root, so no tmpfs can be mounted, and the trainer has no fault-injecting write to fill a disk without one';
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
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); // something still holds it open: detach now, free when released
  }
}

before(async () => {
  if (skipReason) return;
  requireBuild();
  const reference = await resumeUntilDone(configFile, referenceRoot, ensureDir(path.join(root, 'reference', 'cwd')), 1);
  assert.ok(reference.finished, `the uninterrupted reference run failed: ${reference.why}`);
  referenceFiles = filesInWriteOrder(referenceRoot);
  referencePages = referenceFiles.at(-1)?.pagesAfter ?? 0;
  console.log(`disk-full: an uninterrupted run writes ${((referencePages * page) / 1024).toFixed(0)} KiB; ${sizes} tmpfs sizes, ${targets.length} aimed at chosen writes, the rest spread from 5% to 90%`);
});

interface WrittenFile {
  readonly relative: string;
  readonly pagesBefore: number;
  readonly pagesAfter: number;
}
let referenceFiles: WrittenFile[] = [];

/**
 * The reference run's files in the order they were first written (birth time; run.json, rewritten
 * all along, counts as its folder's first file) with the tmpfs pages the run held before and after
 * each: a tmpfs of `pagesBefore + k` pages fills while that file is written.
 */
function filesInWriteOrder(runsRoot: string): WrittenFile[] {
  const files = listTree(runsRoot)
    .filter((entry) => !entry.endsWith('/'))
    .map((relative) => ({ relative, stat: statSync(path.join(runsRoot, relative)) }));
  const folderStart = (relative: string) => Math.min(...files.filter((file) => file.relative.split('/')[0] === relative.split('/')[0]).map((file) => file.stat.birthtimeMs));
  const ordered = files.map((file) => ({ ...file, born: file.relative.endsWith('/run.json') ? folderStart(file.relative) - 1 : file.stat.birthtimeMs })).sort((a, b) => a.born - b.born);
  let pages = 0;
  return ordered.map((file) => {
    const pagesBefore = pages;
    pages += Math.max(1, Math.ceil(file.stat.size / page));
    return { relative: file.relative, pagesBefore, pagesAfter: pages };
  });
}

/** Writes to fill the disk in, by the path of the file (a regex on its place in the runs folder) and how far into it. */
const targets: { name: string; file: RegExp; into: number }[] = [
  { name: 'the first metrics line (sft)', file: /-sft-[^/]+\/metrics\.jsonl$/, into: 0 },
  { name: 'a tokenizer.json (sft checkpoint)', file: /-sft-[^/]+\/checkpoints\/step-8\/tokenizer\.json$/, into: 0.5 },
  { name: 'preferences.jsonl', file: /preferences\.jsonl$/, into: 0.5 },
  { name: 'a trace (reward)', file: /-reward-[^/]+\/traces\//, into: 0 },
  { name: 'model.safetensors (reward)', file: /-reward-[^/]+\/checkpoints\/[^/]+\/model\.safetensors$/, into: 0.5 },
  { name: 'a trace (ppo step 2)', file: /-ppo-[^/]+\/traces\/step-2\.arrow$/, into: 0.5 },
  { name: 'optimizer.safetensors (ppo)', file: /-ppo-[^/]+\/checkpoints\/step-4\/optimizer\.safetensors$/, into: 0.5 },
  { name: 'the first metrics line (dpo)', file: /-dpo-[^/]+\/metrics\.jsonl$/, into: 0 },
];

/** The tmpfs size of case `i`: aimed at a chosen write first, then spread over the run. */
function sizeOfCase(i: number): { bytes: number; aim: string } {
  const target = targets[i];
  const file = target && referenceFiles.find((candidate) => target.file.test(candidate.relative));
  if (target && file) return { bytes: Math.max(1, file.pagesBefore + Math.floor((file.pagesAfter - file.pagesBefore) * target.into)) * page, aim: target.name };
  const spread = Math.max(1, sizes - targets.length);
  const fraction = 0.05 + (0.85 * Math.max(0, i - targets.length)) / Math.max(1, spread - 1);
  return { bytes: Math.max(4, Math.round(referencePages * fraction)) * page, aim: `${(fraction * 100).toFixed(0)}% of a run` };
}

after(() => {
  for (const dir of [...mounted]) unmount(dir);
  if (!skipReason) console.log(family.report(`${family.ratio('failedCleanly')} failed cleanly, ${family.sum('cutFiles')} cut files, ${family.sum('tempFiles')} temp files left, ${family.ratio('resumed')} resumed after space freed, ${family.ratio('equal')} equal`));
  rmSync(root, { recursive: true, force: true });
});

Array.from({ length: sizes }, (_, i) => i).forEach((i) => {
  test(`disk full (tmpfs case ${i + 1} of ${sizes}): a clean failure, then resume after space is freed`, { skip: skipReason }, async () => {
    const caseDir = ensureDir(path.join(root, `size-${i + 1}`));
    const runsRoot = path.join(caseDir, 'runs');
    const { bytes, aim } = sizeOfCase(i);
    const failures: string[] = [];
    const facts: Record<string, boolean | number> = {};
    mountTmpfs(runsRoot, bytes);
    try {
      const result = await runCli(['train', configFile, '--runs-dir', runsRoot], { cwd: ensureDir(path.join(caseDir, 'cwd')), timeoutMs: 120_000 });
      const newest = newestRun(runsRoot);
      const errorLine = result.stderr.split('\n').find((line) => line.startsWith('error: ')) ?? '';
      const failedPath = errorLine.includes(runsRoot) ? /[^\s:]+/.exec(errorLine.slice(errorLine.indexOf(runsRoot) + runsRoot.length + 1))?.[0] : undefined;
      const where = failedPath ? `writing ${failedPath}` : newest ? `in ${newest.runJson.stage} at step ${(newest.runJson as { step?: number }).step ?? 0}` : 'before any run folder';
      const problems = unreadableFiles(runsRoot);
      const cut = problems.filter((problem) => !problem.includes('a temporary'));
      const temporaries = problems.filter((problem) => problem.includes('a temporary'));
      let clean = true;
      if (result.code === 0) {
        failures.push(`the run fit in ${bytes / 1024} KiB: the disk never filled`);
        clean = false;
      } else {
        if (!/ENOSPC|no space left/i.test(errorLine) || !errorLine.includes(runsRoot)) {
          failures.push(`the error does not name the path and ENOSPC: ${errorLine.slice(0, 240) || tail(result.stderr, 2)}`);
          clean = false;
        }
        const failed = runFolders(runsRoot).at(-1);
        const runJson = failed?.runJson as { status?: string; error?: string } | undefined;
        if (!runJson || runJson.status !== 'failed' || !/ENOSPC|no space/i.test(runJson.error ?? '')) {
          failures.push(`run.json says ${runJson ? `"${runJson.status}"${runJson.error ? ` (${runJson.error.slice(0, 120)})` : ' with no reason'}` : 'nothing (none readable)'}, not "failed" with ENOSPC`);
          clean = false;
        }
      }
      for (const problem of cut) failures.push(`cut: ${problem}`);
      for (const problem of temporaries) failures.push(`left: ${problem}`);
      facts.failedCleanly = clean && cut.length === 0 && temporaries.length === 0;
      facts.cutFiles = cut.length;
      facts.tempFiles = temporaries.length;

      // Free space, then resume to the end from another working folder.
      execFileSync('mount', ['-o', `remount,size=${Math.max(bytes, referencePages * page) * 4}`, runsRoot], { stdio: 'pipe' });
      const resumed = await resumeUntilDone(configFile, runsRoot, ensureDir(path.join(caseDir, 'elsewhere')));
      facts.resumed = resumed.finished;
      if (!resumed.finished) failures.push(`resume after freeing space: ${resumed.why}`);
      const differences = resumed.finished ? pipelineDifferences(referenceRoot, runsRoot) : [];
      for (const difference of differences) failures.push(`not equal: ${difference}`);
      facts.equal = resumed.finished && differences.length === 0;
      for (const problem of resumed.finished ? unreadableFiles(runsRoot) : []) failures.push(`after resume: ${problem}`);
      family.record(`aimed at ${aim} (${bytes / 1024} KiB; filled ${where}: ${/ENOSPC/.test(result.stderr) ? 'ENOSPC' : `exit ${result.code}`})`, facts, failures);
    } finally {
      unmount(runsRoot);
    }
    assert.deepEqual(failures, []);
  });
});
