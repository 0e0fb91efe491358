/**
 * The ONNX Runtime engine on a Llama-family config (a random-weight llama folder with grouped-query attention),
 * through the seam as the stages use it: evaluate's log-probabilities, entropies and LM loss equal the PyTorch twin's
 * logits' (test/fixtures/hf/), values and scores the inference graph's heads; Bradley–Terry, PPO and DPO steps report
 * the losses src/core's plain-array twins compute from the same numbers; greedy generation (KV cache) picks the
 * argmax of the twin's full-forward logits; subtractFromWeight, readWeights and optimizer state work by name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { bradleyTerryLoss, dpoLoss, ppoPolicyLoss, ppoValueLoss } from '../../src/core';
import type { NamedArrays, TokenBatch } from '../../src/trainer/engine/engine';
import { readHfConfig } from '../../src/trainer/hf';
import { openHfWeights } from '../../src/trainer/hf/hfWeights';
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { llamaConfig } from '../../src/trainer/model/causalLmConfig';
import { OnnxCausalLm } from '../../src/trainer/onnx/onnxCausalLm';
import { onnxEngineSampler } from '../../src/trainer/onnx/onnxEngineSampler';
import { twinLogits, twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const tolerance = 1e-4;
const vocab = 40;
const adamW = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
const rows = [
  [3, 17, 8, 22, 9, 31, 11, 5],
  [7, 2, 30, 1, 19, 38, 4, 26],
];
const batch: TokenBatch = {
  batchSize: 2,
  length: 7,
  inputs: Int32Array.from(rows.flatMap((row) => row.slice(0, 7))),
  targets: Int32Array.from(rows.flatMap((row) => row.slice(1))),
  mask: Float32Array.from([0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0]),
};

async function setup() {
  const folder = path.join(mkdtempSync(path.join(tmpdir(), 'onnx-llama-engine-')), 'llama');
  writeHfFolder({ arch: 'llama', out: folder, vocab, hidden: 32, layers: 2, heads: 4, kvHeads: 2, seed: 5 });
  const architecture = await readHfConfig(folder);
  if (architecture.family !== 'llama') throw new Error('the fixture folder is a llama');
  const hf = await openHfWeights(folder, architecture);
  const weights: NamedArrays = new Map();
  for (const { name, shape } of hf.tensors) weights.set(name, { shape, data: await hf.read(name) });
  const config = llamaConfig(architecture, { blockSize: 16 });
  const engine = new OnnxEngine(onnxEngineSampler, {}, { padToBuckets: true });
  const model = engine.createModel(config, { heads: ['v_head', 'score'], seed: 9, weights, keepMissingHeads: true });
  return { folder, config, model };
}

const logSoftmax = (logits: ArrayLike<number>, offset: number, size: number) => {
  let max = -Infinity;
  for (let v = 0; v < size; v++) max = Math.max(max, logits[offset + v]);
  let total = 0;
  for (let v = 0; v < size; v++) total += Math.exp(logits[offset + v] - max);
  return Array.from({ length: size }, (_, v) => logits[offset + v] - max - Math.log(total));
};

const close = (actual: number, expected: number, what: string, scale = 1) =>
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(scale, Math.abs(expected)),
    `${what}: ${actual} ≠ ${expected}`,
  );

test('llama on the onnxruntime engine: evaluate, scores, steps, generate, weights and state', { skip }, async () => {
  const { folder, model } = await setup();
  const twin = twinLogits(
    folder,
    rows.map((row) => row.slice(0, 7)),
  );
  const evaluation = await model.evaluate(batch, {
    logprobs: true,
    maskedLogprobs: true,
    entropy: true,
    values: true,
    lmLoss: true,
  });
  let nll = 0;
  let counted = 0;
  for (let k = 0; k < batch.batchSize * batch.length; k++) {
    const logProbs = logSoftmax(twin.logits, k * vocab, vocab);
    const target = logProbs[batch.targets[k]];
    close(evaluation.logprobs?.[k] as number, target, `logprob ${k}`);
    close(evaluation.maskedLogprobs?.[k] as number, target * batch.mask[k], `masked logprob ${k}`);
    const entropy = -logProbs.reduce((s, lp) => s + Math.exp(lp) * lp, 0);
    close(evaluation.entropy?.[k] as number, entropy, `entropy ${k}`);
    nll -= target * batch.mask[k];
    counted += batch.mask[k];
  }
  close(evaluation.lmLoss as number, nll / counted, 'lmLoss');

  // The heads against the inference graph (llamaOnnxGraph.ts, another builder) with the same weights.
  const inference = await OnnxCausalLm.fromCausalLm(model.config, model.heads, await model.readWeights(), {
    kvCache: true,
  });
  const { scalars } = await inference.forward({ batch: 2, length: 7, ids: batch.inputs });
  await inference.release();
  scalars.values.forEach((value, k) => close(evaluation.values?.[k] as number, value, `value ${k}`, 1e-2));
  const scoreBatch = { batchSize: 2, length: 7, ids: batch.inputs, lengths: [7, 5] };
  const scores = await model.scores(scoreBatch);
  close(scores[0], scalars.scores[6], 'score of row 0 (last position)', 1e-2);
  close(scores[1], scalars.scores[7 + 4], 'score of row 1 (position 4)', 1e-2);
  close(await model.scoreTotal(scoreBatch), scores[0] + scores[1], 'scoreTotal', 1e-2);
  model.subtractFromWeight('score.bias', 0.5);
  const moved = await model.scores(scoreBatch);
  close(moved[0], scores[0] - 0.5, 'score after subtractFromWeight', 1e-2);

  const optimizer = model.createOptimizer(adamW);
  const bt = await optimizer.step(
    { kind: 'bradleyTerry', scores: scoreBatch, chosenRows: [0], rejectedRows: [1] },
    { learningRate: 1e-3, maxGradNorm: 1 },
  );
  close(bt.outputs.chosenScores[0], moved[0], 'chosen score', 1e-2);
  close(bt.scalars.loss, bradleyTerryLoss(bt.outputs.chosenScores, bt.outputs.rejectedScores), 'Bradley–Terry loss');

  const before = await model.evaluate(batch, { logprobs: true, values: true });
  const grid = (f: (k: number) => number) => Float32Array.from({ length: 14 }, (_, k) => f(k));
  const ppo = {
    kind: 'ppo' as const,
    batch,
    temperature: 1,
    oldLogprobs: grid((k) => (before.logprobs?.[k] as number) + 0.05 * Math.sin(k)),
    oldValues: grid((k) => (before.values?.[k] as number) + 0.1 * Math.cos(k)),
    advantages: grid((k) => Math.sin(3 * k)),
    returns: grid((k) => 0.3 * Math.cos(2 * k)),
    cliprange: 0.2,
    cliprangeValue: 0.2,
    vfCoef: 0.1,
    entropyCoef: 0,
    policyActive: true,
  };
  const ppoStep = await optimizer.step(ppo, { learningRate: 1e-3, maxGradNorm: 1 });
  const matrix = (values: ArrayLike<number>) => [0, 1].map((r) => Array.from(values).slice(r * 7, r * 7 + 7));
  const mask = matrix(batch.mask);
  const policy = ppoPolicyLoss(
    matrix(before.logprobs as Float32Array),
    matrix(ppo.oldLogprobs),
    matrix(ppo.advantages),
    mask,
    0.2,
  );
  const value = ppoValueLoss(
    matrix(before.values as Float32Array),
    matrix(ppo.oldValues),
    matrix(ppo.returns),
    mask,
    0.2,
  );
  close(ppoStep.scalars.pgLoss, policy.loss, 'pgLoss');
  close(ppoStep.scalars.vfLoss, value.loss, 'vfLoss');
  close(ppoStep.scalars.approxKl, policy.approxKl, 'approxKl');
  close(ppoStep.scalars.loss, policy.loss + 0.1 * value.loss, 'PPO loss');

  const sums = (await model.evaluate(batch, { maskedLogprobs: true })).logprobSums as Float32Array;
  const dpo = await optimizer.step(
    {
      kind: 'dpo',
      batch,
      refChosen: [sums[0] + 0.3],
      refRejected: [sums[1] - 0.2],
      beta: 0.1,
      lossType: 'sigmoid',
      chosenLengths: [5],
      rejectedLengths: [3],
    },
    { learningRate: 1e-3, maxGradNorm: 1 },
  );
  close(dpo.outputs.logprobSums[0], sums[0], 'DPO logprobSums');
  const expectedDpo = dpoLoss([sums[0]], [sums[1]], [sums[0] + 0.3], [sums[1] - 0.2], {
    beta: 0.1,
    lossType: 'sigmoid',
  });
  close(dpo.scalars.loss, expectedDpo.losses[0], 'DPO loss');

  const weights = await model.readWeights();
  const state = await optimizer.readState();
  assert.equal(state.step, 3);
  assert.deepEqual(
    [...state.moments.keys()].sort(),
    [...weights.keys()].flatMap((name) => [`${name}.exp_avg`, `${name}.exp_avg_sq`]).sort(),
  );
  const resumed = model.createOptimizer(adamW);
  resumed.loadState(state);
  assert.deepEqual((await resumed.readState()).moments, state.moments);

  const prompts = [rows[0].slice(0, 3), rows[1].slice(0, 5)];
  const sampling = { temperature: 0, topK: 0, topP: 1, maxNewTokens: 4, seed: 1, padTokenId: 0 };
  const sampled = await model.generate(prompts, sampling);
  // Greedy = argmax of the full forward (no cache: one pass over prompt + new tokens) at the current weights.
  const full = await OnnxCausalLm.fromCausalLm(model.config, [], await model.readWeights(), { kvCache: true });
  for (const [i, sequence] of sampled.entries()) {
    assert.equal(sequence.tokens.length, sampling.maxNewTokens);
    const ids = [...prompts[i], ...sequence.tokens];
    const { logits } = await full.forward({ batch: 1, length: ids.length, ids });
    sequence.tokens.forEach((token, t) => {
      const position = prompts[i].length - 1 + t;
      const row = Array.from(logits.subarray(position * vocab, (position + 1) * vocab));
      assert.equal(token, row.indexOf(Math.max(...row)), `token ${t} of row ${i} is the argmax`);
    });
  }
  await full.release();
  const updated = await model.readWeights();
  assert.equal(updated.size, weights.size);
  model.dispose();
});
