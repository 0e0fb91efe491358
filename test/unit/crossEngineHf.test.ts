/**
 * The tfjs and ONNX Runtime engines hold Hugging Face models to the same results, so a run may resume on the other
 * engine: for a llama folder with grouped-query attention and a gpt2 folder (random weights in transformers' layout,
 * written by the PyTorch twin's fixture), both engines created from the same weights give the same evaluation and,
 * for every LossSpec, the same scalars and updated weights; fresh models (trunk, heads, adapters) are the same for a
 * seed; LoRA with dropout trains the same adapters; and two steps on one engine resumed for two on the other equal
 * four steps on the second alone. Tolerance 1e-4 throughout (the design's bar for the two engines).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type {
  AdamWOptions,
  CreateModelOptions,
  EngineModel,
  LossSpec,
  NamedArrays,
  StepOptions,
  TokenBatch,
  TrainingEngine,
} from '../../src/trainer/engine/engine';
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { TfjsEngine } from '../../src/trainer/engine/tfjs/tfjsEngine';
import { readHfConfig } from '../../src/trainer/hf/hfConfig';
import { openHfWeights } from '../../src/trainer/hf/hfWeights';
import { isLoraWeight, type LoraSettings } from '../../src/trainer/lora/loraTargets';
import { causalLmConfigOf, isLlamaConfig, type CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import type { ScalarHead } from '../../src/trainer/model/gptConfig';
import { onnxEngineSampler } from '../../src/trainer/onnx/onnxEngineSampler';
import { generate } from '../../src/trainer/sampling/sampler';
import { twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';
import { tokenBatch, uniform } from './onnxAutodiffHarness';

const skip = twinUnavailable();
const TOLERANCE = 1e-4;
const VOCAB = 40;
/**
 * ε = 1e-6 rather than 1e-8: Adam's first update is ≈ η·sign(g), so a gradient that is 0 in exact arithmetic would
 * move by ±η on float noise that differs between the engines (onnxEngine.test.ts).
 */
const adam: AdamWOptions = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-6, weightDecay: 0.01 };
/** A clipping threshold below the gradients' norms, so that every step clips. */
const stepOptions: StepOptions = { learningRate: 1e-3, maxGradNorm: 0.01 };
const allHeads: ScalarHead[] = ['v_head', 'score'];

const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-cross-engine-'));
let tfjs: TfjsEngine;
const onnx = new OnnxEngine(onnxEngineSampler);
const folders = new Map<string, { config: CausalLmConfig; weights: NamedArrays }>();

async function loadFolder(folder: string) {
  const architecture = await readHfConfig(folder);
  const hf = await openHfWeights(folder, architecture);
  const weights: NamedArrays = new Map();
  for (const { name, shape } of hf.tensors) weights.set(name, { shape: [...shape], data: await hf.read(name) });
  return { config: causalLmConfigOf(architecture, folder), weights };
}

before(async () => {
  if (skip) return;
  tfjs = new TfjsEngine(await selectBackend('wasm'), generate);
  const shape = { vocab: VOCAB, hidden: 16, layers: 2, maxPositions: 32 };
  const llama = { ...shape, arch: 'llama', heads: 4, kvHeads: 2, intermediate: 24, attentionBias: true } as const;
  folders.set('llama', await loadFolder(writeHfFolder({ ...llama, seed: 3, out: path.join(workDir, 'llama') }).folder));
  const gpt2 = { ...shape, arch: 'gpt2', heads: 2, initializerRange: 0.1 } as const;
  folders.set('gpt2', await loadFolder(writeHfFolder({ ...gpt2, seed: 4, out: path.join(workDir, 'gpt2') }).folder));
});
after(() => rmSync(workDir, { recursive: true, force: true }));

function batchOf(batchSize: number, length: number, seed: number): TokenBatch {
  const batch = tokenBatch(batchSize, length, VOCAB, seed);
  return {
    batchSize,
    length,
    inputs: Int32Array.from(batch.ids),
    targets: Int32Array.from(batch.targets),
    mask: Float32Array.from(batch.mask),
  };
}

const close = (actual: number, expected: number) =>
  Math.abs(actual - expected) <= TOLERANCE * Math.max(1, Math.abs(expected));

function assertArraysClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(close(actual[i], expected[i]), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

/** The same names in the same order (readWeights, optimizer moments), every value within the tolerance. */
function assertWeightsClose(actual: NamedArrays, expected: NamedArrays, what: string) {
  assert.deepEqual([...actual.keys()], [...expected.keys()], `${what}: names`);
  for (const [name, { shape, data }] of expected) {
    assert.deepEqual(actual.get(name)?.shape, shape, `${what}: ${name}`);
    assertArraysClose(actual.get(name)?.data ?? [], data, `${what}: ${name}`);
  }
}

/** Both engines' model of folder `name` (its weights; heads the folder lacks fresh from the seed). */
function bothModels(name: string, heads: readonly ScalarHead[], lora?: LoraSettings) {
  const { config, weights } = folders.get(name) as { config: CausalLmConfig; weights: NamedArrays };
  const options: CreateModelOptions = { heads, seed: 9, weights, keepMissingHeads: true, lora };
  return { tf: tfjs.createModel(config, options), ort: onnx.createModel(config, options) };
}

function disposeBoth(models: { tf: EngineModel; ort: EngineModel }) {
  models.tf.dispose();
  models.ort.dispose();
}

/** One step of every LossSpec kind, each with the heads it trains. */
function lossSpecs(): { spec: LossSpec; heads: ScalarHead[] }[] {
  const random = uniform(23);
  const grid = (size: number, scale: number, offset = 0) =>
    Float32Array.from({ length: size }, () => offset + scale * random());
  const scores = batchOf(4, 9, 2);
  const ppoBatch = batchOf(3, 10, 7);
  const dpo = (lossType: 'sigmoid' | 'ipo'): LossSpec => ({
    kind: 'dpo',
    batch: batchOf(4, 10, 4),
    refChosen: [-37, -36],
    refRejected: [-36.5, -37.5],
    beta: 0.1,
    lossType,
    labelSmoothing: lossType === 'sigmoid' ? 0.1 : 0,
    chosenLengths: [5, 4],
    rejectedLengths: [5, 3],
  });
  return [
    { spec: { kind: 'lm', batch: batchOf(4, 12, 1) }, heads: [] },
    {
      spec: {
        kind: 'bradleyTerry',
        scores: { batchSize: 4, length: 9, ids: scores.inputs, lengths: [9, 5, 7, 3] },
        chosenRows: [0, 2, 1],
        rejectedRows: [1, 3, 3],
      },
      heads: ['score'],
    },
    {
      spec: {
        kind: 'ppo',
        batch: ppoBatch,
        temperature: 0.7,
        oldLogprobs: grid(30, 0.4, -Math.log(VOCAB)),
        oldValues: grid(30, 0.1),
        advantages: grid(30, 1),
        returns: grid(30, 0.5),
        cliprange: 0.2,
        cliprangeValue: 0.05,
        vfCoef: 0.1,
        entropyCoef: 0.01,
        policyActive: true,
        ptx: { batch: batchOf(2, 8, 9), coef: 0.5 },
      },
      heads: ['v_head'],
    },
    { spec: dpo('sigmoid'), heads: [] },
    { spec: dpo('ipo'), heads: [] },
  ];
}

/** One step of `spec` on both engines from the same model: the same scalars, outputs and updated weights. */
async function assertOneStepAgrees(name: string, spec: LossSpec, heads: ScalarHead[], lora?: LoraSettings) {
  const models = bothModels(name, heads, lora);
  const what = `${name} ${spec.kind}${lora ? ' LoRA' : ''}`;
  const expected = await models.tf.createOptimizer(adam).step(spec, stepOptions);
  const actual = await models.ort.createOptimizer(adam).step(spec, stepOptions);
  assert.deepEqual(Object.keys(actual.scalars).sort(), Object.keys(expected.scalars).sort(), what);
  for (const [scalar, value] of Object.entries(expected.scalars)) {
    if (scalar === 'vfClipFrac') continue; // a count of float ties, compared in onnxEngine.test.ts
    assert.ok(close(actual.scalars[scalar], value), `${what} ${scalar}: ${actual.scalars[scalar]} vs ${value}`);
  }
  for (const [output, value] of Object.entries(expected.outputs))
    assertArraysClose(actual.outputs[output], value, `${what} ${output}`);
  assert.ok(expected.applied && actual.applied, `${what}: applied`);
  assert.ok(expected.scalars.gradNorm > stepOptions.maxGradNorm, `${what}: clipped (‖g‖ ${expected.scalars.gradNorm})`);
  assertWeightsClose(await models.ort.readWeights(), await models.tf.readWeights(), what);
  disposeBoth(models);
}

for (const name of ['llama', 'gpt2']) {
  test(`${name} folder: evaluate and scores are the same on both engines`, { skip }, async () => {
    const models = bothModels(name, allHeads);
    const batch = batchOf(3, 10, 6);
    const request = {
      logprobs: true,
      maskedLogprobs: true,
      entropy: true,
      values: true,
      temperature: 0.7,
      lmLoss: true,
    };
    const expected = await models.tf.evaluate(batch, request);
    const actual = await models.ort.evaluate(batch, request);
    for (const output of ['logprobs', 'maskedLogprobs', 'logprobSums', 'entropy', 'values'] as const)
      assertArraysClose(actual[output] as Float32Array, expected[output] as Float32Array, `${name} ${output}`);
    assert.ok(close(actual.lmLoss as number, expected.lmLoss as number), `${actual.lmLoss} vs ${expected.lmLoss}`);
    const scoreBatch = { batchSize: 3, length: 10, ids: batch.inputs, lengths: [10, 4, 7] };
    assertArraysClose(await models.ort.scores(scoreBatch), await models.tf.scores(scoreBatch), `${name} scores`);
    disposeBoth(models);
  });

  test(
    `${name} folder: one step of every loss gives the same scalars and weights on both engines`,
    { skip },
    async () => {
      for (const { spec, heads } of lossSpecs()) await assertOneStepAgrees(name, spec, heads);
    },
  );

  test(`${name} folder, LoRA: one step of every loss gives the same adapters and heads`, { skip }, async () => {
    const lora: LoraSettings = { r: 2, alpha: 4, dropout: 0.1, targetModules: 'all-linear' };
    for (const { spec, heads } of lossSpecs()) await assertOneStepAgrees(name, spec, heads, lora);
  });
}

test(
  'fresh models from the same seed are the same on both engines: Llama trunk, heads, adapters',
  { skip },
  async () => {
    const lora: LoraSettings = { r: 3, alpha: 6, dropout: 0, targetModules: 'all-linear' };
    for (const [name, { config, weights }] of folders) {
      const freshOptions: CreateModelOptions[] = [
        { heads: allHeads, seed: 21, lora },
        // A pretrained folder with fresh heads and fresh adapters (the trunk not drawn at all).
        { heads: allHeads, seed: 21, lora, weights, keepMissingHeads: true },
      ];
      for (const options of freshOptions) {
        const expected = await tfjs.createModel(config, options).readWeights();
        const actual = await onnx.createModel(config, options).readWeights();
        assert.deepEqual([...actual.keys()], [...expected.keys()], name);
        for (const [weight, { shape, data }] of expected) {
          assert.deepEqual(actual.get(weight)?.shape, shape, `${name} ${weight}`);
          assert.deepEqual(actual.get(weight)?.data, data, `${name} ${weight}: bit for bit`);
        }
        const adapterA = [...expected].find(([weight]) => weight.endsWith('lora_A.weight'))?.[1].data ?? [];
        assert.ok(
          adapterA.some((value) => value !== 0),
          `${name}: A is drawn`,
        );
        assert.ok(
          expected.get('v_head.weight')?.data.some((value) => value !== 0),
          `${name}: v_head is drawn`,
        );
      }
      const otherSeed = await onnx.createModel(config, { heads: allHeads, seed: 22, lora }).readWeights();
      const sameSeed = await onnx.createModel(config, { heads: allHeads, seed: 21, lora }).readWeights();
      for (const weight of ['v_head.weight', [...sameSeed.keys()].find(isLoraWeight) as string])
        assert.notDeepEqual(otherSeed.get(weight)?.data, sameSeed.get(weight)?.data, `${name} ${weight}: seeded`);
    }
  },
);

/** `steps` LM steps with dropout seeds 100 + step on `model`: its adapters and heads after them. */
async function trainLora(model: EngineModel, batches: readonly TokenBatch[], seedBase: number) {
  const optimizer = model.createOptimizer(adam);
  for (const [step, batch] of batches.entries())
    await optimizer.step({ kind: 'lm', batch, dropoutSeed: seedBase + step }, stepOptions);
  return new Map([...(await model.readWeights())].filter(([weight]) => isLoraWeight(weight)));
}

for (const name of ['llama', 'gpt2']) {
  test(`${name} folder, LoRA with dropout: 3 SFT steps train the same adapters on both engines`, { skip }, async () => {
    const lora: LoraSettings = { r: 2, alpha: 4, dropout: 0.3, targetModules: 'all-linear' };
    const batches = [1, 2, 3].map((seed) => batchOf(3, 10, 40 + seed));
    const models = bothModels(name, [], lora);
    const expected = await trainLora(models.tf, batches, 100);
    assertWeightsClose(await trainLora(models.ort, batches, 100), expected, `${name} adapters`);
    disposeBoth(models);
    // The masks matter: other dropout seeds train other adapters (so equality above is not dropout off in both).
    const other = bothModels(name, [], lora);
    const elsewhere = await trainLora(other.ort, batches, 200);
    const moved = [...expected].some(([weight, { data }]) =>
      data.some((value, i) => Math.abs(value - (elsewhere.get(weight)?.data[i] ?? 0)) > 1e-3),
    );
    assert.ok(moved, `${name}: the dropout seed changes the adapters`);
    disposeBoth(other);
  });
}

/** Two steps, then two more on `second` from the first's weights and optimizer state; the second's weights. */
async function resumed(first: TrainingEngine, second: TrainingEngine, config: CausalLmConfig, run: ResumeRun) {
  const model = first.createModel(config, run.options);
  const optimizer = model.createOptimizer(adam);
  for (const spec of run.specs.slice(0, 2)) await optimizer.step(spec, stepOptions);
  const state = await optimizer.readState();
  const options = { ...run.options, weights: await model.readWeights(), keepMissingHeads: false };
  model.dispose();
  optimizer.dispose();
  const continued = second.createModel(config, options);
  const continuedOptimizer = continued.createOptimizer(adam);
  continuedOptimizer.loadState(state);
  for (const spec of run.specs.slice(2)) await continuedOptimizer.step(spec, stepOptions);
  const result = { weights: await continued.readWeights(), state: await continuedOptimizer.readState() };
  continued.dispose();
  return result;
}

/** Four steps on `engine` alone. */
async function uninterrupted(engine: TrainingEngine, config: CausalLmConfig, run: ResumeRun) {
  const model = engine.createModel(config, run.options);
  const optimizer = model.createOptimizer(adam);
  for (const spec of run.specs) await optimizer.step(spec, stepOptions);
  const result = { weights: await model.readWeights(), state: await optimizer.readState() };
  model.dispose();
  return result;
}

interface ResumeRun {
  readonly options: CreateModelOptions;
  readonly specs: readonly LossSpec[];
}

test('a run resumes across engines: 2 steps on one, 2 on the other = 4 on the other alone', { skip }, async () => {
  const { config, weights } = folders.get('llama') as { config: CausalLmConfig; weights: NamedArrays };
  assert.ok(isLlamaConfig(config) && config.architecture.numKeyValueHeads < config.architecture.numHeads, 'GQA');
  const lm = [1, 2, 3, 4].map((seed): LossSpec => ({
    kind: 'lm',
    batch: batchOf(3, 10, 60 + seed),
    dropoutSeed: seed,
  }));
  const lora: LoraSettings = { r: 2, alpha: 4, dropout: 0.2, targetModules: ['q_proj', 'v_proj'] };
  const runs: Record<string, ResumeRun> = {
    'full fine-tune': { options: { heads: [], seed: 5, weights }, specs: lm },
    'LoRA with dropout': { options: { heads: [], seed: 5, weights, lora }, specs: lm },
    'PPO value head': {
      options: { heads: ['v_head'], seed: 5, weights, keepMissingHeads: true },
      specs: Array.from({ length: 4 }, () => lossSpecs()[2].spec),
    },
  };
  for (const [what, run] of Object.entries(runs))
    for (const [first, second] of [
      [tfjs, onnx],
      [onnx, tfjs],
    ] as const) {
      const across = await resumed(first, second, config, run);
      const alone = await uninterrupted(second, config, run);
      assertWeightsClose(across.weights, alone.weights, `${what}, ${first.name} → ${second.name}: weights`);
      assert.equal(across.state.step, 4);
      assertWeightsClose(across.state.moments, alone.state.moments, `${what}, ${first.name} → ${second.name}: moments`);
    }
});
