// The dashboard's Rollouts and Clipping tabs in headless Chromium, on the fixture run: each token's
// colour against its value and the theme, the legend, tooltips, sorting and filtering, the clip
// classification, keyboard reachability, screen-reader labels, narrow panels and the HTML export.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { buildExportHtml } from '../../src/host/exportHtml';
import type { DashboardExportHtmlMessage, DashboardRunInfo } from '../../src/shared/dashboardMessages';
import { packPpoTrace, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { decodeTraceTable } from '../../src/shared/traceFormat';
import { fixtureMetrics, fixtureRows, fixtureRun, packThroughArrow, sendToDashboard } from './dashboardFixture';
import { launchBrowser, openWebview, screenshotDir, type Theme, type WebviewPage } from './webviewPage';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

/** The fixture's step 3 as the trace format 1 writer wrote it (`clip`, no `clip_class`), packed by the host. */
function versionOneTrace(): PackedPpoTrace {
  const bytes = readFileSync(path.join(__dirname, '..', 'fixtures', 'traces', 'ppo-v1-step-3.arrow'));
  const table = decodeTraceTable(bytes);
  if (table.kind !== 'ppo') throw new Error('expected a PPO trace');
  return packPpoTrace(3, table.numRows, (i) => table.row(i));
}

/** A run whose run.json records no stage settings, as one from another trainer. */
const foreignRun: DashboardRunInfo = {
  ...fixtureRun,
  cliprange: { missing: 'run.json has no config.stages (a run from another trainer?)' },
  maxNewTokens: { missing: 'run.json has no config.stages (a run from another trainer?)' },
};

/** Opens the dashboard on the fixture run's step 3 (by default as the current writer writes it), Rollouts tab. */
async function openFixture(
  options: { theme?: Theme; width?: number; height?: number; run?: DashboardRunInfo; trace?: PackedPpoTrace } = {},
): Promise<WebviewPage> {
  const view = await openWebview(browser, 'dashboard', { width: 1100, height: 720, ...options });
  await sendToDashboard(view, { type: 'dashboard/run', run: options.run ?? fixtureRun });
  await sendToDashboard(view, {
    type: 'dashboard/metrics',
    runId: fixtureRun.id,
    runName: fixtureRun.name,
    reset: true,
    points: fixtureMetrics(),
  });
  await sendToDashboard(view, { type: 'dashboard/steps', steps: [1, 2, 3], traceKind: 'ppo' });
  assert.deepEqual(
    (await view.posted()).at(-1),
    { type: 'dashboard/requestTrace', step: 3 },
    'following the latest step, it asks for step 3',
  );
  await sendToDashboard(view, { type: 'dashboard/trace', trace: options.trace ?? packThroughArrow(3, fixtureRows(3)) });
  await view.page.click('#tab-rollouts');
  await view.page.locator('#samples .sample-row').first().waitFor();
  return view;
}

const rowOrder = (view: WebviewPage) =>
  view.page
    .locator('#samples .sample-row')
    .evaluateAll((rows) =>
      rows
        .sort((a, b) => parseFloat((a as HTMLElement).style.top) - parseFloat((b as HTMLElement).style.top))
        .map((row) => (row as HTMLElement).querySelector('.sample-id')?.textContent),
    );

/** Rows of the virtual list sit one below the other: measured heights replaced the estimates. */
async function assertRowsDoNotOverlap(view: WebviewPage): Promise<void> {
  const boxes = await view.page.locator('#samples .sample-row').evaluateAll((rows) =>
    rows
      .map((row) => row.getBoundingClientRect())
      .map((box) => ({ top: box.top, bottom: box.bottom }))
      .sort((a, b) => a.top - b.top),
  );
  assert.ok(boxes.length > 1);
  for (let i = 1; i < boxes.length; i++)
    assert.ok(
      boxes[i].top >= boxes[i - 1].bottom - 0.5,
      `row ${i} starts at ${boxes[i].top}, above the end of row ${i - 1} at ${boxes[i - 1].bottom}`,
    );
}

/** Chrome keeps 8 bits of alpha, so a colour matches when RGB is equal and alpha is within 1/255. */
function assertColour(actual: string, rgb: readonly number[], alpha: number, what: string): void {
  if (alpha === 0) {
    assert.equal(actual, 'rgba(0, 0, 0, 0)', what);
    return;
  }
  const match = /^rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)$/.exec(actual);
  assert.ok(match, `${what}: ${actual} is not an rgba() colour`);
  assert.deepEqual([Number(match[1]), Number(match[2]), Number(match[3])], [...rgb], `${what}: ${actual}`);
  assert.ok(
    Math.abs(Number(match[4] ?? 1) - alpha) <= 1 / 255 + 1e-9,
    `${what}: alpha of ${actual}, expected ${alpha}`,
  );
}

