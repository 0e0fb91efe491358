// `rlhf-lens submit` against the real Slurm cluster of this machine (the test command brings it up;
// run `npm run build` first): a tiny SFT run submitted ends with the files of a local run; a sweep of
// three learning rates is one job array of three runs; a job requeued mid-run (`scontrol requeue`, and
// Slurm's early USR1 before a time limit), also one element of a sweep, resumes its run and ends equal
// to an uninterrupted one (the errors are in slurmSubmitErrors.test.ts). Skipped, saying why, only
// when `sinfo` does not answer. Jobs are named rlhf-lens-test-submit-… and take seconds of one CPU.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';

import { cli, onCluster, project as projectIn, sftConfig, trainer } from './slurmTestKit';

const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-slurm-submit-'));
const submittedJobs: string[] = [];
const project = (name: string, config: unknown) => projectIn(workDir, name, config);

function submit(configFile: string, runsDir: string): { submission: string; jobId: string } {
  const result = cli(['submit', configFile, '--runs-dir', runsDir, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const { submission, job_id: jobId } = JSON.parse(result.stdout) as { submission: string; job_id: string };
  submittedJobs.push(jobId);
  return { submission, jobId };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** squeue's lines for a job (an array's tasks each have one); none once it has left the queue. */
function queued(jobId: string): string[] {
  const result = spawnSync('squeue', ['--noheader', '--jobs', jobId, '--format=%i %T %r'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.split('\n').filter((line) => line.trim()) : [];
}

async function waitUntilDone(jobId: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (queued(jobId).length > 0) {
    if (Date.now() > deadline) assert.fail(`job ${jobId} still queued after ${timeoutMs} ms: ${queued(jobId)}`);
    await sleep(500);
  }
}

/** `scontrol show job`'s JobState of a job that ended (kept by slurmctld for MinJobAge). */
function jobState(jobId: string): string {
  const out = spawnSync('scontrol', ['show', 'job', jobId], { encoding: 'utf8' }).stdout;
  return /JobState=(\S+)/.exec(out)?.[1] ?? `(unknown: ${out.trim()})`;
}

const runDirs = (runsDir: string) =>
  existsSync(runsDir) ? readdirSync(runsDir).map((id) => path.join(runsDir, id)) : [];
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- run.json's fields, read by the assertions
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
/** A folder's files, recursively, relative to it. */
function filesOf(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory() ? filesOf(path.join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
    )
    .sort();
}
/** metrics.jsonl without the timings: what the same seed must reproduce. */
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
const weights = (runDir: string, step: number) =>
  readFileSync(path.join(runDir, 'checkpoints', `step-${step}`, 'model.safetensors'));

/** The same config trained here, without Slurm: the reference a job must equal. */
function localRun(name: string, config: unknown): string {
  const { configFile, runsDir } = project(`${name}-local`, config);
  const result = cli(['train', configFile, '--runs-dir', runsDir]);
  assert.equal(result.code, 0, result.stderr);
  const [dir] = runDirs(runsDir);
  return dir;
}

before(() => {
  assert.ok(existsSync(trainer), 'run npm run build first');
});

after(() => {
  for (const jobId of submittedJobs) spawnSync('scancel', [jobId]);
  rmSync(workDir, { recursive: true, force: true });
});

test('a small SFT run submitted to Slurm completes with the files of a local run', onCluster, async () => {
  const config = sftConfig('test-submit-sft');
  const { configFile, runsDir, dir } = project('sft', config);
  const { submission, jobId } = submit(configFile, runsDir);
  assert.equal(path.dirname(submission), path.join(dir, '.rlhf', 'jobs'), 'the submission folder is next to runs');
  const record = readJson(path.join(submission, 'submission.json'));
  assert.deepEqual(
    { ...record, submitted_at: typeof record.submitted_at },
    {
      id: path.basename(submission),
      config: configFile,
      runs_dir: runsDir,
      job_id: jobId,
      array_size: null,
      sweep: [],
      submitted_at: 'string',
      script: path.join(submission, 'job.sbatch'),
      output_pattern: path.join(submission, 'slurm-%j.out'),
    },
  );
  await waitUntilDone(jobId);
  assert.equal(jobState(jobId), 'COMPLETED');

  const runs = runDirs(runsDir);
  assert.equal(runs.length, 1, 'one run');
  const runJson = readJson(path.join(runs[0], 'run.json'));
  assert.equal(runJson.status, 'completed');
  assert.deepEqual(runJson.slurm, { job_id: jobId, submission });
  const reference = localRun('sft', config);
  assert.deepEqual(filesOf(runs[0]), filesOf(reference), 'the same files as a local run');
  assert.deepEqual(deterministicMetrics(runs[0]), deterministicMetrics(reference));
  assert.ok(weights(runs[0], 6).equals(weights(reference, 6)), 'the same weights as a local run');
  const output = readFileSync(path.join(submission, `slurm-${jobId}.out`), 'utf8');
  assert.match(output, /rlhf-lens: job \d+ on \S+, restart 0\n/);
  assert.match(output, /finished 1 stage\n/);
});

test('a sweep of three learning rates is one job array of three runs, each with its setting', onCluster, async () => {
  const rates = [0.001, 0.005, 0.02];
  const config = sftConfig('test-submit-sweep', {}, { sweep: { 'stages.sft.learning_rate': rates } });
  const { configFile, runsDir } = project('sweep', config);
  const { submission, jobId } = submit(configFile, runsDir);
  const record = readJson(path.join(submission, 'submission.json'));
  assert.equal(record.array_size, 3);
  assert.deepEqual(
    record.sweep,
    rates.map((rate, index) => ({ index, settings: { 'stages.sft.learning_rate': rate } })),
  );
  assert.equal(record.output_pattern, path.join(submission, 'slurm-%A_%a.out'));
  assert.match(readFileSync(record.script, 'utf8'), /^#SBATCH --array=0-2$/m);
  await waitUntilDone(jobId);

  const runs = runDirs(runsDir)
    .map((dir) => readJson(path.join(dir, 'run.json')))
    .sort((a, b) => a.sweep.index - b.sweep.index);
  assert.equal(runs.length, 3);
  runs.forEach((runJson, index) => {
    assert.equal(runJson.status, 'completed');
    assert.deepEqual(runJson.sweep, { index, settings: { 'stages.sft.learning_rate': rates[index] } });
    assert.equal(runJson.config.stages[0].learning_rate, rates[index], 'the config it ran has its rate');
    assert.equal(runJson.config.sweep, undefined, 'an element is one run, not a sweep');
    assert.equal(runJson.config.name, `test-submit-sweep-learning_rate-${rates[index]}`);
    assert.ok(runJson.id.startsWith(`test-submit-sweep-learning_rate-${rates[index]}-sft-`), runJson.id);
    assert.deepEqual(runJson.slurm, {
      job_id: runJson.slurm.job_id,
      array_job_id: jobId,
      array_task_id: index,
      submission,
    });
    assert.ok(existsSync(path.join(submission, `slurm-${jobId}_${index}.out`)));
  });
  assert.equal(new Set(runs.map((runJson) => runJson.slurm.job_id)).size, 3, 'three jobs of one array');
  const lastLoss = (runId: string) => deterministicMetrics(path.join(runsDir, runId)).at(-1)?.['loss/train'];
  assert.equal(new Set(runs.map((runJson) => lastLoss(runJson.id))).size, 3, 'three rates train three ways');
});

/** A 300-step SFT run (about 10 s) submitted; resolves once its metrics pass step 80, mid-run. */
async function submitLongRun(name: string) {
  const config = sftConfig(name, { max_steps: 300, eval_steps: 50, save_steps: 50 });
  const { configFile, runsDir } = project(name, config);
  const { submission, jobId } = submit(configFile, runsDir);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [run] = runDirs(runsDir);
    const metrics = run ? path.join(run, 'metrics.jsonl') : '';
    if (metrics && existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 80) break;
    if (Date.now() > deadline) assert.fail(`job ${jobId} did not reach step 80 in 60 s`);
    await sleep(100);
  }
  return { config, runsDir, submission, jobId };
}

/** The job's run resumed once, from a checkpoint before the end, and ended equal to an uninterrupted run. */
function assertResumedEqualsUninterrupted(
  name: string,
  config: unknown,
  runsDir: string,
  submission: string,
  jobId: string,
) {
  const runs = runDirs(runsDir);
  assert.equal(runs.length, 1, 'the requeued job continued its run, not a new one');
  const runJson = readJson(path.join(runs[0], 'run.json'));
  assert.equal(runJson.status, 'completed');
  assert.equal(runJson.step, 300);
  assert.equal(runJson.resumed_at?.length, 1, 'resumed once');
  assert.deepEqual(runJson.slurm, { job_id: jobId, submission, restarts: 1 });
  const output = readFileSync(path.join(submission, `slurm-${jobId}.out`), 'utf8');
  const from = Number(/resuming from \S+step-(\d+) \(step \d+\)/.exec(output)?.[1]);
  assert.ok(from > 0 && from < 300, `resumed mid-run (from step ${from}):\n${output}`);
  const reference = localRun(name, config);
  assert.deepEqual(
    deterministicMetrics(runs[0]),
    deterministicMetrics(reference),
    'the metrics of an uninterrupted run',
  );
  assert.ok(weights(runs[0], 300).equals(weights(reference, 300)), 'the weights of an uninterrupted run');
  return output;
}

test(
  'scontrol requeue of a running job: the job resumes its run, which ends equal to an uninterrupted one',
  onCluster,
  async () => {
    const name = 'test-submit-requeue';
    const { config, runsDir, submission, jobId } = await submitLongRun(name);
    const requeue = spawnSync('scontrol', ['requeue', jobId], { encoding: 'utf8' });
    assert.equal(requeue.status, 0, requeue.stderr);
    await waitUntilDone(jobId);
    assert.equal(jobState(jobId), 'COMPLETED');
    const output = assertResumedEqualsUninterrupted(name, config, runsDir, submission, jobId);
    assert.match(output, /stopping after this step/, 'SIGTERM stopped the trainer at a step');
  },
);

test(
  "Slurm's early signal (USR1 to the batch shell, as before a time limit): checkpoint, requeue, resume, equal",
  onCluster,
  async () => {
    const name = 'test-submit-usr1';
    const { config, runsDir, submission, jobId } = await submitLongRun(name);
    // What --signal=B:USR1@<s> does at <s> seconds before the time limit.
    const signal = spawnSync('scancel', ['--signal=USR1', '--batch', jobId], { encoding: 'utf8' });
    assert.equal(signal.status, 0, signal.stderr);
    await waitUntilDone(jobId);
    assert.equal(jobState(jobId), 'COMPLETED');
    const output = assertResumedEqualsUninterrupted(name, config, runsDir, submission, jobId);
    assert.match(output, /Slurm signalled the job .*: stopping after this step to requeue/);
    assert.match(
      output,
      new RegExp(`rlhf-lens: stopped before the time limit; requeueing job ${jobId} to resume the run`),
    );
  },
);

test(
  'a requeued element of a sweep resumes its own run, which ends equal to `train --sweep-index`',
  onCluster,
  async () => {
    const name = 'test-submit-sweep-requeue';
    const rates = [0.002, 0.01];
    const config = sftConfig(
      name,
      { max_steps: 300, eval_steps: 50, save_steps: 50 },
      {
        sweep: { 'stages.sft.learning_rate': rates },
      },
    );
    const { configFile, runsDir } = project(name, config);
    const { submission, jobId } = submit(configFile, runsDir);
    const runOfElement = (index: number) =>
      runDirs(runsDir).find((dir) => readJson(path.join(dir, 'run.json')).sweep?.index === index);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const run = runOfElement(1);
      const metrics = run ? path.join(run, 'metrics.jsonl') : '';
      if (metrics && existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 80) break;
      if (Date.now() > deadline) assert.fail(`element 1 of job ${jobId} did not reach step 80 in 60 s`);
      await sleep(100);
    }
    const taskJobId = readJson(path.join(runOfElement(1) as string, 'run.json')).slurm.job_id as string;
    // <array job>_<task>: this task alone (the array job's own id names every task, and may be this one's).
    const requeue = spawnSync('scontrol', ['requeue', `${jobId}_1`], { encoding: 'utf8' });
    assert.equal(requeue.status, 0, requeue.stderr);
    await waitUntilDone(jobId);

    assert.equal(runDirs(runsDir).length, 2, 'one run per element, none doubled');
    const resumed = runOfElement(1) as string;
    const runJson = readJson(path.join(resumed, 'run.json'));
    assert.equal(runJson.status, 'completed');
    assert.equal(runJson.resumed_at?.length, 1);
    assert.deepEqual(runJson.slurm, {
      job_id: taskJobId,
      array_job_id: jobId,
      array_task_id: 1,
      submission,
      restarts: 1,
    });
    assert.equal(
      readJson(path.join(runOfElement(0) as string, 'run.json')).resumed_at,
      undefined,
      'element 0 ran once',
    );

    const local = project(`${name}-local`, config);
    const result = cli(['train', local.configFile, '--runs-dir', local.runsDir, '--sweep-index', '1']);
    assert.equal(result.code, 0, result.stderr);
    const [reference] = runDirs(local.runsDir);
    assert.deepEqual(deterministicMetrics(resumed), deterministicMetrics(reference));
    assert.ok(weights(resumed, 300).equals(weights(reference, 300)), 'the weights of an uninterrupted element 1');
  },
);
