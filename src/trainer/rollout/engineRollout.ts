/**
 * PPO's rollout phases 1–2 on the training engine itself, through the seam: the policy samples with its
 * KV cache, then one pass of each model over the sequences (TRL's PPOTrainer, phases 1–2). Nothing here
 * takes a gradient; the training engine samples from the policy's own weights, so there is nothing to sync.
 */
import { buildSequenceBatch, responseValues, rewardInputs, tokenBatchOf } from '../data/sequences';
import type { SamplingOptions } from '../sampling/sampler';
import type { Rollout, RolloutEngine, RolloutModels } from './rolloutEngine';

/** Phases 1–2: generate and run the three models over the rollouts. */
export async function collectRollout(
  models: RolloutModels,
  prompts: readonly number[][],
  sampling: SamplingOptions,
  eosId: number | undefined,
): Promise<Rollout> {
  const t0 = performance.now();
  const sequences = await models.policy.generate(prompts, sampling);
  const generated = performance.now();
  const items = sequences.map((sequence, i) => ({
    prompt: prompts[i],
    response: sequence.tokens.length > 0 ? sequence.tokens : [sampling.padTokenId],
  }));
  const batch = buildSequenceBatch(items, sampling.padTokenId);
  const tokens = tokenBatchOf(batch);
  const temperature = sampling.temperature > 0 ? sampling.temperature : 1;
  const policy = await models.policy.evaluate(tokens, { logprobs: true, values: true, entropy: true, temperature });
  const reference = await models.reference.evaluate(tokens, { logprobs: true, temperature });
  const scores = await models.reward.scores(rewardInputs(items, sampling.padTokenId));
  const perResponse = (values: Float32Array | undefined) => responseValues(values as Float32Array, batch);
  return {
    items,
    batch,
    logprobs: perResponse(policy.logprobs),
    values: perResponse(policy.values),
    entropy: perResponse(policy.entropy),
    refLogprobs: perResponse(reference.logprobs),
    rawScores: Array.from(scores),
    endedWithEos: sequences.map((sequence) => eosId !== undefined && sequence.tokens.at(-1) === eosId),
    timings: { generate: (generated - t0) / 1000, score: (performance.now() - generated) / 1000 },
  };
}

export function engineRolloutEngine(models: RolloutModels): RolloutEngine {
  return {
    collect: (prompts, sampling, eosId) => collectRollout(models, prompts, sampling, eosId),
    syncPolicy: async () => undefined,
    release: async () => undefined,
  };
}