function themeColour(theme: Theme, variable: string): [number, number, number] {
  const css = readFileSync(path.join(__dirname, 'themes', `${theme}.css`), 'utf8');
  const hex = new RegExp(`${variable}:\\s*#([0-9a-f]{6})`, 'i').exec(css)?.[1];
  assert.ok(hex, `${variable} in ${theme}.css`);
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

for (const theme of ['dark', 'light', 'high-contrast'] as const) {
  test(
    `each token’s colour follows its advantage on a scale centred at 0, with the theme’s colours and a legend ` +
      `of its range (${theme})`,
    async () => {
      const view = await openFixture({ theme });
      try {
        const rows = fixtureRows(3);
        const advantages = rows.flatMap((row) => row.advantage.map((value) => Math.fround(value)));
        const range = Math.max(...advantages.map(Math.abs));
        const [negative, positive] = [
          themeColour(theme, '--vscode-charts-blue'),
          themeColour(theme, '--vscode-charts-orange'),
        ];
        const shown = await view.page
          .locator('#samples .tok')
          .evaluateAll((spans) =>
            spans.map(
              (span) =>
                [Number((span as HTMLElement).dataset.t), getComputedStyle(span).backgroundColor] as [number, string],
            ),
          );
        assert.equal(shown.length, advantages.length, 'every token of the four samples is drawn');
        for (const [t, colour] of shown) {
          const value = advantages[t];
          const alpha = Math.round(Math.min(1, Math.abs(value) / range) * 0.85 * 1000) / 1000;
          assertColour(colour, value < 0 ? negative : positive, alpha, `token ${t} (advantage ${value})`);
        }
        await assertRowsDoNotOverlap(view);
        assert.equal(await view.page.locator('#legend-low').textContent(), '−2');
        assert.equal(await view.page.locator('#legend-high').textContent(), '2');
        assert.match(
          (await view.page.locator('#legend').getAttribute('aria-label')) ?? '',
          /advantage: from −2 .* through 0 to 2/,
        );
        // Whitespace-only tokens stay visible: a space as ·, a newline as ↵ followed by a line break.
        const whitespace = await view.page.locator('[data-sample="2"] .tok.ws').allTextContents();
        assert.deepEqual(whitespace, ['·', '↵']);
        assert.equal(await view.page.locator('[data-sample="2"] .tok.ws + br').count(), 1);
        await view.page.screenshot({ path: path.join(screenshotDir, `webview-dashboard-rollouts-${theme}.png`) });
        await view.page.click('#tab-metrics');
        await view.page.locator('#charts canvas').first().waitFor();
        await view.page.screenshot({ path: path.join(screenshotDir, `webview-dashboard-metrics-${theme}.png`) });
        assert.deepEqual(await view.cspViolations(), [], 'uPlot and the heatmap need no inline styles or scripts');
        assert.deepEqual(view.errors, []);
      } finally {
        await view.close();
      }
    },
  );
}

test('hovering a token shows all its numbers, and the ratio and clip class at each epoch', async () => {
  const view = await openFixture();
  try {
    await view.page.locator('[data-sample="0"] .tok').first().hover();
    const tooltip = view.page.locator('#token-tooltip');
    await tooltip.waitFor({ state: 'visible' });
    const text = (await tooltip.innerText()).replace(/\s+/g, ' ');
    for (const expected of [
      'token " great"',
      'id 100',
      'position 0',
      'advantage 1.2',
      'KL −0.1',
      'value −0.05',
      'entropy 1.5',
      'logprob −0.5',
      'ref logprob −0.6',
      'ratio, epoch 1 1 · inside the band',
      'ratio, epoch 2 1.5 · clipped: A > 0 and r > 1 + ε, gradient removed',
    ]) {
      assert.ok(text.includes(expected), `"${expected}" in "${text}"`);
    }
    await view.page.mouse.move(5, 5);
    await tooltip.waitFor({ state: 'hidden' });
  } finally {
    await view.close();
  }
});

test('samples sort by score, oracle, KL, length and clipped tokens, and filter by range and text', async () => {
  const view = await openFixture();
  try {
    assert.deepEqual(await rowOrder(view), ['#0', '#1', '#2', '#3']);
    await view.page.selectOption('#sort-by', 'score');
    await view.page.selectOption('#sort-order', 'desc');
    assert.deepEqual(await rowOrder(view), ['#0', '#2', '#3', '#1'], 'scores 0.9, 0.1, −0.2, −0.7');
    await view.page.selectOption('#sort-by', 'clipped');
    assert.deepEqual(await rowOrder(view), ['#0', '#3', '#2', '#1'], 'clipped 2, 2, 1, 0; ties by sample');
    await view.page.selectOption('#sort-by', 'oracle');
    assert.deepEqual(await rowOrder(view), ['#0', '#3', '#1', '#2'], 'oracle 0.8, 0.3, −0.6, and none last');
    await view.page.selectOption('#sort-by', 'length');
    await view.page.selectOption('#sort-order', 'asc');
    assert.deepEqual(await rowOrder(view), ['#1', '#0', '#2', '#3'], 'lengths 2, 4, 4, 5');
    await view.page.selectOption('#sort-by', 'kl');
    assert.deepEqual(await rowOrder(view), ['#1', '#0', '#2', '#3']);
    await view.page.fill('#search', 'PRODUCT');
    assert.deepEqual(await rowOrder(view), ['#2', '#3']);
    await view.page.fill('#search', '');
    await view.page.selectOption('#filter-by', 'score');
    await view.page.fill('#filter-min', '0');
    assert.deepEqual(await rowOrder(view), ['#0', '#2']);
    assert.match((await view.page.locator('#rollout-status').textContent()) ?? '', /2 of 4 samples/);
  } finally {
    await view.close();
  }
});

test('clip colouring and the token table classify each token by ratio, band and advantage sign', async () => {
  const view = await openFixture();
  try {
    await view.page.selectOption('#colour-by', 'clip');
    const red = themeColour('dark', '--vscode-charts-red');
    const purple = themeColour('dark', '--vscode-charts-purple');
    const yellow = themeColour('dark', '--vscode-charts-yellow');
    const colours = await view.page
      .locator('[data-sample="0"] .tok')
      .evaluateAll((spans) => spans.map((span) => getComputedStyle(span).backgroundColor));
    assertColour(colours[0], red, 0.75, '" great": removed above');
    assertColour(colours[1], purple, 0.75, '" film": removed below');
    assertColour(colours[2], yellow, 0.4, '"!": outside the band, kept');
    assertColour(colours[3], [0, 0, 0], 0, '" and": inside');
    assert.match(
      (await view.page.locator('#legend').textContent()) ?? '',
      /clip class, epoch 2, band \[0\.8, 1\.2\] \(ε = 0\.2\)/,
    );
    assert.equal(await view.page.locator('#legend-clip-origin').count(), 0, 'recorded classes need no note');
    await view.page.selectOption('#epoch', '0');
    assert.deepEqual(
      await view.page
        .locator('[data-sample="0"] .tok')
        .evaluateAll((spans) => spans.map((span) => getComputedStyle(span).backgroundColor)),
      Array(4).fill('rgba(0, 0, 0, 0)'),
      'epoch 1: every ratio is 1',
    );

    await view.page.locator('[data-sample="0"]').focus();
    await view.page.keyboard.press('Enter');
    const table = view.page.locator('#tokens-table');
    await table.waitFor();
    assert.deepEqual(
      await table
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((row) => (row.querySelectorAll('td.ratio')[1] as HTMLElement).dataset.clip)),
      ['clipped-above', 'clipped-below', 'outside-kept', 'inside'],
    );
    assert.deepEqual(await table.locator('tbody td.sign').allTextContents(), ['+', '−', '+', '+']);
    assert.deepEqual(
      await table
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((row) => (row.querySelectorAll('td.ratio')[1] as HTMLElement).textContent)),
      ['1.5 ✂', '0.5 ✂', '0.6', '1.1'],
    );

    await view.page.click('#tab-clipping');
    const epoch2 = view.page.locator('#clip-epochs tbody tr').nth(1);
    assert.deepEqual((await epoch2.locator('td').allTextContents()).slice(0, 5), ['15', '3', '2', '1', '33.3%']);
    assert.deepEqual((await view.page.locator('#clip-tokens tbody tr td:first-child').allTextContents()).sort(), [
      '" bad"',
      '" film"',
      '" great"',
      '" really"',
      '"ok"',
    ]);
    assert.equal(
      (await view.page.locator('#clip-by-position canvas').count()) > 0,
      true,
      'the per-position chart is drawn by uPlot',
    );
    await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-clipping.png') });
  } finally {
    await view.close();
  }
});

