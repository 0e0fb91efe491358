/**
 * The Rank view in a real VS Code (code-server, the packaged .vsix), driven as a user would: "RLHF:
 * Rank Completions" from the palette, a JSONL source and a dataset name through the quick input, sets
 * ranked by keyboard (ties included), by dragging onto ranks and in pairwise mode, the window reloaded
 * midway (the view picks the session up again), an undo, a skip — then every submitted judgment is
 * found in .rlhf/preferences/<dataset>.jsonl with the ranking given, and "RLHF: Export Preferences"
 * reports the pair count. Needs `npm run package` and `node scripts/ensureTestTools.mjs` first.
 */
import * as assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { readPreferenceFile } from '../../src/shared/preferenceFile';
import { repoRoot, runCommand, screenshot, waitForWorkbench } from './codeServer';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-rank-');
const workspace = join(workbench.temp, 'workspace');
const dataset = 'ui-ranks';
const preferenceFile = join(workspace, '.rlhf', 'preferences', `${dataset}.jsonl`);

const sets = [
  {
    prompt: 'review of the blender:',
    completions: ['quiet and strong.', 'it broke in a week.', 'does the job.', 'loud but fast.'],
  },
  {
    prompt: 'my take on the film:',
    completions: ['a triumph.', 'far too long.', 'the score is lovely.', 'forgettable.'],
  },
  { prompt: 'review of the kettle:', completions: ['boils in a minute.', 'leaks from the lid.'] },
  { prompt: 'review of the lamp:', completions: ['warm light.', 'flickers.', 'bright enough.'] },
  { prompt: 'review of the chair:', completions: ['comfy.', 'wobbly.'] },
];

before(() =>
  workbench.start({
    workspace,
    prepare: () => {
      cpSync(join(repoRoot, 'test', 'fixtures', 'workspace'), workspace, { recursive: true });
      writeFileSync(join(workspace, 'sets.jsonl'), sets.map((set) => JSON.stringify(set)).join('\n'));
    },
  }),
);

after(() => workbench.stop());

function rankFrame(page: Page): FrameLocator {
  return page
    .frameLocator('iframe.webview.ready[src*="extensionId=rlhf-lens.rlhf-lens"][src*="purpose=webviewView"]')
    .frameLocator('#active-frame');
}

/** Picks a row of the open quick pick by its text. */
async function pick(page: Page, text: string): Promise<void> {
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ timeout: 20_000 });
  await row.click();
}

/** The live judgments in the file, and how many were retracted. */
async function fileJudgments() {
  return existsSync(preferenceFile)
    ? readPreferenceFile(preferenceFile)
    : { judgments: [], problems: [], retracted: 0 };
}

/** The prompt on screen, once the view shows a set whose prompt is one of `prompts`. */
async function currentPrompt(frame: FrameLocator): Promise<string> {
  const prompt = frame.locator('#prompt pre');
  await prompt.waitFor({ timeout: 30_000 });
  return (await prompt.textContent()) ?? '';
}

async function waitForCounter(frame: FrameLocator, count: number): Promise<void> {
  await frame
    .locator('#counter', { hasText: `${count} judgment${count === 1 ? '' : 's'} in ${dataset}` })
    .waitFor({ timeout: 30_000 });
}

/** The shown order of the set on screen: completion index per position (read from the cards). */
async function shownOrder(frame: FrameLocator): Promise<number[]> {
  return await frame
    .locator('.card')
    .evaluateAll((cards) => cards.map((card) => Number((card as HTMLElement).dataset.index)));
}

