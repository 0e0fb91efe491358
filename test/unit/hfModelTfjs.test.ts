/**
 * Hugging Face causal LMs in the tfjs engine (src/trainer/engine/tfjs/hfModel.ts) against the PyTorch twin
 * (test/fixtures/hf), which shares no code with RLHF Lens: folders the twin wrote — gpt2, llama (grouped-query
 * attention, Llama 3.1 RoPE scaling, tied and untied, head_dim ≠ hidden / heads, biases), qwen2 (q/k/v biases),
 * mistral (a sliding window shorter than the sequence), in F32, F16 and BF16, one file or shards — load and give
 * the twin's logits; decoding with the KV cache gives the full forward's logits; nothing leaks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { Random } from '../../src/core/random';
import { UserError } from '../../src/shared/userError';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import type { KvCache } from '../../src/trainer/engine/tfjs/gpt';
import { loadHfCausalLm, type HfCausalLm } from '../../src/trainer/engine/tfjs/hfModel';
import { gptConfigOfGpt2 } from '../../src/trainer/model/gpt2Config';
import { LlamaModel } from '../../src/trainer/engine/tfjs/llamaModel';
import { ropeInverseFrequencies } from '../../src/trainer/hf/ropeFrequencies';
import { tf, type Tensor } from '../../src/trainer/engine/tfjs/tfRuntime';
import {
  expectedHfTensors,
  openHfWeights,
  parseHfConfig,
  readHfConfig,
  type Gpt2Architecture,
  type LlamaFamilyArchitecture,
} from '../../src/trainer/hf';
import {
  twinLogits,
  twinRopeFrequencies,
  twinUnavailable,
  writeHfFolder,
  type HfFolderOptions,
} from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'hf-model-tfjs-'));
/** Two float32 forward passes of the same model (the bar for logits). */
const logitsTolerance = 1e-4;
/** Logits that must differ: far above float32 rounding. */
const movedAtLeast = 1e-2;
const vocab = 48;
const batch = 2;
const length = 8;
/** Weights 10× transformers' std, so attention, rotation and norms weigh in the logits. */
const initializerRange = 0.2;
/** Tokens run in one forward before decoding one at a time. */
const prefillLength = 3;

const rng = new Random(18);
const ids = Array.from({ length: batch }, () => Array.from({ length }, () => rng.int(vocab)));

