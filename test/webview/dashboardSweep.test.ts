// A sweep opened together (Open Sweep in Dashboard): the host overlays the sweep's other runs on the panel's charts
// and tells the webview which, so their "Compare with" boxes show checked; unchecking one asks the host to drop it.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { fixtureMetrics, fixtureRun, sendToDashboard } from './dashboardFixture';
import { launchBrowser, openWebview, screenshotDir } from './webviewPage';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

const sweepRuns = [1, 2].map((index) => ({
  id: `sweep-kl-${index}`,
  name: `sweep · kl ${index}`,
  status: 'running' as const,
  startedAt: '2026-11-30T17:00:00.000Z',
}));

test("a sweep's runs overlaid by the host show checked under Compare with and in each chart's legend", async () => {
  const view = await openWebview(browser, 'dashboard', { width: 1100, height: 800 });
  try {
    await sendToDashboard(view, {
      type: 'dashboard/runs',
      runsFolder: '/work/project/.rlhf/runs',
      runs: [
        { id: fixtureRun.id, name: fixtureRun.name, status: 'running', startedAt: '2026-11-30T17:00:00.000Z' },
        ...sweepRuns,
      ],
      problems: [],
    });
    await sendToDashboard(view, { type: 'dashboard/run', run: fixtureRun });
    const points = fixtureMetrics(12);
    await sendToDashboard(view, {
      type: 'dashboard/metrics',
      runId: fixtureRun.id,
      runName: fixtureRun.name,
      reset: true,
      points,
    });
    await sendToDashboard(view, { type: 'dashboard/compared', runIds: sweepRuns.map((run) => run.id) });
    for (const [index, run] of sweepRuns.entries())
      await sendToDashboard(view, {
        type: 'dashboard/metrics',
        runId: run.id,
        runName: run.name,
        reset: true,
        points: points.map((point) => ({ ...point, 'objective/kl': point['objective/kl'] * (index + 2) })),
      });
    for (const run of sweepRuns) assert.equal(await view.page.isChecked(`#compare-${run.id}`), true, run.id);
    const legend = view.page.locator('#charts figure[data-metric="objective/kl"] .u-legend');
    await view.page.waitForFunction(() =>
      (document.querySelector('#charts figure[data-metric="objective/kl"] .u-legend')?.textContent ?? '').includes(
        'sweep · kl 2',
      ),
    );
    const text = await legend.innerText();
    for (const name of [fixtureRun.name, 'sweep · kl 1', 'sweep · kl 2']) assert.ok(text.includes(name), text);
    await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-sweep.png') });

    await view.page.uncheck('#compare-sweep-kl-1');
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/compare', runIds: ['sweep-kl-2'] });
  } finally {
    await view.close();
  }
});
