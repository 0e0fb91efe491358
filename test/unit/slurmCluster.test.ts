// The real one-node Slurm cluster that `npm test` brings up (scripts/slurmCluster.mjs): it answers, and Slurm 22.05
// behaves on it the way the cluster launcher relies on — a batch job runs node and writes into a folder the compute
// node shares, `scontrol requeue` and a preemption restart a running job, `scancel` cancels, a failing script
// fails, a signal arrives before the time limit, and an unknown partition is refused with sbatch's own message. Most
// jobs run concurrently; the time-limit test is the slow one (60–90 s: a 1-minute limit, enforced on a 30-s grid).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setAsideStaleCompletionLog } from '../../scripts/slurmCluster.mjs';
import {
  arrayTaskInfos,
  assertSlurmAvailable,
  cancelTestJobs,
  completionRecords,
  type CompletionRecordsOf,
  jobInfo,
  parseScontrolLine,
  submitJob,
  waitForJobState,
} from '../fixtures/slurm/slurm';

const PREFIX = 'rlhf-lens-test-slurmenv-';
// A space in the folder: run folders may have one, and scontrol prints such paths unquoted.
const folder = mkdtempSync(path.join(tmpdir(), 'rlhf lens slurm-'));

/** Writes an executable batch script into the shared folder and returns its path. */
function batchScript(name: string, body: string): string {
  const file = path.join(folder, `${name}.sh`);
  writeFileSync(file, `#!/bin/bash\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

interface TestJob extends CompletionRecordsOf {
  output: string;
}

/**
 * A job named `PREFIX<name>` with its output in the shared folder; returns its id, name, output's path and a time
 * before its submission (what `completionRecords` needs to tell its records from an earlier job's with the same id).
 */
function submit(name: string, body: string, extra: string[] = []): TestJob {
  const output = path.join(folder, `${name}.out`);
  const jobName = `${PREFIX}${name}`;
  const submittedNotBefore = new Date();
  const jobId = submitJob([`--job-name=${jobName}`, `--output=${output}`, ...extra, batchScript(name, body)]);
  return { jobId, jobName, submittedNotBefore, output };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForFile(file: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await sleep(200);
  }
  return readFileSync(file, 'utf8');
}

before(() => assertSlurmAvailable());
after(() => {
  cancelTestJobs(PREFIX);
  rmSync(folder, { recursive: true, force: true });
});

test('the cluster answers: one node, the default partition debug, lab (accounts), short (5 minutes), urgent', () => {
  const sinfo = spawnSync('sinfo', ['-h', '-o', '%P %a %l %T'], { encoding: 'utf8' });
  assert.equal(sinfo.status, 0, sinfo.stderr);
  const partitions = sinfo.stdout.trim().split('\n').sort();
  assert.equal(partitions.length, 4, sinfo.stdout);
  assert.match(partitions[0], /^debug\* up infinite (idle|mixed|allocated)$/);
  assert.match(partitions[1], /^lab up 5:00 (idle|mixed|allocated)$/);
  assert.match(partitions[2], /^short up 5:00 (idle|mixed|allocated)$/);
  assert.match(partitions[3], /^urgent up infinite (idle|mixed|allocated)$/);
  const lab = spawnSync('scontrol', ['show', 'partition', 'lab'], { encoding: 'utf8' });
  assert.match(lab.stdout, /AllowAccounts=lab-a\b/);
});

test('bringing the cluster up again only checks it: no install, no new slurm.conf, no daemon restarted', () => {
  const script = path.join(import.meta.dirname, '..', '..', 'scripts', 'slurmCluster.mjs');
  const again = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /installing|wrote|starting|stopping|reconfigure/);
  assert.match(again.stdout, /^\[slurmCluster\] cluster ready in [\d.]+ s: node (idle|mixed|allocated)/m);
  const status = spawnSync(process.execPath, [script, 'status'], { encoding: 'utf8' });
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /^ {2}munge: true$/m);
  assert.match(status.stdout, /^ {2}missingPackages: \(none\)$/m);
});

test('parseScontrolLine keeps values with "=" and free text with spaces', () => {
  const fields = parseScontrolLine('JobId=7 JobName=a b TRES=cpu=1,mem=8000M StdOut=/tmp/x y/z.out Power=');
  assert.deepEqual(fields, {
    JobId: '7',
    JobName: 'a b',
    TRES: 'cpu=1,mem=8000M',
    StdOut: '/tmp/x y/z.out',
    Power: '',
  });
});

test("completionRecords keeps the job's own records, not an earlier controller's job with the same id", () => {
  // Real lines of a log that outlived its controller's state folder: job 1 of an earlier run of this test, then
  // another test's job 1, then the job asked about (preempted once, then completed after its requeue).
  const line = (name: string, state: string, submit: string) =>
    `JobId=1 UserId=root(0) GroupId=root(0) Name=${name} JobState=${state} Partition=debug TimeLimit=525600 ` +
    `StartTime=${submit} EndTime=${submit} NodeList=vm NodeCnt=1 ProcCnt=8 WorkDir=/tmp/ci ReservationName= ` +
    `Tres=cpu=8,mem=8000M,node=1,billing=8 Account= QOS= WcKey= Cluster=unknown SubmitTime=${submit} ` +
    `EligibleTime=${submit} DerivedExitCode=0:0 ExitCode=0:0 `;
  const log = path.join(folder, 'jobcomp.log');
  writeFileSync(
    log,
    [
      line(`${PREFIX}preempted`, 'COMPLETED', '2026-11-30T18:44:05'),
      line('rlhf-lens-test-slurmhost-array', 'COMPLETED', '2026-11-30T19:30:00'),
      line(`${PREFIX}preempted`, 'PREEMPTED', '2026-11-30T19:30:01'),
      line(`${PREFIX}preempted`, 'COMPLETED', '2026-11-30T19:30:02'),
      '',
    ].join('\n'),
  );
  const job = { jobId: '1', jobName: `${PREFIX}preempted`, submittedNotBefore: new Date(2026, 10, 30, 19, 30, 1, 500) };
  assert.deepEqual(
    completionRecords(job, log).map((record) => [record.JobState, record.SubmitTime]),
    [
      ['PREEMPTED', '2026-11-30T19:30:01'],
      ['COMPLETED', '2026-11-30T19:30:02'],
    ],
  );
  assert.deepEqual(completionRecords({ ...job, jobId: '11' }, log), []);
});

test('a fresh controller state (no job_state) sets the completion log aside; a kept state keeps it', () => {
  const stateDir = path.join(folder, 'slurmctld-state');
  const logFile = path.join(folder, 'jobcomp-aside.log');
  mkdirSync(stateDir);
  writeFileSync(logFile, 'JobId=1 Name=earlier JobState=COMPLETED\n');
  writeFileSync(path.join(stateDir, 'job_state'), 'state');
  assert.equal(setAsideStaleCompletionLog({ stateDir, logFile }), undefined);
  assert.equal(readFileSync(logFile, 'utf8'), 'JobId=1 Name=earlier JobState=COMPLETED\n');
  rmSync(path.join(stateDir, 'job_state'));
  const aside = setAsideStaleCompletionLog({ stateDir, logFile, now: new Date('2026-11-30T18:35:00.000Z') });
  assert.equal(aside, `${logFile}.2026-11-30T18-35-00-000Z`);
  assert.equal(existsSync(logFile), false);
  assert.equal(readFileSync(aside, 'utf8'), 'JobId=1 Name=earlier JobState=COMPLETED\n');
  // Nothing to set aside: no log yet.
  assert.equal(setAsideStaleCompletionLog({ stateDir, logFile }), undefined);
});

test("sbatch to an unknown partition fails with sbatch's message and queues nothing", () => {
  const result = spawnSync('sbatch', ['--parsable', `--job-name=${PREFIX}nopartition`, '-p', 'no-such-partition'], {
    encoding: 'utf8',
    input: '#!/bin/bash\ntrue\n',
  });
  assert.equal(result.status, 1);
  assert.equal(result.stdout, '');
  assert.equal(
    result.stderr,
    'sbatch: error: invalid partition specified: no-such-partition\n' +
      'sbatch: error: Batch job submission failed: Invalid partition name specified\n',
  );
});

test("a time limit above the partition's MaxTime is refused at submission", () => {
  const result = spawnSync('sbatch', ['--parsable', `--job-name=${PREFIX}toolong`, '-p', 'short', '--time=10'], {
    encoding: 'utf8',
    input: '#!/bin/bash\ntrue\n',
  });
  assert.equal(result.status, 1);
  assert.equal(
    result.stderr,
    'sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)\n',
  );
});

// Alone, before the concurrent jobs: the preempted job holds every CPU, so the urgent job can only run by preempting
// it (and no one else's job), and it must wait until the node is free.
test('a job in the urgent partition preempts a running job, which is requeued and completes later', async () => {
  const cpus = spawnSync('sinfo', ['-h', '-o', '%c'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  const script = `echo "attempt \${SLURM_RESTART_COUNT:-0}"
trap 'echo "attempt \${SLURM_RESTART_COUNT:-0} got SIGTERM"; exit 143' TERM
if [ "\${SLURM_RESTART_COUNT:-0}" = 1 ]; then exit 0; fi
for i in $(seq 1 120); do sleep 1; done`;
  const low = submit('preempted', script, [`--cpus-per-task=${cpus}`, '--open-mode=append']);
  await waitForJobState(low.jobId, ['RUNNING'], 180_000);
  const urgent = submit('urgent', 'echo urgent', ['--partition=urgent']);
  const done = await waitForJobState(urgent.jobId, ['COMPLETED'], 60_000);
  assert.equal(done.partition, 'urgent');
  const preempted = await waitForJobState(low.jobId, ['COMPLETED'], 90_000);
  assert.equal(preempted.restarts, 1);
  const text = readFileSync(low.output, 'utf8');
  assert.match(text, /^attempt 0\n[^]*DUE TO PREEMPTION[^]*attempt 0 got SIGTERM\nattempt 1\n$/, text);
  // scontrol never shows PREEMPTED under PreemptMode=REQUEUE; the completion log does.
  assert.deepEqual(
    completionRecords(low).map((record) => record.JobState),
    ['PREEMPTED', 'COMPLETED'],
  );
});

describe('jobs on the cluster', { concurrency: true }, () => {
  test('a batch job runs node, writes into the shared folder and ends COMPLETED', async () => {
    const result = path.join(folder, 'result.txt');
    const writeJobId = 'require("fs").writeFileSync(process.argv[1], "job " + process.env.SLURM_JOB_ID)';
    const script = `"${process.execPath}" -e '${writeJobId}' "${result}"
echo "written by $SLURM_JOB_NAME on $SLURMD_NODENAME"`;
    const { jobId, output } = submit('complete', script);
    const info = await waitForJobState(jobId, ['COMPLETED'], 60_000);
    assert.equal(info.exitCode, '0:0');
    assert.equal(info.stdOut, output);
    assert.equal(info.jobName, `${PREFIX}complete`);
    assert.equal(info.partition, 'debug');
    assert.notEqual(info.nodeList, '(null)');
    assert.equal(readFileSync(result, 'utf8'), `job ${jobId}`);
    assert.equal(readFileSync(output, 'utf8'), `written by ${PREFIX}complete on ${info.nodeList}\n`);
  });

  test('a script that exits 3 ends FAILED with ExitCode 3:0', async () => {
    const { jobId } = submit('fail', 'echo about to fail\nexit 3');
    const info = await waitForJobState(jobId, ['FAILED'], 60_000);
    assert.equal(info.exitCode, '3:0');
  });

  test('scontrol requeue stops a running job (SIGTERM) and runs it again with SLURM_RESTART_COUNT=1', async () => {
    const marker = path.join(folder, 'requeue-running');
    const script = `echo "attempt \${SLURM_RESTART_COUNT:-0}"
trap 'echo "attempt \${SLURM_RESTART_COUNT:-0} got SIGTERM"; exit 143' TERM
touch "${marker}-\${SLURM_RESTART_COUNT:-0}"
for i in $(seq 1 60); do
  if [ "\${SLURM_RESTART_COUNT:-0}" = 1 ]; then echo finished; exit 0; fi
  sleep 1
done`;
    // Append: the default (truncate) would erase the first attempt's output when the job restarts.
    const job = submit('requeue', script, ['--open-mode=append']);
    const { jobId, output } = job;
    await waitForFile(`${marker}-0`, 60_000);
    const requeue = spawnSync('scontrol', ['requeue', jobId], { encoding: 'utf8' });
    assert.equal(requeue.status, 0, requeue.stderr);
    const again = await waitForJobState(jobId, ['PENDING', 'RUNNING', 'COMPLETED'], 10_000);
    assert.equal(again.restarts, 1);
    // A requeued job waits about 11 s (AuthInfo=cred_expire=10, plus 1) in Reason=BeginTime before it starts again.
    const done = await waitForJobState(jobId, ['COMPLETED'], 60_000);
    assert.equal(done.restarts, 1);
    assert.equal(done.exitCode, '0:0');
    const lines = readFileSync(output, 'utf8').split('\n');
    assert.equal(lines[0], 'attempt 0');
    assert.ok(lines.includes('attempt 0 got SIGTERM'), lines.join('\n'));
    assert.ok(lines.includes('attempt 1'), lines.join('\n'));
    assert.equal(lines.at(-2), 'finished');
    // The completion log keeps both attempts: the requeued one as PENDING, then the final state.
    const states = completionRecords(job).map((record) => record.JobState);
    assert.deepEqual(states, ['PENDING', 'COMPLETED']);
  });

  test('a job array runs one task per index, each with its own output and job id', async () => {
    const output = path.join(folder, 'array-%a.out');
    const script = batchScript('array', 'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID"');
    const arrayJobId = submitJob([`--job-name=${PREFIX}array`, '--array=0-2', `--output=${output}`, script]);
    await waitForJobState(arrayJobId, ['COMPLETED'], 60_000);
    const deadline = Date.now() + 30_000;
    let tasks = arrayTaskInfos(arrayJobId);
    while ([...tasks.values()].some((task) => task.jobState !== 'COMPLETED') || tasks.size < 3) {
      assert.ok(Date.now() < deadline, `tasks not all COMPLETED: ${[...tasks.values()].map((t) => t.jobState)}`);
      await sleep(500);
      tasks = arrayTaskInfos(arrayJobId);
    }
    assert.deepEqual([...tasks.keys()], [0, 1, 2]);
    assert.equal(new Set([...tasks.values()].map((task) => task.jobId)).size, 3);
    for (const [index, task] of tasks) {
      assert.equal(task.stdOut, path.join(folder, `array-${index}.out`));
      assert.equal(readFileSync(task.stdOut, 'utf8'), `task ${index} of ${arrayJobId}\n`);
    }
  });

  test('scancel ends a running job CANCELLED', async () => {
    const job = submit('cancel', 'for i in $(seq 1 60); do sleep 1; done');
    const { jobId } = job;
    await waitForJobState(jobId, ['RUNNING'], 60_000);
    const cancel = spawnSync('scancel', [jobId], { encoding: 'utf8' });
    assert.equal(cancel.status, 0, cancel.stderr);
    const info = await waitForJobState(jobId, ['CANCELLED'], 30_000);
    assert.equal(info.reason, 'None');
    // scontrol keeps the finished job (MinJobAge=300 s): the state can be read after the job left the queue.
    assert.equal(jobInfo(jobId)?.jobState, 'CANCELLED');
    assert.deepEqual(
      completionRecords(job).map((record) => [record.Name, record.JobState]),
      [[`${PREFIX}cancel`, 'CANCELLED']],
    );
  });

  // Slow (about 90 s): a 1-minute limit; slurmctld checks limits and early signals every 30 s.
  test('--signal=B:USR1@50 reaches the batch shell at least 25 s before SIGTERM at the time limit', async () => {
    const script = `start=$(date +%s)
echo "START $start"
trap 'echo "USR1 $(( $(date +%s) - start ))"' USR1
trap 'echo "TERM $(( $(date +%s) - start ))"; exit 143' TERM
for i in $(seq 1 200); do sleep 1; done`;
    const { jobId, output } = submit('timelimit', script, ['--time=1', '--signal=B:USR1@50']);
    const info = await waitForJobState(jobId, ['TIMEOUT'], 150_000, 1000);
    assert.equal(info.reason, 'TimeLimit');
    const text = readFileSync(output, 'utf8');
    // The limit counts from Slurm's StartTime; on a busy machine the batch shell starts seconds after it.
    const shellDelay = Number(/^START (\d+)$/m.exec(text)?.[1]) - Date.parse(info.fields.StartTime) / 1000;
    const usr1 = Number(/^USR1 (\d+)$/m.exec(text)?.[1]) + shellDelay;
    const term = Number(/^TERM (\d+)$/m.exec(text)?.[1]) + shellDelay;
    assert.ok(Number.isFinite(usr1) && Number.isFinite(term), `StartTime ${info.fields.StartTime}:\n${text}`);
    // Asked for 50 s before the limit; the 30-s grid makes it between 50 and 20 s before, and the limit's SIGTERM
    // comes 0–30 s after the limit.
    assert.ok(usr1 >= 5 && usr1 <= 45, `USR1 ${usr1} s after the start (shell ${shellDelay} s late):\n${text}`);
    assert.ok(term >= 60 && term - usr1 >= 25, `USR1 after ${usr1} s, TERM after ${term} s:\n${text}`);
    assert.match(text, /CANCELLED AT .* DUE TO TIME LIMIT/);
  });
});
