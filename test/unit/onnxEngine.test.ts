/**
 * The ONNX Runtime engine (src/trainer/engine/onnxruntime/onnxEngine.ts) against the tfjs engine, both
 * real: the same fresh weights for a seed; one optimizer step of every LossSpec kind from the same
 * weights gives the same scalars, outputs and updated weights; 50 SFT steps give the same losses; the
 * optimizer state one engine writes resumes on the other; evaluate and scores agree.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type {
  AdamWOptions,
  EngineModel,
  LossSpec,
  NamedArrays,
  PpoLoss,
  StepOptions,
  TokenBatch,
} from '../../src/trainer/engine/engine';
import { clipByGlobalNormInPlace } from '../../src/trainer/engine/onnxruntime/adamW';
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { clipByGlobalNorm } from '../../src/trainer/engine/tfjs/adamW';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { TfjsEngine } from '../../src/trainer/engine/tfjs/tfjsEngine';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { GptConfig, ScalarHead } from '../../src/trainer/model/gptConfig';
import { onnxEngineSampler } from '../../src/trainer/onnx/onnxEngineSampler';
import { generate } from '../../src/trainer/sampling/sampler';
import { tokenBatch, uniform } from './onnxAutodiffHarness';

const config: GptConfig = { vocab_size: 40, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
const adam: AdamWOptions = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
/**
 * For single steps compared weight by weight: Adam's first update is η·g/(|g| + ε), ≈ η·sign(g), so a
 * gradient that is 0 in exact arithmetic (Bradley–Terry's ln_f.bias and score.bias: each pair adds +d and
 * −d) moves by ±η on float noise that differs between engines. ε = 1e-6 keeps such updates near 0.
 */
const adamOneStep: AdamWOptions = { ...adam, adamEpsilon: 1e-6 };
// A threshold below the gradients' norms, so that every step clips.
const stepOptions: StepOptions = { learningRate: 1e-3, maxGradNorm: 0.01 };
const SCALAR_TOLERANCE = 1e-4;
/** Updated weights: |Δ| ≤ 1e-5 · max(1, |w|) per element. */
const WEIGHT_TOLERANCE = 1e-5;
const SFT_LOSS_TOLERANCE = 1e-3;

let tfjs: TfjsEngine;
const onnx = new OnnxEngine(onnxEngineSampler);
before(async () => {
  tfjs = new TfjsEngine(await selectBackend('wasm'), generate);
});

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

const close = (actual: number, expected: number, tolerance: number) =>
  Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected));

function assertArraysClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(close(actual[i], expected[i], tolerance), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

function assertWeightsClose(actual: NamedArrays, expected: NamedArrays, tolerance: number) {
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [name, { shape, data }] of expected) {
    const other = actual.get(name);
    assert.deepEqual(other?.shape, shape, name);
    assertArraysClose(other?.data ?? [], data, tolerance, name);
  }
}

/**
 * Inside the clip range PPO's two value losses are equal up to rounding ((V_old + (V − V_old)) vs V), so
 * which one is "greater" is float noise that differs between engines: one counted token either way.
 */
function clipFractionTolerance(spec: LossSpec): number {
  if (spec.kind !== 'ppo') return SCALAR_TOLERANCE;
  return 1 / spec.batch.mask.reduce((sum, m) => sum + m, 0) + 1e-6;
}

/** The same model (tfjs's fresh weights for `seed`) on both engines. */
async function twins(
  heads: readonly ScalarHead[],
  seed = 3,
  modelConfig = config,
): Promise<{ tf: EngineModel; ort: EngineModel }> {
  const tfModel = tfjs.createModel(modelConfig, { heads, seed });
  const weights = await tfModel.readWeights();
  return { tf: tfModel, ort: onnx.createModel(modelConfig, { heads, seed: 0, weights }) };
}

