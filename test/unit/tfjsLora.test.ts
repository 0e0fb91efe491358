/**
 * LoRA in the tfjs engine (engine/tfjs/loraAdapters.ts): for the GPT with c_attn adapters (Conv1D, W₀ stored
 * [in, out]) and a Llama-family model with q_proj/v_proj and with all-linear adapters —
 * - a fresh LoRA model (B = 0) computes exactly the base model;
 * - after optimizer steps (with LoRA dropout), only the adapters and the heads changed: every base tensor is
 *   bit-identical, and the optimizer holds moments for adapters and heads only;
 * - `adaptersOff` computes exactly the base model;
 * - the trained model equals a model built from merged weights W₀ + (α/r)·B·A (transposed for Conv1D), merged here;
 * - readWeights → createModel with the same settings resumes the same model.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Random } from '../../src/core/random';
import type { NamedArrays, TokenBatch } from '../../src/trainer/engine/engine';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { TfjsEngine, type TfjsModel } from '../../src/trainer/engine/tfjs/tfjsEngine';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { parseHfConfig, type LlamaFamilyArchitecture } from '../../src/trainer/hf';
import { isLoraWeight, loraAName, loraBName, type LoraSettings } from '../../src/trainer/lora/loraTargets';
import { isLlamaConfig, llamaConfig, type CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import { generate } from '../../src/trainer/sampling/sampler';

const vocab = 32;
const batch = 2;
const length = 6;
/** Two float32 forwards that compute the same function in a different order. */
const mergedTolerance = 1e-5;
const adamW = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
const trainingSteps = 4;
const heads = ['v_head'] as const;

let engine: TfjsEngine;
before(async () => {
  engine = new TfjsEngine(await selectBackend('cpu'), generate);
});

const rng = new Random(7);
const grid = () => Array.from({ length: batch * length }, () => rng.int(vocab));
const tokenBatch: TokenBatch = {
  batchSize: batch,
  length,
  inputs: Int32Array.from(grid()),
  targets: Int32Array.from(grid()),
  mask: new Float32Array(batch * length).fill(1),
};

const gptConfig: CausalLmConfig = {
  vocab_size: vocab,
  block_size: length,
  n_layer: 2,
  n_head: 2,
  n_embd: 16,
  dropout: 0,
};
const llamaArchitecture = parseHfConfig(
  {
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 32,
    tie_word_embeddings: false,
  },
  'config.json',
) as LlamaFamilyArchitecture;

