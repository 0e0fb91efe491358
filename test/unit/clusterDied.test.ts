/**
 * A job that dies before its trainer starts (no run folder): the Runs view says "failed before the trainer started"
 * with what Slurm gives (exit code, launch failure), carries the end of the output file the caller read, and the
 * warning names the line that says why. The controller's lines are as the real cluster printed them.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  clusterElements,
  diedBeforeTrainerMessage,
  reasonLine,
  type OutputTail,
} from '../../src/host/cluster/clusterElements';
import { readOutputFileTail } from '../../src/host/cluster/clusterListing';
import { parseScontrolJobs } from '../../src/host/cluster/slurmJobState';
import { parseSubmission, type SubmissionRun } from '../../src/host/cluster/submissions';

const root = mkdtempSync(join(tmpdir(), 'rlhf-lens-died-'));
after(() => rmSync(root, { recursive: true, force: true }));

const folder = join(root, '.rlhf', 'jobs', 'tiny-sft-20261130-192600');
const submission = parseSubmission(
  join(folder, 'submission.json'),
  JSON.stringify({
    id: 'tiny-sft-20261130-192600',
    config: 'tiny-sft.rlhf.json',
    runs_dir: '.rlhf/runs',
    job_id: '57',
    array_size: null,
    sweep: [],
    submitted_at: '2026-11-30T19:26:00.000Z',
    script: join(folder, 'job.sbatch'),
    output_pattern: join(folder, 'slurm-%j.out'),
  }),
);
const output = join(folder, 'slurm-57.out');

/** The controller's line for job 57, as `scontrol show job -o` printed it on the test cluster. */
function controller(state: string, fields: string): ReturnType<typeof parseScontrolJobs> {
  return parseScontrolJobs(
    `JobId=57 JobName=rlhf-lens-tiny-sft UserId=root(0) JobState=${state} ${fields} Restarts=0 ` +
      `Partition=debug NodeList=vm StdOut=${output}`,
  );
}

const nodeMissing: OutputTail = {
  exists: true,
  lines: [
    'rlhf-lens: job 57 on vm, restart 0',
    `/var/spool/slurmd/job00057/slurm_script: line 17: /opt/node-20/bin/node: No such file or directory`,
  ],
};

test('a job that FAILED without a run folder failed before the trainer started, with its exit code and output', () => {
  const jobs = controller('FAILED', 'Reason=NonZeroExitCode ExitCode=127:0');
  const [bare] = clusterElements(submission, [], jobs);
  assert.equal(bare.diedBeforeTrainer, true);
  assert.equal(bare.phase, 'failed');
  assert.equal(bare.description, 'failed before the trainer started (exit 127)');
  assert.equal(bare.outputTail, undefined);
  const [element] = clusterElements(submission, [], jobs, undefined, new Map([[output, nodeMissing]]));
  assert.equal(element.description, 'failed before the trainer started (exit 127)');
  assert.deepEqual(element.outputTail, nodeMissing);
  assert.equal(
    diedBeforeTrainerMessage(element),
    'Job 57 (tiny-sft) failed before the trainer started: /var/spool/slurmd/job00057/slurm_script: line 17: ' +
      '/opt/node-20/bin/node: No such file or directory',
  );
});

test('a launch failure with no output file says so, in the description and in the warning', () => {
  const jobs = controller('FAILED', 'Reason=JobLaunchFailure ExitCode=0:53');
  const missing: OutputTail = { exists: false, lines: [] };
  const [element] = clusterElements(submission, [], jobs, undefined, new Map([[output, missing]]));
  assert.equal(element.description, 'failed before the trainer started (launch failed, signal 53) · no output file');
  assert.equal(
    diedBeforeTrainerMessage(element),
    `Job 57 (tiny-sft) failed before the trainer started: its output file ${output} does not exist`,
  );
});