async function assertOneStepAgrees(heads: readonly ScalarHead[], spec: LossSpec, modelConfig = config) {
  const models = await twins(heads, 3, modelConfig);
  const expected = await models.tf.createOptimizer(adamOneStep).step(spec, stepOptions);
  const actual = await models.ort.createOptimizer(adamOneStep).step(spec, stepOptions);
  assert.deepEqual(Object.keys(actual.scalars).sort(), Object.keys(expected.scalars).sort());
  for (const [name, value] of Object.entries(expected.scalars)) {
    const tolerance = name === 'vfClipFrac' ? clipFractionTolerance(spec) : SCALAR_TOLERANCE;
    assert.ok(close(actual.scalars[name], value, tolerance), `${name}: ${actual.scalars[name]} vs ${value}`);
  }
  assert.deepEqual(Object.keys(actual.outputs).sort(), Object.keys(expected.outputs).sort());
  for (const [name, value] of Object.entries(expected.outputs))
    assertArraysClose(actual.outputs[name], value, SCALAR_TOLERANCE, name);
  assert.equal(actual.applied, expected.applied);
  assert.ok(expected.scalars.gradNorm > stepOptions.maxGradNorm, `clipped (‖g‖ = ${expected.scalars.gradNorm})`);
  assertWeightsClose(await models.ort.readWeights(), await models.tf.readWeights(), WEIGHT_TOLERANCE);
  models.tf.dispose();
  models.ort.dispose();
}

test('onnxruntime engine: fresh weights equal the tfjs engine’s for the same seed, bit for bit', async () => {
  const heads: ScalarHead[] = ['v_head', 'score'];
  const expected = await tfjs.createModel(config, { heads, seed: 11 }).readWeights();
  const actual = await onnx.createModel(config, { heads, seed: 11 }).readWeights();
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [name, { data }] of expected) assert.deepEqual(actual.get(name)?.data, data, name);
});

test('onnxruntime engine: one lm step gives tfjs’s loss, norm and updated weights', async () => {
  await assertOneStepAgrees([], { kind: 'lm', batch: batchOf(4, 12, 1) });
});

test('onnxruntime engine: one lm step with dropout gives tfjs’s loss and weights (the shared masks)', async () => {
  const withDropout = { ...config, dropout: 0.2 };
  const batch = batchOf(4, 12, 1);
  await assertOneStepAgrees([], { kind: 'lm', batch, dropoutSeed: 77 }, withDropout);
  const model = onnx.createModel(withDropout, { heads: [], seed: 3 });
  const optimizer = model.createOptimizer(adam);
  const noUpdate = { ...stepOptions, shouldApply: () => false };
  const dropped = (await optimizer.step({ kind: 'lm', batch, dropoutSeed: 77 }, noUpdate)).scalars.loss;
  const plain = (await optimizer.step({ kind: 'lm', batch }, noUpdate)).scalars.loss;
  assert.ok(Math.abs(dropped - plain) > 1e-4, `dropout changed the loss (${dropped} vs ${plain})`);
  model.dispose();
  // The tfjs engine's mask tensors live and die within the step.
  const tfModel = tfjs.createModel(withDropout, { heads: [], seed: 3 });
  const tfOptimizer = tfModel.createOptimizer(adam);
  await tfOptimizer.step({ kind: 'lm', batch, dropoutSeed: 77 }, stepOptions);
  const tensors = tf.memory().numTensors;
  await tfOptimizer.step({ kind: 'lm', batch, dropoutSeed: 78 }, stepOptions);
  assert.equal(tf.memory().numTensors, tensors);
  tfModel.dispose();
});

test('onnxruntime engine: one Bradley–Terry step gives tfjs’s scalars, scores and weights', async () => {
  const batch = batchOf(4, 9, 2);
  const spec: LossSpec = {
    kind: 'bradleyTerry',
    scores: { batchSize: 4, length: 9, ids: batch.inputs, lengths: [9, 5, 7, 3] },
    chosenRows: [0, 2, 1],
    rejectedRows: [1, 3, 3],
  };
  await assertOneStepAgrees(['score'], spec);
});

function ppoSpec(policyActive: boolean, ptx: boolean): LossSpec {
  const [batchSize, length] = [4, 10];
  const random = uniform(23);
  const grid = (scale: number, offset = 0) =>
    Float32Array.from({ length: batchSize * length }, () => offset + scale * random());
  return {
    kind: 'ppo',
    batch: batchOf(batchSize, length, 7),
    temperature: 0.7,
    oldLogprobs: grid(0.4, -Math.log(config.vocab_size)),
    oldValues: grid(0.1),
    advantages: grid(1),
    returns: grid(0.5),
    cliprange: 0.2,
    cliprangeValue: 0.05,
    vfCoef: 0.1,
    entropyCoef: 0.01,
    policyActive,
    ptx: ptx ? { batch: batchOf(2, 8, 9), coef: 0.5 } : undefined,
  };
}

