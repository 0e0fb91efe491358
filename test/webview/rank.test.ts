// The Rank view's bundle in headless Chromium with the real HTML shell and CSP: ranking by keyboard
// (ties included) and by drag, Enter / S / U, the pairwise mode for K = 2, note and confidence, the
// identical-completion flag and warnings, and the layout: columns when wide, rows when narrow.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RankStateMessage } from '../../src/shared/protocol';
import { launchBrowser, openWebview, screenshotDir, type WebviewPage } from './webviewPage';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});
after(() => browser?.close());

// Shown order C, A, D, B: letters on screen are positions, the ranking the host gets uses indices.
const fourSet: RankStateMessage = {
  type: 'rank/state',
  dataset: 'reviews',
  file: '/ws/.rlhf/preferences/reviews.jsonl',
  judgments: 12,
  set: {
    id: 'set-1',
    prompt: 'review of the blender:',
    completions: [
      'it works well and is quiet.',
      'loud and it broke after a week.',
      'it works well and is quiet.',
      'fine, nothing special, does the job.',
    ],
    shownOrder: [2, 0, 3, 1],
    identical: [[0, 2]],
    sourceLabel: 'run sft-1 · step-120 · T 1 · 64 tokens',
  },
  status: '3 more after this one',
  busy: false,
  canUndo: true,
  warnings: [],
};

const pairSet: RankStateMessage = {
  ...fourSet,
  set: {
    id: 'pair-1',
    prompt: 'my take on the film:',
    completions: ['a delight from start to finish.', 'dull and far too long.'],
    shownOrder: [1, 0],
    identical: [],
    sourceLabel: 'pairs.jsonl',
  },
};

async function openWith(
  state: RankStateMessage,
  options: { theme?: 'light' | 'dark'; width?: number; height?: number } = {},
): Promise<WebviewPage> {
  const view = await openWebview(browser, 'rank', options);
  await view.send(state);
  await view.page.locator('.card').first().waitFor();
  return view;
}

/** Delivers the host's next set after a submit and waits until it is on screen (messages arrive asynchronously). */
async function sendNextSet(view: WebviewPage, state: RankStateMessage): Promise<void> {
  await view.send(state);
  await view.page.locator('.card').first().waitFor();
}

const lastPosted = async (view: WebviewPage) => (await view.posted()).at(-1);

for (const theme of ['dark', 'light'] as const) {
  test(
    `the view shakes hands, then shows the prompt and K ` + `completions side by side in the shown order (${theme})`,
    async () => {
      const view = await openWebview(browser, 'rank', { theme, width: 1000, height: 620 });
      try {
        assert.deepEqual(await view.posted(), [{ type: 'webview/ready' }]);
        await view.send({
          ...fourSet,
          warnings: ['Your judgments of "review of the blender:" form a cycle: "a" > "b" > "c" > "a"'],
        });
        await view.page.locator('.card').first().waitFor();
        assert.equal(await view.page.locator('#counter').textContent(), '12 judgments in reviews');
        assert.equal(await view.page.locator('#prompt pre').textContent(), 'review of the blender:');
        assert.deepEqual(await view.page.locator('.card .letter').allTextContents(), ['A', 'B', 'C', 'D']);
        assert.deepEqual(await view.page.locator('.card pre').allTextContents(), [
          fourSet.set!.completions[2],
          fourSet.set!.completions[0],
          fourSet.set!.completions[3],
          fourSet.set!.completions[1],
        ]);
        // The two identical texts (indices 2 and 0, shown as A and B) are flagged, each naming the other.
        assert.deepEqual(await view.page.locator('.card .identical').allTextContents(), [
          'identical to B',
          'identical to A',
        ]);
        assert.match((await view.page.locator('#warnings').textContent()) ?? '', /form a cycle/);
        const boxes = await view.page
          .locator('.card')
          .evaluateAll((cards) => cards.map((card) => card.getBoundingClientRect()).map((r) => ({ x: r.x, y: r.y })));
        assert.ok(
          boxes.every((box) => box.y === boxes[0].y) && boxes[1].x > boxes[0].x && boxes[3].x > boxes[2].x,
          `columns side by side: ${JSON.stringify(boxes)}`,
        );
        await view.page.keyboard.press('1');
        await view.page.keyboard.press('2');
        await view.page.screenshot({ path: path.join(screenshotDir, `webview-rank-${theme}.png`) });
        assert.deepEqual(await view.cspViolations(), []);
        assert.deepEqual(view.errors, []);
      } finally {
        await view.close();
      }
    },
  );
}

