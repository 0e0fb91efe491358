/**
 * Slurm job states parsed from `scontrol show job -o` lines captured from the real single-node cluster
 * (test/fixtures/scontrol/*.txt, Slurm 22.05): a held job, a held 3-element array before and after one element was
 * released, a running job, then cancelled, a completed and a failed one, one past its time limit, one requeued.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  describeJobState,
  findJobState,
  isFinished,
  parseArrayTaskIds,
  parseScontrolJobs,
  parseScontrolRecord,
  phaseOf,
} from '../../src/host/cluster/slurmJobState';

const captured = (name: string) =>
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'scontrol', `${name}.txt`), 'utf8');

test('a held job is pending with its reason, on no node', () => {
  const [job] = parseScontrolJobs(captured('held'));
  assert.deepEqual(
    { ...job },
    {
      jobId: '6',
      arrayJobId: undefined,
      arrayTaskIds: undefined,
      state: 'PENDING',
      phase: 'pending',
      reason: 'JobHeldUser',
      nodes: undefined,
      stdOut: '/tmp/slurmhost-capture/slurm-6.out',
      exitCode: '0:0',
      restarts: 0,
    },
  );
  assert.equal(describeJobState(job), 'pending (JobHeldUser)');
});

test('a running job names its node; cancelled, completed and failed (with its exit code) are finished', () => {
  const [running] = parseScontrolJobs(captured('running'));
  assert.equal(describeJobState(running), 'running on vm');
  assert.equal(isFinished(running.phase), false);
  const ended = ['cancelled', 'completed', 'failed'].map((name) => parseScontrolJobs(captured(name))[0]);
  assert.deepEqual(
    ended.map((job) => [job.state, job.phase, describeJobState(job), isFinished(job.phase)]),
    [
      ['CANCELLED', 'cancelled', 'cancelled', true],
      ['COMPLETED', 'completed', 'completed', true],
      ['FAILED', 'failed', 'failed (exit 3)', true],
    ],
  );
  assert.equal(ended[2].reason, 'NonZeroExitCode');
});

test('past its time limit is timeout; requeued (`scontrol requeue`) it waits again, counted as a restart', () => {
  const [timedOut] = parseScontrolJobs(captured('timeout'));
  assert.deepEqual([timedOut.state, timedOut.reason, describeJobState(timedOut)], ['TIMEOUT', 'TimeLimit', 'timeout']);
  assert.equal(isFinished(timedOut.phase), true);
  const [requeued] = parseScontrolJobs(captured('requeued'));
  assert.deepEqual(
    [requeued.state, requeued.phase, requeued.restarts, describeJobState(requeued)],
    ['PENDING', 'requeued', 1, 'requeued (BeginTime)'],
  );
  assert.equal(isFinished(requeued.phase), false);
  assert.equal(
    describeJobState({ ...requeued, state: 'RUNNING', phase: 'running', nodes: 'vm' }),
    'running on vm (restart 1)',
  );
});

test("an array's pending elements share one record until one is released, which gets its own job id", () => {
  const before = parseScontrolJobs(captured('array-pending'));
  assert.equal(before.length, 1);
  for (const index of [0, 1, 2]) assert.equal(findJobState(before, '7', index)?.reason, 'JobHeldUser');
  assert.equal(findJobState(before, '7'), undefined, 'the array is not a single job');

  const after = parseScontrolJobs(captured('array-split'));
  assert.deepEqual(
    [0, 1, 2].map((index) => {
      const job = findJobState(after, '7', index);
      return [job?.jobId, describeJobState(job!)];
    }),
    [
      ['7', 'pending (JobHeldUser)'],
      ['12', 'pending (Priority)'],
      ['7', 'pending (JobHeldUser)'],
    ],
  );
  assert.equal(findJobState(after, '7', 3), undefined);
});

test('a value with spaces stays whole; a key is only a word before "=" after a space', () => {
  const fields = parseScontrolRecord('JobId=5 Command=/tmp/my jobs/job.sbatch --flag=1 WorkDir=/tmp/a b Power=');
  assert.equal(fields.get('Command'), '/tmp/my jobs/job.sbatch --flag=1');
  assert.equal(fields.get('WorkDir'), '/tmp/a b');
  assert.equal(fields.get('Power'), '');
  assert.equal(fields.get('AllocNode:Sid'), undefined);
  assert.equal(parseScontrolRecord(captured('held')).get('AllocNode:Sid'), 'localhost:25706');
});

test('array index lists, ranges, steps and the %-limit; state names with flags; "No jobs" is none', () => {
  assert.deepEqual(parseArrayTaskIds('0-2'), [0, 1, 2]);
  assert.deepEqual(parseArrayTaskIds('0,2'), [0, 2]);
  assert.deepEqual(parseArrayTaskIds('1-7:3%2'), [1, 4, 7]);
  assert.equal(phaseOf('CANCELLED+'), 'cancelled');
  assert.equal(phaseOf('OUT_OF_MEMORY'), 'failed');
  assert.equal(phaseOf('PREEMPTED'), 'preempted');
  assert.equal(phaseOf('REQUEUED'), 'requeued');
  assert.equal(phaseOf('TIMEOUT'), 'timeout');
  assert.deepEqual(parseScontrolJobs('No jobs in the system\n'), []);
});