test('NODE_FAIL, and a job that completed without ever writing a run, also died before the trainer started', () => {
  const [nodeFail] = clusterElements(submission, [], controller('NODE_FAIL', 'Reason=None ExitCode=0:0'));
  assert.equal(nodeFail.description, 'failed before the trainer started (node_fail, exit 0)');
  const [completed] = clusterElements(submission, [], controller('COMPLETED', 'Reason=None ExitCode=0:0'));
  assert.equal(completed.phase, 'failed');
  assert.equal(completed.description, 'failed before the trainer started (exit 0)');
  // Forgotten by the controller (past MinJobAge) with no run folder: nothing says more.
  const [purged] = clusterElements(submission, [], []);
  assert.equal(purged.description, 'failed before the trainer started');
});

test('a running, pending, cancelled or timed-out job, or one with a run folder, did not die before its trainer', () => {
  const tails = new Map([[output, nodeMissing]]);
  const cases: [string, string, string][] = [
    ['RUNNING', 'Reason=None ExitCode=0:0', 'running on vm'],
    ['PENDING', 'Reason=Resources ExitCode=0:0', 'pending (Resources)'],
    ['CANCELLED', 'Reason=None ExitCode=0:0', 'cancelled'],
    ['TIMEOUT', 'Reason=TimeLimit ExitCode=0:0', 'timeout'],
  ];
  for (const [state, fields, description] of cases) {
    const [element] = clusterElements(submission, [], controller(state, fields), undefined, tails);
    assert.equal(element.diedBeforeTrainer, false, state);
    assert.equal(element.description, description);
    assert.equal(element.outputTail, undefined, state);
  }
  const run: SubmissionRun = {
    runDir: join(root, '.rlhf', 'runs', 'tiny'),
    run: { id: 'tiny', name: 'tiny', status: 'failed', startedAt: '2026-11-30T19:26:05.000Z' },
  };
  const [trained] = clusterElements(
    submission,
    [run],
    controller('FAILED', 'Reason=None ExitCode=1:0'),
    undefined,
    tails,
  );
  assert.equal(trained.diedBeforeTrainer, false);
  assert.equal(trained.description, 'failed (exit 1)');
  // No controller to ask: unknown, not dead.
  const [unknown] = clusterElements(submission, [], undefined, 'scontrol was not found on PATH', tails);
  assert.equal(unknown.diedBeforeTrainer, false);
});

test("the reason line is the output's last error-like line, else its last line", () => {
  const nodeTrace = [
    'node:internal/modules/cjs/loader:1228',
    '  throw err;',
    '  ^',
    '',
    "Error: Cannot find module '/tmp/gone/trainer.js'",
    '    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)',
    '  code: ' + "'MODULE_NOT_FOUND',",
    '}',
    '',
    'Node.js v20.19.2',
  ];
  assert.equal(reasonLine(nodeTrace), "Error: Cannot find module '/tmp/gone/trainer.js'");
  assert.equal(reasonLine(['rlhf-lens: job 57 on vm, restart 0', 'bye', '']), 'bye');
  assert.equal(reasonLine(['', '  ']), undefined);
});

test("an output file's tail: its last lines, none when empty, exists: false when there is no file", async () => {
  const file = join(root, 'slurm-9.out');
  writeFileSync(file, Array.from({ length: 60 }, (_, line) => `line ${line}`).join('\n') + '\n');
  const tail = await readOutputFileTail(file);
  assert.equal(tail.exists, true);
  assert.equal(tail.lines.length, 40);
  assert.equal(tail.lines[0], 'line 20');
  assert.equal(tail.lines.at(-1), 'line 59');
  writeFileSync(join(root, 'empty.out'), '');
  assert.deepEqual(await readOutputFileTail(join(root, 'empty.out')), { exists: true, lines: [] });
  assert.deepEqual(await readOutputFileTail(join(root, 'missing.out')), { exists: false, lines: [] });
  assert.deepEqual(await readOutputFileTail(root), { exists: false, lines: [] });
});
