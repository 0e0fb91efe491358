// The dashboard's Metrics and "Prompt over time" tabs and its live behaviour in headless Chromium:
// charts grouped by TRL namespace, points appended as the host sends them, runs overlaid, the x
// axis and smoothing controls, warnings, following the latest step, and the run list's Open buttons.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { fixtureMetrics, fixtureRows, fixtureRun, packThroughArrow, sendToDashboard } from './dashboardFixture';
import { launchBrowser, openWebview, screenshotDir, type WebviewPage } from './webviewPage';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

const otherRun = {
  id: 'other-ppo',
  name: 'other · ppo',
  status: 'completed' as const,
  startedAt: '2026-11-21T11:00:00.000Z',
};

async function openMetrics(points = fixtureMetrics()): Promise<WebviewPage> {
  const view = await openWebview(browser, 'dashboard', { width: 1100, height: 800 });
  // The host sends the run list first: it becomes the comparison choices once the run arrives.
  await sendToDashboard(view, {
    type: 'dashboard/runs',
    runsFolder: '/work/project/.rlhf/runs',
    runs: [
      { id: fixtureRun.id, name: fixtureRun.name, status: 'completed', startedAt: '2026-11-21T12:00:00.000Z' },
      otherRun,
    ],
    problems: [],
  });
  await sendToDashboard(view, { type: 'dashboard/run', run: fixtureRun });
  await sendToDashboard(view, {
    type: 'dashboard/metrics',
    runId: fixtureRun.id,
    runName: fixtureRun.name,
    reset: true,
    points,
  });
  await view.page.locator('#charts figure[data-metric="objective/kl"] canvas').first().waitFor();
  return view;
}

const chartLabel = (view: WebviewPage, metric: string) =>
  view.page.locator(`#charts figure[data-metric="${metric}"]`).getAttribute('aria-label');

test('metrics are charted with uPlot in TRL’s namespaces, and appended points show up on the next frame', async () => {
  const view = await openMetrics(fixtureMetrics(24));
  try {
    assert.deepEqual(await view.page.locator('#charts .metric-group > h2').allTextContents(), [
      'objective',
      'oracle',
      'policy',
      'loss',
      'val',
      'other',
    ]);
    assert.deepEqual(
      await view.page
        .locator('#group-objective figure')
        .evaluateAll((figures) => figures.map((figure) => (figure as HTMLElement).dataset.metric)),
      ['objective/entropy', 'objective/kl', 'objective/scores'],
    );
    assert.equal(await view.page.locator('#group-objective .uplot').count(), 3, 'one uPlot chart per metric');
    assert.match((await chartLabel(view, 'objective/kl')) ?? '', /objective\/kl: 24 points, latest 2\.\d+ at step 24/);
    await sendToDashboard(view, {
      type: 'dashboard/metrics',
      runId: fixtureRun.id,
      runName: fixtureRun.name,
      reset: false,
      points: [{ step: 25, episode: 200, 'objective/kl': 3.5 }],
    });
    await view.page.waitForFunction(
      () =>
        /25 points, latest 3\.5 at step 25/.test(
          document.querySelector('#charts figure[data-metric="objective/kl"]')?.getAttribute('aria-label') ?? '',
        ),
      undefined,
      { timeout: 1000 },
    );
    await view.page.selectOption('#x-axis', 'episode');
    assert.match((await chartLabel(view, 'objective/kl')) ?? '', /latest 3\.5 at episode 200/);
    assert.deepEqual(view.errors, []);
  } finally {
    await view.close();
  }
});

