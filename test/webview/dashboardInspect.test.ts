// An inspection-only run over ONNX models (`rlhf-lens inspect`) in the dashboard, like a PPO step:
// the real run folder (a tiny trained model exported to ONNX as policy and, nudged, as reference),
// read by the host's own run readers, drawn by the dashboard's Rollouts tab coloured by per-token KL.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { listTraceSteps, parseMetricLine, readRunInfo, TraceCache } from '../../src/host/runData';
import type { MetricPoint } from '../../src/shared/dashboardMessages';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { exportCheckpoint } from '../../src/trainer/onnx/exportModel';
import { runInspection } from '../../src/trainer/onnx/inspectRun';
import { checkpointWithHeads, tinySft, workDir } from '../unit/onnxFixtures';
import { sendToDashboard } from './dashboardFixture';
import { launchBrowser, openWebview, screenshotDir } from './webviewPage';

let browser: Browser;
let runDir: string;

before(async () => {
  await selectBackend('wasm');
  const policy = await checkpointWithHeads('dashboard-policy', ['v_head'], undefined, 0.02);
  policy.model.dispose();
  const reward = await checkpointWithHeads('dashboard-reward', ['score']);
  reward.model.dispose();
  const folder = async (dir: string, name: string) =>
    (await exportCheckpoint(dir, path.join(workDir, 'dashboard', name))).outDir;
  ({ runDir } = await runInspection({
    policy: await folder(policy.dir, 'policy'),
    reference: await folder(await tinySft(), 'reference'),
    reward: await folder(reward.dir, 'reward'),
    name: 'onnx',
    runsRoot: path.join(workDir, 'dashboard-runs'),
    steps: 2,
    batchSize: 6,
    klCoef: 0.05,
    klEstimator: 'k1',
    sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 12 },
    seed: 2,
  }));
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

test(
  "the dashboard shows an inspection run's step like a PPO step: " +
    'its samples, tokens coloured by KL, and its metrics',
  async () => {
    const run = await readRunInfo(runDir);
    assert.equal(run.stage, 'inspect');
    assert.deepEqual(
      run.maxNewTokens,
      { value: 12, source: 'run.json config.stages[0].max_new_tokens' },
      'the stage settings are found where training runs keep theirs',
    );
    assert.deepEqual(run.cliprange, {
      missing: "run.json's config has no PPO stage up to the current one (stage_index 0)",
    });
    const steps = await listTraceSteps(runDir);
    assert.deepEqual(steps, [1, 2]);
    const trace = await new TraceCache().packed(runDir, 2);
    const points = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => parseMetricLine(line) as MetricPoint);

    const view = await openWebview(browser, 'dashboard', { width: 1100, height: 720 });
    try {
      await sendToDashboard(view, { type: 'dashboard/run', run });
      await sendToDashboard(view, { type: 'dashboard/metrics', runId: run.id, runName: run.name, reset: true, points });
      await sendToDashboard(view, { type: 'dashboard/steps', steps, traceKind: 'ppo' });
      assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/requestTrace', step: 2 });
      await sendToDashboard(view, { type: 'dashboard/trace', trace });
      await view.page.click('#tab-rollouts');
      await view.page.locator('#samples .sample-row').first().waitFor();
      await view.page.selectOption('#colour-by', 'kl');
      assert.match((await view.page.locator('#rollout-status').textContent()) ?? '', /6 of 6 samples/);
      const tokens = await view.page.locator('#samples .tok').count();
      assert.ok(tokens >= 6, `the samples' tokens are drawn (${tokens})`);
      const coloured = await view.page
        .locator('#samples .tok')
        .evaluateAll(
          (spans) => spans.filter((span) => getComputedStyle(span).backgroundColor !== 'rgba(0, 0, 0, 0)').length,
        );
      assert.ok(coloured > 0, 'tokens where policy and reference disagree are coloured');
      await view.page.locator('#samples .tok').first().hover();
      const tooltip = (await view.page.locator('#token-tooltip').innerText()).replace(/\s+/g, ' ');
      for (const expected of ['KL', 'logprob', 'ref logprob', 'value'])
        assert.ok(tooltip.includes(expected), `"${expected}" in "${tooltip}"`);
      await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-inspect-rollouts.png') });
      await view.page.click('#tab-metrics');
      await view.page.locator('#charts canvas').first().waitFor();
      await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-inspect-metrics.png') });
      assert.deepEqual(view.errors, []);
    } finally {
      await view.close();
    }
  },
);
