/**
 * The end-to-end check without LoRA: SFT → preferences (simulated annotator) → reward model → PPO, and
 * SFT → DPO, from a random-weight SmolLM2-shaped folder and from a GPT-2-shaped one (real tokenizers, a ChatML
 * template), through the real pipeline on the default engine (ONNX Runtime), the SmolLM2 one also on tfjs.
 *
 * The SmolLM2 run trains on a conversational dataset and samples conversational prompts with `"chat_template":
 * true`, and samples PPO's rollouts in separate ONNX Runtime sessions with the KV cache (grouped-query attention).
 * Checked: every per-token trace column present and finite, token texts from the folder's own tokenizer joining to
 * the response, PPO's prompts as the template renders them, TRL's metric names, and the saved PPO checkpoint read by
 * the PyTorch twin (which shares no code with the project) giving the engine's log-probabilities to 1e-4.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeTrace, type DecodedTraceRow } from '../../src/shared/traceFormat';
import { loadStageModel } from '../../src/trainer/checkpoint/modelLoading';
import type { ChatMessage } from '../../src/trainer/hf';
import { encodePrompt } from '../../src/trainer/data/chatTokens';
import { makeBatch } from '../../src/trainer/data/textExamples';
import { generateReviews } from '../../src/trainer/data/reviews';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { createChosenEngine } from '../../src/trainer/engineFactory';
import { runPipeline } from '../../src/trainer/pipeline';
import { HfTokenizerAdapter, type Tokenizer } from '../../src/trainer/tokenizer';
import { twinLogits, twinUnavailable } from '../fixtures/hf/hfTwin';
import { writePretrainedFolder, type PretrainedShape } from '../fixtures/hf/pretrainedFolders';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
/** Float32 forward passes of two implementations agree to this (the bar). */
const logprobTolerance = 1e-4;
const blockSize = 96;
const newTokens = 6;
const ppoBatch = 4;
const ppoSteps = 2;
const sftSteps = 2;
const dpoSteps = 2;
const chatExamples = 24;
const chatPrompts = 12;
const replacementCharacter = '\uFFFD';

interface PipelineCase {
  readonly shape: PretrainedShape;
  readonly engine: 'onnxruntime' | 'tfjs';
  /** The SmolLM2 case: conversational data, rollouts on separate ONNX Runtime sessions. */
  readonly chat: boolean;
}

