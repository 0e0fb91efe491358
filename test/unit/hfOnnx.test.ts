/**
 * ONNX graphs of Hugging Face model folders (src/trainer/onnx/hfOnnxGraph.ts, llamaOnnxGraph.ts) on
 * onnxruntime-node against the PyTorch twin (test/fixtures/hf/), which shares no code with the project: full
 * sequences to 1e-4 for llama (grouped-query attention, llama3 RoPE), qwen2 (q/k/v biases), mistral (a sliding
 * window shorter than the sequence), a BF16 sharded tied llama and gpt2; a prefill then token-by-token decoding
 * through the KV cache gives the same logits; left padding leaves the real tokens' logits as they are unpadded;
 * and transformers.js, loading the exported folder as it loads Optimum's, computes the same logits.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { readHfConfig, type HfArchitecture } from '../../src/trainer/hf';
import { openHfWeights } from '../../src/trainer/hf/hfWeights';
import { exportHfOnnx, onnxModelPath } from '../../src/trainer/onnx/hfOnnxExport';
import { buildHfOnnx } from '../../src/trainer/onnx/hfOnnxGraph';
import { OnnxCausalLm } from '../../src/trainer/onnx/onnxCausalLm';
import { generateOnnx } from '../../src/trainer/onnx/onnxSampler';
import { ropeInverseFrequencies } from '../../src/trainer/hf/ropeFrequencies';
import {
  twinLogits,
  twinRopeFrequencies,
  twinUnavailable,
  writeHfFolder,
  type HfFolderOptions,
} from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'hf-onnx-'));
const tolerance = 1e-4;
const vocab = 64;
/** Weights 10× transformers' std, so attention and the rotation weigh in the logits (a wrong one shows). */
const initializerRange = 0.2;
const ids = [
  [5, 17, 3, 42, 9, 28, 11, 60, 2, 33],
  [7, 7, 50, 1, 19, 38, 4, 26, 61, 12],
];
const prefillLength = 4;
/** Tokens generated greedily by transformers.js and by the cache loop here. */
const newTokens = 8;

interface Case {
  readonly name: string;
  readonly options: Omit<HfFolderOptions, 'out'>;
}

const cases: readonly Case[] = [
  {
    name: 'llama, GQA 6:2, llama3 RoPE',
    options: { arch: 'llama', heads: 6, kvHeads: 2, ropeScaling: 'llama3', headDim: 16 },
  },
  { name: 'qwen2, q/k/v biases, GQA', options: { arch: 'qwen2', kvHeads: 1 } },
  { name: 'mistral, sliding window 3', options: { arch: 'mistral', heads: 8, kvHeads: 2, slidingWindow: 3 } },
  { name: 'llama, BF16 in 3 shards, tied', options: { arch: 'llama', dtype: 'bf16', shards: 3, tie: true } },
  { name: 'gpt2', options: { arch: 'gpt2', heads: 4 } },
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const int64 = (rows: readonly (readonly number[])[]) =>
  new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

/** The cache's heads and width: the Llama family caches num_key_value_heads heads. */
function cacheShape(a: HfArchitecture): [number, number] {
  return [a.family === 'llama' ? a.numKeyValueHeads : a.numHeads, a.headDim];
}

type Cache = Record<string, ort.Tensor>;

function emptyCache(a: HfArchitecture, batch: number): Cache {
  const [heads, width] = cacheShape(a);
  const cache: Cache = {};
  for (let l = 0; l < a.numLayers; l++)
    for (const kind of ['key', 'value'])
      cache[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch, heads, 0, width]);
  return cache;
}

