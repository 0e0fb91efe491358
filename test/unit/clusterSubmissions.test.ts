/**
 * Submissions as `rlhf-lens submit` records them (.rlhf/jobs/<id>/submission.json), the run folders their jobs
 * wrote (run.json's `slurm` block) and what the Runs view makes of them with the controller's states, on real files.
 */
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { clusterElements, needsPolling } from '../../src/host/cluster/clusterElements';
import { parseScontrolJobs } from '../../src/host/cluster/slurmJobState';
import {
  jobsFolderOf,
  outputFileOf,
  readOutputTail,
  readSubmissionRuns,
  readSubmissions,
} from '../../src/host/cluster/submissions';

const root = mkdtempSync(join(tmpdir(), 'rlhf-lens-cluster-'));
after(() => rmSync(root, { recursive: true, force: true }));

const jobs = jobsFolderOf(root);
const runsDir = join(root, '.rlhf', 'runs');
const sweepFolder = join(jobs, 'sweep-kl-20261130-1');

function writeSubmission(folder: string, submission: Record<string, unknown>): void {
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'submission.json'), JSON.stringify(submission, null, 2));
}

function writeRun(id: string, status: string, slurm: Record<string, unknown>): void {
  mkdirSync(join(runsDir, id), { recursive: true });
  const run = { id, name: id, status, started_at: '2026-11-30T17:40:00.000Z', slurm };
  writeFileSync(join(runsDir, id, 'run.json'), JSON.stringify(run));
}

writeSubmission(sweepFolder, {
  id: 'sweep-kl-20261130-1',
  config: 'ppo.rlhf.json',
  runs_dir: '.rlhf/runs',
  job_id: '41',
  array_size: 3,
  sweep: [0.01, 0.05, 0.2].map((kl, index) => ({ index, settings: { 'ppo.kl_coef': kl } })),
  submitted_at: '2026-11-30T17:39:00.000Z',
  script: join(sweepFolder, 'job.sbatch'),
  output_pattern: join(sweepFolder, 'slurm-%A_%a.out'),
});
writeSubmission(join(jobs, 'broken'), { id: 'broken', config: 'x.rlhf.json', runs_dir: '.rlhf/runs' });
// Element 0 ran and finished; element 1 is training; element 2 has not started (no run folder).
writeRun('run-a', 'completed', { job_id: '42', array_job_id: '41', array_task_id: 0, submission: sweepFolder });
writeRun('run-b', 'running', {
  job_id: '43',
  array_job_id: '41',
  array_task_id: 1,
  submission: '.rlhf/jobs/sweep-kl-20261130-1',
});
writeRun('local-run', 'completed', {});

test('submissions are read with absolute paths; one without a job id is a problem naming file and field', async () => {
  const { submissions, problems } = await readSubmissions(jobs);
  assert.equal(submissions.length, 1);
  const [sweep] = submissions;
  assert.equal(sweep.config, join(root, 'ppo.rlhf.json'));
  assert.equal(sweep.runsDir, runsDir);
  assert.equal(sweep.arraySize, 3);
  assert.deepEqual(problems, [
    {
      file: join(jobs, 'broken', 'submission.json'),
      message: `${join(jobs, 'broken', 'submission.json')}: field "job_id" is missing or has the wrong type`,
    },
  ]);
});

test("a submission's runs are the run folders naming it (absolute or workspace-relative), by array index", async () => {
  const [sweep] = (await readSubmissions(jobs)).submissions;
  const runs = await readSubmissionRuns(sweep);
  assert.deepEqual(runs.map((run) => [run.run.id, run.arrayIndex]).sort(), [
    ['run-a', 0],
    ['run-b', 1],
  ]);
});

test('the output file resolves %A and %a as Slurm does', async () => {
  const [sweep] = (await readSubmissions(jobs)).submissions;
  assert.equal(outputFileOf(sweep, 2), join(sweepFolder, 'slurm-41_2.out'));
});

test('elements: the controller state wins; a pending element has no run; all finished stops the polling', async () => {
  const [sweep] = (await readSubmissions(jobs)).submissions;
  const runs = await readSubmissionRuns(sweep);
  const controller = parseScontrolJobs(
    [
      `JobId=42 ArrayJobId=41 ArrayTaskId=0 JobName=rlhf-lens-test JobState=COMPLETED Reason=None ExitCode=0:0 ` +
        `NodeList=n1 StdOut=${join(sweepFolder, 'slurm-41_0.out')}`,
      `JobId=43 ArrayJobId=41 ArrayTaskId=1 JobName=rlhf-lens-test JobState=RUNNING Reason=None NodeList=n1`,
      `JobId=41 ArrayJobId=41 ArrayTaskId=2 JobName=rlhf-lens-test JobState=PENDING Reason=Resources NodeList=(null)`,
    ].join('\n'),
  );
  const elements = clusterElements(sweep, runs, controller);
  assert.deepEqual(
    elements.map((element) => [element.arrayIndex, element.phase, element.description, element.run?.run.id]),
    [
      [0, 'completed', 'completed', 'run-a'],
      [1, 'running', 'running on n1', 'run-b'],
      [2, 'pending', 'pending (Resources)', undefined],
    ],
  );
  assert.equal(elements[2].settingsText, 'ppo.kl_coef=0.2');
  assert.equal(needsPolling(elements), true);
  // The controller forgot the jobs (past MinJobAge): the run folders tell; one without a folder never started.
  const later = clusterElements(sweep, runs, []);
  assert.deepEqual(
    later.map((element) => element.description),
    ['completed', 'running', 'failed before the trainer started'],
  );
  // No controller to ask: the state is unknown, and says why.
  const unknown = clusterElements(sweep, [], undefined, 'scontrol was not found on PATH');
  assert.equal(unknown[2].description, 'state unknown: scontrol was not found on PATH');
  const finished = clusterElements(
    sweep,
    runs.filter((run) => run.arrayIndex === 0),
    [],
  ).filter((element) => element.arrayIndex !== 1);
  assert.equal(needsPolling(finished), false);
});

test("the output's last lines are read from its end", async () => {
  const file = join(root, 'slurm-9.out');
  writeFileSync(file, Array.from({ length: 40 }, (_, line) => `line ${line}`).join('\n') + '\n');
  assert.equal(await readOutputTail(file, 3), 'line 37\nline 38\nline 39');
  assert.equal(await readOutputTail(join(root, 'missing.out')), undefined);
});