/** Sample 0's four token colours in the heatmap. */
const sampleZeroColours = (view: WebviewPage) =>
  view.page
    .locator('[data-sample="0"] .tok')
    .evaluateAll((spans) => spans.map((span) => getComputedStyle(span).backgroundColor));

test('a trace format 1 step (no clip_class) opens with classes derived from ratio, advantage and ε', async () => {
  const current = await openFixture();
  await current.page.selectOption('#colour-by', 'clip');
  const recordedColours = await sampleZeroColours(current);
  await current.close();
  const view = await openFixture({ trace: versionOneTrace() });
  try {
    await view.page.selectOption('#colour-by', 'clip');
    assert.deepEqual(await sampleZeroColours(view), recordedColours, 'the same classes as the current writer records');
    assert.match(
      (await view.page.locator('#legend-clip-origin').textContent()) ?? '',
      /Clip classes derived from ratio, advantage and ε = 0\.2 \(run\.json config\.stages\[2\]\.cliprange\)/,
    );
    await view.page.locator('[data-sample="0"] .tok').first().hover();
    const tooltip = (await view.page.locator('#token-tooltip').innerText()).replace(/\s+/g, ' ');
    for (const expected of [
      'ratio, epoch 2 1.5 · clipped: A > 0 and r > 1 + ε, gradient removed (derived)',
      'clip classes derived from ratio, advantage and ε = 0.2',
    ])
      assert.ok(tooltip.includes(expected), `"${expected}" in "${tooltip}"`);
    await view.page.click('#tab-clipping');
    assert.match((await view.page.locator('#clip-origin').textContent()) ?? '', /derived from ratio, advantage/);
    const epoch2 = view.page.locator('#clip-epochs tbody tr').nth(1);
    assert.deepEqual((await epoch2.locator('td').allTextContents()).slice(0, 5), ['15', '3', '2', '1', '33.3%']);
    await view.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-clipping-format1.png') });
    assert.deepEqual(view.errors, []);
  } finally {
    await view.close();
  }
});

