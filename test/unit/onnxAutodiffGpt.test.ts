/**
 * The GPT's SFT loss graph built with the ONNX autodiff (src/trainer/engine/onnxruntime/gptGraph.ts):
 * on a tiny 1-layer model its gradient w.r.t. every weight matches central finite differences (float64),
 * and on a small 2-layer model it matches the tfjs engine's tf.variableGrads of maskedNll (float32).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { maskedNll as tfMaskedNll } from '../../src/trainer/engine/tfjs/losses';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { buildLmLossGraph, gptForward, lmGraphInputs, maskedNll } from '../../src/trainer/engine/onnxruntime/gptGraph';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { gptWeightShapes } from '../../src/trainer/model/gptWeightShapes';
import { assertGradientsMatch, checkGradients, tokenBatch, type FloatInput } from './onnxAutodiffHarness';

before(async () => {
  await selectBackend('wasm');
});

test('autodiff: a tiny GPT block (1 layer, 2 heads) — every weight gradient matches finite differences', async () => {
  const config: GptConfig = { vocab_size: 7, block_size: 4, n_layer: 1, n_head: 2, n_embd: 4, dropout: 0 };
  const [batchSize, length] = [2, 4];
  const batch = tokenBatch(batchSize, length, config.vocab_size, 3);
  const floats: Record<string, FloatInput> = {
    mask: { shape: [batchSize, length], constant: true, values: batch.mask },
  };
  for (const [name, shape] of gptWeightShapes(config, [])) floats[name] = { shape };
  const check = await checkGradients({
    floats,
    ints: {
      ids: { shape: [batchSize, length], values: batch.ids },
      targets: { shape: [batchSize, length], values: batch.targets },
    },
    build: (g, inputs) => {
      const weights = new Map([...gptWeightShapes(config, []).keys()].map((name) => [name, inputs[name]]));
      const { logits } = gptForward(g, config, weights, inputs.ids);
      return maskedNll(g, logits, inputs.targets, inputs.mask);
    },
  });
  const parameters = [...gptWeightShapes(config, []).values()].reduce((n, s) => n + s.reduce((p, d) => p * d, 1), 0);
  assert.equal(check.elements, parameters);
  for (const opType of ['Gather', 'LayerNormalization', 'Softmax', 'LogSoftmax', 'MatMul', 'Tanh', 'Split'])
    assert.ok(check.forwardOps.has(opType), `the block uses ${opType}`);
  assert.ok(check.worstError <= 1e-6, `worst relative error ${check.worstError.toExponential(2)}`);
});

test('autodiff: the SFT loss graph gives the tfjs engine’s loss and gradients (float32, relative 1e-4)', async () => {
  const config: GptConfig = { vocab_size: 50, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
  const [batchSize, length] = [3, 12];
  const batch = tokenBatch(batchSize, length, config.vocab_size, 5);
  const model = Gpt.create(config, { seed: 11 });
  const dims = [batchSize, length];
  const expected = { loss: 0, grads: new Map<string, Float32Array>() };
  tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids, dims as [number, number], 'int32');
    const targets = tf.tensor2d(batch.targets, dims as [number, number], 'int32');
    const mask = tf.tensor2d(batch.mask, dims as [number, number]);
    const { value, grads } = tf.variableGrads(() => tfMaskedNll(model.forward(ids).logits, targets, mask) as never);
    expected.loss = value.dataSync()[0];
    for (const [name, variable] of model.weights)
      expected.grads.set(name, grads[variable.name].dataSync() as Float32Array);
  });
  const weights = await model.readWeights();
  model.dispose();

  const graph = buildLmLossGraph(config, { batchSize, length }, 'float32');
  const session = await ort.InferenceSession.create(graph.model);
  const feeds: Record<string, ort.Tensor> = {
    [lmGraphInputs.ids]: new ort.Tensor('int64', BigInt64Array.from(batch.ids.map(BigInt)), dims),
    [lmGraphInputs.targets]: new ort.Tensor('int64', BigInt64Array.from(batch.targets.map(BigInt)), dims),
    [lmGraphInputs.mask]: new ort.Tensor('float32', Float32Array.from(batch.mask), dims),
  };
  for (const [name, value] of weights) feeds[name] = new ort.Tensor('float32', value.data, value.shape);
  const result = await session.run(feeds);
  await session.release();

  assert.ok(Math.abs((result.loss.data[0] as number) - expected.loss) <= 1e-5 * expected.loss, 'loss');
  assertGradientsMatch(result, graph.weightNames, expected.grads);
});
