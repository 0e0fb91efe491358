/**
 * The ONNX Runtime engine's Llama-family training graph (engine/onnxruntime/llamaGraph.ts) against the PyTorch twin
 * (test/fixtures/hf/), which shares no code with the project: the masked LM loss and every weight's gradient to
 * 1e-4 relative, and the step's gradNorm equal to the twin's global norm, for llama (GQA, llama3 RoPE, untied),
 * qwen2 (q/k/v biases), mistral (a sliding window shorter than the batch) and a tied llama; a gpt2 folder with
 * exact GELU and another LayerNorm ε runs through the GPT graphs (training and inference) as the twin computes it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { readHfConfig } from '../../src/trainer/hf';
import { gptConfigOfGpt2 } from '../../src/trainer/model/gpt2Config';
import { openHfWeights } from '../../src/trainer/hf/hfWeights';
import type { NamedArrays, TokenBatch } from '../../src/trainer/engine/engine';
import { OnnxEngine, type OnnxModel } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { gradientOutput } from '../../src/trainer/engine/onnxruntime/gptGraph';
import { lossRun } from '../../src/trainer/engine/onnxruntime/lossRuns';
import { llamaConfig, type CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import { OnnxCausalLm } from '../../src/trainer/onnx/onnxCausalLm';
import { twinGradients, twinLogits, twinUnavailable, writeHfFolder, type HfFolderOptions } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'onnx-llama-'));
/** float32 graph against the float64 twin. */
const relativeTolerance = 1e-4;
/** A weight whose gradient is this small next to the model's largest is compared on the model's scale. */
const zeroGradientFloor = 1e-3;
const vocab = 48;
/** Weights 10× transformers' std, so attention and the rotation weigh in the gradients (a wrong one shows). */
const initializerRange = 0.2;
const inputs = [
  [5, 17, 3, 42, 9, 28, 11, 40],
  [7, 7, 30, 1, 19, 38, 4, 26],
];
const targets = [
  [17, 3, 42, 9, 28, 11, 40, 2],
  [7, 30, 1, 19, 38, 4, 26, 12],
];
const mask = [
  [0, 0, 1, 1, 1, 1, 1, 1],
  [0, 0, 0, 1, 1, 1, 1, 0],
];

function tokenBatchOf(): TokenBatch {
  return {
    batchSize: inputs.length,
    length: inputs[0].length,
    inputs: Int32Array.from(inputs.flat()),
    targets: Int32Array.from(targets.flat()),
    mask: Float32Array.from(mask.flat()),
  };
}

/** The folder's config (a Llama-family one, or a gpt2 one as our GPT) and its weights as named arrays. */
async function loadFolder(folder: string): Promise<{ config: CausalLmConfig; weights: NamedArrays }> {
  const architecture = await readHfConfig(folder);
  const hfWeights = await openHfWeights(folder, architecture);
  const weights: NamedArrays = new Map();
  for (const { name, shape } of hfWeights.tensors) weights.set(name, { shape, data: await hfWeights.read(name) });
  const config = architecture.family === 'llama' ? llamaConfig(architecture) : gptConfigOfGpt2(architecture, folder);
  return { config, weights };
}

function writeFolder(name: string, options: Omit<HfFolderOptions, 'out'>): string {
  const out = path.join(workDir, name);
  writeHfFolder({ vocab, initializerRange, seed: 3, ...options, out });
  return out;
}

const maxAbs = (values: ArrayLike<number>) => Array.from(values).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** The engine's loss and gradients of the twin's batch (one exact-length graph run). */
async function engineGradients(model: OnnxModel) {
  const run = lossRun(model.forward, { kind: 'lm', batch: tokenBatchOf() }, { padToBuckets: false });
  const { results, weightNames } = await model.run(run.key, run.build, run.feeds());
  const grads = new Map<string, Float32Array>();
  for (const name of weightNames) grads.set(name, results[gradientOutput(name)].data as Float32Array);
  return { loss: results.loss.data[0] as number, grads };
}

const llamaCases: readonly { name: string; options: Omit<HfFolderOptions, 'out'> }[] = [
  {
    name: 'llama, GQA 4:2, llama3 RoPE, untied',
    options: { arch: 'llama', heads: 4, kvHeads: 2, headDim: 8, ropeScaling: 'llama3', tie: false },
  },
  { name: 'qwen2, q/k/v biases, GQA 4:1', options: { arch: 'qwen2', heads: 4, kvHeads: 1 } },
  { name: 'mistral, sliding window 3', options: { arch: 'mistral', heads: 4, kvHeads: 2, slidingWindow: 3 } },
  { name: 'llama, tied', options: { arch: 'llama', heads: 2, kvHeads: 2, tie: true } },
];

