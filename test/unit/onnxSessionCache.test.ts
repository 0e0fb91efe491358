/**
 * The ONNX Runtime engine's length buckets (engine/onnxruntime/lengthBuckets.ts) and session cache
 * (sessionCache.ts), real sessions throughout: a batch padded to its bucket gives the unpadded batch's
 * loss, reported values and gradients to 1e-6 of each tensor's scale, for every loss kind and for the
 * forward runs; its per-position outputs come back trimmed; the cache keeps at most its capacity,
 * releases what it evicts (once no run holds it) and a rebuilt session gives the same numbers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { LossSpec, NamedArrays, ScoreBatch, TokenBatch } from '../../src/trainer/engine/engine';
import { bucketLength, LENGTH_BUCKET_STEP } from '../../src/trainer/engine/onnxruntime/lengthBuckets';
import { lossRun } from '../../src/trainer/engine/onnxruntime/lossRuns';
import { OnnxEngine, type OnnxModel } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { buildScoreGraph } from '../../src/trainer/engine/onnxruntime/forwardGraphs';
import { bradleyTerryGraphInputs } from '../../src/trainer/engine/onnxruntime/preferenceGraphs';
import { SessionCache } from '../../src/trainer/engine/onnxruntime/sessionCache';
import type { GptConfig, ScalarHead } from '../../src/trainer/model/gptConfig';
import { tokenBatch, uniform } from './onnxAutodiffHarness';

const config: GptConfig = { vocab_size: 40, block_size: 24, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
/** Padded vs unpadded: |a − b| ≤ 1e-6 · max(1e-3, max |b| over the tensor) — float rounding only. */
const PADDING_TOLERANCE = 1e-6;
const SCALE_FLOOR = 1e-3;
/** A length that is not a bucket boundary, so that padding happens (13 → 16). */
const UNPADDED_LENGTH = 13;

function batchOf(batchSize: number, length: number, seed: number): TokenBatch {
  const batch = tokenBatch(batchSize, length, config.vocab_size, seed);
  return {
    batchSize,
    length,
    inputs: Int32Array.from(batch.ids),
    targets: Int32Array.from(batch.targets),
    mask: Float32Array.from(batch.mask),
  };
}

function grid(batch: TokenBatch, seed: number, offset: number, scale: number): Float32Array {
  const random = uniform(seed);
  return Float32Array.from({ length: batch.batchSize * batch.length }, () => offset + scale * random());
}

function ppoSpec(length: number, policyActive: boolean): LossSpec {
  const batch = batchOf(4, length, 7);
  return {
    kind: 'ppo',
    batch,
    temperature: 0.7,
    oldLogprobs: grid(batch, 1, -3.7, 0.3),
    oldValues: grid(batch, 2, 0, 0.5),
    advantages: grid(batch, 3, 0, 1),
    returns: grid(batch, 4, 0, 1),
    cliprange: 0.2,
    cliprangeValue: 0.2,
    vfCoef: 0.1,
    entropyCoef: 0.01,
    policyActive,
    ptx: { batch: batchOf(2, length - 2, 9), coef: 0.5 },
  };
}

function dpoSpec(length: number): LossSpec {
  return {
    kind: 'dpo',
    batch: batchOf(4, length, 5),
    refChosen: [-20.5, -18.25],
    refRejected: [-19.75, -21],
    beta: 0.1,
    lossType: 'ipo',
    chosenLengths: [6, 7],
    rejectedLengths: [7, 5],
  };
}

function scoreBatchOf(length: number): ScoreBatch {
  return { batchSize: 4, length, ids: batchOf(4, length, 11).inputs, lengths: [length, 5, 7, 3] };
}