test('onnxruntime engine: one PPO step (entropy bonus, ptx) gives tfjs’s scalars, ratios and weights', async () => {
  await assertOneStepAgrees(['v_head'], ppoSpec(true, true));
});

test('onnxruntime engine: one PPO critic warm-up step (policy off, no ptx) gives tfjs’s results', async () => {
  await assertOneStepAgrees(['v_head'], ppoSpec(false, false));
});

test('onnxruntime engine: no update when shouldApply says no or the loss is not finite', async () => {
  const model = onnx.createModel(config, { heads: ['v_head'], seed: 2 });
  const optimizer = model.createOptimizer(adam);
  const before = await model.readWeights();
  let seen: Readonly<Record<string, number>> = {};
  const refused = await optimizer.step(ppoSpec(true, false), {
    ...stepOptions,
    shouldApply: (scalars) => ((seen = scalars), false),
  });
  assert.equal(refused.applied, false);
  assert.ok(Number.isFinite(seen.meanRatio) && Number.isFinite(seen.loss), 'shouldApply saw the step’s scalars');
  const nonFinite = ppoSpec(true, false) as PpoLoss;
  const advantages = Float32Array.from(nonFinite.advantages, (a, i) => (i === 27 ? Number.NaN : a));
  assert.equal((await optimizer.step({ ...nonFinite, advantages }, stepOptions)).applied, false);
  assertWeightsClose(await model.readWeights(), before, 0);
  assert.equal((await optimizer.readState()).step, 0);
  model.dispose();
});

for (const [lossType, labelSmoothing] of [
  ['sigmoid', 0.1],
  ['ipo', 0],
  ['hinge', 0],
] as const) {
  test(`onnxruntime engine: one DPO step (${lossType}) gives tfjs’s sums and weights`, async () => {
    await assertOneStepAgrees([], {
      kind: 'dpo',
      batch: batchOf(4, 10, 4),
      refChosen: [-18, -20],
      refRejected: [-19, -17.5],
      beta: 0.1,
      lossType,
      labelSmoothing,
      chosenLengths: [5, 4],
      rejectedLengths: [5, 3],
    });
  });
}

/** 50 steps of `specs` (in turn) on both engines from the same weights: the same losses to 1e-3. */
async function assertFiftyStepsAgree(heads: readonly ScalarHead[], specs: readonly LossSpec[]): Promise<number[]> {
  const models = await twins(heads, 5);
  const optimizers = { tf: models.tf.createOptimizer(adam), ort: models.ort.createOptimizer(adam) };
  const options: StepOptions = { ...stepOptions, learningRate: 3e-3 };
  const losses: number[] = [];
  for (let step = 0; step < 50; step++) {
    const spec = specs[step % specs.length];
    const expected = (await optimizers.tf.step(spec, options)).scalars.loss;
    const actual = (await optimizers.ort.step(spec, options)).scalars.loss;
    assert.ok(close(actual, expected, SFT_LOSS_TOLERANCE), `${spec.kind} step ${step}: ${actual} vs ${expected}`);
    losses.push(expected);
  }
  models.tf.dispose();
  models.ort.dispose();
  return losses;
}

test('onnxruntime engine: 50 SFT steps give the tfjs engine’s losses to 1e-3', async () => {
  const specs: LossSpec[] = [0, 1, 2, 3].map((seed) => ({ kind: 'lm', batch: batchOf(4, 12, 100 + seed) }));
  const losses = await assertFiftyStepsAgree([], specs);
  assert.ok(losses[49] < losses[0] - 0.5, `the model learned (${losses[0]} → ${losses[49]})`);
});