for (const { name, options } of llamaCases) {
  test(`${name}: the LM loss and every weight's gradient equal the PyTorch twin's`, { skip }, async () => {
    const folder = writeFolder(name.replace(/\W+/g, '-'), { layers: 2, hidden: 32, intermediate: 48, ...options });
    const { config, weights } = await loadFolder(folder);
    const twin = twinGradients(folder, { inputs, targets, mask });
    const engine = new OnnxEngine(undefined, {}, { padToBuckets: false });
    const model = engine.createModel(config, { heads: [], seed: 1, weights });
    const actual = await engineGradients(model);

    assert.ok(Math.abs(actual.loss - twin.loss) <= relativeTolerance * twin.loss, `loss ${actual.loss} ≠ ${twin.loss}`);
    assert.deepEqual([...actual.grads.keys()].sort(), [...twin.grads.keys()].sort(), 'a gradient for every weight');
    const modelScale = Math.max(...[...twin.grads.values()].map(maxAbs));
    for (const [weight, expected] of twin.grads) {
      const got = actual.grads.get(weight) as Float32Array;
      const scale = Math.max(maxAbs(expected), zeroGradientFloor * modelScale);
      const worst = expected.reduce((m, v, i) => Math.max(m, Math.abs(got[i] - v)), 0);
      assert.ok(worst <= relativeTolerance * scale, `${weight}: max |Δ| ${worst.toExponential(2)}, scale ${scale}`);
    }

    const twinNorm = Math.sqrt([...twin.grads.values()].reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0));
    const optimizer = model.createOptimizer({ adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0 });
    const step = await optimizer.step({ kind: 'lm', batch: tokenBatchOf() }, { learningRate: 1e-3, maxGradNorm: 0 });
    assert.ok(Math.abs(step.scalars.gradNorm - twinNorm) <= relativeTolerance * twinNorm, 'gradNorm');
    assert.ok(step.applied);
    model.dispose();
  });
}

test('a Llama-family config with dropout is refused', { skip }, async () => {
  const { config, weights } = await loadFolder(writeFolder('dropout', { arch: 'llama', layers: 1, hidden: 16 }));
  const engine = new OnnxEngine();
  assert.throws(
    () => engine.createModel({ ...config, dropout: 0.1 }, { heads: [], seed: 1, weights }),
    /trains without dropout, got dropout 0\.1/,
  );
});

test(
  'gpt2 with exact GELU and layer_norm_epsilon 1e-3: training gradients and inference logits equal the twin',
  {
    skip,
  },
  async () => {
    const folder = writeFolder('gpt2-gelu', { arch: 'gpt2', heads: 2, layers: 2, hidden: 16 });
    const configFile = path.join(folder, 'config.json');
    const json = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...json, activation_function: 'gelu', layer_norm_epsilon: 1e-3 }));
    const { config, weights } = await loadFolder(folder);
    assert.equal('activation_function' in config && config.activation_function, 'gelu');
    const twin = twinGradients(folder, { inputs, targets, mask });
    const model = new OnnxEngine(undefined, {}, { padToBuckets: false }).createModel(config, {
      heads: [],
      seed: 1,
      weights,
    });
    const actual = await engineGradients(model);
    assert.ok(Math.abs(actual.loss - twin.loss) <= relativeTolerance * twin.loss, `loss ${actual.loss} ≠ ${twin.loss}`);
    const modelScale = Math.max(...[...twin.grads.values()].map(maxAbs));
    for (const [weight, expected] of twin.grads) {
      const got = actual.grads.get(weight) as Float32Array;
      const worst = expected.reduce((m, v, i) => Math.max(m, Math.abs(got[i] - v)), 0);
      const scale = Math.max(maxAbs(expected), zeroGradientFloor * modelScale);
      assert.ok(worst <= relativeTolerance * scale, `${weight}: max |Δ| ${worst.toExponential(2)}`);
    }
    model.dispose();

    const lm = await OnnxCausalLm.fromCausalLm(config, [], weights, { kvCache: true });
    const expected = twinLogits(folder, inputs);
    const { logits } = await lm.forward({ batch: inputs.length, length: inputs[0].length, ids: inputs.flat() });
    await lm.release();
    const worst = expected.logits.reduce((m, v, i) => Math.max(m, Math.abs(logits[i] - v)), 0);
    assert.ok(worst <= relativeTolerance * maxAbs(expected.logits), `logits: max |Δ| ${worst}`);
  },
);
