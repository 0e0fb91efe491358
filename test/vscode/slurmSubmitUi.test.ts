/**
 * Submitting to Slurm from a real VS Code (code-server, the extension installed from the .vsix) as a user does, with
 * the trainer's own `submit` against the real controller of this machine: a tiny SFT config submitted from its
 * CodeLens goes in the Runs view from "pending (JobHeldUser)" to "running on <node>" (then "suspended on <node>":
 * `scontrol suspend` keeps it mid-run) to "completed"; its item, clicked mid-run, opens the dashboard, which follows
 * the run's steps live to the end once the job is resumed; its menu opens the output; a
 * 3-element sweep submitted from the command palette is grouped with its settings, completes and opens overlaid in
 * one dashboard; a held job is cancelled from its menu.
 * The held jobs are held by their config (`"extra_args": ["--hold"]`): a job held after sbatch returns has often
 * started already on an idle node. Jobs are named rlhf-lens-test-slurmui-… (the job name is rlhf-lens-<config name>).
 * Screenshots: test-results/screenshots/slurm-submit-*.png. Needs `npm run package`, `node
 * scripts/ensureTestTools.mjs` and `sinfo` answering.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { formatNumber } from '../../webview/dashboard/colorScale';
import { assertSlurmAvailable, cancelTestJobs, jobInfo } from '../fixtures/slurm/slurm';
import { sftConfig } from '../fixtures/slurm/slurmConfigs';
import { dashboardFrame, runCommand, screenshot } from './codeServer';
import { jobRow as jobRowOf, rowMenu, showRunsView, sideBar, waitForJobRow } from './runsViewJobs';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-slurm-submit-');
// Slurm runs the jobs as the submitting user on this machine's node: the files must be readable by it.
chmodSync(workbench.temp, 0o755);
const workspace = join(workbench.temp, 'workspace');
const runsDir = join(workspace, '.rlhf', 'runs');
/** The controller is asked every 5 s; a state change shows within a few polls on two busy cores. */
const stateTimeout = 60_000;
const sweepRates = [0.001, 0.005, 0.02];
/** Long enough (about 0.006 s a step on one core, more on a busy one) to be seen running between two polls. */
const followSteps = 3000;

let page: Page;

const held = { type: 'slurm', time: '00:05:00', cpus_per_task: 1, extra_args: ['--hold'] };
const configs: Record<string, unknown> = {
  'slurmui-follow.rlhf.json': sftConfig(
    'test-slurmui-follow',
    { max_steps: followSteps, eval_steps: 500, save_steps: followSteps },
    { launcher: held },
  ),
  'slurmui-sweep.rlhf.json': sftConfig('test-slurmui-sweep', {}, { sweep: { 'stages.sft.learning_rate': sweepRates } }),
  'slurmui-cancel.rlhf.json': sftConfig('test-slurmui-cancel', {}, { launcher: held }),
};

before(async () => {
  await workbench.start({
    workspace,
    prepare: () => {
      assertSlurmAvailable();
      mkdirSync(runsDir, { recursive: true });
      for (const [file, config] of Object.entries(configs))
        writeFileSync(join(workspace, file), JSON.stringify(config, null, 2));
    },
  });
  page = await workbench.openPage({ viewport: { width: 1400, height: 860 } });
  await showRunsView(page);
  await widenSidebar(240);
});

after(async () => {
  cancelTestJobs('rlhf-lens-test-slurmui-');
  await workbench.stop();
});

const sidebar = () => sideBar(page);
const jobRow = (jobSpec: string) => jobRowOf(page, jobSpec);
const waitForState = (jobSpec: string, expected: RegExp) =>
  waitForJobRow(page, jobSpec, expected, { timeout: stateTimeout, failureShot: 'slurm-submit-failure' });
const contextMenu = (row: Locator, entry: string) => rowMenu(page, row, entry);

