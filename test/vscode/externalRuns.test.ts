/**
 * Runs of other engines in a real VS Code (code-server, the extension installed from the .vsix), one session for
 * all of them: a workspace whose settings list a TRL GRPO output_dir (workspace-relative), a NeMo-RL log dir and
 * the Python package's PyTorch example run (absolute paths) in `rlhf.externalRuns`; a verl rollout dir and an RL
 * Logging Board folder opened with "RLHF: Open Run Folder…" from the command palette, the path typed into VS
 * Code's folder dialog (in the browser, the simple file dialog: a path box in the quick input) and accepted with
 * its OK button. For each: the Runs view row with the engine, the dashboard's charts, rows (prompt and response
 * text of the fixture), per-token heatmap where the engine logs per-token data, the "not logged" explanation where
 * it does not, and (TRL, RL Logging Board) what the engine appends while the dashboard is open. A screenshot per
 * engine: test-results/screenshots/external-<engine>.png. Needs `npm run package` and
 * `node scripts/ensureTestTools.mjs` first.
 */
import * as assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { formatNumber } from '../../webview/dashboard/colorScale';
import { appendBoardLine, appendVerlStep } from '../fixtures/engineRuns';
import { appendTrlGrpoStep, grpoCompletions } from '../fixtures/trlGrpoRun';
import { runCommand, screenshot } from './codeServer';
import {
  nemoAdvantage,
  nemoLogprob,
  nemoSamples,
  pythonMetrics,
  pythonTrace,
  writeBoardFolder,
  writeNemoRlFolder,
  writePythonExampleRun,
  writeTrlGrpoFolder,
  writeUnknownFolder,
  writeVerlFolder,
  type NemoRlFolder,
} from './externalRunsFixtures';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-external-');
const temp = workbench.temp;
const workspace = join(temp, 'workspace');
const trlFolder = join(workspace, 'engine-runs', 'trl-grpo-output');
const nemoFolderPath = join(temp, 'nemo-rl-exp_001');
const pythonRun = join(temp, 'minimal-ppo-run');
const verlFolder = join(temp, 'verl-rollouts');
const boardFolder = join(temp, 'rl-logging-board');
const unknownFolder = join(temp, 'not-a-run');
const pythonIterations = 3;
/** Live changes are polled by the host's watcher; a few seconds covers it on two busy cores. */
const liveTimeout = 15_000;

let page: Page;
let nemo: NemoRlFolder;

before(async () => {
  await workbench.start({
    workspace,
    prepare: async () => {
      mkdirSync(join(workspace, 'engine-runs'), { recursive: true });
      writeTrlGrpoFolder(trlFolder);
      nemo = await writeNemoRlFolder(nemoFolderPath);
      writePythonExampleRun(pythonRun, pythonIterations);
      writeVerlFolder(verlFolder);
      writeBoardFolder(boardFolder);
      writeUnknownFolder(unknownFolder);
      mkdirSync(join(workspace, '.vscode'));
      writeFileSync(
        join(workspace, '.vscode', 'settings.json'),
        JSON.stringify({ 'rlhf.externalRuns': ['engine-runs/trl-grpo-output', nemoFolderPath, pythonRun] }, null, 2),
      );
    },
  });
  page = await workbench.openPage({ viewport: { width: 1400, height: 860 } });
});

after(() => workbench.stop());

/** The dashboard panel's content (not the Rank view, a webview view of the same extension). */
const dashboardIframe = 'iframe.webview[src*="extensionId=rlhf-lens.rlhf-lens"]:not([src*="purpose=webviewView"])';
const dashboard = (): FrameLocator => page.frameLocator(`${dashboardIframe}.ready`).frameLocator('#active-frame');

const sidebar = () => page.locator('.part.sidebar');
/** The Runs view's row of a folder. */
const runRow = (name: string) => sidebar().locator('.monaco-list-row', { hasText: name }).first();

/** Shows the RLHF container (its Runs view) in the side bar. */
async function showRunsView(): Promise<void> {
  if (await sidebar().locator('.pane-header', { hasText: /^Runs/i }).isVisible()) return;
  await page.locator('.activitybar .action-item [aria-label*="RLHF"]').first().click();
  await sidebar().locator('.pane-header', { hasText: /^Runs/i }).waitFor({ timeout: 15_000 });
}