test('a running run’s header step follows the metrics that arrive between run.json’s checkpoint writes', async () => {
  const view = await openWebview(browser, 'dashboard', { width: 1100, height: 800 });
  try {
    const running = { ...fixtureRun, status: 'running' as const, step: 0, maxSteps: 3000 };
    await sendToDashboard(view, { type: 'dashboard/run', run: running });
    const progress = () => view.page.locator('.title .muted').textContent();
    await view.page.locator('.title .muted').waitFor();
    assert.equal(await progress(), 'ppo · step 0 of 3000');
    const metricsMessage = (reset: boolean, steps: number[]) => ({
      type: 'dashboard/metrics' as const,
      runId: running.id,
      runName: running.name,
      reset,
      points: steps.map((step) => ({ step, 'objective/kl': 0.1 })),
    });
    await sendToDashboard(view, metricsMessage(true, [0, 1, 2, 1200]));
    await view.page.waitForFunction(
      () => document.querySelector('.title .muted')?.textContent === 'ppo · step 1200 of 3000',
    );
    await sendToDashboard(view, metricsMessage(false, [1201, 1250]));
    await view.page.waitForFunction(
      () => document.querySelector('.title .muted')?.textContent === 'ppo · step 1250 of 3000',
    );
    // Another run's metrics (an overlay) do not move this run's header.
    await sendToDashboard(view, { ...metricsMessage(false, [2999]), runId: 'other-ppo', runName: 'other · ppo' });
    // run.json at a checkpoint: the larger of the two is shown.
    await sendToDashboard(view, { type: 'dashboard/run', run: { ...running, step: 1000 } });
    assert.equal(await progress(), 'ppo · step 1250 of 3000');
    // A resumed run's metrics start again (reset): the header follows them back.
    await sendToDashboard(view, { type: 'dashboard/run', run: { ...running, step: 500 } });
    await sendToDashboard(view, metricsMessage(true, [0, 500, 600]));
    await view.page.waitForFunction(
      () => document.querySelector('.title .muted')?.textContent === 'ppo · step 600 of 3000',
    );
    assert.deepEqual(view.errors, []);
  } finally {
    await view.close();
  }
});

test(
  'warnings name KL rising, entropy collapsing, length ' + 'running away and reward hacking, and the tab counts them',
  async () => {
    const view = await openMetrics();
    try {
      const titles = await view.page.locator('#warnings .warning strong').allTextContents();
      assert.deepEqual(titles.sort(), [
        '⚠ Entropy is collapsing',
        '⚠ KL is rising fast',
        '⚠ Response length is running away',
        '⚠ Reward is rising while the oracle score falls',
      ]);
      assert.equal(await view.page.locator('#tab-metrics').textContent(), 'Metrics ⚠ 4');
      assert.match(
        (await view.page.locator('.warning-reward-hacking').textContent()) ?? '',
        /objective\/scores changed by \+.* while oracle\/score changed by -/,
      );
    } finally {
      await view.close();
    }
  },
);

test('ticking another run asks the host for it and overlays its metrics; smoothing adds the raw series', async () => {
  const view = await openMetrics();
  try {
    await view.page.check('#compare-other-ppo');
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/compare', runIds: ['other-ppo'] });
    const otherPoints = fixtureMetrics(12).map((point) => ({ ...point, 'objective/kl': point['objective/kl'] / 2 }));
    await sendToDashboard(view, {
      type: 'dashboard/metrics',
      runId: 'other-ppo',
      runName: 'other · ppo',
      reset: true,
      points: otherPoints,
    });
    const legend = view.page.locator('#charts figure[data-metric="objective/kl"] .u-legend');
    await legend.waitFor();
    const text = await legend.innerText();
    assert.ok(text.includes('fixture · ppo') && text.includes('other · ppo'), text);
    assert.ok(text.includes('(raw)'), 'with smoothing on, each run also has its raw series');
    await view.page.locator('#smoothing').fill('0');
    await view.page.waitForFunction(
      () =>
        !(document.querySelector('#charts figure[data-metric="objective/kl"] .u-legend')?.textContent ?? '').includes(
          '(raw)',
        ),
    );
    await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-compare.png') });
    await view.page.uncheck('#compare-other-ppo');
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/compare', runIds: [] });
  } finally {
    await view.close();
  }
});

