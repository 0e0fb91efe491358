/**
 * PPO's update loss on the ONNX autodiff graph (src/trainer/engine/onnxruntime/ppoGraph.ts) against the
 * tfjs engine's lossGraph for the same PpoLoss (policy + clipped value loss, entropy bonus, a sampling
 * temperature and PPO-ptx): the loss, the reported scalars and every weight's gradient, float32.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { PpoLoss, TokenBatch } from '../../src/trainer/engine/engine';
import { buildPpoLossGraph, ppoGraphInputs } from '../../src/trainer/engine/onnxruntime/ppoGraph';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { lossGraph } from '../../src/trainer/engine/tfjs/lossGraphs';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { assertGradientsMatch, tokenBatch, uniform } from './onnxAutodiffHarness';

before(async () => {
  await selectBackend('wasm');
});

const config: GptConfig = { vocab_size: 40, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
const SCALAR_TOLERANCE = 1e-5;

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

/** tfjs's loss, reported scalars and gradients of `spec` on `model`. */
function tfjsReference(model: Gpt, spec: PpoLoss) {
  const scalars = new Map<string, number>();
  const grads = new Map<string, Float32Array>();
  tf.tidy(() => {
    const { value, grads: byVariable } = tf.variableGrads(() => {
      const graph = lossGraph(model, spec);
      for (const [name, tensor] of Object.entries(graph.reported))
        if (tensor.size === 1) scalars.set(name, tensor.dataSync()[0]);
      return graph.loss as never;
    });
    scalars.set('loss', value.dataSync()[0]);
    for (const [name, variable] of model.weights) grads.set(name, byVariable[variable.name].dataSync() as Float32Array);
  });
  return { scalars, grads };
}

test('onnx PPO graph: loss, reported scalars and every gradient equal the tfjs engine’s (float32, 1e-4)', async () => {
  const [batchSize, length] = [4, 10];
  const batch = batchOf(batchSize, length, 7);
  const ptxBatch = batchOf(2, 8, 9);
  const random = uniform(23);
  const grid = (scale: number, offset = 0) =>
    Float32Array.from({ length: batchSize * length }, () => offset + scale * random());
  const spec: PpoLoss = {
    kind: 'ppo',
    batch,
    temperature: 0.7,
    // A near-uniform fresh policy gives log p ≈ −log V; the noise makes some ratios clip.
    oldLogprobs: grid(0.4, -Math.log(config.vocab_size)),
    oldValues: grid(0.1),
    advantages: grid(1),
    returns: grid(0.5),
    cliprange: 0.2,
    cliprangeValue: 0.05,
    vfCoef: 0.1,
    entropyCoef: 0.01,
    policyActive: true,
    ptx: { batch: ptxBatch, coef: 0.5 },
  };
  const model = Gpt.create(config, { seed: 3, heads: ['v_head'] });
  const expected = tfjsReference(model, spec);
  const weights = await model.readWeights();
  model.dispose();

  const graph = buildPpoLossGraph(
    config,
    { batchSize, length },
    { ...spec, ptx: { shape: { batchSize: 2, length: 8 }, coef: 0.5 } },
    'float32',
  );
  const session = await ort.InferenceSession.create(graph.model);
  const ints = (values: Int32Array, dims: number[]) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from(values, (v) => BigInt(v)),
      dims,
    );
  const floats = (values: Float32Array, dims: number[]) => new ort.Tensor('float32', values, dims);
  const dims = [batchSize, length];
  const ptxDims = [2, 8];
  const feeds: Record<string, ort.Tensor> = {
    [ppoGraphInputs.ids]: ints(batch.inputs, dims),
    [ppoGraphInputs.targets]: ints(batch.targets, dims),
    [ppoGraphInputs.mask]: floats(batch.mask, dims),
    [ppoGraphInputs.oldLogprobs]: floats(spec.oldLogprobs, dims),
    [ppoGraphInputs.oldValues]: floats(spec.oldValues, dims),
    [ppoGraphInputs.advantages]: floats(spec.advantages, dims),
    [ppoGraphInputs.returns]: floats(spec.returns, dims),
    [ppoGraphInputs.ptxIds]: ints(ptxBatch.inputs, ptxDims),
    [ppoGraphInputs.ptxTargets]: ints(ptxBatch.targets, ptxDims),
    [ppoGraphInputs.ptxMask]: floats(ptxBatch.mask, ptxDims),
  };
  for (const [name, value] of weights) feeds[name] = floats(value.data, value.shape);
  const result = await session.run(feeds);
  await session.release();

  for (const name of ['loss', 'pgLoss', 'vfLoss', 'entropy', 'approxKl', 'meanRatio']) {
    const reference = expected.scalars.get(name) as number;
    const actual = result[name].data[0] as number;
    const tolerance = SCALAR_TOLERANCE * Math.max(1, Math.abs(reference));
    assert.ok(Math.abs(actual - reference) <= tolerance, `${name}: ${actual} vs ${reference}`);
  }
  // Inside the clip range the two value losses are equal up to rounding ((V_old + (V − V_old)) vs V), so
  // which one is "greater" is float noise that differs between engines: allow one counted token.
  const oneToken = 1 / batch.mask.reduce((sum, m) => sum + m, 0);
  const clipFrac = result.vfClipFrac.data[0] as number;
  const referenceClipFrac = expected.scalars.get('vfClipFrac') as number;
  assert.ok(
    Math.abs(clipFrac - referenceClipFrac) <= oneToken + 1e-6,
    `vfClipFrac ${clipFrac} vs ${referenceClipFrac}`,
  );
  assertGradientsMatch(result, graph.weightNames, expected.grads);
});