/** One run: `rows` after the cache, positions from `positions`, mask of ones unless given. */
async function step(
  session: ort.InferenceSession,
  a: HfArchitecture,
  rows: readonly (readonly number[])[],
  cache: Cache,
  positions: readonly (readonly number[])[],
  mask?: readonly (readonly number[])[],
): Promise<{ logits: Float32Array; cache: Cache }> {
  const past = cache['past_key_values.0.key'].dims[2];
  const ones = rows.map((row) => new Array<number>(past + row.length).fill(1));
  const out = await session.run({
    input_ids: int64(rows),
    attention_mask: int64(mask ?? ones),
    position_ids: int64(positions),
    ...cache,
  });
  const next: Cache = {};
  for (let l = 0; l < a.numLayers; l++)
    for (const kind of ['key', 'value']) next[`past_key_values.${l}.${kind}`] = out[`present.${l}.${kind}`];
  return { logits: out.logits.data as Float32Array, cache: next };
}

const sum = (values: readonly number[]) => values.reduce((total, v) => total + v, 0);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** [B, T, V] logits of position t of every row. */
function atPosition(logits: Float32Array, batch: number, length: number, t: number): Float32Array {
  const out = new Float32Array(batch * vocab);
  for (let b = 0; b < batch; b++)
    out.set(logits.subarray((b * length + t) * vocab, (b * length + t + 1) * vocab), b * vocab);
  return out;
}

async function sessionOf(folder: string): Promise<{ session: ort.InferenceSession; a: HfArchitecture }> {
  const a = await readHfConfig(folder);
  const bytes = await buildHfOnnx(await openHfWeights(folder, a));
  return { session: await ort.InferenceSession.create(bytes), a };
}

for (const { name, options } of cases) {
  test(
    `${name}: the ONNX graph matches the PyTorch twin to 1e-4, full and decoded through the KV cache`,
    { skip },
    async () => {
      const slug = name.replace(/[^a-z0-9]+/gi, '-');
      const { folder } = writeHfFolder({ vocab, initializerRange, seed: 3, ...options, out: path.join(workDir, slug) });
      const expected = twinLogits(folder, ids).logits;
      const { session, a } = await sessionOf(folder);
      const length = ids[0].length;
      const positions = ids.map(() => range(0, length));
      const full = await step(session, a, ids, emptyCache(a, ids.length), positions);
      const fullDiff = maxAbsDiff(full.logits, expected);
      assert.ok(fullDiff <= tolerance, `full sequence: max |ONNX − twin| = ${fullDiff}`);

      // A prefill of several tokens (past 0, T > 1), then one token at a time (past > 0, T = 1).
      let { logits, cache } = await step(
        session,
        a,
        ids.map((row) => row.slice(0, prefillLength)),
        emptyCache(a, ids.length),
        ids.map(() => range(0, prefillLength)),
      );
      const prefillDiff = maxAbsDiff(logits, atPositions(expected, 0, prefillLength));
      assert.ok(prefillDiff <= tolerance, `prefill: ${prefillDiff}`);
      for (let t = prefillLength; t < length; t++) {
        ({ logits, cache } = await step(
          session,
          a,
          ids.map((row) => [row[t]]),
          cache,
          ids.map(() => [t]),
        ));
        const diff = maxAbsDiff(logits, atPosition(expected, ids.length, length, t));
        assert.ok(diff <= tolerance, `decoding position ${t}: max |ONNX − twin| = ${diff}`);
        assert.deepEqual(cache['past_key_values.0.key'].dims, [
          ids.length,
          ...cacheShape(a).slice(0, 1),
          t + 1,
          a.headDim,
        ]);
      }
    },
  );
}

/** Positions [from, to) of every row of the twin's [B, T, V] logits, as [B, to − from, V]. */
function atPositions(logits: Float32Array, from: number, to: number): Float32Array {
  const length = ids[0].length;
  const out = new Float32Array(ids.length * (to - from) * vocab);
  for (let b = 0; b < ids.length; b++)
    out.set(logits.subarray((b * length + from) * vocab, (b * length + to) * vocab), b * (to - from) * vocab);
  return out;
}

