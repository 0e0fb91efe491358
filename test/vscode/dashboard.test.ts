/**
 * The dashboard in a real VS Code (code-server, the extension installed from the .vsix) on a run the
 * trainer produced: a tiny pipeline (SFT → preferences → reward model → PPO) is trained with the CLI
 * into the workspace's runs folder, then "RLHF: Open Dashboard" is run from the command palette and
 * the PPO run picked. The test finds the run's metrics and its tokens' text and values (read back from
 * its Arrow traces) in the webview, and watches new metrics and a new step arrive live.
 * Needs `npm run package` and `node scripts/ensureTestTools.mjs` first.
 */
import * as assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { decodeTrace, type PpoTraceRow } from '../../src/shared/traceFormat';
import { formatNumber } from '../../webview/dashboard/colorScale';
import { dashboardFrame, runCommandAndPick, screenshot, trainHeadless } from './codeServer';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-dashboard-');
const workspace = join(workbench.temp, 'workspace');
const runsFolder = join(workspace, '.rlhf', 'runs');

let ppoRunDir = '';

/** A tiny model so the whole pipeline trains in seconds on two cores. */
const tinyPipeline = {
  name: 'tiny',
  seed: 3,
  backend: 'wasm',
  model: { n_layer: 1, n_head: 2, n_embd: 32, block_size: 48 },
  tokenizer: { vocab_size: 300 },
  stages: [
    {
      type: 'sft',
      dataset: { source: 'demo', num_examples: 2000 },
      learning_rate: 0.005,
      max_steps: 300,
      warmup_steps: 10,
      save_steps: 300,
    },
    {
      type: 'preferences',
      policy: 'sft',
      prompts: { source: 'demo' },
      num_prompts: 48,
      completions_per_prompt: 2,
      max_new_tokens: 12,
    },
    {
      type: 'reward',
      init_from: 'sft',
      preferences: 'preferences',
      num_train_epochs: 1,
      per_device_train_batch_size: 8,
    },
    {
      type: 'ppo',
      policy: 'sft',
      reward_model: 'reward',
      prompts: { source: 'demo' },
      total_episodes: 48,
      batch_size: 8,
      num_mini_batches: 2,
      num_ppo_epochs: 2,
      max_new_tokens: 20,
      eval_steps: 3,
      num_eval_prompts: 8,
      save_steps: 6,
    },
  ],
};

before(() =>
  workbench.start({
    workspace,
    prepare: () => {
      mkdirSync(runsFolder, { recursive: true });
      const config = join(workspace, 'tiny.rlhf.json');
      writeFileSync(config, JSON.stringify(tinyPipeline, null, 2));
      ppoRunDir = trainHeadless(config, runsFolder, 'ppo');
    },
  }),
);

after(() => workbench.stop());