test('in a narrow panel the completions stack as rows', async () => {
  const view = await openWith(fourSet, { width: 320, height: 900 });
  try {
    const boxes = await view.page
      .locator('.card')
      .evaluateAll((cards) =>
        cards.map((card) => card.getBoundingClientRect()).map((r) => ({ x: r.x, y: r.y, width: r.width })),
      );
    assert.ok(
      boxes.every((box) => box.x === boxes[0].x),
      `one column: ${JSON.stringify(boxes)}`,
    );
    assert.ok(
      boxes.every((box, i) => i === 0 || box.y > boxes[i - 1].y),
      'each below the one before',
    );
    assert.ok(boxes[0].width > 250, 'a row takes the panel width');
    const scrollWidth = await view.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= 320, `nothing overflows sideways (scrollWidth ${scrollWidth})`);
    await view.page.screenshot({ path: path.join(screenshotDir, 'webview-rank-narrow.png'), fullPage: true });
    assert.deepEqual(view.errors, []);
  } finally {
    await view.close();
  }
});

test(
  'number keys rank the completions in the order shown, ' + 'equal numbers tie, and Enter submits groups of indices',
  async () => {
    const view = await openWith(fourSet);
    try {
      // Nothing focused: the first key ranks A, then focus moves to the next unranked completion.
      for (const key of ['1', '2', '2', '3']) await view.page.keyboard.press(key);
      assert.deepEqual(await view.page.locator('.card .rank-badge').allTextContents(), [
        '#1',
        '#2 (tie)',
        '#2 (tie)',
        '#3',
      ]);
      assert.deepEqual(await view.page.locator('.bucket[data-rank="2"] .chip').allTextContents(), ['B', 'C']);
      await view.page.keyboard.press('Enter');
      // A = index 2 best; B (0) and C (3) tied; D (1) last.
      assert.deepEqual(await lastPosted(view), { type: 'rank/submit', setId: 'set-1', ranking: [[2], [0, 3], [1]] });
      assert.match((await view.page.locator('#status').textContent()) ?? '', /Saving/);
      assert.equal(
        await view.page.locator('.card').count(),
        0,
        'the set leaves the screen until the host confirms and sends the next',
      );
    } finally {
      await view.close();
    }
  },
);

test(
  'Enter with a completion unranked says how many are left ' + 'and sends nothing; 0 clears a rank; arrows move focus',
  async () => {
    const view = await openWith(fourSet);
    try {
      await view.page.keyboard.press('1');
      await view.page.keyboard.press('Enter');
      assert.match((await view.page.locator('#status').textContent()) ?? '', /Rank every completion first \(3 left\)/);
      assert.deepEqual(await view.posted(), [{ type: 'webview/ready' }]);
      assert.equal(await view.page.locator('#submit').isDisabled(), true);
      // Back to A with ←, clear it with 0.
      await view.page.keyboard.press('ArrowLeft');
      assert.equal(await view.page.evaluate(() => (document.activeElement as HTMLElement).dataset.position), '0');
      await view.page.keyboard.press('0');
      assert.deepEqual(await view.page.locator('.card .rank-badge').allTextContents(), [
        'unranked',
        'unranked',
        'unranked',
        'unranked',
      ]);
    } finally {
      await view.close();
    }
  },
);

test('S skips the set and U undoes the last judgment; keys typed in the note are text, not commands', async () => {
  const view = await openWith(fourSet);
  try {
    await view.page.locator('#note').click();
    await view.page.keyboard.type('us 12');
    assert.equal(await view.page.locator('#note').inputValue(), 'us 12');
    assert.deepEqual(await view.posted(), [{ type: 'webview/ready' }], 'no skip, undo or rank from typing');
    await view.page.keyboard.press('Escape');
    await view.page.keyboard.press('u');
    assert.deepEqual(await lastPosted(view), { type: 'rank/undo' });
    await view.page.keyboard.press('s');
    assert.deepEqual(await lastPosted(view), { type: 'rank/skip', setId: 'set-1' });
    // Undo is off when the dataset has nothing to undo.
    await view.send({ ...fourSet, judgments: 0, canUndo: false });
    await view.page.locator('#counter', { hasText: '0 judgments' }).waitFor();
    assert.equal(await view.page.locator('#undo').isDisabled(), true);
    const before = (await view.posted()).length;
    await view.page.keyboard.press('u');
    assert.equal((await view.posted()).length, before);
  } finally {
    await view.close();
  }
});