test(
  'left padding: the real tokens of a padded row have their unpadded logits (mask and positions)',
  { skip },
  async () => {
    const { folder } = writeHfFolder({
      arch: 'mistral',
      vocab,
      initializerRange,
      kvHeads: 2,
      slidingWindow: 4,
      seed: 8,
      out: path.join(workDir, 'padding'),
    });
    const { session, a } = await sessionOf(folder);
    const padding = 3;
    const short = ids[1].slice(0, ids[1].length - padding);
    const rows = [ids[0], [...new Array<number>(padding).fill(0), ...short]];
    const mask = rows.map((_, b) => range(0, ids[0].length).map((i) => (b === 1 && i < padding ? 0 : 1)));
    // As transformers.js derives them: cumulative mask − 1, and 0 on padding.
    const positions = mask.map((row) => row.map((_, i) => Math.max(0, i - (row.length - sum(row)))));
    const { logits } = await step(session, a, rows, emptyCache(a, 2), positions, mask);
    const length = ids[0].length;
    const padded = logits.subarray((length + padding) * vocab, 2 * length * vocab);
    const diff = maxAbsDiff(padded, twinLogits(folder, [short]).logits);
    assert.ok(diff <= tolerance, `left-padded row vs unpadded: ${diff}`);
  },
);

test('RoPE frequencies: default and llama3 as the twin computes them, linear divided by the factor', { skip }, () => {
  const headDim = 16;
  const llama3 = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
  const ours = ropeInverseFrequencies(
    {
      theta: 10000,
      scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
    },
    headDim,
  );
  const theirs = twinRopeFrequencies({ rope_theta: 10000, rope_scaling: { ...llama3, rope_type: 'llama3' } }, headDim);
  const relative = (x: ArrayLike<number>, y: ArrayLike<number>) =>
    Math.max(...Array.from(x, (v, i) => Math.abs(v - y[i]) / y[i]));
  assert.ok(relative(ours, theirs) < 1e-6, 'llama3 frequencies');
  const plain = ropeInverseFrequencies({ theta: 500000, scaling: { type: 'default' } }, headDim);
  assert.ok(relative(plain, twinRopeFrequencies({ rope_theta: 500000 }, headDim)) < 1e-6, 'default frequencies');
  const linear = ropeInverseFrequencies({ theta: 500000, scaling: { type: 'linear', factor: 4 } }, headDim);
  assert.ok(
    relative(
      Float32Array.from(linear, (f) => f * 4),
      plain,
    ) < 1e-6,
    'linear: θ / factor',
  );
});

const argmax = (values: Float32Array) => values.reduce((best, v, i) => (v > values[best] ? i : best), 0);

/** Greedy continuation of `prompt` through the KV cache, one token per step. */
async function greedy(session: ort.InferenceSession, a: HfArchitecture, prompt: number[], count: number) {
  let { logits, cache } = await step(session, a, [prompt], emptyCache(a, 1), [range(0, prompt.length)]);
  const tokens = [argmax(logits.subarray((prompt.length - 1) * vocab))];
  while (tokens.length < count) {
    const position = prompt.length + tokens.length - 1;
    ({ logits, cache } = await step(session, a, [[tokens[tokens.length - 1]]], cache, [[position]]));
    tokens.push(argmax(logits));
  }
  return tokens;
}

/** Folders transformers.js loads as its llama, qwen2 and mistral models. */
const transformersJsCases = ['llama', 'qwen2', 'mistral'] as const;

