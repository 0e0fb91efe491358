/**
 * Llama-family models in the tfjs engine (engine/tfjs/tfjsModels.ts, causalLm.ts) against the PyTorch twin
 * (test/fixtures/hf), which shares no code with RLHF Lens: folders the twin wrote — llama with grouped-query
 * attention and a tied head, qwen2 with q/k/v biases, mistral with a sliding window shorter than the batch, llama
 * untied — load through openHfWeights into `createModel`; the masked LM loss and every weight's gradient (read
 * through the optimizer's own backward) equal the twin's autograd, and `step`'s gradNorm is the twin's global norm.
 * Then SFT steps lower the loss, the heads give their shapes, greedy generation is the full forward's argmax, and
 * every loss kind steps.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { Random } from '../../src/core/random';
import type { NamedArrays, TokenBatch } from '../../src/trainer/engine/engine';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { gptConfigOfGpt2 } from '../../src/trainer/model/gpt2Config';
import { TfjsEngine, type TfjsModel } from '../../src/trainer/engine/tfjs/tfjsEngine';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { expectedHfTensors, openHfWeights, readHfConfig } from '../../src/trainer/hf';
import { llamaConfig, type CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import { generate } from '../../src/trainer/sampling/sampler';
import { twinGradients, twinUnavailable, writeHfFolder, type HfFolderOptions } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'tfjs-llama-'));
/** float32 against the twin's float64 autograd, relative to each gradient's norm. */
const gradientTolerance = 1e-4;
const vocab = 40;
const batch = 2;
const length = 8;
/** Weights 10× transformers' std, so attention, rotation and norms weigh in the gradients. */
const initializerRange = 0.2;
const llamaShape = { vocab, hidden: 16, heads: 4, kvHeads: 2, layers: 2, intermediate: 24, initializerRange };
const adamW = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };

let engine: TfjsEngine;
before(async () => {
  engine = new TfjsEngine(await selectBackend('cpu'), generate);
});

const rng = new Random(18);
const rows = (count: number) => Array.from({ length: count }, () => Array.from({ length }, () => rng.int(vocab)));
const inputs = rows(batch);
const targets = rows(batch);
/** The second row's last three targets are padding. */
const mask = inputs.map((_, b) => Array.from({ length }, (_, t) => (b === 1 && t >= length - 3 ? 0 : 1)));
const tokenBatch: TokenBatch = {
  batchSize: batch,
  length,
  inputs: Int32Array.from(inputs.flat()),
  targets: Int32Array.from(targets.flat()),
  mask: Float32Array.from(mask.flat()),
};

/** A folder's config (Llama family, or gpt2 as the GPT with its ε and activation) and every weight. */
async function loadFolder(folder: string): Promise<{ config: CausalLmConfig; weights: NamedArrays }> {
  const architecture = await readHfConfig(folder);
  const files = await openHfWeights(folder, architecture);
  const weights: NamedArrays = new Map();
  for (const { name, shape } of expectedHfTensors(architecture))
    weights.set(name, { shape, data: await files.read(name) });
  const config =
    architecture.family === 'llama'
      ? llamaConfig(architecture, { blockSize: length })
      : gptConfigOfGpt2(architecture, folder);
  return { config, weights };
}

const norm = (values: ArrayLike<number>) => Math.sqrt(Array.from(values).reduce((sum, v) => sum + v * v, 0));

function relativeDifference(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  assert.equal(ours.length, theirs.length, 'sizes differ');
  const difference = Array.from(ours, (v, i) => v - theirs[i]);
  return norm(difference) / Math.max(norm(theirs), 1e-12);
}

const cases: { name: string; options: Omit<HfFolderOptions, 'out'> }[] = [
  { name: 'llama, 4 heads over 2 key/value heads, tied', options: { arch: 'llama', ...llamaShape, tie: true } },
  { name: 'qwen2, q/k/v biases, untied', options: { arch: 'qwen2', ...llamaShape } },
  { name: 'mistral, sliding window 3 over 8 positions', options: { arch: 'mistral', ...llamaShape, slidingWindow: 3 } },
  {
    name: 'llama, untied, attention and MLP biases',
    options: { arch: 'llama', ...llamaShape, attentionBias: true, mlpBias: true },
  },
];