test('onnxruntime engine: 50 reward, PPO and DPO steps give the tfjs engine’s losses to 1e-3', async () => {
  const scores = batchOf(4, 9, 2);
  await assertFiftyStepsAgree(
    ['score'],
    [
      {
        kind: 'bradleyTerry',
        scores: { batchSize: 4, length: 9, ids: scores.inputs, lengths: [9, 5, 7, 3] },
        chosenRows: [0, 2],
        rejectedRows: [1, 3],
      },
    ],
  );
  await assertFiftyStepsAgree(['v_head'], [ppoSpec(true, true), ppoSpec(false, false)]);
  const dpo = (lossType: 'sigmoid' | 'ipo'): LossSpec => ({
    kind: 'dpo',
    batch: batchOf(4, 10, 4),
    refChosen: [-18, -20],
    refRejected: [-19, -17.5],
    beta: 0.1,
    lossType,
    chosenLengths: [5, 4],
    rejectedLengths: [5, 3],
  });
  await assertFiftyStepsAgree([], [dpo('sigmoid'), dpo('ipo')]);
});

test('onnxruntime engine: optimizer state written by either engine resumes on the other', async () => {
  const spec: LossSpec = { kind: 'lm', batch: batchOf(4, 12, 1) };
  const next: LossSpec = { kind: 'lm', batch: batchOf(4, 12, 2) };
  for (const [writer, reader] of [
    [tfjs, onnx],
    [onnx, tfjs],
  ] as const) {
    const first = writer.createModel(config, { heads: [], seed: 8 });
    const firstOptimizer = first.createOptimizer(adam);
    for (let step = 0; step < 3; step++) await firstOptimizer.step(spec, stepOptions);
    const state = await firstOptimizer.readState();
    const resumed = reader.createModel(config, { heads: [], seed: 0, weights: await first.readWeights() });
    const resumedOptimizer = resumed.createOptimizer(adam);
    resumedOptimizer.loadState(state);
    const expected = await firstOptimizer.step(next, stepOptions);
    const actual = await resumedOptimizer.step(next, stepOptions);
    assert.ok(close(actual.scalars.loss, expected.scalars.loss, SCALAR_TOLERANCE), `${writer.name} → ${reader.name}`);
    assertWeightsClose(await resumed.readWeights(), await first.readWeights(), WEIGHT_TOLERANCE);
    const resumedState = await resumedOptimizer.readState();
    assert.equal(resumedState.step, 4);
    assert.deepEqual([...resumedState.moments.keys()], [...(await firstOptimizer.readState()).moments.keys()]);
    first.dispose();
    resumed.dispose();
  }
});

test('onnxruntime engine: evaluate and scores equal the tfjs engine’s', async () => {
  const models = await twins(['v_head', 'score']);
  const batch = batchOf(3, 10, 6);
  const request = { logprobs: true, maskedLogprobs: true, entropy: true, values: true, temperature: 0.7, lmLoss: true };
  const expected = await models.tf.evaluate(batch, request);
  const actual = await models.ort.evaluate(batch, request);
  for (const name of ['logprobs', 'maskedLogprobs', 'logprobSums', 'entropy', 'values'] as const)
    assertArraysClose(actual[name] as Float32Array, expected[name] as Float32Array, SCALAR_TOLERANCE, name);
  assert.ok(close(actual.lmLoss as number, expected.lmLoss as number, SCALAR_TOLERANCE));
  const scoreBatch = { batchSize: 3, length: 10, ids: batch.inputs, lengths: [10, 4, 7] };
  assertArraysClose(await models.ort.scores(scoreBatch), await models.tf.scores(scoreBatch), SCALAR_TOLERANCE, 'score');
  assert.ok(close(await models.ort.scoreTotal(scoreBatch), await models.tf.scoreTotal(scoreBatch), SCALAR_TOLERANCE));
  models.tf.dispose();
  models.ort.dispose();
});

