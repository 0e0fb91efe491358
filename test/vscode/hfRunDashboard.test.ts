/**
 * The dashboard in a real VS Code (code-server, the extension from the .vsix) on a run made from a Hugging Face
 * model folder: a random-weight SmolLM2-shaped folder (a real tokenizer, a ChatML template) goes through SFT on
 * conversational data → preferences → reward model → PPO on conversational prompts, trained with the CLI into the
 * workspace's runs folder. The Rollouts tab of the PPO run shows the prompt as the template rendered it and the
 * response as the folder's tokenizer's tokens, coloured by the per-token heatmap.
 * Needs `npm run package` and `node scripts/ensureTestTools.mjs` first, and Debian's python3-torch (the folder is
 * written by the PyTorch twin).
 */
import * as assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { decodeTrace, type PpoTraceRow } from '../../src/shared/traceFormat';
import { generateReviews } from '../../src/trainer/data/reviews';
import { HfTokenizerAdapter } from '../../src/trainer/tokenizer';
import { writePretrainedFolder } from '../fixtures/hf/pretrainedFolders';
import { dashboardFrame, runCommandAndPick, screenshot, trainHeadless } from './codeServer';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-hf-dashboard-');
const workspace = join(workbench.temp, 'workspace');
const runsFolder = join(workspace, '.rlhf', 'runs');
const runName = 'smol';

let ppoRunDir = '';

const pipeline = {
  name: runName,
  seed: 3,
  backend: 'wasm',
  model: { from: 'smollm2', block_size: 96 },
  stages: [
    {
      type: 'sft',
      dataset: { source: 'jsonl', path: 'chat.jsonl', chat_template: true },
      max_steps: 4,
      per_device_train_batch_size: 4,
      warmup_steps: 0,
      save_steps: 4,
    },
    { type: 'preferences', prompts: { source: 'demo' }, num_prompts: 16, completions_per_prompt: 2, max_new_tokens: 8 },
    { type: 'reward', num_train_epochs: 1, per_device_train_batch_size: 4, warmup_steps: 0 },
    {
      type: 'ppo',
      prompts: { source: 'jsonl', path: 'prompts.jsonl', chat_template: true },
      total_episodes: 16,
      batch_size: 8,
      num_mini_batches: 2,
      num_ppo_epochs: 2,
      max_new_tokens: 12,
      num_eval_prompts: 2,
      rollout_engine: 'onnx',
    },
  ],
};

function writeChatData(): void {
  const reviews = generateReviews(48, 11);
  const turn = (role: string, content: string) => ({ role, content });
  const examples = reviews
    .slice(0, 32)
    .map((r) => ({ messages: [turn('user', `Review: ${r.prompt.trim()}`), turn('assistant', r.completion.trim())] }));
  const prompts = reviews.slice(32).map((r) => ({ prompt: [turn('user', `Review: ${r.prompt.trim()}`)] }));
  const jsonl = (lines: readonly unknown[]) => lines.map((line) => JSON.stringify(line)).join('\n') + '\n';
  writeFileSync(join(workspace, 'chat.jsonl'), jsonl(examples));
  writeFileSync(join(workspace, 'prompts.jsonl'), jsonl(prompts));
}

before(() =>
  workbench.start({
    workspace,
    prepare: async () => {
      mkdirSync(runsFolder, { recursive: true });
      await writePretrainedFolder('smollm2', join(workspace, 'smollm2'));
      writeChatData();
      const config = join(workspace, `${runName}.rlhf.json`);
      writeFileSync(config, JSON.stringify(pipeline, null, 2));
      ppoRunDir = trainHeadless(config, runsFolder, 'ppo');
    },
  }),
);

after(() => workbench.stop());

function lastTrace(): { step: number; rows: PpoTraceRow[] } {
  const steps = readdirSync(join(ppoRunDir, 'traces'))
    .map((name) => Number(/^step-(\d+)\.arrow$/.exec(name)?.[1]))
    .filter(Number.isFinite);
  const step = Math.max(...steps);
  const trace = decodeTrace(new Uint8Array(readFileSync(join(ppoRunDir, 'traces', `step-${step}.arrow`))));
  assert.equal(trace.kind, 'ppo');
  return { step, rows: trace.rows as PpoTraceRow[] };
}

test("the Rollouts tab of a PPO run from a SmolLM2-shaped folder shows the folder's tokens as a heatmap", async () => {
  const page: Page = await workbench.openPage();
  try {
    await runCommandAndPick(page, 'RLHF: Open Dashboard', `${runName} · ppo`);
    const frame = dashboardFrame(page);
    await frame.locator('#run-name', { hasText: `${runName} · ppo` }).waitFor({ timeout: 30_000 });
    await frame.locator('#tab-rollouts').click();
    const { step, rows } = lastTrace();
    await frame.locator('#step-label', { hasText: `Step ${step} (` }).waitFor({ timeout: 15_000 });

    const tokenizer = await HfTokenizerAdapter.load(join(workspace, 'smollm2'));
    const first = rows[0];
    assert.deepEqual(
      first.tokens,
      first.token_ids.map((id) => tokenizer.tokenText(id)),
      "the trace's token texts are the folder's tokenizer's",
    );
    const rendered = tokenizer.hf.formatChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: true });
    assert.ok(first.prompt.endsWith(rendered.slice(rendered.indexOf('x') + 1)), 'the prompt as the template renders');
    const row = frame.locator('#samples [data-sample="0"]');
    await row.waitFor();
    assert.ok(
      ((await row.getAttribute('aria-label')) ?? '').includes(`Prompt: ${first.prompt}`),
      "the row's label has the rendered prompt",
    );
    const spans = row.locator('.tok');
    assert.equal(await spans.count(), first.tokens.length, 'one heatmap span per response token');
    const shown = await spans.evaluateAll((elements) =>
      elements.map((element) => ({
        text: element.textContent ?? '',
        whitespace: element.classList.contains('ws'),
        background: (element as HTMLElement).style.backgroundColor,
      })),
    );
    shown.forEach((span, t) => {
      if (!span.whitespace) assert.equal(span.text, first.tokens[t], `token ${t}'s text`);
      assert.match(span.background, /^rgba?\(/, `token ${t} is coloured by the heatmap`);
    });
    assert.ok(new Set(shown.map((span) => span.background)).size > 1, 'the colours follow the per-token values');
    const file = await screenshot(page, 'hf-dashboard-ppo-rollouts');
    console.log(`screenshot: ${file}`);
  } finally {
    await page.close();
  }
});
