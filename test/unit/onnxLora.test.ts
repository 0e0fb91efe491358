/**
 * LoRA on the ONNX Runtime engine (engine/onnxruntime/loraForward.ts) for our GPT (c_attn, a Conv1D) and a
 * Llama-family model (q_proj / v_proj, and all-linear): adapters start as PEFT starts them; steps change only the
 * adapters and the heads (base weights bit-identical, moments only for what trains); `adaptersOff` computes the base
 * model; the model equals a plain model whose weights the test merges itself, W₀ + (α/r)·B·A; the adapters'
 * gradients are the chain rule of the merged weight's gradient, ∂L/∂B = s·∂L/∂W·Aᵀ and ∂L/∂A = s·Bᵀ·∂L/∂W; and
 * the LoRA model's greedy samples are the merged model's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineModel, LossSpec, NamedArrays, TokenBatch } from '../../src/trainer/engine/engine';
import { OnnxEngine, type OnnxModel } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { gradientOutput } from '../../src/trainer/engine/onnxruntime/gptGraph';
import { lossRun } from '../../src/trainer/engine/onnxruntime/lossRuns';
import { isLoraWeight, loraTargets, type LoraSettings, type LoraTarget } from '../../src/trainer/lora/loraTargets';
import { llamaConfig, type CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { onnxEngineSampler } from '../../src/trainer/onnx/onnxEngineSampler';
import { tinyLlamaArchitecture } from '../fixtures/hf/tinyLlama';

const tolerance = 1e-4;
const adamW = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
const gpt: GptConfig = { vocab_size: 30, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0.1 };
/** A small llama with GQA 4:2, q/k/v biases and an untied head, described as readHfConfig would. */
const architecture = tinyLlamaArchitecture();
const llama = llamaConfig(architecture, { blockSize: 16 });

const cases: readonly { name: string; config: CausalLmConfig; lora: LoraSettings }[] = [
  { name: 'GPT c_attn', config: gpt, lora: { r: 2, alpha: 4, dropout: 0.1, targetModules: ['c_attn'] } },
  {
    name: 'llama q_proj/v_proj',
    config: llama,
    lora: { r: 2, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] },
  },
  { name: 'llama all-linear', config: llama, lora: { r: 3, alpha: 3, dropout: 0.2, targetModules: 'all-linear' } },
];

const batch: TokenBatch = {
  batchSize: 2,
  length: 6,
  inputs: Int32Array.from([3, 17, 8, 22, 9, 11, 7, 2, 13, 1, 19, 28]),
  targets: Int32Array.from([17, 8, 22, 9, 11, 5, 2, 13, 1, 19, 28, 4]),
  mask: Float32Array.from([0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0]),
};

