// The dashboard on runs of other engines in headless Chromium: the header names the engine, and where a view is
// empty it says which field the engine did not log and how to get it (the colour-by list, the legend, the Rollouts
// status, the Metrics view), on steps read by the host's external source from fixture folders written by Debian's
// Python the way NeMo-RL, verl and TRL write them (test/fixtures/engineRuns.ts).
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { ExternalRunSource } from '../../src/host/external/externalRun';
import { writeNemoRlRun, writeTrlRun, writeVerlRun } from '../fixtures/engineRuns';
import { sendToDashboard } from './dashboardFixture';
import { launchBrowser, openWebview, screenshotDir, type WebviewPage } from './webviewPage';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

/** Opens the dashboard as the host's ExternalPanelFeed feeds it, on the source's last step (Rollouts tab). */
async function openExternal(source: ExternalRunSource): Promise<WebviewPage> {
  const view = await openWebview(browser, 'dashboard', { width: 1100, height: 720 });
  const runId = source.folder.split('/').at(-1) as string;
  const points = await source.readMetrics();
  const steps = await source.listSteps();
  await sendToDashboard(view, { type: 'dashboard/run', run: await source.runInfo() });
  await sendToDashboard(view, { type: 'dashboard/metrics', runId, runName: runId, reset: true, points });
  await sendToDashboard(view, { type: 'dashboard/steps', steps, traceKind: steps.length > 0 ? 'ppo' : null });
  if (steps.length > 0) {
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/requestTrace', step: steps.at(-1) });
    await sendToDashboard(view, { type: 'dashboard/trace', trace: await source.packed(steps.at(-1) as number) });
  }
  return view;
}

test('NeMo-RL: colouring by KL says it is not logged by NeMo-RL and how to get it; logged fields colour', async () => {
  const source = await ExternalRunSource.open(writeNemoRlRun());
  const view = await openExternal(source);
  try {
    assert.equal(await view.page.locator('#run-engine').textContent(), 'NeMo-RL');
    await view.page.click('#tab-rollouts');
    await view.page.locator('#samples .sample-row').first().waitFor();
    const options = await view.page.locator('#colour-by option').allTextContents();
    assert.ok(options.includes('KL (not logged)'), options.join(', '));
    assert.ok(options.includes('advantage'), 'advantage is logged by NeMo-RL');
    assert.equal(await view.page.locator('#legend-not-logged').count(), 0, 'advantage (the default) has values');
    await view.page.selectOption('#colour-by', 'kl');
    const text = await view.page.locator('#legend-not-logged').textContent();
    assert.match(text ?? '', /^kl: not logged by NeMo-RL — .*RunWriter/);
    await view.page.selectOption('#colour-by', 'value');
    assert.match((await view.page.locator('#legend-not-logged').textContent()) ?? '', /^value: not logged by NeMo-RL/);
    await view.page.screenshot({ path: path.join(screenshotDir, 'dashboard-nemo-rl-not-logged.png') });
    await view.page.click('#tab-metrics');
    assert.match(
      (await view.page.locator('#no-metrics').textContent()) ?? '',
      /^No metrics\. metrics: not logged by NeMo-RL — .*tensorboard_enabled/,
    );
  } finally {
    await view.close();
  }
});

test('verl: no per-token data — the status says so and names the verl adapter', async () => {
  const folder = writeVerlRun();
  appendFileSync(path.join(folder, '2.jsonl'), '{"input": 3, "step": 2}\n');
  const source = await ExternalRunSource.open(folder);
  const view = await openExternal(source);
  try {
    assert.equal(await view.page.locator('#run-engine').textContent(), 'verl');
    await view.page.click('#tab-rollouts');
    await view.page.locator('#samples .sample-row').first().waitFor();
    const status = (await view.page.locator('#rollout-status').textContent()) ?? '';
    assert.doesNotMatch(status, /\b0 tokens/, 'no tokens logged is not zero tokens');
    // Nothing per token: the row's KL and clipped count are unknown, not 0; the response is there as text.
    const row = view.page.locator('#samples [data-sample="0"]');
    assert.equal(await row.locator('.sample-kl').textContent(), '—');
    assert.equal(await row.locator('.sample-clipped').textContent(), 'clipped unknown');
    assert.equal(await row.locator('.untokenized-response').textContent(), '4');
    assert.equal(await row.locator('.sample-length').textContent(), 'tokens —');
    assert.match(status, /tokens: not logged by verl — the rlhf_lens verl adapter \(python\/rlhf_lens\/adapters\)/);
    const options = await view.page.locator('#colour-by option').allTextContents();
    assert.ok(options.includes('advantage (not logged)') && options.includes('entropy (not logged)'));
    await view.page.screenshot({ path: path.join(screenshotDir, 'dashboard-verl-not-logged.png') });
    // A malformed line of the dump: the host's source reports it as file:line, the header lists it.
    const problems = source.problems.splice(0);
    assert.equal(problems.length, 1);
    await sendToDashboard(view, { type: 'dashboard/problems', problems });
    assert.equal(
      await view.page.locator('#read-problems summary').textContent(),
      "1 skipped while reading the run's files",
    );
    assert.deepEqual(await view.page.locator('#read-problems li').allTextContents(), problems);
  } finally {
    await view.close();
  }
});

test('TRL without completions: the Rollouts tab says how GRPOTrainer logs them; metrics are charted', async () => {
  const source = await ExternalRunSource.open(writeTrlRun());
  const view = await openExternal(source);
  try {
    assert.equal(await view.page.locator('#run-engine').textContent(), 'TRL');
    await view.page.locator('figure.chart[data-metric="reward"]').waitFor();
    assert.equal(await view.page.locator('#no-metrics').count(), 0, 'log_history gives charts');
    await view.page.click('#tab-rollouts');
    assert.match(
      (await view.page.locator('#rollout-status').textContent()) ?? '',
      /^No rollouts\. rollouts: not logged by TRL — .*log_completions=True/,
    );
  } finally {
    await view.close();
  }
});