const specs: readonly { name: string; heads: ScalarHead[]; spec: LossSpec }[] = [
  { name: 'lm', heads: [], spec: { kind: 'lm', batch: batchOf(4, UNPADDED_LENGTH, 1) } },
  { name: 'ppo', heads: ['v_head'], spec: ppoSpec(UNPADDED_LENGTH, true) },
  { name: 'ppo (critic warm-up)', heads: ['v_head'], spec: ppoSpec(UNPADDED_LENGTH, false) },
  { name: 'dpo (ipo)', heads: [], spec: dpoSpec(UNPADDED_LENGTH) },
  {
    name: 'bradleyTerry',
    heads: ['score'],
    spec: { kind: 'bradleyTerry', scores: scoreBatchOf(UNPADDED_LENGTH), chosenRows: [0, 2], rejectedRows: [1, 3] },
  },
];

function assertCloseToScale(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = SCALE_FLOOR;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= PADDING_TOLERANCE * scale,
      `${what}[${i}]: ${actual[i]} vs ${expected[i]} (scale ${scale})`,
    );
}

/** Two models with the same weights, one padding to buckets and one not. */
function paddedAndExact(heads: ScalarHead[], weights?: NamedArrays): { padded: OnnxModel; exact: OnnxModel } {
  const padded = new OnnxEngine(undefined, {}).createModel(config, { heads, seed: 3, weights });
  const exact = new OnnxEngine(undefined, {}, { padToBuckets: false }).createModel(config, { heads, seed: 3, weights });
  return { padded, exact };
}

test('length buckets: multiples of 8, capped at block_size, never shorter than the batch', () => {
  assert.equal(LENGTH_BUCKET_STEP, 8);
  assert.deepEqual(
    [1, 8, 9, 13, 16, 17, 23, 24, 30].map((length) => bucketLength(length, 24)),
    [8, 8, 16, 16, 16, 24, 24, 24, 30],
  );
  assert.equal(bucketLength(45, 48), 48);
});

for (const { name, heads, spec } of specs)
  test(`length buckets: a padded ${name} batch gives the unpadded loss, values and gradients`, async () => {
    const { padded, exact } = paddedAndExact(heads);
    const paddedRun = lossRun(config, spec, padded.lossRunOptions);
    const exactRun = lossRun(config, spec, exact.lossRunOptions);
    assert.notEqual(paddedRun.key, exactRun.key, 'the padded run has its own graph');
    assert.match(paddedRun.key, /"length":16/);
    const expected = (await exact.run(exactRun.key, exactRun.build, exactRun.feeds())).results;
    const actual = (await padded.run(paddedRun.key, paddedRun.build, paddedRun.feeds())).results;
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
    for (const [output, tensor] of Object.entries(expected)) {
      const data = tensor.data as Float32Array;
      const paddedTensor = actual[output];
      // Per-position outputs are [B, 16] here; the step trims them (checked below).
      if (tensor.dims.length === 2 && tensor.dims[1] === UNPADDED_LENGTH) continue;
      assertCloseToScale(paddedTensor.data as Float32Array, data, output);
    }
    // Through the optimizer: scalars, trimmed outputs, updated weights.
    const options = { learningRate: 1e-3, maxGradNorm: 1 };
    const adam = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
    const stepExpected = await exact.createOptimizer(adam).step(spec, options);
    const stepActual = await padded.createOptimizer(adam).step(spec, options);
    for (const [scalar, value] of Object.entries(stepExpected.scalars))
      assertCloseToScale([stepActual.scalars[scalar]], [value], scalar);
    assert.deepEqual(Object.keys(stepActual.outputs).sort(), Object.keys(stepExpected.outputs).sort());
    for (const [output, value] of Object.entries(stepExpected.outputs))
      assertCloseToScale(stepActual.outputs[output], value, output);
    padded.dispose();
    exact.dispose();
  });