before(async () => {
  await selectBackend('wasm');
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function loadFolder(folder: string): Promise<HfCausalLm> {
  return loadHfCausalLm(await openHfWeights(folder, await readHfConfig(folder)));
}

async function readAndDispose(tensor: Tensor): Promise<Float32Array> {
  const data = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return data;
}

const fullLogits = (model: HfCausalLm, rows: number[][]) =>
  readAndDispose(tf.tidy(() => model.forward(tf.tensor2d(rows, undefined, 'int32')).logits));

function disposeCache(cache: KvCache): void {
  for (const { k, v } of cache.layers) tf.dispose([k, v]);
}

/**
 * Logits [B, T, V] from a prefill of `prefillLength` tokens, then one token at a time with the KV cache; also
 * the cached keys' shape at the end.
 */
async function decodedLogits(model: HfCausalLm, rows: number[][]): Promise<{ logits: Float32Array; keys: number[] }> {
  const steps: Tensor[] = [];
  let cache: KvCache = { layers: [], length: 0 };
  const take = (from: number, to: number) => {
    const next = tf.tidy(() => {
      const result = model.forward(
        tf.tensor2d(
          rows.map((row) => row.slice(from, to)),
          undefined,
          'int32',
        ),
        { cache },
      );
      const kept = result.cache as KvCache;
      return { logits: result.logits, layers: kept.layers.map(({ k, v }) => ({ k, v })), length: kept.length };
    });
    disposeCache(cache);
    cache = { layers: next.layers, length: next.length };
    steps.push(next.logits);
  };
  take(0, prefillLength);
  for (let position = prefillLength; position < length; position++) take(position, position + 1);
  const keys = [...cache.layers[0].k.shape];
  disposeCache(cache);
  const logits = await readAndDispose(tf.concat(steps, 1));
  for (const step of steps) step.dispose();
  return { logits, keys };
}

interface Case {
  readonly name: string;
  readonly options: Omit<HfFolderOptions, 'out'>;
}

const llamaShape = { vocab, hidden: 32, heads: 4, kvHeads: 2, layers: 2, intermediate: 48, initializerRange };
const cases: Case[] = [
  { name: 'gpt2, F32', options: { arch: 'gpt2', vocab, hidden: 16, heads: 2, layers: 2, initializerRange } },
  {
    name: 'gpt2, BF16 in 2 shards',
    options: { arch: 'gpt2', vocab, hidden: 16, heads: 2, layers: 2, initializerRange, dtype: 'bf16', shards: 2 },
  },
  {
    name: 'llama, grouped-query attention, llama3 RoPE scaling, untied head, BF16 in 3 shards',
    options: { arch: 'llama', ...llamaShape, ropeScaling: 'llama3', dtype: 'bf16', shards: 3 },
  },
  {
    name: 'llama, tied head, head_dim 12 ≠ hidden / heads, attention_bias and mlp_bias, F32',
    options: { arch: 'llama', ...llamaShape, headDim: 12, tie: true, attentionBias: true, mlpBias: true },
  },
  {
    name: 'qwen2 (q/k/v biases), grouped-query attention, tied, F16',
    options: { arch: 'qwen2', ...llamaShape, tie: true, dtype: 'f16' },
  },
  {
    name: 'mistral, sliding window 3 over 8 positions, untied, F32',
    options: { arch: 'mistral', ...llamaShape, slidingWindow: 3 },
  },
];

cases.forEach(({ name, options }, index) => {
  test(`${name}: the twin's logits; KV-cache decoding equals the full forward; no leaks`, { skip }, async () => {
    const written = writeHfFolder({ ...options, seed: index + 1, out: path.join(workDir, `case-${index}`) });
    const twin = twinLogits(written.folder, ids);
    assert.deepEqual(twin.shape, [batch, length, vocab]);
    const before = tf.memory().numTensors;
    const model = await loadFolder(written.folder);
    try {
      const logits = await fullLogits(model, ids);
      const fromTwin = maxAbsDiff(logits, twin.logits);
      assert.ok(fromTwin <= logitsTolerance, `logits differ from the twin's by ${fromTwin}`);

      const decoded = await decodedLogits(model, ids);
      const fromFull = maxAbsDiff(decoded.logits, logits);
      assert.ok(fromFull <= logitsTolerance, `KV-cache decoding differs from the full forward by ${fromFull}`);
      const a = model.architecture;
      const cachedHeads = a.family === 'llama' ? a.numKeyValueHeads : a.numHeads;
      assert.deepEqual(decoded.keys, [batch, cachedHeads, length, a.headDim], 'the cache holds key/value heads');

      const held = tf.memory().numTensors;
      for (let round = 0; round < 3; round++) await fullLogits(model, ids);
      await decodedLogits(model, ids);
      assert.equal(tf.memory().numTensors, held, 'forwards and decoding leave no tensors behind');
    } finally {
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'dispose frees every tensor of the model');
  });
});

test("mistral's window hides keys beyond it: a window of the whole sequence gives other logits", { skip }, async () => {
  const logitsOf = async (slidingWindow: number) => {
    const out = path.join(workDir, `window-${slidingWindow}`);
    const model = await loadFolder(writeHfFolder({ arch: 'mistral', ...llamaShape, slidingWindow, out }).folder);
    try {
      return await fullLogits(model, ids);
    } finally {
      model.dispose();
    }
  };
  const [narrow, wide] = [await logitsOf(3), await logitsOf(length)];
  const width = vocab * length;
  // The first 3 positions see the same keys either way; later ones do not.
  assert.ok(maxAbsDiff(narrow.subarray(0, 3 * vocab), wide.subarray(0, 3 * vocab)) <= logitsTolerance);
  assert.ok(maxAbsDiff(narrow.subarray(0, width), wide.subarray(0, width)) >= movedAtLeast);
});

test("a gpt2 folder's activation and LayerNorm ε are the ones its config.json names", { skip }, async () => {
  const options = { arch: 'gpt2', vocab, hidden: 16, heads: 2, layers: 2, initializerRange } as const;
  const written = writeHfFolder({ ...options, seed: 7, out: path.join(workDir, 'gpt2-relu') });
  const configFile = path.join(written.folder, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(configFile, JSON.stringify({ ...config, activation_function: 'relu', layer_norm_epsilon: 0.5 }));
  const model = await loadFolder(written.folder);
  try {
    const difference = maxAbsDiff(await fullLogits(model, ids), twinLogits(written.folder, ids).logits);
    assert.ok(difference <= logitsTolerance, `logits differ from the twin's by ${difference}`);
  } finally {
    model.dispose();
  }
});

test('RoPE frequencies: llama3 scaling as the twin computes it; linear scaling divides every one', { skip }, () => {
  const headDim = 16;
  const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
  const twin = twinRopeFrequencies({ rope_theta: 500000, rope_scaling: { ...scaling, rope_type: 'llama3' } }, headDim);
  const ours = ropeInverseFrequencies(
    {
      theta: 500000,
      scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
    },
    headDim,
  );
  ours.forEach((frequency, i) => {
    assert.ok(Math.abs(frequency - twin[i]) <= 1e-6 * twin[i], `θ${i}: ${frequency} vs the twin's ${twin[i]}`);
  });
  const plain = ropeInverseFrequencies({ theta: 10000, scaling: { type: 'default' } }, headDim);
  const linear = ropeInverseFrequencies({ theta: 10000, scaling: { type: 'linear', factor: 4 } }, headDim);
  plain.forEach((frequency, i) => assert.ok(Math.abs(linear[i] * 4 - frequency) <= 1e-6 * frequency));
});

test('a gpt2 config the GPT cannot run is refused naming each setting', () => {
  const architecture = parseHfConfig(
    { model_type: 'gpt2', n_embd: 16, n_head: 2, n_layer: 1, n_inner: 40, vocab_size: 48, tie_word_embeddings: false },
    'config.json',
  ) as Gpt2Architecture;
  assert.throws(
    () => gptConfigOfGpt2(architecture, 'folder'),
    (error: unknown) =>
      error instanceof UserError &&
      error.field === 'n_inner' &&
      /n_inner is 40, not 4 × n_embd \(64\)/.test(error.message) &&
      /tie_word_embeddings is false/.test(error.message),
  );
});

test(
  "llama: a left-padded row with its positions and key mask gives the unpadded row's logits; positions count",
  { skip },
  async () => {
    const out = path.join(workDir, 'left-padding');
    const model = await loadFolder(writeHfFolder({ arch: 'llama', ...llamaShape, seed: 9, out }).folder);
    const padding = 3;
    try {
      const [plain, padded] = tf.tidy(() => {
        const row = ids[0];
        const plainLogits = model.forward(tf.tensor2d([row], undefined, 'int32')).logits;
        const paddedIds = tf.tensor2d([[...Array<number>(padding).fill(0), ...row]], undefined, 'int32');
        const positions = tf.tensor2d(
          [[...Array<number>(padding).fill(0), ...row.map((_, i) => i)]],
          undefined,
          'int32',
        );
        const keyMask = tf.tensor2d([[...Array<number>(padding).fill(0), ...row.map(() => 1)]]);
        const paddedLogits = model.forward(paddedIds, { positions, keyMask }).logits.slice([0, padding], [1, length]);
        return [plainLogits, paddedLogits];
      });
      const plainLogits = await readAndDispose(plain);
      const difference = maxAbsDiff(await readAndDispose(padded), plainLogits);
      assert.ok(difference <= logitsTolerance, `left padding moved logits by ${difference}`);
      // RoPE sees only differences of positions, so a shift changes nothing; spreading them out must.
      const spread = tf.tidy(() => {
        const positions = tf.tensor2d([ids[0].map((_, i) => 2 * i)], undefined, 'int32');
        return model.forward(tf.tensor2d([ids[0]], undefined, 'int32'), { positions }).logits;
      });
      const moved = maxAbsDiff(await readAndDispose(spread), plainLogits);
      assert.ok(moved >= movedAtLeast, `positions 0, 2, 4, … moved logits by only ${moved}`);
    } finally {
      model.dispose();
    }
  },
);

test('a weight of the wrong size is refused by name and the weights read before it are freed', async () => {
  const architecture = parseHfConfig(
    { model_type: 'llama', hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 1 },
    'config.json',
  ) as LlamaFamilyArchitecture;
  const sizes = new Map(expectedHfTensors(architecture).map(({ name, shape }) => [name, shape[0] * (shape[1] ?? 1)]));
  const wrong = 'model.layers.0.mlp.up_proj.weight';
  const read = async (name: string) => new Float32Array(name === wrong ? 1 : (sizes.get(name) as number));
  const before = tf.memory().numTensors;
  await assert.rejects(LlamaModel.load(architecture, read), new RegExp(`weight "${wrong}" has 1 values`));
  assert.equal(tf.memory().numTensors, before);
});
