/**
 * The pieces the Llama-family and LoRA graphs add to the ONNX autodiff, against central finite differences
 * (float64): the exact GELU's composite derivative (GPT-2's `activation_function: "gelu"`), a tiny Llama-family
 * model (GQA 4:2, q/k/v biases, a sliding window, untied head) — every weight — and LoRA adapters on a GPT's c_attn.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { DiffGraph } from '../../src/trainer/engine/onnxruntime/autodiff/graph';
import { gradients } from '../../src/trainer/engine/onnxruntime/autodiff/gradients';
import * as op from '../../src/trainer/engine/onnxruntime/autodiff/ops';
import { maskedNll } from '../../src/trainer/engine/onnxruntime/gptGraph';
import { loraForward } from '../../src/trainer/engine/onnxruntime/loraForward';
import { baseModelForward, type AdaptableForward } from '../../src/trainer/engine/onnxruntime/modelForward';
import type { LlamaFamilyArchitecture } from '../../src/trainer/hf/hfArchitecture';
import { llamaConfig, type CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import { checkGradients, tokenBatch, type FloatInput, type GradientCase } from './onnxAutodiffHarness';

const TOLERANCE = 1e-6;
const FINITE_STEP = 1e-2;
const FLOAT32_TOLERANCE = 1e-4;

const architecture: LlamaFamilyArchitecture = {
  family: 'llama',
  modelType: 'qwen2',
  architectureClass: null,
  vocabSize: 7,
  hiddenSize: 8,
  numLayers: 1,
  numHeads: 4,
  numKeyValueHeads: 2,
  headDim: 2,
  maxPositions: 8,
  tieWordEmbeddings: false,
  tokenIds: { bos: null, eos: [], pad: null },
  torchDtype: null,
  intermediateSize: 6,
  rmsNormEps: 1e-6,
  hiddenAct: 'silu',
  rope: { theta: 10000, scaling: { type: 'default' } },
  qkvBias: true,
  outputBias: false,
  mlpBias: false,
  slidingWindow: { size: 2, fromLayer: 0 },
};

/** The masked LM loss of `config`'s forward, every weight an input checked against finite differences. */
function lossCase(config: CausalLmConfig, wrap = (base: AdaptableForward) => base as ReturnType<typeof loraForward>) {
  const model = wrap(baseModelForward(config) as AdaptableForward);
  const [batchSize, length] = [2, 4];
  const batch = tokenBatch(batchSize, length, config.vocab_size, 3);
  const floats: Record<string, FloatInput> = {
    mask: { shape: [batchSize, length], constant: true, values: batch.mask },
  };
  const shapes = model.weightShapes([]);
  for (const [name, shape] of shapes) floats[name] = { shape };
  const testCase: GradientCase = {
    floats,
    ints: {
      ids: { shape: [batchSize, length], values: batch.ids },
      targets: { shape: [batchSize, length], values: batch.targets },
    },
    build: (g, inputs) => {
      const weights = new Map([...shapes.keys()].map((name) => [name, inputs[name]]));
      return maskedNll(g, model.forward(g, weights, inputs.ids).logits, inputs.targets, inputs.mask);
    },
  };
  return { testCase, shapes };
}

const elementsOf = (shapes: Map<string, number[]>) =>
  [...shapes.values()].reduce((n, s) => n + s.reduce((p, d) => p * d, 1), 0);

/**
 * ONNX Runtime's Erf kernel is float32 only, so the exact GELU is checked in float32: its composite derivative
 * against central differences of its own forward with a step h = 1e-2 (truncation O(h²) ≈ 1e-5, rounding ≈ 1e-5).
 */
test('autodiff: exact GELU (composed, Erf) has the derivative of its forward (float32)', async () => {
  const values = Array.from({ length: 41 }, (_, i) => -4 + i * 0.2);
  const g = new DiffGraph('float32');
  const x = g.input('x', [values.length]);
  const y = op.geluExact(g, x);
  const dx = gradients(g, op.reduceSum(g, y, [0], false), [x]).get(x) as string;
  g.output(y, 'y');
  g.output(dx, 'dx');
  const session = await ort.InferenceSession.create(g.encode('gelu-exact'));
  const run = async (shift: number) => {
    const feeds = {
      x: new ort.Tensor(
        'float32',
        Float32Array.from(values, (v) => v + shift),
        [values.length],
      ),
    };
    const out = await session.run(feeds);
    return { y: out.y.data as Float32Array, dx: out.dx.data as Float32Array };
  };
  const [at, up, down] = [await run(0), await run(FINITE_STEP), await run(-FINITE_STEP)];
  await session.release();
  values.forEach((v, i) => {
    const numeric = (up.y[i] - down.y[i]) / (2 * FINITE_STEP);
    assert.ok(Math.abs(at.dx[i] - numeric) <= FLOAT32_TOLERANCE, `x = ${v}: ${at.dx[i]} vs ${numeric}`);
  });
  // GELU(x) → x for large x, → 0 for very negative x; GELU(0) = 0 and GELU'(0) = ½.
  assert.ok(Math.abs(at.y[40] - 4) < 1e-3 && Math.abs(at.y[0]) < 1e-3 && Math.abs(at.dx[20] - 0.5) < 1e-6);
});

test('autodiff: a tiny Llama-family model — every weight gradient matches finite differences', async () => {
  const { testCase, shapes } = lossCase(llamaConfig(architecture));
  const check = await checkGradients(testCase);
  assert.equal(check.elements, elementsOf(shapes));
  for (const opType of ['Gather', 'ReduceMean', 'Sqrt', 'Split', 'Concat', 'Sigmoid', 'Softmax', 'MatMul'])
    assert.ok(check.forwardOps.has(opType), `the model uses ${opType}`);
  assert.ok(check.worstError <= TOLERANCE, `worst relative error ${check.worstError.toExponential(2)}`);
});

test('autodiff: LoRA adapters on a GPT’s c_attn — every input gradient matches finite differences', async () => {
  const gpt = { vocab_size: 7, block_size: 4, n_layer: 1, n_head: 2, n_embd: 4, dropout: 0 };
  const lora = { r: 2, alpha: 3, dropout: 0, targetModules: ['c_attn'] };
  const { testCase, shapes } = lossCase(gpt, (base) => loraForward(base, lora));
  assert.ok(shapes.has('transformer.h.0.attn.c_attn.lora_A.weight'));
  const check = await checkGradients(testCase);
  assert.equal(check.elements, elementsOf(shapes));
  assert.ok(check.worstError <= TOLERANCE, `worst relative error ${check.worstError.toExponential(2)}`);
});