const metricsOf = () =>
  readFileSync(join(ppoRunDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);

function lastTrace(): { step: number; rows: PpoTraceRow[] } {
  const steps = readdirSync(join(ppoRunDir, 'traces'))
    .map((name) => Number(/^step-(\d+)\.arrow$/.exec(name)?.[1]))
    .filter(Number.isFinite);
  const step = Math.max(...steps);
  const trace = decodeTrace(new Uint8Array(readFileSync(join(ppoRunDir, 'traces', `step-${step}.arrow`))));
  assert.equal(trace.kind, 'ppo');
  return { step, rows: trace.rows as PpoTraceRow[] };
}

async function openPpoDashboard(): Promise<{ page: Page; frame: FrameLocator }> {
  const page = await workbench.openPage();
  // Without an argument the command asks which run, listing every run of the workspace.
  const labels = await runCommandAndPick(page, 'RLHF: Open Dashboard', 'tiny · ppo');
  for (const stage of ['sft', 'preferences', 'reward', 'ppo'])
    assert.ok(
      labels.some((label) => label.includes(`tiny · ${stage}`)),
      `the ${stage} run is offered: ${labels.join(', ')}`,
    );
  const frame = dashboardFrame(page);
  await frame.locator('#run-name', { hasText: 'tiny · ppo' }).waitFor({ timeout: 30_000 });
  return { page, frame };
}

test('the dashboard of a PPO run the trainer wrote shows its metrics, and its tokens’ text and values', async () => {
  const { page, frame } = await openPpoDashboard();
  try {
    assert.equal(await frame.locator('#run-status').textContent(), 'completed');
    const metrics = metricsOf();
    const last = metrics.at(-1) as Record<string, number>;
    const kl = frame.locator('#charts figure[data-metric="objective/kl"]');
    await kl.locator('canvas').first().waitFor({ timeout: 15_000 });
    const trained = metrics.filter((point) => typeof point['objective/kl'] === 'number');
    assert.equal(
      await kl.getAttribute('aria-label'),
      `objective/kl: ${trained.length} points, latest ${formatNumber(last['objective/kl'])} at step ${last.step}`,
    );
    for (const metric of ['objective/scores', 'oracle/score', 'policy/clipfrac_avg', 'loss/value_avg'])
      assert.equal(await frame.locator(`#charts figure[data-metric="${metric}"]`).count(), 1, metric);
    const comparable = await frame.locator('#compare label').allTextContents();
    assert.deepEqual(
      comparable.sort(),
      ['tiny · preferences', 'tiny · reward', 'tiny · sft'],
      'the workspace’s other runs can be overlaid',
    );
    await screenshot(page, 'ui-dashboard-ppo-metrics');

    await frame.locator('#tab-rollouts').click();
    const { step, rows } = lastTrace();
    await frame.locator('#step-label', { hasText: `Step ${step} (` }).waitFor({ timeout: 15_000 });
    const first = rows[0];
    const row = frame.locator('#samples [data-sample="0"]');
    await row.waitFor();
    assert.ok(
      ((await row.getAttribute('aria-label')) ?? '').includes(
        `Prompt: ${first.prompt} Response: ${first.tokens.join('')}`,
      ),
      'the row’s label has the prompt and the response text of the trace',
    );
    assert.match(
      (await row.getAttribute('aria-label')) ?? '',
      new RegExp(`^Sample 0: score ${formatNumber(first.score).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    // A token with visible text: its span shows the text, and hovering it shows its numbers.
    const index = first.tokens.findIndex((token) => token.trim().length >= 2);
    assert.ok(index >= 0, `a token with text in ${JSON.stringify(first.tokens)}`);
    const token = row.locator('.tok').nth(index);
    assert.equal(await token.textContent(), first.tokens[index]);
    await token.hover();
    const tooltip = frame.locator('#token-tooltip');
    await tooltip.waitFor({ state: 'visible' });
    const text = (await tooltip.innerText()).replace(/\s+/g, ' ');
    for (const [label, field] of [
      ['advantage', 'advantage'],
      ['KL', 'kl'],
      ['value', 'value'],
      ['logprob', 'logprob'],
    ] as const) {
      assert.ok(
        text.includes(`${label} ${formatNumber(first[field][index])}`),
        `${label} ${formatNumber(first[field][index])} in "${text}"`,
      );
    }
    assert.ok(text.includes(`ratio, epoch 2 ${formatNumber(first.ratio[1][index])}`), text);
    await screenshot(page, 'ui-dashboard-ppo-rollouts');
    await frame.locator('#tab-clipping').click();
    await frame.locator('#clip-epochs tbody tr').first().waitFor();
    assert.equal(await frame.locator('#clip-epochs tbody tr').count(), 2, 'two PPO epochs');
    await screenshot(page, 'ui-dashboard-ppo-clipping');
  } finally {
    await page.close();
  }
});

test('while the dashboard is open, a new metrics line appears within a second and a new step is followed', async () => {
  const { page, frame } = await openPpoDashboard();
  try {
    const kl = frame.locator('#charts figure[data-metric="objective/kl"]');
    await kl.locator('canvas').first().waitFor({ timeout: 15_000 });
    const before = metricsOf();
    const step = (before.at(-1) as Record<string, number>).step + 1;
    const written = Date.now();
    appendFileSync(
      join(ppoRunDir, 'metrics.jsonl'),
      `${JSON.stringify({ step, time: written / 1000, episode: step * 8, 'objective/kl': 12.5 })}\n`,
    );
    const expected = `latest 12.5 at step ${step}`;
    let label = '';
    while (Date.now() - written < 5000) {
      label = (await kl.getAttribute('aria-label')) ?? '';
      if (label.includes(expected)) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const elapsed = Date.now() - written;
    assert.ok(label.includes(expected), `"${expected}" in "${label}"`);
    console.log(`a metrics line reached the chart ${elapsed} ms after it was written`);
    assert.ok(elapsed < 1000, `the new point appeared after ${elapsed} ms`);

    await frame.locator('#tab-rollouts').click();
    const { step: last } = lastTrace();
    await frame.locator('#step-label', { hasText: `Step ${last} (` }).waitFor({ timeout: 15_000 });
    copyFileSync(
      join(ppoRunDir, 'traces', `step-${last}.arrow`),
      join(ppoRunDir, 'traces', `step-${last + 1}.arrow.tmp`),
    );
    const { renameSync } = await import('node:fs');
    renameSync(
      join(ppoRunDir, 'traces', `step-${last + 1}.arrow.tmp`),
      join(ppoRunDir, 'traces', `step-${last + 1}.arrow`),
    );
    await frame
      .locator('#step-label', { hasText: `Step ${last + 1} (${last + 1} of ${last + 1})` })
      .waitFor({ timeout: 5_000 });
  } finally {
    await page.close();
  }
});