test('length buckets: evaluate and scores on a padded batch give the unpadded outputs, trimmed', async () => {
  const { padded, exact } = paddedAndExact(['v_head', 'score']);
  const batch = batchOf(3, UNPADDED_LENGTH, 2);
  const request = { logprobs: true, maskedLogprobs: true, values: true, entropy: true, lmLoss: true, temperature: 0.7 };
  const expected = await exact.evaluate(batch, request);
  const actual = await padded.evaluate(batch, request);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, value] of Object.entries(expected)) {
    const other = actual[name as keyof typeof actual];
    if (typeof value === 'number') assertCloseToScale([other as number], [value], name);
    else assertCloseToScale(other as Float32Array, value as Float32Array, name);
  }
  assert.equal((actual.logprobs as Float32Array).length, 3 * UNPADDED_LENGTH);
  assertCloseToScale(
    await padded.scores(scoreBatchOf(UNPADDED_LENGTH)),
    await exact.scores(scoreBatchOf(13)),
    'scores',
  );
  padded.dispose();
  exact.dispose();
});

test('session cache: keeps its capacity, releases what it evicts, a rebuilt session gives the same loss', async () => {
  const model = new OnnxEngine(undefined, {}, { maxCachedSessions: 2 }).createModel(config, { heads: [], seed: 3 });
  const lossOf = async (length: number) => {
    const run = lossRun(config, { kind: 'lm', batch: batchOf(2, length, 4) }, model.lossRunOptions);
    return (await model.run(run.key, run.build, run.feeds())).results.loss.data[0] as number;
  };
  const first = await lossOf(5); // bucket 8
  await lossOf(7); // bucket 8 again: the same session
  assert.deepEqual(model.sessionStats, { built: 1, released: 0, cached: 1 });
  await lossOf(13); // bucket 16
  await lossOf(21); // bucket 24: the cache is full, bucket 8 (least recently used) goes
  assert.deepEqual(model.sessionStats, { built: 3, released: 1, cached: 2 });
  assert.equal(await lossOf(5), first, 'the rebuilt session computes the same loss, bit for bit');
  assert.deepEqual(model.sessionStats, { built: 4, released: 2, cached: 2 });
  model.dispose();
  assert.deepEqual(model.sessionStats, { built: 4, released: 4, cached: 0 });
});

/** The score graph's feeds for one row of `length` tokens, with a fresh model's weights. */
function scoreFeeds(length: number): Record<string, ort.Tensor> {
  const { weights } = new OnnxEngine(undefined, {}).createModel(config, { heads: ['score'], seed: 3 });
  const feeds: Record<string, ort.Tensor> = {
    [bradleyTerryGraphInputs.ids]: new ort.Tensor('int64', new BigInt64Array(length), [1, length]),
    [bradleyTerryGraphInputs.pick]: new ort.Tensor('float32', new Float32Array(length).fill(1), [1, length]),
    [bradleyTerryGraphInputs.biasCount]: new ort.Tensor('float32', Float32Array.of(0), [1]),
  };
  for (const [name, { shape, data }] of weights) feeds[name] = new ort.Tensor('float32', data, shape);
  return feeds;
}

test('session cache: an evicted session is released only after the run holding it ends', async () => {
  const cache = new SessionCache({}, 1);
  const build = (length: number) => () => buildScoreGraph(config, ['score'], { batchSize: 1, length });
  const feeds = scoreFeeds(4);
  let finishFirst = () => {};
  const held = new Promise<void>((resolve) => (finishFirst = resolve));
  const firstRun = cache.use('a', build(4), async ({ session }) => {
    await held;
    await session.run(feeds); // still usable although evicted meanwhile
    return session;
  });
  await cache.use('b', build(8), async () => undefined); // evicts 'a' while its run holds it
  assert.deepEqual(cache.stats, { built: 2, released: 0, cached: 1 });
  finishFirst();
  const evicted = await firstRun;
  assert.deepEqual(cache.stats, { built: 2, released: 1, cached: 1 });
  // Released: the native session refuses to run (once the release, queued after the run, has happened).
  await new Promise((resolve) => setImmediate(resolve));
  await assert.rejects(evicted.run(feeds));
  assert.throws(() => new SessionCache({}, 0), /capacity 0/);
});
