/**
 * The ONNX rollout engine (onnx/onnxRolloutEngine.ts) for a Llama-family LoRA policy: the policy samples and scores
 * with its merged weights, the reference (the same LoRA model) is its base with adapters off, the reward model is a
 * Llama-family model with a score head — each equal to what the training engine's own evaluate / scores give
 * (adaptersOff for the reference) — and after an update `syncPolicy` brings the new adapters over.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineModel } from '../../src/trainer/engine/engine';
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { llamaConfig } from '../../src/trainer/model/causalLmConfig';
import { OnnxRolloutEngine } from '../../src/trainer/onnx/onnxRolloutEngine';
import { responseValues, rewardInputs } from '../../src/trainer/data/sequences';
import type { Rollout } from '../../src/trainer/rollout/rolloutEngine';
import { tinyLlamaArchitecture } from '../fixtures/hf/tinyLlama';

const tolerance = 1e-4;
const adamW = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0 };
/** A small qwen2-style model: GQA 4:2, q/k/v biases, tied head. */
const architecture = tinyLlamaArchitecture({
  modelType: 'qwen2',
  architectureClass: 'Qwen2ForCausalLM',
  vocabSize: 24,
  tieWordEmbeddings: true,
});
const config = llamaConfig(architecture, { blockSize: 16 });
const prompts = [
  [1, 5, 9, 3],
  [1, 12, 7],
];
const sampling = { temperature: 1, topK: 0, topP: 1, maxNewTokens: 5, seed: 8, padTokenId: 0 };

const maxRowDiff = (a: number[][], b: number[][]) =>
  Math.max(0, ...a.flatMap((row, i) => row.map((value, t) => Math.abs(value - b[i][t]))));

/** What the training engine says of the rollout's sequences: policy (adapters on), reference (off), reward. */
async function trainingEngineView(rollout: Rollout, policy: EngineModel, reward: EngineModel) {
  const { batch } = rollout;
  const tokens = { ...batch, mask: batch.responseMask };
  const on = await policy.evaluate(tokens, { logprobs: true, values: true });
  const off = await policy.evaluate(tokens, { logprobs: true, adaptersOff: true });
  const input = rewardInputs(rollout.items, sampling.padTokenId);
  const scores = await reward.scores({ ...input, ids: input.ids });
  return {
    logprobs: responseValues(on.logprobs as Float32Array, batch),
    values: responseValues(on.values as Float32Array, batch),
    refLogprobs: responseValues(off.logprobs as Float32Array, batch),
    scores: Array.from(scores),
  };
}

test('ONNX rollouts of a Llama-family LoRA policy: merged policy, base reference, synced updates', async () => {
  const engine = new OnnxEngine(undefined, {}, { padToBuckets: false });
  const lora = { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] };
  const policy = engine.createModel(config, { heads: ['v_head'], seed: 2, lora });
  const reward = engine.createModel(config, { heads: ['score'], seed: 3 });
  const optimizer = policy.createOptimizer(adamW);
  const lmBatch = {
    batchSize: 1,
    length: 5,
    inputs: Int32Array.from([1, 5, 9, 3, 7]),
    targets: Int32Array.from([5, 9, 3, 7, 2]),
    mask: Float32Array.from([1, 1, 1, 1, 1]),
  };
  const train = () => optimizer.step({ kind: 'lm', batch: lmBatch }, { learningRate: 5e-2, maxGradNorm: 0 });
  await train(); // B ≠ 0: the adapters change the policy

  const rollouts = await OnnxRolloutEngine.create({ policy, reference: policy, reward }, { threads: 1 });
  try {
    for (let round = 0; round < 2; round++) {
      const rollout = await rollouts.collect(prompts, sampling, undefined);
      const expected = await trainingEngineView(rollout, policy, reward);
      assert.ok(maxRowDiff(rollout.logprobs, expected.logprobs) <= tolerance, `policy logprobs, round ${round}`);
      assert.ok(maxRowDiff(rollout.values, expected.values) <= tolerance, `values, round ${round}`);
      assert.ok(maxRowDiff(rollout.refLogprobs, expected.refLogprobs) <= tolerance, `reference, round ${round}`);
      assert.ok(maxRowDiff([rollout.rawScores], [expected.scores]) <= tolerance, `scores, round ${round}`);
      assert.ok(maxRowDiff(rollout.logprobs, rollout.refLogprobs) > 1e-3, 'the reference is not the policy');
      await train();
      await rollouts.syncPolicy();
    }
  } finally {
    await rollouts.release();
    policy.dispose();
    reward.dispose();
  }
});