test('onnxruntime engine: global-norm clipping on arrays equals tfjs’s clipByGlobalNorm (on, off, not reached)', () => {
  const random = uniform(31);
  const draw = (size: number) => Float32Array.from({ length: size }, () => random());
  const original = { a: draw(12), b: draw(5) }; // ‖g‖ ≈ 2.4
  for (const maxNorm of [0.1, 0, 10]) {
    const grads = new Map(Object.entries(original).map(([name, data]) => [name, data.slice()]));
    const norm = clipByGlobalNormInPlace(grads, maxNorm);
    const expected = tf.tidy(() => {
      const tensors = Object.fromEntries(Object.entries(original).map(([name, data]) => [name, tf.tensor(data)]));
      const { clipped, norm: expectedNorm } = clipByGlobalNorm(tensors, maxNorm);
      return { norm: expectedNorm.dataSync()[0], a: clipped.a.dataSync(), b: clipped.b.dataSync() };
    });
    assert.ok(close(norm, expected.norm, 1e-6), `norm ${norm} vs ${expected.norm}`);
    assertArraysClose(grads.get('a') as Float32Array, expected.a, 1e-6, `a (max ${maxNorm})`);
    assertArraysClose(grads.get('b') as Float32Array, expected.b, 1e-6, `b (max ${maxNorm})`);
  }
});

test('onnxruntime engine: generate samples the tfjs engine’s tokens for the same weights and seed', async () => {
  const models = await twins([]);
  const prompts = [
    [1, 5, 9],
    [1, 7],
    [1, 2, 3, 4],
  ];
  for (const sampling of [
    { temperature: 1, topK: 0, topP: 1, maxNewTokens: 6, seed: 4, padTokenId: 0 },
    { temperature: 0.7, topK: 5, topP: 0.9, maxNewTokens: 6, seed: 5, padTokenId: 0, eosTokenId: 3 },
  ]) {
    const expected = await models.tf.generate(prompts, sampling);
    const actual = await models.ort.generate(prompts, sampling);
    assert.deepEqual(
      actual.map((sequence) => sequence.tokens),
      expected.map((sequence) => sequence.tokens),
    );
    actual.forEach((sequence, i) => assertArraysClose(sequence.logprobs, expected[i].logprobs, SCALAR_TOLERANCE, 'lp'));
  }
  // After a step the session samples from the updated weights.
  await models.ort.createOptimizer(adam).step({ kind: 'lm', batch: batchOf(4, 12, 1) }, stepOptions);
  await models.tf.createOptimizer(adam).step({ kind: 'lm', batch: batchOf(4, 12, 1) }, stepOptions);
  const sampling = { temperature: 1, topK: 0, topP: 1, maxNewTokens: 6, seed: 4, padTokenId: 0 };
  const [expected, actual] = [
    await models.tf.generate(prompts, sampling),
    await models.ort.generate(prompts, sampling),
  ];
  actual.forEach((sequence, i) => assertArraysClose(sequence.logprobs, expected[i].logprobs, SCALAR_TOLERANCE, 'lp'));
  models.tf.dispose();
  models.ort.dispose();
});

test('onnxruntime engine: checkpoint weights and optimizer state are checked by name and shape', async () => {
  const trunk = await onnx.createModel(config, { heads: [], seed: 1 }).readWeights();
  assert.throws(() => onnx.createModel(config, { heads: ['v_head'], seed: 1, weights: trunk }), /no weight "v_head\./);
  const withHead = onnx.createModel(config, { heads: ['v_head'], seed: 1, weights: trunk, keepMissingHeads: true });
  const fresh = await onnx.createModel(config, { heads: ['v_head'], seed: 1 }).readWeights();
  assert.deepEqual((await withHead.readWeights()).get('v_head.weight'), fresh.get('v_head.weight'));
  const wider = { ...config, n_embd: 32 };
  assert.throws(() => onnx.createModel(wider, { heads: [], seed: 1, weights: trunk }), /has shape \[40,16\]/);
  const optimizer = withHead.createOptimizer(adam);
  const moments = (await onnx.createModel(config, { heads: [], seed: 1 }).createOptimizer(adam).readState()).moments;
  assert.throws(
    () => optimizer.loadState({ step: 3, moments, file: 'optimizer.safetensors' }),
    /optimizer.safetensors: has no tensor "v_head.weight.exp_avg"/,
  );
  withHead.subtractFromWeight('v_head.bias', 0.5);
  assert.deepEqual([...((await withHead.readWeights()).get('v_head.bias')?.data ?? [])], [-0.5]);
  withHead.dispose();
});