/** A gpt2 folder whose config.json names ReLU and LayerNorm ε 0.5: the GPT must honour both to match the twin. */
function reluGpt2Folder(out: string): string {
  const options = { arch: 'gpt2', vocab, hidden: 16, heads: 2, layers: 2, initializerRange, seed: 11, out } as const;
  const { folder } = writeHfFolder(options);
  const configFile = path.join(folder, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(configFile, JSON.stringify({ ...config, activation_function: 'relu', layer_norm_epsilon: 0.5 }));
  return folder;
}

const folderCases = [
  ...cases.map(({ name, options }, index) => ({
    name,
    write: () => writeHfFolder({ ...options, seed: index + 1, out: path.join(workDir, `case-${index}`) }).folder,
  })),
  { name: 'gpt2 with ReLU and LayerNorm ε 0.5', write: () => reluGpt2Folder(path.join(workDir, 'gpt2-relu')) },
];

folderCases.forEach(({ name, write }) => {
  test(`${name}: the LM loss and every weight's gradient equal the twin's autograd`, { skip }, async () => {
    const written = { folder: write() };
    const twin = twinGradients(written.folder, { inputs, targets, mask });
    const { config, weights } = await loadFolder(written.folder);
    const model = engine.createModel(config, { heads: [], seed: 1, weights });
    const optimizer = model.createOptimizer(adamW);
    try {
      const ours = await optimizer.gradients({ kind: 'lm', batch: tokenBatch });
      assert.ok(
        Math.abs(ours.loss - twin.loss) <= gradientTolerance * Math.abs(twin.loss),
        `loss ${ours.loss} ≠ ${twin.loss}`,
      );
      assert.deepEqual([...ours.grads.keys()].sort(), [...twin.grads.keys()].sort(), 'a gradient for every weight');
      for (const [weight, expected] of twin.grads) {
        const got = ours.grads.get(weight)?.data ?? new Float32Array();
        const off = relativeDifference(got, expected);
        assert.ok(off <= gradientTolerance, `${weight}: gradient off by ${off} of its norm`);
      }
      const twinNorm = norm([...twin.grads.values()].flatMap((g) => Array.from(g)));
      const { scalars, applied } = await optimizer.step(
        { kind: 'lm', batch: tokenBatch },
        { learningRate: 1e-3, maxGradNorm: 1 },
      );
      assert.ok(applied);
      assert.ok(
        Math.abs(scalars.gradNorm - twinNorm) <= gradientTolerance * twinNorm,
        `gradNorm ${scalars.gradNorm} ≠ ${twinNorm}`,
      );
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});

/** The index of the largest of `values`. */
const argmax = (values: ArrayLike<number>) =>
  Array.from(values).reduce((best, v, i, all) => (v > all[best] ? i : best), 0);

async function greedyMatchesFullForward(model: TfjsModel, prompt: number[]): Promise<void> {
  const [sampled] = await model.generate([prompt], {
    temperature: 0,
    topK: 0,
    topP: 1,
    maxNewTokens: 4,
    seed: 3,
    padTokenId: 0,
  });
  const sequence = [...prompt, ...sampled.tokens];
  const logits = tf.tidy(() => model.lm.forward(tf.tensor2d([sequence], undefined, 'int32')).logits);
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  sampled.tokens.forEach((token, i) => {
    const position = prompt.length - 1 + i;
    assert.equal(token, argmax(data.subarray(position * vocab, (position + 1) * vocab)), `greedy token ${i}`);
  });
}

test(
  'a Llama-family model: SFT steps lower the loss; heads, scores and greedy generation; every loss steps',
  { skip },
  async () => {
    const written = writeHfFolder({ arch: 'qwen2', ...llamaShape, seed: 9, out: path.join(workDir, 'sft') });
    const { config, weights } = await loadFolder(written.folder);
    const before = tf.memory().numTensors;
    const model = engine.createModel(config, { heads: ['v_head', 'score'], seed: 2, weights, keepMissingHeads: true });
    const optimizer = model.createOptimizer(adamW);
    try {
      const losses: number[] = [];
      for (let step = 0; step < 6; step++) {
        const result = await optimizer.step({ kind: 'lm', batch: tokenBatch }, { learningRate: 1e-2, maxGradNorm: 1 });
        losses.push(result.scalars.loss);
      }
      assert.ok(losses[5] < losses[0] - 0.1, `SFT lowers the loss: ${losses.join(', ')}`);
      const evaluation = await model.evaluate(tokenBatch, {
        values: true,
        lmLoss: true,
        entropy: true,
        maskedLogprobs: true,
      });
      assert.equal(evaluation.values?.length, batch * length);
      assert.equal(evaluation.entropy?.length, batch * length);
      assert.equal(evaluation.logprobSums?.length, batch);
      const scoreBatch = { batchSize: batch, length, ids: tokenBatch.inputs, lengths: [length, length - 3] };
      const scores = await model.scores(scoreBatch);
      assert.equal(scores.length, batch);
      assert.ok(Math.abs((await model.scoreTotal(scoreBatch)) - (scores[0] + scores[1])) <= 1e-5);
      await greedyMatchesFullForward(model, [3, 5, 7]);

      const grid = new Float32Array(batch * length).fill(0.1);
      const ppo = await optimizer.step(
        {
          kind: 'ppo',
          batch: tokenBatch,
          temperature: 1,
          oldLogprobs: evaluation.maskedLogprobs as Float32Array,
          oldValues: evaluation.values as Float32Array,
          advantages: grid,
          returns: grid,
          cliprange: 0.2,
          cliprangeValue: 0.2,
          vfCoef: 0.1,
          entropyCoef: 0.01,
          policyActive: true,
          ptx: { batch: tokenBatch, coef: 0.5 },
        },
        { learningRate: 1e-3, maxGradNorm: 1 },
      );
      const bradleyTerry = await optimizer.step(
        { kind: 'bradleyTerry', scores: scoreBatch, chosenRows: [0], rejectedRows: [1] },
        { learningRate: 1e-3, maxGradNorm: 1 },
      );
      const dpo = await optimizer.step(
        {
          kind: 'dpo',
          batch: tokenBatch,
          refChosen: [-20],
          refRejected: [-20],
          beta: 0.1,
          lossType: 'sigmoid',
          chosenLengths: [length],
          rejectedLengths: [length - 3],
        },
        { learningRate: 1e-3, maxGradNorm: 1 },
      );
      for (const result of [ppo, bradleyTerry, dpo]) {
        assert.ok(result.applied && Number.isFinite(result.scalars.loss) && result.scalars.gradNorm > 0);
      }
      assert.equal(dpo.outputs.logprobSums.length, batch);
    } finally {
      optimizer.dispose();
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'the model and its optimizer free every tensor');
  },
);

test('a fresh Llama-family model: seeded, RMSNorm weights 1; dropout > 0 is refused', { skip }, async () => {
  const written = writeHfFolder({ arch: 'llama', ...llamaShape, seed: 4, out: path.join(workDir, 'fresh') });
  const { config } = await loadFolder(written.folder);
  const read = async (seed: number) => {
    const model = engine.createModel(config, { heads: ['v_head'], seed });
    try {
      return await model.readWeights();
    } finally {
      model.dispose();
    }
  };
  const [first, again, other] = [await read(5), await read(5), await read(6)];
  assert.deepEqual(first, again, 'the same seed gives the same weights');
  const embedding = first.get('model.embed_tokens.weight')?.data as Float32Array;
  assert.notDeepEqual(embedding, other.get('model.embed_tokens.weight')?.data);
  const std = norm(embedding) / Math.sqrt(embedding.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `embedding std ${std}`);
  assert.ok(first.get('model.norm.weight')?.data.every((v) => v === 1));
  assert.deepEqual(first.get('v_head.weight')?.shape, [llamaShape.hidden, 1]);
  assert.throws(() => engine.createModel({ ...config, dropout: 0.1 }, { heads: [], seed: 1 }), /dropout 0\.1/);
});