test('without cliprange in the header the dashboard says so: no band, no classes for a format 1 trace', async () => {
  const old = await openFixture({ run: foreignRun, trace: versionOneTrace() });
  try {
    assert.match((await old.page.locator('#rollout-status').textContent()) ?? '', /ε unknown$/);
    assert.match(
      (await old.page.locator('[data-sample="0"]').getAttribute('aria-label')) ?? '',
      /4 tokens, clipped unknown\./,
    );
    await old.page.selectOption('#colour-by', 'clip');
    assert.deepEqual(await sampleZeroColours(old), Array(4).fill('rgba(0, 0, 0, 0)'), 'no class is guessed');
    assert.match(
      (await old.page.locator('#legend').textContent()) ?? '',
      /ε unknown \(run\.json has no config\.stages .*Clip classes unknown: this trace was written before/,
    );
    await old.page.click('#tab-clipping');
    assert.match(
      (await old.page.locator('#clip-origin').textContent()) ?? '',
      /unknown: .*has no cliprange \(run\.json has no config\.stages \(a run from another trainer\?\)\)/,
    );
    assert.equal(await old.page.locator('#clip-epochs').count(), 0, 'no table of guessed counts');
    await old.page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-clipping-no-cliprange.png') });
    assert.deepEqual(old.errors, []);
  } finally {
    await old.close();
  }
  const current = await openFixture({ run: foreignRun });
  try {
    await current.page.click('#tab-clipping');
    assert.match((await current.page.locator('#clip-intro').textContent()) ?? '', /^Step 3, ε unknown \(run\.json/);
    const epoch2 = current.page.locator('#clip-epochs tbody tr').nth(1);
    assert.deepEqual(
      (await epoch2.locator('td').allTextContents()).slice(0, 5),
      ['15', '3', '2', '1', '33.3%'],
      'a format 2 trace brings its own classes',
    );
  } finally {
    await current.close();
  }
});

test('every control is reachable by keyboard; rows move with the arrow keys and open with Enter', async () => {
  const view = await openFixture();
  try {
    await view.page.locator('#tab-rollouts').focus();
    const reached: string[] = [];
    for (let i = 0; i < 20; i++) {
      await view.page.keyboard.press('Tab');
      const id = await view.page.evaluate(() => {
        const active = document.activeElement as HTMLElement | null;
        return (
          active?.id || (active?.dataset.index !== undefined ? `row-${active.dataset.index}` : (active?.tagName ?? ''))
        );
      });
      reached.push(id);
      if (id.startsWith('row-')) break;
    }
    for (const id of [
      'step-slider',
      'follow-latest',
      'colour-by',
      'epoch',
      'sort-by',
      'sort-order',
      'search',
      'filter-by',
      'filter-min',
      'filter-max',
      'row-0',
    ])
      assert.ok(reached.includes(id), `${id} reached by Tab (order: ${reached.join(', ')})`);
    await view.page.keyboard.press('ArrowDown');
    assert.equal(await view.page.evaluate(() => (document.activeElement as HTMLElement).dataset.index), '1');
    await view.page.keyboard.press('End');
    assert.equal(await view.page.evaluate(() => (document.activeElement as HTMLElement).dataset.index), '3');
    await view.page.keyboard.press('Enter');
    await view.page.locator('#details-heading').waitFor();
    assert.equal(await view.page.evaluate(() => document.activeElement?.id), 'details-heading');
    assert.equal(await view.page.locator('#details-heading').textContent(), 'Sample 3 · step 3');
    await view.page.keyboard.press('Escape');
    assert.equal(await view.page.locator('#sample-details').isHidden(), true);
    assert.equal(
      await view.page.evaluate(() => (document.activeElement as HTMLElement).dataset.index),
      '3',
      'focus returns to the row',
    );
    // Tabs follow the WAI-ARIA pattern: arrows move between them.
    await view.page.locator('#tab-rollouts').focus();
    await view.page.keyboard.press('ArrowRight');
    assert.equal(await view.page.evaluate(() => document.activeElement?.id), 'tab-clipping');
    assert.equal(await view.page.locator('#tab-clipping').getAttribute('aria-selected'), 'true');
    // The step slider moves with the arrow keys and stops following the latest step.
    await view.page.locator('#tab-rollouts').click();
    await view.page.locator('#step-slider').focus();
    await view.page.keyboard.press('ArrowLeft');
    assert.deepEqual((await view.posted()).at(-1), { type: 'dashboard/requestTrace', step: 2 });
    assert.equal(await view.page.locator('#follow-latest').isChecked(), false);
  } finally {
    await view.close();
  }
});

test('heatmap rows carry screen-reader labels with the sample’s numbers and text', async () => {
  const view = await openFixture();
  try {
    const row = view.page.locator('#samples [data-sample="0"]');
    assert.equal(await row.getAttribute('role'), 'listitem');
    assert.equal(await row.getAttribute('aria-setsize'), '4');
    assert.equal(await row.getAttribute('aria-posinset'), '1');
    assert.equal(
      await row.getAttribute('aria-label'),
      'Sample 0: score 0.9, oracle 0.8, KL 0.2, 4 tokens, 2 clipped. Prompt: The film was Response:  great film! and',
    );
    assert.equal(await view.page.locator('#samples').getAttribute('role'), 'list');
    assert.match(
      (await view.page.locator('#samples').getAttribute('aria-label')) ?? '',
      /Samples of step 3, coloured by advantage/,
    );
    assert.match(
      (await view.page.locator('[data-sample="2"]').getAttribute('aria-label')) ?? '',
      /score 0\.1, KL .*4 tokens/,
    );
    assert.doesNotMatch(
      (await view.page.locator('[data-sample="2"]').getAttribute('aria-label')) ?? '',
      /oracle/,
      'no oracle score, none announced',
    );
  } finally {
    await view.close();
  }
});

for (const width of [360, 520]) {
  test(`a narrow panel (${width} px) wraps the controls and tokens without scrolling sideways`, async () => {
    const view = await openFixture({ width, height: 760 });
    try {
      const overflow = await view.page.evaluate(() => {
        const app = document.getElementById('app') as HTMLElement;
        return {
          app: app.scrollWidth - app.clientWidth,
          page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        };
      });
      assert.deepEqual(overflow, { app: 0, page: 0 });
      await assertRowsDoNotOverlap(view);
      const box = await view.page.locator('[data-sample="3"]').boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= width, `row inside the panel: ${JSON.stringify(box)}`);
      await view.page.screenshot({ path: path.join(screenshotDir, `webview-dashboard-narrow-${width}.png`) });
    } finally {
      await view.close();
    }
  });
}

test('"Export as HTML" sends the view with rows as plain markup, which opens as a page without scripts', async () => {
  const view = await openFixture();
  try {
    await view.page.click('#export-html');
    const message = (await view.posted()).at(-1) as DashboardExportHtmlMessage;
    assert.equal(message.type, 'dashboard/exportHtml');
    assert.equal(message.title, 'fixture · ppo - Rollouts - step 3');
    assert.match(message.themeCss, /--vscode-charts-blue: #3794ff/);
    assert.doesNotMatch(message.body, /<script/i);
    const css = readFileSync(path.join(__dirname, '..', '..', 'dist', 'webview', 'dashboard.css'), 'utf8');
    const html = buildExportHtml({ ...message, css });
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1100, height: 720 } });
    try {
      const page = await context.newPage();
      await page.setContent(html);
      assert.equal(await page.locator('.static-rows .sample-row').count(), 4);
      assert.equal(await page.locator('#samples').count(), 0, 'the virtual list was replaced');
      const great = page.locator('.static-rows [data-sample="0"] .tok').first();
      assert.equal(await great.textContent(), ' great');
      assertColour(
        await great.evaluate((span) => getComputedStyle(span).backgroundColor),
        [209, 134, 22],
        (1.2 / 2) * 0.85,
        'the exported " great"',
      );
      assert.equal(await page.locator('#run-name').textContent(), 'fixture · ppo');
      assert.equal(
        await page.locator('#colour-by').evaluate((select) => (select as HTMLSelectElement).value),
        'advantage',
      );
      await page.screenshot({ path: path.join(screenshotDir, 'webview-dashboard-export.png') });
    } finally {
      await context.close();
    }
    await sendToDashboard(view, { type: 'dashboard/exported', file: '/work/project/fixture.html' });
    assert.equal(await view.page.locator('#dashboard-status').textContent(), 'Exported to /work/project/fixture.html');
  } finally {
    await view.close();
  }
});