test(
  '"follow latest" asks for each new step; the ' + 'prompt-over-time tab shows a prompt’s responses step by step',
  async () => {
    const view = await openMetrics();
    try {
      await sendToDashboard(view, { type: 'dashboard/steps', steps: [1], traceKind: 'ppo' });
      assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/requestTrace', step: 1 });
      await sendToDashboard(view, { type: 'dashboard/trace', trace: packThroughArrow(1, fixtureRows(1)) });
      await sendToDashboard(view, { type: 'dashboard/steps', steps: [1, 2], traceKind: 'ppo' });
      assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/requestTrace', step: 2 });
      await sendToDashboard(view, { type: 'dashboard/trace', trace: packThroughArrow(2, fixtureRows(2)) });

      await view.page.click('#tab-rollouts');
      await view.page.locator('#samples [data-sample="1"]').dblclick();
      await view.page.click('#follow-prompt');
      assert.deepEqual((await view.posted()).at(-1), {
        type: 'dashboard/requestPromptHistory',
        prompt: 'The film was',
      });
      assert.equal(await view.page.locator('#tab-history').getAttribute('aria-selected'), 'true');
      const entries = [1, 2].flatMap((step) =>
        fixtureRows(step)
          .filter((row) => row.prompt === 'The film was')
          .map((row) => ({
            step,
            sample: row.sample,
            score: row.score + step / 10,
            oracleScore: row.oracle_score,
            tokens: row.tokens,
            values: {
              reward: row.reward,
              kl: row.kl,
              value: row.value,
              advantage: row.advantage,
              return: row.return,
              entropy: row.entropy,
              logprob: row.logprob,
              ref_logprob: row.ref_logprob,
            },
          })),
      );
      await sendToDashboard(view, { type: 'dashboard/promptHistory', prompt: 'The film was', entries });
      const columns = view.page.locator('#history-columns .history-entry');
      assert.equal(await columns.count(), 4);
      assert.deepEqual(await columns.locator('h3').allTextContents(), ['Step 1', 'Step 1', 'Step 2', 'Step 2']);
      assert.match(
        (await columns.nth(2).innerText()).replace(/\s+/g, ' '),
        /sample 0 · score 1\.1 · oracle 0\.8 great film! and/,
      );
      assert.match(
        (await columns.nth(1).getAttribute('aria-label')) ?? '',
        /^Step 1, score −0\.6, oracle −0\.6:  dull\.$/,
      );
      await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-prompt-history.png') });
    } finally {
      await view.close();
    }
  },
);

test('without a run, the dashboard lists the runs and each Open button asks the host for that run', async () => {
  const view = await openWebview(browser, 'dashboard');
  try {
    await sendToDashboard(view, {
      type: 'dashboard/runs',
      runsFolder: '/work/project/.rlhf/runs',
      runs: [otherRun],
      problems: [],
    });
    await view.page.locator('#open-other-ppo').click();
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/openRun', runId: 'other-ppo' });
  } finally {
    await view.close();
  }
});

test('the Metrics and Prompt-over-time controls are reachable with Tab', async () => {
  const view = await openMetrics();
  try {
    const reach = async (start: string, wanted: string[]) => {
      await view.page.locator(start).focus();
      const reached: string[] = [];
      for (let i = 0; i < 12 && !wanted.every((id) => reached.includes(id)); i++) {
        await view.page.keyboard.press('Tab');
        reached.push(await view.page.evaluate(() => document.activeElement?.id ?? ''));
      }
      for (const id of wanted)
        assert.ok(reached.includes(id), `${id} reached by Tab from ${start} (order: ${reached.join(', ')})`);
    };
    await reach('#tab-metrics', ['smoothing', 'x-axis', 'compare-other-ppo']);
    await view.page.keyboard.press('Space');
    assert.deepEqual(
      (await view.posted()).at(-1),
      { type: 'dashboard/compare', runIds: ['other-ppo'] },
      'a checkbox toggles from the keyboard',
    );
    await view.page.click('#tab-history');
    await reach('#tab-history', ['history-prompt', 'history-show', 'history-colour']);
  } finally {
    await view.close();
  }
});