test(
  'dragging completions onto ranks ranks them (two on ' + 'one rank tie); note and confidence go with the judgment',
  async () => {
    const view = await openWith(fourSet);
    try {
      const drag = async (position: number, rank: number) => {
        const from = await view.page.locator(`.card[data-position="${position}"] .card-header`).boundingBox();
        const to = await view.page.locator(`.bucket[data-rank="${rank}"]`).boundingBox();
        assert.ok(from && to);
        await view.page.mouse.move(from.x + 10, from.y + from.height / 2);
        await view.page.mouse.down();
        await view.page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 8 });
        await view.page.mouse.up();
      };
      await drag(3, 1); // D best
      await drag(0, 2); // A and B tied second
      await drag(1, 2);
      await drag(2, 4); // C last
      assert.deepEqual(await view.page.locator('.card .rank-badge').allTextContents(), [
        '#2 (tie)',
        '#2 (tie)',
        '#4',
        '#1',
      ]);
      await view.page.locator('#note').fill('D is the only specific one');
      await view.page.locator('#confidence').selectOption('0.75');
      await view.page.locator('#submit').click();
      assert.deepEqual(await lastPosted(view), {
        type: 'rank/submit',
        setId: 'set-1',
        ranking: [[1], [0, 2], [3]],
        note: 'D is the only specific one',
        confidence: 0.75,
      });
      // The host confirms and sends the next set: the counter and a "saved" line follow.
      await sendNextSet(view, { ...fourSet, judgments: 13, set: { ...fourSet.set!, id: 'set-2' } });
      await view.send({ type: 'rank/saved', setId: 'set-1', judgmentId: 'j-13', judgments: 13 });
      await view.page.locator('#saved', { hasText: 'Saved' }).waitFor();
      assert.equal(await view.page.locator('#counter').textContent(), '13 judgments in reviews');
      assert.equal(await view.page.locator('#saved').textContent(), 'Saved (13 judgments).');
      assert.deepEqual(
        await view.page.locator('.card .rank-badge').allTextContents(),
        ['unranked', 'unranked', 'unranked', 'unranked'],
        'a new set starts unranked',
      );
    } finally {
      await view.close();
    }
  },
);

test(
  'K = 2 opens in pairwise mode: A better / B better / tie by button or key, ' +
    'mapped to indices through the shown order',
  async () => {
    const view = await openWith(pairSet);
    try {
      assert.equal(await view.page.locator('#pairwise-toggle').isChecked(), true);
      assert.equal(await view.page.locator('#buckets').count(), 0);
      await view.page.screenshot({ path: path.join(screenshotDir, 'webview-rank-pairwise.png') });
      await view.page.keyboard.press('b'); // B is index 0
      assert.deepEqual(await lastPosted(view), { type: 'rank/submit', setId: 'pair-1', ranking: [[0], [1]] });
      await sendNextSet(view, { ...pairSet, set: { ...pairSet.set!, id: 'pair-2' } });
      await view.page.locator('#tie').click();
      assert.deepEqual(await lastPosted(view), { type: 'rank/submit', setId: 'pair-2', ranking: [[1, 0]] });
      await sendNextSet(view, { ...pairSet, set: { ...pairSet.set!, id: 'pair-3' } });
      await view.page.locator('#a-better').click();
      assert.deepEqual(await lastPosted(view), { type: 'rank/submit', setId: 'pair-3', ranking: [[1], [0]] });
      // P (or the checkbox) switches to ranking with numbers.
      await sendNextSet(view, { ...pairSet, set: { ...pairSet.set!, id: 'pair-4' } });
      await view.page.keyboard.press('p');
      await view.page.locator('#buckets').waitFor();
      await view.page.keyboard.press('2');
      await view.page.keyboard.press('1');
      await view.page.keyboard.press('Enter');
      assert.deepEqual(await lastPosted(view), { type: 'rank/submit', setId: 'pair-4', ranking: [[0], [1]] });
      assert.deepEqual(view.errors, []);
    } finally {
      await view.close();
    }
  },
);

test('before a source is chosen the view says so and its button asks the host for the picker', async () => {
  const view = await openWebview(browser, 'rank', { width: 320 });
  try {
    await view.send({
      type: 'rank/state',
      dataset: '',
      file: '',
      judgments: 0,
      status: 'Choose a source of completions to rank.',
      busy: false,
      canUndo: false,
      warnings: [],
    });
    await view.page.locator('#status', { hasText: 'Choose a source' }).waitFor();
    assert.equal(await view.page.locator('#counter').textContent(), 'No dataset yet');
    await view.page.locator('#choose-source').click();
    assert.deepEqual(await lastPosted(view), { type: 'rank/chooseSource' });
  } finally {
    await view.close();
  }
});
