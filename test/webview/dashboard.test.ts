import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { DashboardRunsMessage } from '../../src/shared/protocol';
import { launchBrowser, openWebview, screenshotDir } from './webviewPage';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

const runsMessage: DashboardRunsMessage = {
  type: 'dashboard/runs',
  runsFolder: '/work/project/.rlhf/runs',
  runs: [
    { id: 'dpo-beta', name: 'dpo-beta-0.1', status: 'stopped', startedAt: '2026-11-20T11:15:00.000Z' },
    { id: 'demo-ppo', name: 'demo-ppo', status: 'completed', startedAt: '2026-11-20T09:30:00.000Z', backend: 'wasm' },
    {
      id: 'sft-small',
      name: 'sft-small',
      status: 'failed',
      startedAt: '2026-11-19T14:02:00.000Z',
      error: 'NaN in loss/train at step 12',
    },
  ],
  problems: [
    { file: '/work/project/.rlhf/runs/broken-run/run.json', message: 'not valid JSON (Unexpected end of JSON input)' },
  ],
};

for (const theme of ['dark', 'light'] as const) {
  test(`the dashboard shakes hands, then lists runs with status and start time (${theme} theme)`, async () => {
    const view = await openWebview(browser, 'dashboard', { theme });
    try {
      assert.deepEqual(
        await view.posted(),
        [{ type: 'webview/ready' }],
        'the webview announces itself and nothing else before the host speaks',
      );
      await view.send(runsMessage);
      const rows = view.page.locator('#runs tbody tr');
      await rows.first().waitFor();
      assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.runId)), [
        'dpo-beta',
        'demo-ppo',
        'sft-small',
      ]);
      assert.deepEqual(await view.page.locator('#runs tbody .run-name').allTextContents(), [
        'dpo-beta-0.1',
        'demo-ppo',
        'sft-small',
      ]);
      assert.equal(await view.page.locator('tr[data-run-id="demo-ppo"] .status').textContent(), 'completed');
      assert.equal(
        await view.page.locator('tr[data-run-id="demo-ppo"] time').getAttribute('datetime'),
        '2026-11-20T09:30:00.000Z',
      );
      assert.equal(await view.page.locator('#runs caption').textContent(), '3 runs');
      assert.match((await view.page.locator('#problems').textContent()) ?? '', /broken-run\/run.json: not valid JSON/);
      assert.equal(await view.page.locator('#app').getAttribute('aria-busy'), 'false');

      // Theme variables reach the page: the failed status dot uses the theme's failure colour.
      const dot = await view.page
        .locator('tr[data-run-id="sft-small"] .status')
        .evaluate((el) => getComputedStyle(el, '::before').backgroundColor);
      assert.equal(dot, 'rgb(241, 76, 76)');
      const background = await view.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background, theme === 'dark' ? 'rgb(31, 31, 31)' : 'rgb(255, 255, 255)');

      await view.page.screenshot({ path: path.join(screenshotDir, `webview-dashboard-${theme}.png`) });
      assert.deepEqual(
        await view.cspViolations(),
        [],
        'nothing the dashboard loads breaks its Content Security Policy',
      );
      assert.deepEqual(view.errors, []);
    } finally {
      await view.close();
    }
  });
}

test('the Refresh button asks the host for the runs again', async () => {
  const view = await openWebview(browser, 'dashboard');
  try {
    await view.send(runsMessage);
    await view.page.locator('#refresh').click();
    assert.deepEqual(await view.posted(), [{ type: 'webview/ready' }, { type: 'dashboard/refresh' }]);
    // Keyboard users reach it too.
    await view.page.locator('#refresh').focus();
    await view.page.keyboard.press('Enter');
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/refresh' });
  } finally {
    await view.close();
  }
});

test('with no runs the dashboard says so and how runs appear', async () => {
  const view = await openWebview(browser, 'dashboard');
  try {
    await view.send({ ...runsMessage, runs: [], problems: [] });
    await view.page.locator('#no-runs').waitFor();
    assert.match(
      (await view.page.locator('#no-runs').textContent()) ?? '',
      /No runs found.*\.rlhf\/runs\/<run-id>\/run\.json/,
    );
    assert.equal(await view.page.locator('#runs').count(), 0);
    assert.equal(await view.page.locator('#problems').count(), 0);
    await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-empty.png') });
  } finally {
    await view.close();
  }
});

test('run names are shown as text, never parsed as HTML', async () => {
  const view = await openWebview(browser, 'dashboard');
  try {
    await view.send({
      ...runsMessage,
      runs: [
        {
          id: 'x',
          name: '<img src=x onerror="window.__pwned=1">',
          status: 'running',
          startedAt: '2026-11-20T09:30:00.000Z',
        },
      ],
      problems: [],
    });
    await view.page.locator('#runs tbody tr').waitFor();
    assert.equal(
      await view.page.locator('#runs tbody .run-name').textContent(),
      '<img src=x onerror="window.__pwned=1">',
    );
    assert.equal(await view.page.locator('#runs img').count(), 0);
  } finally {
    await view.close();
  }
});
