/**
 * "PPO on my model" in the packaged extension in a real VS Code (code-server + Chromium): New Run from the palette,
 * the template picked, the model folder chosen in the folder dialog (code-server shows showOpenDialog as its
 * quick-input "simple file dialog", where a user types or browses to the path), the run named, and the config
 * written with the folder relative to it and LoRA on every trained stage.
 * Needs `npm run package` and `node scripts/ensureTestTools.mjs` first.
 */
import * as assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { writeHfFolder } from '../fixtures/hf/hfTwin';
import { repoRoot, screenshot } from './codeServer';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-new-run-model-');
const workspace = join(workbench.temp, 'workspace');
const modelFolder = join(workspace, 'models', 'tiny-gpt2');

before(() =>
  workbench.start({
    workspace,
    prepare: async () => {
      cpSync(join(repoRoot, 'test', 'fixtures', 'workspace'), workspace, { recursive: true });
      // A random-weight GPT-2 in transformers' layout with a tokenizer: what a user's downloaded model folder holds.
      mkdirSync(modelFolder, { recursive: true });
      const bpe = new BpeTokenizer(trainBpe(['the film was great and the cast was wonderful'], { vocabSize: 270 }));
      writeHfFolder({
        arch: 'gpt2',
        out: modelFolder,
        vocab: bpe.vocabSize,
        hidden: 16,
        layers: 2,
        heads: 2,
        maxPositions: 1024,
      });
      await bpe.save(modelFolder, { modelMaxLength: 1024 });
    },
  }),
);

after(() => workbench.stop());

/** Runs a palette command that goes on to ask (the quick input stays open, so codeServer.ts's runCommand waits). */
async function startAskingCommand(page: Page, title: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  for (let attempt = 0; ; attempt++) {
    await page.keyboard.press('F1');
    await input.fill(`>${title}`);
    const listed = await widget
      .locator('.monaco-list-row.focused', { hasText: title })
      .first()
      .waitFor({ timeout: 3_000 })
      .then(
        () => true,
        () => false,
      );
    if (listed) break;
    if (attempt === 10) throw new Error(`the command palette has no "${title}"`);
    await page.keyboard.press('Escape');
  }
  await input.press('Enter');
}

/** Waits until the quick input's text box holds `value` (the next question has replaced the previous one). */
async function inputHolds(page: Page, value: string, timeout: number): Promise<boolean> {
  return page
    .waitForFunction(
      (expected) =>
        (document.querySelector('.quick-input-widget .quick-input-box input') as HTMLInputElement | null)?.value ===
        expected,
      value,
      { timeout },
    )
    .then(
      () => true,
      () => false,
    );
}

test('New Run → "PPO on my model" → the model folder → a name writes a config starting from the folder', async () => {
  const page = await workbench.openPage();
  try {
    await startAskingCommand(page, 'RLHF: New Run');
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: /^PPO on my model/ }).first();
    await row.waitFor({ timeout: 15_000 });
    await screenshot(page, 'new-run-model-templates');
    await row.click();

    // The simple file dialog: its text box holds a path; type the model folder's and accept it.
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await page.locator('.quick-input-widget', { hasText: 'Hugging Face model folder' }).waitFor({ timeout: 15_000 });
    // The dialog fills in its starting folder after it opens; a path typed before that lands behind it, so the path
    // is typed again until the box holds exactly it.
    await page.waitForFunction(
      () =>
        (
          document.querySelector('.quick-input-widget .quick-input-box input') as HTMLInputElement | null
        )?.value.startsWith('/') === true,
      undefined,
      { timeout: 15_000 },
    );
    for (let attempt = 0; attempt < 3; attempt++) {
      await input.fill(modelFolder);
      if (await inputHolds(page, modelFolder, 2_000)) break;
    }
    assert.equal(await input.inputValue(), modelFolder);
    await screenshot(page, 'new-run-model-folder-dialog');
    await input.press('Enter');
    // Enter on a folder's path may first open it; "Use This Model Folder" then takes the folder shown. On a busy
    // machine the name's question can come seconds later, so each round looks for either and acts on what it finds.
    const useFolder = page.locator('.quick-input-widget .monaco-button', { hasText: 'Use This Model Folder' });
    let asked = false;
    for (let round = 0; round < 30 && !asked; round++) {
      asked = await inputHolds(page, 'my-ppo-my-model', 1_000);
      if (!asked && (await useFolder.isVisible())) await useFolder.click({ timeout: 2_000 }).catch(() => undefined);
    }
    assert.ok(asked, 'New Run did not ask for the name');
    await input.fill('ui-mine');
    await input.press('Enter');
    await page.locator('.tab', { hasText: 'ui-mine.rlhf.json' }).waitFor({ timeout: 15_000 });
    await page.locator('.codelens-decoration', { hasText: 'Start run' }).waitFor({ timeout: 30_000 });
    await screenshot(page, 'new-run-model-config');

    const written = JSON.parse(readFileSync(join(workspace, 'ui-mine.rlhf.json'), 'utf8')) as {
      model: Record<string, unknown>;
      stages: { type: string; lora?: unknown }[];
    };
    assert.deepEqual(written.model, { from: 'models/tiny-gpt2', block_size: 128 });
    const lora = { r: 8, alpha: 16, dropout: 0.05 };
    assert.deepEqual(
      written.stages.map((stage) => [stage.type, stage.lora ?? null]),
      [
        ['sft', lora],
        ['preferences', null],
        ['reward', lora],
        ['ppo', lora],
      ],
    );
    // The editor's checks read the folder too: no error is underlined in the new config.
    assert.equal(await page.locator('.squiggly-error').count(), 0);
  } catch (error) {
    await screenshot(page, 'new-run-model-failure').catch(() => undefined);
    throw error;
  } finally {
    await page.close();
  }
});
