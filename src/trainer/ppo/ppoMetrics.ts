/**
 * The rollout half of PPO's metrics, with TRL's names (PPOTrainer's `metrics` after each batch): the
 * KL, entropy, rewards and lengths of one step's rollouts. The PPO stage adds its update statistics
 * (policy/*, loss/*, val/ratio…), learning rate and timings; an inspection run, which trains nothing,
 * writes these alone.
 */
import { mean, sum } from '../../core/stats';
import type { Rollout } from '../rollout/rolloutEngine';
import type { Advantages } from './rollout';

export interface RolloutMetricsInput {
  readonly rollout: Pick<Rollout, 'items' | 'logprobs' | 'endedWithEos'>;
  /** computeAdvantages' result for these rollouts. */
  readonly advantages: Pick<Advantages, 'kl' | 'nonScoreReward'>;
  /** The scores the reward was built from (after any scaling, normalisation and clipping). */
  readonly scores: readonly number[];
  /** The reward model's scores before scaling; leave out where `scores` are the raw scores. */
  readonly rawScores?: readonly number[];
  /** β of the penalty −β·KL these rollouts were rewarded with. */
  readonly klCoef: number;
}

/**
 * Batch means over the rollouts (a batch holds at least one; an empty one gives NaN, core/stats'
 * mean). KL and entropy are per sequence: sums over the response tokens, as TRL reports them.
 */
export function rolloutMetrics(input: RolloutMetricsInput): Record<string, number> {
  const { rollout, advantages, scores, rawScores } = input;
  const nonScoreReward = mean(advantages.nonScoreReward.map(sum));
  return {
    'objective/kl': mean(advantages.kl.map(sum)),
    // −Σ log π(token) of the sampled tokens: a one-sample estimate of the sequence's entropy
    'objective/entropy': mean(rollout.logprobs.map((row) => -sum(row))),
    'objective/non_score_reward': nonScoreReward,
    'objective/rlhf_reward': nonScoreReward + mean(scores),
    'objective/scores': mean(scores),
    ...(rawScores === undefined ? {} : { 'objective/raw_scores': mean(rawScores) }),
    'objective/kl_coef': input.klCoef,
    'val/num_eos_tokens': rollout.endedWithEos.filter(Boolean).length,
    response_length: mean(rollout.items.map((item) => item.response.length)),
  };
}