for (const arch of transformersJsCases) {
  test(
    `transformers.js loads the exported ${arch} folder, computes the same logits and greedy tokens`,
    { skip },
    async () => {
      const root = path.join(workDir, 'tjs');
      const { folder } = writeHfFolder({
        arch,
        vocab,
        // Larger weights than elsewhere: at 0.2 a greedy continuation here can be one token repeated.
        initializerRange: 0.5,
        kvHeads: 2,
        ...(arch === 'llama' && { ropeScaling: 'llama3' as const }),
        ...(arch === 'mistral' && { slidingWindow: 3 }),
        seed: 5,
        out: path.join(workDir, `tjs-source-${arch}`),
      });
      const exported = await exportHfOnnx(folder, path.join(root, `tiny-${arch}`));
      assert.ok(exported.copied.includes('config.json'));
      const { session, a } = await sessionOf(folder);
      const row = ids[0];
      const ours = (await step(session, a, [row], emptyCache(a, 1), [range(0, row.length)])).logits;
      const transformers = await import('@huggingface/transformers');
      transformers.env.allowRemoteModels = false;
      transformers.env.localModelPath = `${root}/`;
      const lm = await transformers.AutoModelForCausalLM.from_pretrained(`tiny-${arch}`, { dtype: 'fp32' });
      try {
        const tensor = (values: number[]) =>
          new transformers.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
        const output = (await lm({ input_ids: tensor(row), attention_mask: tensor(row.map(() => 1)) })) as {
          logits: { data: Float32Array };
        };
        const diff = maxAbsDiff(output.logits.data, ours);
        assert.ok(diff <= tolerance, `transformers.js vs onnxruntime-node on ${onnxModelPath}: ${diff}`);
        assert.ok(maxAbsDiff(ours, twinLogits(folder, [row]).logits) <= tolerance, 'and both match the twin');

        // Greedy generation runs transformers.js's own decode loop over the graph's past/present caches.
        const prompt = row.slice(0, prefillLength);
        const generated = (await lm.generate({
          input_ids: tensor(prompt),
          attention_mask: tensor(prompt.map(() => 1)),
          max_new_tokens: newTokens,
          do_sample: false,
        })) as { tolist(): bigint[][] };
        const theirs = generated.tolist()[0].map(Number).slice(prompt.length);
        assert.ok(new Set(theirs).size > 1, `a continuation that can tell a wrong cache from a right one: ${theirs}`);
        assert.deepEqual(theirs, await greedy(session, a, prompt, newTokens), 'greedy continuations agree');
        // And each token is the twin's argmax over the whole sequence so far (one twin run over the final text).
        const twin = twinLogits(folder, [[...prompt, ...theirs]]).logits;
        theirs.forEach((token, i) => {
          const at = twin.subarray((prompt.length - 1 + i) * vocab, (prompt.length + i) * vocab);
          assert.equal(argmax(at), token, `generated token ${i} is the twin's greedy choice`);
        });
      } finally {
        await lm.dispose();
      }
    },
  );
}

test(
  "rollouts: generateOnnx over OnnxCausalLm.fromHfWeights and over the exported folder takes the twin's greedy tokens",
  { skip },
  async () => {
    const { folder } = writeHfFolder({
      arch: 'mistral',
      vocab,
      initializerRange: 0.5,
      heads: 4,
      kvHeads: 2,
      slidingWindow: 3,
      seed: 5,
      out: path.join(workDir, 'rollout'),
    });
    const weights = await openHfWeights(folder, await readHfConfig(folder));
    const exported = await exportHfOnnx(folder, path.join(workDir, 'rollout-onnx'));
    // Prompts of different lengths: the sampler left-pads the short one and masks its padding.
    const prompts = [ids[0].slice(0, 5), ids[1].slice(0, 2)];
    const options = { temperature: 0, topK: 0, topP: 1, maxNewTokens: newTokens, seed: 1, padTokenId: 0 };
    for (const lm of [await OnnxCausalLm.fromHfWeights(weights), await OnnxCausalLm.fromFolder(exported.outDir)]) {
      try {
        assert.deepEqual([lm.info.kvHeads, lm.info.headDim, lm.info.hasCache], [2, 8, true]);
        const sequences = await generateOnnx(lm, prompts, options);
        const all = sequences.flatMap((sequence) => sequence.tokens);
        assert.ok(new Set(all).size > 1, `a continuation that can tell a wrong cache from a right one: ${all}`);
        sequences.forEach(({ tokens }, row) => {
          assert.equal(tokens.length, newTokens);
          const prompt = prompts[row];
          const twin = twinLogits(folder, [[...prompt, ...tokens]]).logits;
          tokens.forEach((token, i) => {
            const at = twin.subarray((prompt.length - 1 + i) * vocab, (prompt.length + i) * vocab);
            assert.equal(argmax(at), token, `row ${row}, token ${i}: the twin's greedy choice`);
          });
        });
      } finally {
        await lm.release();
      }
    }
  },
);