/** W₀ + (α/r)·B·A for every target, in W₀'s own layout ([in, out] for a Conv1D), computed here in float64. */
function mergeHere(weights: NamedArrays, targets: readonly LoraTarget[], lora: LoraSettings): NamedArrays {
  const merged: NamedArrays = new Map([...weights].filter(([name]) => !isLoraWeight(name)));
  for (const t of targets) {
    const a = weights.get(`${t.module}.lora_A.weight`)?.data as Float32Array;
    const b = weights.get(`${t.module}.lora_B.weight`)?.data as Float32Array;
    const base = merged.get(t.baseWeight) as { shape: number[]; data: Float32Array };
    const data = Float32Array.from(base.data);
    for (let o = 0; o < t.outFeatures; o++)
      for (let i = 0; i < t.inFeatures; i++) {
        let delta = 0;
        for (let k = 0; k < lora.r; k++) delta += b[o * lora.r + k] * a[k * t.inFeatures + i];
        data[t.fanInFanOut ? i * t.outFeatures + o : o * t.inFeatures + i] += (lora.alpha / lora.r) * delta;
      }
    merged.set(t.baseWeight, { shape: base.shape, data });
  }
  return merged;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function gradientsOf(model: OnnxModel, spec: LossSpec) {
  const run = lossRun(model.forward, spec, { padToBuckets: false });
  const { results, weightNames } = await model.run(run.key, run.build, run.feeds());
  const grads = new Map<string, Float32Array>();
  for (const name of weightNames)
    if (results[gradientOutput(name)]) grads.set(name, results[gradientOutput(name)].data as Float32Array);
  return grads;
}

async function evaluateAll(model: EngineModel, adaptersOff = false) {
  return model.evaluate(batch, { logprobs: true, values: true, entropy: true, lmLoss: true, adaptersOff });
}

for (const { name, config, lora } of cases) {
  test(`LoRA on the onnxruntime engine, ${name}: adapters and heads train, the base does not`, async () => {
    const engine = new OnnxEngine(onnxEngineSampler, {}, { padToBuckets: false });
    const model = engine.createModel(config, { heads: ['v_head'], seed: 4, lora });
    const targets = loraTargets(config, lora);
    const start = await model.readWeights();
    for (const t of targets) {
      const a = start.get(`${t.module}.lora_A.weight`);
      const b = start.get(`${t.module}.lora_B.weight`);
      assert.deepEqual(a?.shape, [lora.r, t.inFeatures]);
      assert.deepEqual(b?.shape, [t.outFeatures, lora.r]);
      assert.ok(maxAbs(a?.data as Float32Array) <= 1 / Math.sqrt(t.inFeatures) && maxAbs(a?.data as Float32Array) > 0);
      assert.equal(maxAbs(b?.data as Float32Array), 0, 'B starts at 0');
    }

    const optimizer = model.createOptimizer(adamW);
    for (let step = 0; step < 3; step++)
      assert.ok(
        (await optimizer.step({ kind: 'lm', batch, dropoutSeed: 10 + step }, { learningRate: 1e-2, maxGradNorm: 1 }))
          .applied,
      );
    const values = (await model.evaluate(batch, { values: true, logprobs: true })) as {
      values: Float32Array;
      logprobs: Float32Array;
    };
    const ppo = await optimizer.step(
      {
        kind: 'ppo',
        batch,
        temperature: 1,
        oldLogprobs: values.logprobs.map((v, k) => v + 0.1 * Math.sin(k)),
        oldValues: values.values,
        advantages: values.values.map((_, k) => Math.cos(k)),
        returns: values.values.map((_, k) => Math.sin(k)),
        cliprange: 0.2,
        cliprangeValue: 0.2,
        vfCoef: 0.5,
        entropyCoef: 0.01,
        policyActive: true,
      },
      { learningRate: 1e-2, maxGradNorm: 1 },
    );
    assert.ok(ppo.applied && Number.isFinite(ppo.scalars.vfLoss));
    const end = await model.readWeights();
    assert.deepEqual([...end.keys()], [...start.keys()], 'readWeights: base, adapters and heads');
    for (const [weight, value] of end) {
      const changed = maxAbsDiff(value.data, start.get(weight)?.data as Float32Array) > 0;
      const trains = isLoraWeight(weight) || weight.startsWith('v_head.');
      if (!trains) assert.deepEqual(value.data, start.get(weight)?.data, `${weight} is frozen, bit for bit`);
      else assert.ok(changed, `${weight} trained`);
    }
    const moments = [...(await optimizer.readState()).moments.keys()];
    assert.ok(
      moments.length > 0 &&
        moments.every((m) => isLoraWeight(m.replace(/\.exp_avg(_sq)?$/, '')) || m.startsWith('v_head.')),
    );

    // adaptersOff = the base model; the LoRA model = a plain model of the merged weights.
    const base = new Map([...end].filter(([weight]) => !isLoraWeight(weight)));
    const plain = engine.createModel(config, { heads: ['v_head'], seed: 4, weights: base });
    const merged = engine.createModel(config, { heads: ['v_head'], seed: 4, weights: mergeHere(end, targets, lora) });
    const [off, baseEval, on, mergedEval] = await Promise.all([
      evaluateAll(model, true),
      evaluateAll(plain),
      evaluateAll(model),
      evaluateAll(merged),
    ]);
    for (const field of ['logprobs', 'values', 'entropy'] as const) {
      assert.ok(maxAbsDiff(off[field] as Float32Array, baseEval[field] as Float32Array) <= tolerance, `off ${field}`);
      assert.ok(maxAbsDiff(on[field] as Float32Array, mergedEval[field] as Float32Array) <= tolerance, `on ${field}`);
    }
    assert.ok(maxAbsDiff(on.logprobs as Float32Array, off.logprobs as Float32Array) > 1e-4, 'the adapters matter');

    const sampling = { temperature: 0, topK: 0, topP: 1, maxNewTokens: 5, seed: 3, padTokenId: 0 };
    const prompts = [
      [1, 5, 9],
      [1, 12],
    ];
    assert.deepEqual(
      (await model.generate(prompts, sampling)).map((s) => s.tokens),
      (await merged.generate(prompts, sampling)).map((s) => s.tokens),
      'LoRA samples = merged samples',
    );
    for (const m of [model, plain, merged]) m.dispose();
  });
}

test('LoRA gradients are the chain rule of the merged weight’s: ∂B = s·∂W·Aᵀ, ∂A = s·Bᵀ·∂W', async () => {
  for (const { config, lora } of cases) {
    const settings = { ...lora, dropout: 0 };
    const engine = new OnnxEngine(undefined, {}, { padToBuckets: false });
    const model = engine.createModel(config, { heads: [], seed: 6, lora: settings });
    // Move B off 0 so that ∂A ≠ 0: one step.
    await model.createOptimizer(adamW).step({ kind: 'lm', batch }, { learningRate: 5e-2, maxGradNorm: 0 });
    const weights = await model.readWeights();
    const targets = loraTargets(config, settings);
    const merged = engine.createModel(config, { heads: [], seed: 6, weights: mergeHere(weights, targets, settings) });
    const spec: LossSpec = { kind: 'lm', batch };
    const [loraGrads, fullGrads] = await Promise.all([gradientsOf(model, spec), gradientsOf(merged, spec)]);
    assert.ok(![...loraGrads.keys()].some((n) => !isLoraWeight(n)), 'no gradient outputs for frozen weights');
    const s = settings.alpha / settings.r;
    for (const t of targets) {
      const dW = fullGrads.get(t.baseWeight) as Float32Array; // W's layout
      const dWAt = (o: number, i: number) => dW[t.fanInFanOut ? i * t.outFeatures + o : o * t.inFeatures + i];
      const a = weights.get(`${t.module}.lora_A.weight`)?.data as Float32Array;
      const b = weights.get(`${t.module}.lora_B.weight`)?.data as Float32Array;
      const expectedB = Float64Array.from({ length: t.outFeatures * settings.r }, (_, k) => {
        const [o, j] = [Math.floor(k / settings.r), k % settings.r];
        let sum = 0;
        for (let i = 0; i < t.inFeatures; i++) sum += dWAt(o, i) * a[j * t.inFeatures + i];
        return s * sum;
      });
      const expectedA = Float64Array.from({ length: settings.r * t.inFeatures }, (_, k) => {
        const [j, i] = [Math.floor(k / t.inFeatures), k % t.inFeatures];
        let sum = 0;
        for (let o = 0; o < t.outFeatures; o++) sum += b[o * settings.r + j] * dWAt(o, i);
        return s * sum;
      });
      for (const [which, expected] of [
        ['lora_B', expectedB],
        ['lora_A', expectedA],
      ] as const) {
        const actual = loraGrads.get(`${t.module}.${which}.weight`) as Float32Array;
        const scale = maxAbs(expected);
        assert.ok(scale > 0, `${t.module}.${which}: a gradient to compare`);
        assert.ok(
          maxAbsDiff(actual, expected) <= 1e-3 * scale,
          `${t.module}.${which}: ${maxAbsDiff(actual, expected)}`,
        );
      }
    }
    model.dispose();
    merged.dispose();
  }
});

test('LoRA dropout drops only the adapters’ input, reproducibly from the step’s seed', async () => {
  const lora: LoraSettings = { r: 2, alpha: 4, dropout: 0.3, targetModules: ['q_proj', 'v_proj'] };
  const model = new OnnxEngine(undefined, {}, { padToBuckets: false }).createModel(llama, { heads: [], seed: 7, lora });
  const loss = async (dropoutSeed?: number) => {
    const run = lossRun(model.forward, { kind: 'lm', batch, dropoutSeed }, { padToBuckets: false });
    const { results } = await model.run(run.key, run.build, run.feeds());
    const gradB = results[gradientOutput('model.layers.0.self_attn.q_proj.lora_B.weight')].data as Float32Array;
    return { value: results.loss.data[0] as number, gradB: Float32Array.from(gradB) };
  };
  const [plain, dropped, again, other] = [await loss(), await loss(5), await loss(5), await loss(6)];
  // B = 0: the adapters add nothing whatever their input, so the loss is the base model's with or without dropout.
  assert.equal(dropped.value, plain.value);
  assert.ok(maxAbsDiff(dropped.gradB, plain.gradB) > 1e-6, 'the dropped input reaches ∂B');
  assert.deepEqual(again.gradB, dropped.gradB, 'the same seed drops the same units');
  assert.ok(maxAbsDiff(other.gradB, dropped.gradB) > 1e-6, 'another seed drops others');
  model.dispose();
});