/** Drags the sash right of the side bar, so the Runs view's labels and states show whole in the screenshots. */
async function widenSidebar(by: number): Promise<void> {
  const box = await sidebar().boundingBox();
  assert.ok(box, 'the side bar is shown');
  const sashX = box.x + box.width + 1;
  await page.mouse.move(sashX, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(sashX + by, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
}

/** Opens a workspace file with Quick Open (Ctrl+P), as a user would. */
async function openFile(name: string): Promise<void> {
  await page.keyboard.press('Control+P');
  await page.locator('.quick-input-widget .quick-input-box input').fill(name);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator('.tab.active', { hasText: name }).waitFor({ timeout: 15_000 });
}

/** The job id of the notification "Submitted <config>: Slurm job <id>." that a submission shows. */
async function submittedJobId(config: string): Promise<string> {
  const message = page.locator('.notification-list-item-message', { hasText: `Submitted ${config}: Slurm job` });
  const text = (await message.first().textContent({ timeout: 60_000 })) ?? '';
  const jobId = /Slurm job (\d+)\./.exec(text)?.[1];
  assert.ok(jobId, `no job id in "${text}"`);
  return jobId;
}

/** Opens the config and clicks its CodeLens "Submit to cluster"; returns the job id the notification names. */
async function submitFromCodeLens(config: string): Promise<string> {
  await openFile(config);
  await page.locator('.codelens-decoration a', { hasText: 'Submit to cluster' }).click({ timeout: 30_000 });
  return submittedJobId(config);
}

/** The run folder whose id starts with `prefix` (the trainer names runs <config name>-<stage>-<time>). */
function runFolder(prefix: string): string {
  const found = readdirSync(runsDir).filter((id) => id.startsWith(prefix));
  assert.equal(found.length, 1, `one run ${prefix}…: ${readdirSync(runsDir).join(', ')}`);
  return join(runsDir, found[0]);
}

/** A run's metrics.jsonl, one object a step. */
const metricsOf = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);

/** Waits until a chart's accessible summary is `expected` ("loss/train: 6 points, latest 5.25 at step 6"). */
async function waitForChartLabel(metric: string, expected: string): Promise<void> {
  const chart = dashboardFrame(page).locator(`#charts figure[data-metric="${metric}"]`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const label = await chart.getAttribute('aria-label', { timeout: 30_000 }).catch(() => null);
    if (label === expected) return;
    if (Date.now() > deadline) throw new Error(`the ${metric} chart says "${label}", not "${expected}"`);
    await page.waitForTimeout(300);
  }
}

let followJob = '';

test('a config submitted from its CodeLens goes from pending (held) to running on the node', async () => {
  followJob = await submitFromCodeLens('slurmui-follow.rlhf.json');
  assert.equal(jobInfo(followJob)?.jobName, 'rlhf-lens-test-slurmui-follow');
  assert.match(await waitForState(followJob, /pending/), /^slurm \d+ · pending \(JobHeldUser\)$/);
  await screenshot(page, 'slurm-submit-pending');

  execFileSync('scontrol', ['release', followJob]);
  // Running, and training once the trainer wrote its run folder: the row then opens the run's dashboard.
  assert.match(await waitForState(followJob, /running.* · training$/), /^slurm \d+ · running on \S+ · training$/);
  // Suspended (SIGSTOP) by the test playing the admin: the dashboard below opens mid-run however slow the machine.
  execFileSync('scontrol', ['suspend', followJob]);
  assert.equal(await jobRow(followJob).locator('.label-name').textContent(), 'test-slurmui-follow · sft');
  await screenshot(page, 'slurm-submit-running');
  await waitForState(followJob, /^slurm \d+ · suspended on \S+/);
});

test("the running job's item opens its dashboard, which follows the run's steps live to the end", async () => {
  await jobRow(followJob).click();
  const frame = dashboardFrame(page);
  await frame.locator('#run-name', { hasText: 'test-slurmui-follow · sft' }).waitFor({ timeout: 30_000 });
  const chart = frame.locator('#charts figure[data-metric="loss/train"]');
  await chart.locator('canvas').first().waitFor({ timeout: 30_000 });
  // Opened while the job trains: some of its steps, fewer than it will have.
  const pointsOf = (label: string | null) => Number(/^loss\/train: (\d+) points/.exec(label ?? '')?.[1] ?? 0);
  let firstLabel = await chart.getAttribute('aria-label');
  for (const deadline = Date.now() + 15_000; pointsOf(firstLabel) === 0 && Date.now() < deadline;) {
    await page.waitForTimeout(200);
    firstLabel = await chart.getAttribute('aria-label');
  }
  assert.ok(pointsOf(firstLabel) > 0 && pointsOf(firstLabel) < followSteps, `opened mid-run: ${firstLabel}`);
  assert.equal(await frame.locator('#run-status').textContent(), 'running');
  await screenshot(page, 'slurm-submit-dashboard-live');
  execFileSync('scontrol', ['resume', followJob]);

  await waitForState(followJob, /· completed$/);
  assert.equal(jobInfo(followJob)?.jobState, 'COMPLETED');
  const last = metricsOf(runFolder('test-slurmui-follow-sft-')).at(-1) as Record<string, number>;
  assert.equal(last.step, followSteps);
  await waitForChartLabel(
    'loss/train',
    `loss/train: ${followSteps} points, latest ${formatNumber(last['loss/train'])} at step ${followSteps}`,
  );
  await frame.locator('#run-status', { hasText: 'completed' }).waitFor({ timeout: 30_000 });
  // The run folder is listed once, as the job's item, not again among the workspace's runs.
  assert.equal(await sidebar().locator('.monaco-list-row', { hasText: 'test-slurmui-follow' }).count(), 1);
  await screenshot(page, 'slurm-submit-completed');
});

test("Open Job Output shows the job's output file with the trainer's lines", async () => {
  await contextMenu(jobRow(followJob), 'Open Job Output');
  const file = `slurm-${followJob}.out`;
  await page.locator('.tab.active', { hasText: file }).waitFor({ timeout: 15_000 });
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-lines');
  const visible = async () => ((await lines.innerText()) ?? '').replace(/\u00a0/g, ' ');
  await lines.locator('.view-line').first().waitFor({ timeout: 15_000 });
  assert.match(await visible(), new RegExp(`^rlhf-lens: job ${followJob} on \\S+, restart 0`));
  await screenshot(page, 'slurm-submit-output');
  // The end of the file: the trainer's last words.
  await lines.click();
  await page.keyboard.press('Control+End');
  const deadline = Date.now() + 15_000;
  while (!/finished 1 stage/.test(await visible())) {
    if (Date.now() > deadline) assert.fail(`the end of ${file} shows no "finished 1 stage":\n${await visible()}`);
    await page.waitForTimeout(300);
  }
  assert.match(await visible(), new RegExp(`SFT finished ${followSteps} steps in`));
});

test('a 3-element sweep submitted from the palette is grouped, completes and opens overlaid', async () => {
  await runCommand(page, 'View: Close All Editors');
  await openFile('slurmui-sweep.rlhf.json');
  await runCommand(page, 'RLHF: Submit Run to Cluster');
  const sweepJob = await submittedJobId('slurmui-sweep.rlhf.json');
  const group = sidebar().locator('.monaco-list-row', { hasText: 'slurmui-sweep sweep' }).first();
  await group.waitFor({ timeout: stateTimeout });
  for (const [index, rate] of sweepRates.entries()) {
    await waitForState(`${sweepJob}_${index}`, /· completed$/);
    const label = await jobRow(`${sweepJob}_${index}`).locator('.label-name').textContent();
    assert.equal(label, `[${index}] stages.sft.learning_rate=${rate}`);
  }
  assert.equal(await group.locator('.label-description').textContent(), `slurm ${sweepJob} · 3 completed`);
  await screenshot(page, 'slurm-submit-sweep');

  await contextMenu(group, 'Open Sweep in Dashboard');
  const names = sweepRates.map((rate) => `test-slurmui-sweep-learning_rate-${rate} · sft`);
  const legend = dashboardFrame(page).locator('#charts figure[data-metric="loss/train"] .u-legend');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = (await legend.innerText({ timeout: 30_000 }).catch(() => '')) ?? '';
    if (names.every((name) => text.includes(name))) break;
    if (Date.now() > deadline) assert.fail(`the loss/train legend shows "${text}", not the 3 runs ${names}`);
    await page.waitForTimeout(300);
  }
  // The step axis, the opened run (element 0), then the others in the order their metrics came: each run a smoothed
  // line and its raw one (the smoothing is on by default).
  const labels = await legend.locator('.u-series .u-label').allInnerTexts();
  const lines = (runNames: string[]) => runNames.flatMap((name) => [name, `${name} (raw)`]);
  assert.deepEqual(labels.slice(0, 3), ['step', ...lines(names.slice(0, 1))]);
  assert.deepEqual(labels.slice(3).sort(), lines(names.slice(1)).sort());
  const first = metricsOf(runFolder('test-slurmui-sweep-learning_rate-0.001-sft-')).at(-1) as Record<string, number>;
  await waitForChartLabel('loss/train', `loss/train: 6 points, latest ${formatNumber(first['loss/train'])} at step 6`);
  await screenshot(page, 'slurm-submit-sweep-dashboard');
});

test('a held job is cancelled from its context menu and shows cancelled', async () => {
  await runCommand(page, 'View: Close All Editors');
  const cancelJob = await submitFromCodeLens('slurmui-cancel.rlhf.json');
  await waitForState(cancelJob, /pending \(JobHeldUser\)/);
  await contextMenu(jobRow(cancelJob), 'Cancel Job');
  const dialog = page.locator('.monaco-dialog-box', { hasText: `Cancel Slurm job ${cancelJob}?` });
  await dialog.waitFor({ timeout: 15_000 });
  await screenshot(page, 'slurm-submit-cancel-confirmation');
  await dialog.locator('.monaco-button', { hasText: 'Cancel Job' }).first().click();
  assert.equal(await waitForState(cancelJob, /· cancelled$/), `slurm ${cancelJob} · cancelled`);
  assert.equal(jobInfo(cancelJob)?.jobState, 'CANCELLED');
  await screenshot(page, 'slurm-submit-cancelled');
});