/** A conversational SFT file (whole conversations and prompt/completion turns) and a conversational prompts file. */
/** Writes the files; returns the prompts' turns. */
function writeChatData(dir: string): ChatMessage[][] {
  const reviews = generateReviews(chatExamples + chatPrompts, 11);
  const lines = reviews.slice(0, chatExamples).map((review, i) => {
    const user = { role: 'user', content: `Review: ${review.prompt.trim()}` };
    const assistant = { role: 'assistant', content: review.completion.trim() };
    return i % 2 === 0 ? { messages: [user, assistant] } : { prompt: [user], completion: [assistant] };
  });
  writeFileSync(path.join(dir, 'chat.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
  const prompts = reviews
    .slice(chatExamples)
    .map((review) => ({ prompt: [{ role: 'user', content: `Review: ${review.prompt.trim()}` }] }));
  writeFileSync(path.join(dir, 'prompts.jsonl'), prompts.map((line) => JSON.stringify(line)).join('\n') + '\n');
  return prompts.map((line) => line.prompt);
}

function pipelineConfig(folder: string, options: PipelineCase): Record<string, unknown> {
  const dataset = options.chat
    ? { source: 'jsonl', path: 'chat.jsonl', chat_template: true }
    : { source: 'demo', num_examples: 64 };
  const prompts = options.chat ? { source: 'jsonl', path: 'prompts.jsonl', chat_template: true } : { source: 'demo' };
  return {
    name: `${options.shape}-${options.engine}`,
    seed: 5,
    backend: 'wasm',
    engine: options.engine,
    model: { from: folder, block_size: blockSize },
    stages: [
      {
        type: 'sft',
        dataset,
        max_steps: sftSteps,
        per_device_train_batch_size: 4,
        warmup_steps: 0,
        eval_steps: sftSteps,
        save_steps: sftSteps,
        logging_steps: 1,
      },
      {
        type: 'preferences',
        prompts: { source: 'demo' },
        num_prompts: 8,
        completions_per_prompt: 2,
        max_new_tokens: newTokens,
      },
      {
        type: 'reward',
        warmup_steps: 0,
        num_train_epochs: 1,
        per_device_train_batch_size: 4,
        eval_steps: 2,
        save_steps: 4,
      },
      {
        type: 'ppo',
        prompts,
        total_episodes: ppoBatch * ppoSteps,
        batch_size: ppoBatch,
        num_mini_batches: 1,
        num_ppo_epochs: 1,
        max_new_tokens: newTokens,
        eval_steps: ppoSteps,
        num_eval_prompts: 2,
        save_steps: ppoSteps,
        ...(options.chat && options.engine === 'onnxruntime' && { rollout_engine: 'onnx' }),
      },
      {
        type: 'dpo',
        max_steps: dpoSteps,
        per_device_train_batch_size: 2,
        warmup_steps: 0,
        eval_steps: dpoSteps,
        num_eval_prompts: 2,
        max_new_tokens: newTokens,
        save_steps: dpoSteps,
      },
    ],
  };
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const metricsOf = (runDir: string) =>
  readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
/** A training step (not only an eval line) logged `name`, finite. */
const logged = (rows: readonly Record<string, number>[], name: string) =>
  rows.some((row) => name in row && Number.isFinite(row[name]));
const lastCheckpoint = (runDir: string) => {
  const steps = readdirSync(path.join(runDir, 'checkpoints')).sort(
    (a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]),
  );
  return path.join(runDir, 'checkpoints', steps.at(-1) as string);
};

/** Every per-token column present, one value per response token, finite; token texts are the tokenizer's. */
function checkPpoRow(row: DecodedTraceRow<'ppo'>, tokenizer: Tokenizer): void {
  const n = row.token_ids.length;
  assert.ok(n >= 1, 'a response token');
  for (const column of ['logprob', 'ref_logprob', 'kl', 'value', 'reward', 'advantage', 'return'] as const) {
    assert.equal(row[column].length, n, column);
    assert.ok(row[column].every(Number.isFinite), `${column} finite`);
  }
  assert.equal(row.ratio.length, 1, 'one ratio list per PPO epoch');
  assert.ok(row.ratio[0].length === n && row.ratio[0].every(Number.isFinite), 'ratio per token, finite');
  assert.deepEqual(
    row.tokens,
    row.token_ids.map((id) => tokenizer.tokenText(id)),
    "the folder's tokenizer",
  );
  const textIds = row.token_ids.filter((id) => !tokenizer.isSpecial(id));
  assert.equal(tokenizer.decode(textIds), row.response, "the response is the folder's decoding of its tokens");
  // Random weights also sample byte tokens that are part of a character (their text alone is U+FFFD); where every
  // token is whole characters, the token texts the heatmap shows join to the response.
  const texts = textIds.map((id) => tokenizer.tokenText(id));
  if (!texts.some((text) => text.includes(replacementCharacter)))
    assert.equal(texts.join(''), row.response, 'token texts join to the response');
}

/** log p(next token) per position from the twin's logits (float64 log-softmax). */
function twinLogprobs(folder: string, ids: readonly number[]): number[] {
  const { shape, logits } = twinLogits(folder, [ids]);
  const vocab = shape[2];
  return ids.slice(1).map((target, t) => {
    const row = logits.subarray(t * vocab, (t + 1) * vocab);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((sum, value) => sum + Math.exp(value - max), 0)) + max;
    return row[target] - logSum;
  });
}

async function runCase(options: PipelineCase): Promise<void> {
  const dir = temporaryFolder(`hf-pipeline-${options.shape}-`);
  const folder = await writePretrainedFolder(options.shape, path.join(dir, options.shape));
  const chatPromptTurns = options.chat ? writeChatData(dir) : [];
  const configFile = path.join(dir, 'run.rlhf.json');
  writeFileSync(configFile, JSON.stringify(pipelineConfig(options.shape, options), null, 2));
  const logs: string[] = [];
  const { runs } = await runPipeline(
    { configFile, runsRoot: path.join(dir, '.rlhf', 'runs') },
    { log: (level, message) => logs.push(`${level}: ${message}`) },
  );
  const byType = new Map(runs.map((run) => [readJson(path.join(run.runDir, 'run.json')).stage, run.runDir]));
  for (const run of runs) {
    const runJson = readJson(path.join(run.runDir, 'run.json'));
    assert.equal(runJson.status, 'completed', `${String(runJson.stage)}: ${logs.join('\n')}`);
    assert.equal(runJson.engine, options.engine);
  }
  const tokenizer = await HfTokenizerAdapter.load(folder);

  const ppoDir = byType.get('ppo') as string;
  const ppoMetrics = metricsOf(ppoDir);
  for (const name of ['objective/kl', 'objective/scores', 'loss/policy_avg', 'loss/value_avg', 'val/ratio'])
    assert.ok(logged(ppoMetrics, name), `PPO's ${name} in metrics.jsonl`);
  const trace = decodeTrace(new Uint8Array(readFileSync(path.join(ppoDir, 'traces', 'step-1.arrow'))));
  assert.equal(trace.kind, 'ppo');
  if (trace.kind !== 'ppo') return;
  assert.equal(trace.rows.length, ppoBatch);
  for (const row of trace.rows) checkPpoRow(row, tokenizer);
  if (options.chat) {
    const rendered = chatPromptTurns.map((turns) => tokenizer.hf.formatChat(turns, { addGenerationPrompt: true }));
    for (const row of trace.rows)
      assert.ok(rendered.includes(row.prompt), `the template's rendering of a prompt: ${JSON.stringify(row.prompt)}`);
  }
  const dpoMetrics = metricsOf(byType.get('dpo') as string);
  for (const name of ['loss/dpo', 'rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins'])
    assert.ok(logged(dpoMetrics, name), `DPO's ${name} in metrics.jsonl`);
  assert.ok(logged(metricsOf(byType.get('reward') as string), 'loss/reward'), "the reward model's loss");

  // The saved PPO policy, read by the twin (transformers' layout), gives the engine's log-probabilities.
  const checkpoint = lastCheckpoint(ppoDir);
  const row = trace.rows[0];
  const ids = [...encodePrompt(tokenizer, row.prompt), ...row.token_ids];
  const engine = await createChosenEngine(await selectBackend('wasm'), options.engine);
  const { model } = await loadStageModel(engine, checkpoint, { heads: ['v_head'], seed: 0 });
  try {
    const batch = makeBatch([{ ids, lossStart: 1 }], ids.length - 1, tokenizer.padId);
    const ours = (await model.evaluate(batch, { logprobs: true })).logprobs as Float32Array;
    const twin = twinLogprobs(checkpoint, ids);
    const worst = Math.max(...twin.map((value, t) => Math.abs(value - ours[t])));
    assert.ok(worst <= logprobTolerance, `twin vs ${options.engine}: max |Δ log p| ${worst}`);
  } finally {
    model.dispose();
  }
}

test(
  'SmolLM2-shaped folder: chat SFT → preferences → reward → PPO (ONNX rollouts) and → DPO on ONNX Runtime',
  {
    skip,
  },
  () => runCase({ shape: 'smollm2', engine: 'onnxruntime', chat: true }),
);

test('GPT-2-shaped folder: SFT → preferences → reward → PPO and → DPO on ONNX Runtime', { skip }, () =>
  runCase({ shape: 'gpt2', engine: 'onnxruntime', chat: false }),
);

test('SmolLM2-shaped folder: the same pipeline on tfjs', { skip }, () =>
  runCase({ shape: 'smollm2', engine: 'tfjs', chat: true }),
);