/** Closes every editor, so the next dashboard is the only one. */
async function closeEditors(): Promise<void> {
  await runCommand(page, 'View: Close All Editors');
  await page.locator(`${dashboardIframe}`).first().waitFor({ state: 'detached', timeout: 10_000 });
}

/**
 * "RLHF: Open Run Folder…" from the palette; in the folder dialog that opens (the simple file dialog in the
 * browser), types the folder's path as a user would and presses its OK button ("Open Run Folder").
 */
async function openRunFolderByTyping(folder: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  await page.keyboard.press('F1');
  await input.fill('>RLHF: Open Run Folder');
  await widget.locator('.monaco-list-row.focused', { hasText: 'Open Run Folder' }).first().waitFor();
  await input.press('Enter');
  // The dialog reuses the quick input: its box holds a path (the workspace folder) once it is up.
  await widget.locator('.quick-input-title', { hasText: 'A run folder of TRL' }).waitFor({ timeout: 15_000 });
  // It starts in the workspace folder: once it lists that folder's subfolders it is done setting its box (typing
  // before that can be overwritten by it).
  await widget.locator('.monaco-list-row', { hasText: 'engine-runs' }).waitFor({ timeout: 15_000 });
  // The dialog lists the typed folder's subfolders (no files: it picks folders) once it has read it; these run
  // folders have none, so only ".." is left. Before that, OK is ignored while the dialog is busy.
  const typed = `${folder}/`;
  const rows = widget.locator('.monaco-list-row');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await input.inputValue();
    if (value !== typed) await input.fill(typed);
    else if (JSON.stringify(await rows.allInnerTexts()) === '[".."]') break;
    if (Date.now() > deadline)
      throw new Error(`the folder dialog shows "${value}" and lists ${await rows.allInnerTexts()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const ok = widget.locator('.quick-input-action', { hasText: 'Open Run Folder' });
  await ok.click();
  // As a user would: a click that landed while the dialog was still settling is repeated.
  const closed = () =>
    widget.waitFor({ state: 'hidden', timeout: 5_000 }).then(
      () => true,
      () => false,
    );
  if (!(await closed()) && (await ok.isVisible())) await ok.click();
  await widget.waitFor({ state: 'hidden', timeout: 15_000 });
}

/** A chart's accessible summary ("reward: 2 points, latest 1 at step 2"). */
const chartLabel = (metric: string) =>
  dashboard().locator(`#charts figure[data-metric="${metric}"]`).getAttribute('aria-label', { timeout: 15_000 });

async function rowLabel(sample: number): Promise<string> {
  const row = dashboard().locator(`#samples [data-sample="${sample}"]`);
  await row.waitFor({ timeout: 15_000 });
  return (await row.getAttribute('aria-label')) ?? '';
}

/** Waits until a sample's row label holds `text`: a step's trace arrives after its slider label changes. */
async function expectRowLabel(sample: number, text: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let label = await rowLabel(sample);
  while (!label.includes(text) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    label = await rowLabel(sample);
  }
  assert.ok(label.includes(text), `row ${sample}: "${label}" lacks "${text}"`);
}

/** The tooltip of a sample's token (every per-token number of it), whitespace collapsed. */
async function tokenTooltip(sample: number, token: number): Promise<string> {
  await dashboard().locator(`#samples [data-sample="${sample}"] .tok`).nth(token).hover();
  const tooltip = dashboard().locator('#token-tooltip');
  await tooltip.waitFor({ state: 'visible' });
  return (await tooltip.innerText()).replace(/\s+/g, ' ');
}

/** The background colours of a sample's token cells (the heatmap). */
const tokenColours = (sample: number) =>
  dashboard()
    .locator(`#samples [data-sample="${sample}"] .tok`)
    .evaluateAll((cells) => cells.map((cell) => (cell as HTMLElement).style.backgroundColor));

/** A token's text as its cell shows it: a whitespace-only token's spaces as middle dots. */
const shownToken = (text: string) => (text.trim() === '' ? text.replace(/ /g, '·') : text);

async function colourBy(field: string): Promise<void> {
  await dashboard().locator('#colour-by').selectOption(field);
}

test('the Runs view lists rlhf.externalRuns’ folders under "Runs of other engines" with their engine', async () => {
  await showRunsView();
  await sidebar().locator('.monaco-list-row', { hasText: 'Runs of other engines' }).waitFor({ timeout: 30_000 });
  for (const [name, engine] of [
    ['trl-grpo-output', 'TRL'],
    ['nemo-rl-exp_001', 'NeMo-RL'],
    ['minimal-ppo-run', 'rlhf-lens (Python)'],
  ]) {
    await runRow(name).waitFor({ timeout: 15_000 });
    assert.equal(await runRow(name).locator('.label-description').textContent(), engine, name);
  }
});

test('a folder of no engine opened with Open Run Folder… is an error listing each engine’s files', async () => {
  await openRunFolderByTyping(unknownFolder);
  const toast = page.locator('.notification-toast', { hasText: 'is not a run folder the lens can read' });
  await toast.waitFor({ timeout: 15_000 });
  const text = await toast.innerText();
  assert.ok(text.includes(unknownFolder), text);
  for (const file of [
    'TRL: trainer_state.json',
    'NeMo-RL: train_data_step<N>.jsonl',
    'verl: <global_step>.jsonl',
    'RL Logging Board (OpenRLHF): *.jsonl',
    'rlhf-lens: run.json',
  ])
    assert.ok(text.includes(file), `"${file}" in "${text}"`);
  await page.keyboard.press('Escape');
});

test('verl, opened from the palette: text rows; the Rollouts status says verl does not log tokens', async () => {
  await openRunFolderByTyping(verlFolder);
  const frame = dashboard();
  await frame.locator('#run-engine', { hasText: 'verl' }).waitFor({ timeout: 30_000 });
  await page.locator('.tab', { hasText: 'RLHF: verl-rollouts (verl)' }).waitFor();
  await frame.locator('#no-metrics').waitFor({ timeout: 15_000 });
  assert.match((await frame.locator('#no-metrics').textContent()) ?? '', /metrics: not logged by verl/);
  await frame.locator('#tab-rollouts').click();
  await frame.locator('#step-label', { hasText: 'Step 2 (2 of 2)' }).waitFor({ timeout: 15_000 });
  // verl's _dump_generations: input, output, score of each sample.
  await expectRowLabel(0, 'Prompt: user: 2+2? Response: 4');
  await expectRowLabel(2, 'Prompt: user: 数一数 Response: 一 二');
  assert.equal(await frame.locator('#samples [data-sample="0"] .untokenized-response').textContent(), '4');
  assert.equal(await frame.locator('#samples .tok').count(), 0, 'verl dumps no tokens');
  assert.equal(await frame.locator('#samples [data-sample="0"] .sample-kl').textContent(), '—', 'KL unknown, not 0');
  assert.equal(await frame.locator('#samples [data-sample="0"] .sample-length').textContent(), 'tokens —');
  assert.match(
    (await frame.locator('#rollout-status').textContent()) ?? '',
    /^Step 2: 3 of 3 samples · ε unknown · tokens: not logged by verl — the rlhf_lens verl adapter/,
  );
  // Live: verl's next step writes its dump; following the latest step, the dashboard moves to it.
  appendVerlStep(verlFolder, 3);
  await frame.locator('#step-label', { hasText: 'Step 3 (3 of 3)' }).waitFor({ timeout: liveTimeout });
  await expectRowLabel(0, 'Prompt: user: 5+5? Response: 10');
  const options = await frame.locator('#colour-by option').allTextContents();
  assert.ok(options.includes('entropy (not logged)') && options.includes('advantage (not logged)'), `${options}`);
  await colourBy('entropy');
  assert.match(
    (await frame.locator('#legend-not-logged').textContent()) ?? '',
    /^entropy: not logged by verl — computed in the actor and dropped/,
  );
  await screenshot(page, 'external-verl');
  await showRunsView();
  assert.equal(await runRow('verl-rollouts').locator('.label-description').textContent(), 'verl');
  await closeEditors();
});

test('RL Logging Board, from the palette: logprob heatmap, KL not logged, an appended line appears', async () => {
  await openRunFolderByTyping(boardFolder);
  const frame = dashboard();
  await frame.locator('#run-engine', { hasText: 'RL Logging Board' }).waitFor({ timeout: 30_000 });
  await frame.locator('#tab-rollouts').click();
  await frame.locator('#step-label', { hasText: 'Step 2 (2 of 2)' }).waitFor({ timeout: 15_000 });
  await expectRowLabel(0, 'Prompt: Q3 Response: e');
  // Live: the trainer's logger appends a line of step 2 to rank 0's file.
  assert.equal(await frame.locator('#samples [data-sample="1"]').count(), 0);
  appendBoardLine(boardFolder, 0, 2);
  await frame.locator('#samples [data-sample="1"]').waitFor({ timeout: liveTimeout });
  await expectRowLabel(1, 'Prompt: Q2 Response: z');
  // Step 1 (both ranks' files): per-token log-probs and reference log-probs as the board logs them.
  await frame.locator('#step-slider').fill('0');
  await frame.locator('#step-label', { hasText: 'Step 1 (1 of 2)' }).waitFor({ timeout: 15_000 });
  await expectRowLabel(0, 'Prompt: Q1 Response: A b');
  await colourBy('logprob');
  const colours = await tokenColours(0);
  assert.equal(colours.length, 2);
  assert.ok(
    colours.every((colour) => colour !== '' && colour !== 'transparent'),
    `${colours}`,
  );
  const tooltip = await tokenTooltip(0, 0);
  assert.ok(
    tooltip.includes(`logprob ${formatNumber(-0.5)}`) && tooltip.includes(`ref logprob ${formatNumber(-0.75)}`),
    tooltip,
  );
  await colourBy('kl');
  assert.match(
    (await frame.locator('#legend-not-logged').textContent()) ?? '',
    /^kl: not logged by RL Logging Board — not in the format \(the board derives k3/,
  );
  await colourBy('ref_logprob');
  await page.mouse.move(0, 0);
  await screenshot(page, 'external-rl-logging-board');
  await showRunsView();
  assert.equal(await runRow('rl-logging-board').locator('.label-description').textContent(), 'RL Logging Board');
  await closeEditors();
});

test('TRL GRPO (TensorBoard + parquet): charts, completions, per-token fields not logged, live step', async () => {
  await showRunsView();
  await runRow('trl-grpo-output').click();
  const frame = dashboard();
  await frame.locator('#run-engine', { hasText: 'TRL' }).waitFor({ timeout: 30_000 });
  await page.locator('.tab', { hasText: 'RLHF: trl-grpo-output (TRL)' }).waitFor();
  // TRL's scalar names as GRPOTrainer logs them (TensorBoard's train/ prefix is the callback's).
  for (const metric of ['reward', 'rewards/accuracy_reward/mean', 'kl', 'entropy', 'completions/mean_length'])
    assert.match((await chartLabel(metric)) ?? '', new RegExp(`^${metric}: 2 points`), metric);
  assert.equal(await chartLabel('reward'), `reward: 2 points, latest ${formatNumber(1)} at step 2`);
  await frame.locator('#tab-rollouts').click();
  await frame.locator('#step-label', { hasText: 'Step 2 (2 of 2)' }).waitFor({ timeout: 15_000 });
  const completions = grpoCompletions(2);
  for (const s of [0, 3])
    await expectRowLabel(s, `Prompt: ${completions.prompt[s]} Response: ${completions.completion[s]}`);
  assert.match((await frame.locator('#rollout-status').textContent()) ?? '', /tokens: not logged by TRL/);
  await colourBy('kl');
  assert.match(
    (await frame.locator('#legend-not-logged').textContent()) ?? '',
    /^kl: not logged by TRL — per_token_kl .*RLHFLensGRPOMixin/,
  );
  // Live: TRL's next logging step (the event file grows, completions_00003.parquet appears).
  appendTrlGrpoStep(trlFolder, 3);
  await frame.locator('#step-label', { hasText: 'Step 3 (3 of 3)' }).waitFor({ timeout: liveTimeout });
  await expectRowLabel(0, 'Response: 5 (step 3)');
  await screenshot(page, 'external-trl');
  await frame.locator('#tab-metrics').click();
  const reward3 = formatNumber(0.25 + 0.125 * 3 + 0.5);
  await frame
    .locator(`#charts figure[data-metric="reward"][aria-label="reward: 3 points, latest ${reward3} at step 3"]`)
    .waitFor({ timeout: liveTimeout });
  await closeEditors();
});

test('NeMo-RL with its tokenizer.json: token texts decoded, advantage/logprob heatmaps, KL not logged', async () => {
  await showRunsView();
  await runRow('nemo-rl-exp_001').click();
  const frame = dashboard();
  await frame.locator('#run-engine', { hasText: 'NeMo-RL' }).waitFor({ timeout: 30_000 });
  await frame.locator('#no-metrics').waitFor({ timeout: 15_000 });
  assert.match((await frame.locator('#no-metrics').textContent()) ?? '', /metrics: not logged by NeMo-RL/);
  await frame.locator('#tab-rollouts').click();
  await frame.locator('#step-label', { hasText: 'Step 2 (2 of 2)' }).waitFor({ timeout: 15_000 });
  for (const [s, [prompt]] of nemoSamples.entries()) {
    const ids = nemo.responseIds[s];
    await expectRowLabel(s, `Prompt: ${prompt} Response: ${nemo.tokenizer.decode(ids)}`);
    const cells = frame.locator(`#samples [data-sample="${s}"] .tok`);
    assert.deepEqual(
      await cells.allTextContents(),
      ids.map((id) => shownToken(nemo.tokenizer.decode([id]))),
    );
  }
  assert.equal(
    await frame.locator('#samples [data-sample="0"] .sample-clipped').textContent(),
    'clipped unknown',
    'NeMo-RL dumps no ratios: not 0 clipped',
  );
  const advantageColours = await tokenColours(0);
  assert.ok(
    advantageColours.every((colour) => colour !== '' && colour !== 'transparent'),
    `${advantageColours}`,
  );
  await colourBy('logprob');
  const tooltip = await tokenTooltip(1, 1);
  assert.ok(tooltip.includes(`logprob ${formatNumber(nemoLogprob(1, 1))}`), tooltip);
  assert.ok(tooltip.includes(`advantage ${formatNumber(nemoAdvantage[1])}`), tooltip);
  const options = await frame.locator('#colour-by option').allTextContents();
  assert.ok(options.includes('KL (not logged)') && options.includes('logprob'), `${options}`);
  await page.mouse.move(0, 0);
  await screenshot(page, 'external-nemo-rl');
  await colourBy('kl');
  assert.match(
    (await frame.locator('#legend-not-logged').textContent()) ?? '',
    /^kl: not logged by NeMo-RL — the reference log-probs are not dumped/,
  );
  await closeEditors();
});

test('the PyTorch example (rlhf-lens Python package): metrics, rows, ratio heatmap per PPO epoch', async () => {
  await showRunsView();
  await runRow('minimal-ppo-run').click();
  const frame = dashboard();
  await frame.locator('#run-engine', { hasText: 'rlhf-lens (Python)' }).waitFor({ timeout: 30_000 });
  const metrics = pythonMetrics(pythonRun);
  const last = metrics.at(-1) as Record<string, number>;
  assert.equal(
    await chartLabel('objective/kl'),
    `objective/kl: ${pythonIterations} points, ` +
      `latest ${formatNumber(last['objective/kl'])} at step ${pythonIterations}`,
  );
  for (const metric of ['objective/scores', 'policy/clipfrac_avg', 'loss/value_avg'])
    assert.match((await chartLabel(metric)) ?? '', new RegExp(`^${metric}: ${pythonIterations} points`), metric);
  await frame.locator('#tab-rollouts').click();
  await frame
    .locator('#step-label', { hasText: `Step ${pythonIterations} (${pythonIterations} of ${pythonIterations})` })
    .waitFor({ timeout: 15_000 });
  const rows = pythonTrace(pythonRun, pythonIterations);
  const first = rows[0];
  await expectRowLabel(0, `Prompt: ${first.prompt} Response: ${first.tokens.join('')}`);
  await colourBy('ratio');
  const colours = await tokenColours(0);
  assert.equal(colours.length, first.tokens.length);
  assert.ok(
    colours.some((colour) => colour !== '' && colour !== 'transparent'),
    `${colours}`,
  );
  const epochs = first.ratio.length;
  const tooltip = await tokenTooltip(0, 1);
  assert.ok(
    tooltip.includes(`ratio, epoch ${epochs} ${formatNumber(Math.fround(first.ratio[epochs - 1][1]))}`),
    tooltip,
  );
  await page.mouse.move(0, 0);
  await screenshot(page, 'external-python');
  await closeEditors();
});