test(
  'rank sets by keyboard, by drag and pairwise, reload the window midway, ' +
    'undo and skip: every submitted judgment is in the file',
  async () => {
    const page = await workbench.openPage({ viewport: { width: 1400, height: 1000 } });
    /** What the file must hold at the end: prompt → ranking of completion indices. */
    const expected = new Map<string, number[][]>();

    // Choose the source and the dataset through the quick input. Right after the workbench appears the
    // palette may not list the extension's commands yet: reopen it until it does.
    const input = page.locator('.quick-input-widget .quick-input-box input');
    for (let attempt = 0; ; attempt++) {
      await page.keyboard.press('F1');
      await input.fill('>RLHF: Rank Completions');
      const found = await page
        .locator('.quick-input-widget .monaco-list-row.focused', { hasText: 'RLHF: Rank Completions' })
        .waitFor({ timeout: 3_000 })
        .then(
          () => true,
          () => false,
        );
      if (found) break;
      if (attempt === 10) throw new Error('the command palette has no "RLHF: Rank Completions"');
      await page.keyboard.press('Escape');
    }
    await input.press('Enter');
    await pick(page, 'A JSONL file of prompts and completions');
    await pick(page, 'sets.jsonl');
    await page.locator('.quick-input-widget', { hasText: 'Preference dataset' }).waitFor({ timeout: 20_000 });
    await input.fill(dataset);
    await input.press('Enter');

    let frame = rankFrame(page);
    // Collapse the Runs view so the Rank view has the side bar's height (cards and ranks both on screen).
    await frame.locator('#counter').waitFor({ timeout: 30_000 });
    await page.locator('.part.sidebar .pane-header', { hasText: /^Runs/ }).first().click();
    // 1. Keyboard: focus the first card, 1 2 3 4, Enter.
    assert.equal(await currentPrompt(frame), sets[0].prompt);
    await waitForCounter(frame, 0);
    let order = await shownOrder(frame);
    await frame.locator('.card[data-position="0"] pre').click();
    for (const key of ['1', '2', '3', '4']) await page.keyboard.press(key);
    await screenshot(page, 'ui-rank-keyboard');
    await page.keyboard.press('Enter');
    expected.set(
      sets[0].prompt,
      order.map((index) => [index]),
    );
    await waitForCounter(frame, 1);
    assert.equal((await fileJudgments()).judgments.length, 1, 'on disk as soon as the view counts it');

    // 2. Drag: D best, A and C tied second, B last; then Submit.
    assert.equal(await currentPrompt(frame), sets[1].prompt);
    order = await shownOrder(frame);
    const drag = async (position: number, rank: number) => {
      const header = frame.locator(`.card[data-position="${position}"] .card-header`);
      const bucket = frame.locator(`.bucket[data-rank="${rank}"]`);
      await bucket.scrollIntoViewIfNeeded();
      const from = await header.boundingBox();
      const to = await bucket.boundingBox();
      assert.ok(from && to, 'card and rank are on screen');
      await page.mouse.move(from.x + 12, from.y + from.height / 2);
      await page.mouse.down();
      await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 10 });
      await page.mouse.up();
    };
    await drag(3, 1);
    await drag(0, 2);
    await drag(2, 2);
    await drag(1, 3);
    await frame.locator('.bucket[data-rank="2"] .chip', { hasText: 'C' }).waitFor();
    await screenshot(page, 'ui-rank-drag');
    await frame.locator('#submit').click();
    expected.set(sets[1].prompt, [[order[3]], [order[0], order[2]].sort((a, b) => a - b), [order[1]]]);
    await waitForCounter(frame, 2);

    // 3. Reload the window midway; the view comes back with the same dataset and the next set.
    await page.reload();
    await waitForWorkbench(page);
    frame = rankFrame(page);
    // The workbench restores the RLHF side bar; open it if it did not.
    if (
      !(await frame
        .locator('#counter')
        .waitFor({ timeout: 20_000 })
        .then(
          () => true,
          () => false,
        ))
    ) {
      await page.locator('.activitybar .action-item [aria-label*="RLHF"]').first().click();
    }
    await waitForCounter(frame, 2);
    assert.equal(await currentPrompt(frame), sets[2].prompt, 'the sets already judged are not shown again');

    // 4. Pairwise (K = 2): key A says the completion shown first is better.
    order = await shownOrder(frame);
    assert.equal(await frame.locator('#pairwise-toggle').isChecked(), true);
    await frame.locator('.card[data-position="0"] pre').click();
    await page.keyboard.press('a');
    expected.set(sets[2].prompt, [[order[0]], [order[1]]]);
    await waitForCounter(frame, 3);

    // 5. Ties by keyboard (1 1 2), submitted, then undone with U and ranked again (2 1 1).
    assert.equal(await currentPrompt(frame), sets[3].prompt);
    await frame.locator('.card[data-position="0"] pre').click();
    for (const key of ['1', '1', '2', 'Enter']) await page.keyboard.press(key);
    await waitForCounter(frame, 4);
    await frame.locator('#prompt pre', { hasText: sets[4].prompt }).waitFor();
    await frame.locator('.card[data-position="0"] pre').click();
    await page.keyboard.press('u');
    await waitForCounter(frame, 3);
    assert.equal(await currentPrompt(frame), sets[3].prompt, 'the undone set is back');
    order = await shownOrder(frame);
    await frame.locator('.card[data-position="0"] pre').click();
    for (const key of ['2', '1', '1', 'Enter']) await page.keyboard.press(key);
    expected.set(sets[3].prompt, [[order[1], order[2]].sort((a, b) => a - b), [order[0]]]);
    await waitForCounter(frame, 4);

    // 6. The chair comes back after the undo; skip it with S.
    assert.equal(await currentPrompt(frame), sets[4].prompt);
    await frame.locator('.card[data-position="0"] pre').click();
    await page.keyboard.press('s');
    await frame.locator('#no-set').waitFor({ timeout: 30_000 });
    await screenshot(page, 'ui-rank-done');

    // Every submitted judgment is in the file, with the ranking given; the undone one is retracted.
    const read = await fileJudgments();
    assert.deepEqual(read.problems, []);
    assert.equal(read.retracted, 1);
    assert.deepEqual(
      read.judgments.map((j) => j.prompt),
      [sets[0].prompt, sets[1].prompt, sets[2].prompt, sets[3].prompt],
    );
    for (const judgment of read.judgments) {
      assert.deepEqual(judgment.ranking, expected.get(judgment.prompt), `ranking of ${judgment.prompt}`);
      assert.deepEqual(judgment.completions, sets.find((set) => set.prompt === judgment.prompt)?.completions);
      assert.equal(judgment.shown_order?.length, judgment.completions.length);
    }
    const lines = readFileSync(preferenceFile, 'utf8').split('\n');
    assert.equal(lines.at(-1), '', 'the file ends with a whole line');

    // Export: TRL pairwise lines, and the notification reports their count (6 + 5 + 1 + 2 pairs).
    await runCommand(page, 'RLHF: Export Preferences');
    await page.locator('#status\\.notifications').click();
    const note = page.locator('.notifications-center .notification-list-item', {
      hasText: /Exported 14 pairs from 4 judgments/,
    });
    await note.waitFor({ timeout: 30_000 });
    await screenshot(page, 'ui-rank-export');
    const exported = readFileSync(join(workspace, '.rlhf', 'exports', `${dataset}.pairwise.jsonl`), 'utf8')
      .trim()
      .split('\n');
    assert.equal(exported.length, 14);
    await page.close();
  },
);