async function evaluate(model: TfjsModel, adaptersOff = false) {
  return model.evaluate(tokenBatch, { logprobs: true, values: true, adaptersOff });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** W₀ + (α/r)·B·A for every adapted module, computed here: [out, in] for Linear, transposed for GPT-2's Conv1D. */
function mergedWeights(config: CausalLmConfig, trained: NamedArrays, lora: LoraSettings): NamedArrays {
  const merged: NamedArrays = new Map([...trained].filter(([name]) => !isLoraWeight(name)));
  const scale = lora.alpha / lora.r;
  for (const name of trained.keys()) {
    if (!name.endsWith('.lora_A.weight')) continue;
    const module = name.slice(0, -'.lora_A.weight'.length);
    const a = trained.get(loraAName(module)) as { shape: number[]; data: Float32Array }; // [r, in]
    const b = trained.get(loraBName(module)) as { shape: number[]; data: Float32Array }; // [out, r]
    const base = trained.get(`${module}.weight`) as { shape: number[]; data: Float32Array };
    const [rank, inFeatures] = a.shape;
    const outFeatures = b.shape[0];
    const data = Float32Array.from(base.data);
    for (let o = 0; o < outFeatures; o++)
      for (let i = 0; i < inFeatures; i++) {
        let product = 0;
        for (let k = 0; k < rank; k++) product += b.data[o * rank + k] * a.data[k * inFeatures + i];
        // Conv1D stores W₀ [in, out]: element (i, o); Linear [out, in]: element (o, i).
        const at = isLlamaConfig(config) ? o * inFeatures + i : i * outFeatures + o;
        data[at] += scale * product;
      }
    merged.set(`${module}.weight`, { shape: base.shape, data });
  }
  return merged;
}

const cases: { name: string; config: CausalLmConfig; lora: LoraSettings; adapted: number }[] = [
  {
    name: 'GPT, c_attn (Conv1D)',
    config: gptConfig,
    lora: { r: 2, alpha: 4, dropout: 0.1, targetModules: ['c_attn'] },
    adapted: 2,
  },
  {
    name: 'llama, q_proj and v_proj',
    config: llamaConfig(llamaArchitecture, { blockSize: length }),
    lora: { r: 4, alpha: 8, dropout: 0.1, targetModules: ['q_proj', 'v_proj'] },
    adapted: 4,
  },
  {
    name: 'llama, all-linear',
    config: llamaConfig(llamaArchitecture, { blockSize: length }),
    lora: { r: 2, alpha: 2, dropout: 0, targetModules: 'all-linear' },
    adapted: 14,
  },
];

for (const { name, config, lora, adapted } of cases) {
  test(`${name}: only adapters and heads train; adaptersOff is the base; the merge is the trained model`, async () => {
    const tensorsBefore = tf.memory().numTensors;
    const base = engine.createModel(config, { heads, seed: 1 });
    const baseWeights = await base.readWeights();
    const baseEvaluation = await evaluate(base);
    const model = engine.createModel(config, { heads, seed: 2, weights: baseWeights, lora });
    const optimizer = model.createOptimizer(adamW);
    const cleanup = [base, model, optimizer];
    try {
      assert.deepEqual(model.lora, lora);
      const fresh = await evaluate(model);
      assert.deepEqual(fresh.logprobs, baseEvaluation.logprobs, 'B = 0: the LoRA model is the base model');

      for (let step = 0; step < trainingSteps; step++) {
        const result = await optimizer.step(
          { kind: 'lm', batch: tokenBatch, dropoutSeed: step },
          { learningRate: 1e-2, maxGradNorm: 1 },
        );
        assert.ok(result.applied);
      }
      // A PPO step (no dropout seed: the seeded LoRA dropout stream) trains the value head too.
      const values = baseEvaluation.values as Float32Array;
      const ones = new Float32Array(batch * length).fill(1);
      const ppoStep = await optimizer.step(
        {
          kind: 'ppo',
          batch: tokenBatch,
          temperature: 1,
          oldLogprobs: baseEvaluation.logprobs as Float32Array,
          oldValues: values,
          advantages: ones,
          returns: ones,
          cliprange: 0.2,
          cliprangeValue: 0.2,
          vfCoef: 0.1,
          entropyCoef: 0,
          policyActive: true,
        },
        { learningRate: 1e-2, maxGradNorm: 1 },
      );
      assert.ok(ppoStep.applied);

      const trained = await model.readWeights();
      const adapters = [...trained.keys()].filter(isLoraWeight);
      assert.equal(adapters.length, 2 * adapted, 'an A and a B per adapted module');
      for (const [weight, value] of baseWeights) {
        const now = trained.get(weight)?.data;
        if (weight.startsWith('v_head.')) assert.notDeepEqual(now, value.data, `${weight} trains`);
        else assert.deepEqual(now, value.data, `${weight} is frozen`);
      }
      for (const adapter of adapters.filter((n) => n.endsWith('.lora_B.weight')))
        assert.ok(
          trained.get(adapter)?.data.some((v) => v !== 0),
          `${adapter} moved from 0`,
        );
      const moments = [...(await optimizer.readState()).moments.keys()].map((n) => n.replace(/\.exp_avg(_sq)?$/, ''));
      assert.deepEqual(
        new Set(moments),
        new Set([...adapters, 'v_head.weight', 'v_head.bias']),
        'moments only for adapters and heads',
      );

      const trainedEvaluation = await evaluate(model);
      const off = await evaluate(model, true);
      assert.notDeepEqual(trainedEvaluation.logprobs, baseEvaluation.logprobs, 'training moved the model');
      assert.deepEqual(off.logprobs, baseEvaluation.logprobs, 'adaptersOff computes the base model');

      const mergedModel = engine.createModel(config, { heads, seed: 3, weights: mergedWeights(config, trained, lora) });
      const resumed = engine.createModel(config, { heads, seed: 4, weights: trained, lora });
      cleanup.push(mergedModel, resumed);
      const merged = await evaluate(mergedModel);
      const difference = maxAbsDiff(merged.logprobs as Float32Array, trainedEvaluation.logprobs as Float32Array);
      assert.ok(difference <= mergedTolerance, `the merged model's logprobs differ by ${difference}`);
      assert.ok(maxAbsDiff(merged.values as Float32Array, trainedEvaluation.values as Float32Array) <= mergedTolerance);
      assert.deepEqual((await evaluate(resumed)).logprobs, trainedEvaluation.logprobs, 'adapters load back');
    } finally {
      for (const item of cleanup) item.dispose();
    }
    assert.equal(tf.memory().numTensors, tensorsBefore, 'models, adapters and optimizer free every tensor');
  });
}

test('LoRA dropout is seeded: the same steps give the same adapters, another dropout seed others', async () => {
  const lora: LoraSettings = { r: 2, alpha: 4, dropout: 0.5, targetModules: ['c_attn'] };
  const base = engine.createModel(gptConfig, { heads: [], seed: 1 });
  const weights = await base.readWeights();
  base.dispose();
  const train = async (dropoutSeed: number) => {
    const model = engine.createModel(gptConfig, { heads: [], seed: 2, weights, lora });
    const optimizer = model.createOptimizer(adamW);
    try {
      for (let step = 0; step < 2; step++)
        await optimizer.step({ kind: 'lm', batch: tokenBatch, dropoutSeed }, { learningRate: 1e-2, maxGradNorm: 1 });
      return (await model.readWeights()).get(loraBName('transformer.h.0.attn.c_attn'))?.data;
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  };
  const [first, again, other] = [await train(5), await train(5), await train(6)];
  assert.deepEqual(first, again);
  assert.notDeepEqual(first, other);
});

test('adapters for a module the settings do not target, or half an adapter, are refused', () => {
  const lora: LoraSettings = { r: 2, alpha: 4, dropout: 0, targetModules: ['c_attn'] };
  const stray = new Map([['transformer.h.0.mlp.c_fc.lora_A.weight', { shape: [2, 16], data: new Float32Array(32) }]]);
  assert.throws(
    () => engine.createModel(gptConfig, { heads: [], seed: 1, weights: undefined, lora: { ...lora, r: 0 } }),
    /lora\.r/,
  );
  const base = engine.createModel(gptConfig, { heads: [], seed: 1 });
  return base.readWeights().then((weights) => {
    base.dispose();
    assert.throws(
      () => engine.createModel(gptConfig, { heads: [], seed: 1, weights: new Map([...weights, ...stray]), lora }),
      /does not name/,
    );
    const half = new Map([
      ['transformer.h.0.attn.c_attn.lora_A.weight', { shape: [2, 16], data: new Float32Array(32) }],
    ]);
    assert.throws(
      () => engine.createModel(gptConfig, { heads: [], seed: 1, weights: new Map([...weights, ...half]), lora }),
      /partner/,
    );
  });
});
