/**
 * Cluster jobs in a real VS Code (code-server, the extension installed from the .vsix) against the real Slurm
 * controller of this machine: submissions recorded as `rlhf-lens submit` records them (.rlhf/jobs/<id>/
 * submission.json) for jobs submitted here with the real `sbatch`. One job, held at first, goes in the Runs view
 * from "pending (JobHeldUser)" to "running on <node>" (its script writes a run folder with run.json as the trainer
 * does under Slurm) to "completed"; a second is cancelled from its context menu (Cancel Job, confirmed) and shows
 * "cancelled"; a held 2-element array shows as a sweep with its elements pending. Screenshots:
 * test-results/screenshots/slurm-*.png. Needs `npm run package`, `node scripts/ensureTestTools.mjs` and `sinfo`
 * answering.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { screenshot } from './codeServer';
import { jobRow as jobRowOf, rowMenu, showRunsView, sideBar, waitForJobRow } from './runsViewJobs';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-slurm-');
// Slurm runs the jobs as the submitting user on this machine's node: the files must be readable by it.
chmodSync(workbench.temp, 0o755);
const workspace = join(workbench.temp, 'workspace');
const runsDir = join(workspace, '.rlhf', 'runs');
const jobsDir = join(workspace, '.rlhf', 'jobs');
/** The controller is asked every 5 s; a state change shows within a few polls on two busy cores. */
const stateTimeout = 60_000;
const submitted: string[] = [];

let page: Page;

const sbatch = (args: string[]): string => {
  const id = execFileSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' })
    .trim()
    .split(';')[0];
  submitted.push(id);
  return id;
};

/** A submission folder with its batch script, submitted with sbatch; submission.json as `submit` writes it. */
function submit(id: string, body: string, options: { hold?: boolean; array?: number }): string {
  const folder = join(jobsDir, id);
  mkdirSync(folder, { recursive: true });
  const script = join(folder, 'job.sbatch');
  const outputPattern = join(folder, options.array ? 'slurm-%A_%a.out' : 'slurm-%j.out');
  writeFileSync(script, `#!/bin/bash\n${body}\n`);
  const jobId = sbatch([
    `--job-name=rlhf-lens-test-slurmhost-${id}`,
    '--cpus-per-task=1',
    `--output=${outputPattern}`,
    ...(options.hold ? ['--hold'] : []),
    ...(options.array ? [`--array=0-${options.array - 1}`] : []),
    script,
  ]);
  const submission = {
    id,
    config: `${id}.rlhf.json`,
    runs_dir: '.rlhf/runs',
    job_id: jobId,
    array_size: options.array ?? null,
    sweep: Array.from({ length: options.array ?? 0 }, (_, index) => ({ index, settings: { 'ppo.kl_coef': index } })),
    submitted_at: new Date().toISOString(),
    script,
    output_pattern: outputPattern,
  };
  writeFileSync(join(folder, 'submission.json'), JSON.stringify(submission, null, 2));
  return jobId;
}

/**
 * A job that trains for a few seconds: writes its run folder (run.json with its Slurm block, metrics) as the trainer
 * does under Slurm. The heredocs are unquoted: the shell fills in the start time and the job id.
 */
function followScript(submissionFolder: string): string {
  const runDir = join(runsDir, 'follow-run');
  const runJson = (status: string, ended: string) =>
    [
      `cat > ${runDir}/run.json <<JSON`,
      `{"id": "follow-run", "name": "follow-run", "status": "${status}", "started_at": "$started"${ended},`,
      ` "stage": "sft", "slurm": {"job_id": "$SLURM_JOB_ID", "submission": "${submissionFolder}"}}`,
      'JSON',
    ].join('\n');
  return [
    'echo "on $(hostname)"',
    'sleep 4',
    `mkdir -p ${runDir}`,
    'started=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)',
    runJson('running', ''),
    'for step in 1 2 3; do',
    `  echo "{\\"step\\": $step, \\"loss/train\\": $((4 - step))}" >> ${runDir}/metrics.jsonl`,
    '  sleep 3',
    'done',
    runJson('completed', ', "ended_at": "$started"'),
  ].join('\n');
}

before(() =>
  workbench.start({
    workspace,
    prepare: () => {
      execFileSync('sinfo', { encoding: 'utf8' }); // a clear failure when the cluster is not up
      mkdirSync(runsDir, { recursive: true });
    },
  }),
);

after(async () => {
  if (submitted.length > 0) execFileSync('scancel', submitted);
  await workbench.stop();
});

const sidebar = () => sideBar(page);
const jobRow = (jobSpec: string) => jobRowOf(page, jobSpec);
const waitForState = (jobSpec: string, expected: RegExp) =>
  waitForJobRow(page, jobSpec, expected, { timeout: stateTimeout, failureShot: 'slurm-failure' });
const contextMenu = (row: Locator, entry: string) => rowMenu(page, row, entry);

test('a job goes from pending to running to completed in the Runs view; one is cancelled from its menu', async () => {
  const followFolder = join(jobsDir, 'follow');
  const followJob = submit('follow', followScript(followFolder), { hold: true });
  const cancelJob = submit('cancel', 'sleep 300', {});
  const sweepJob = submit('sweep', 'sleep 1', { hold: true, array: 2 });

  page = await workbench.openPage({ viewport: { width: 1400, height: 860 } });
  await showRunsView(page);

  assert.match(await waitForState(followJob, /pending \(JobHeldUser\)/), /^slurm \d+ · pending \(JobHeldUser\)$/);
  await waitForState(cancelJob, /running on \S+/);
  // The sweep groups its elements, each pending while the array is held.
  await sidebar().locator('.monaco-list-row', { hasText: 'sweep sweep' }).first().waitFor({ timeout: stateTimeout });
  await waitForState(`${sweepJob}_0`, /pending \(JobHeldUser\)/);
  await waitForState(`${sweepJob}_1`, /pending \(JobHeldUser\)/);
  await screenshot(page, 'slurm-pending');

  execFileSync('scontrol', ['release', followJob]);
  await waitForState(followJob, /running on \S+/);
  await screenshot(page, 'slurm-running');
  await waitForState(followJob, /· completed$/);
  // Its run folder is under its job, opening the dashboard, not listed again among the runs.
  assert.equal(await sidebar().locator('.monaco-list-row', { hasText: 'follow-run' }).count(), 1);
  await screenshot(page, 'slurm-completed');

  await contextMenu(jobRow(cancelJob), 'Cancel Job');
  const dialog = page.locator('.monaco-dialog-box', { hasText: `Cancel Slurm job ${cancelJob}?` });
  await dialog.waitFor({ timeout: 15_000 });
  await screenshot(page, 'slurm-cancel-confirmation');
  await dialog.locator('.monaco-button', { hasText: 'Cancel Job' }).first().click();
  await waitForState(cancelJob, /· cancelled$/);
  assert.match(execFileSync('scontrol', ['show', 'job', '-o', cancelJob], { encoding: 'utf8' }), /JobState=CANCELLED/);
  await screenshot(page, 'slurm-cancelled');
});
