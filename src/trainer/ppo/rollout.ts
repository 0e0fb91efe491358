/**
 * PPO's rollout phase, as TRL's PPOTrainer lays it out (phases 1–6 of its training loop):
 *   1. generate responses from the policy (KV cache), ending each at EOS
 *   2. log-probabilities of the response tokens under the policy and the frozen reference, values
 *      from the policy's value head, and the reward model's score of prompt + response
 *   3. per-token KL estimate and penalty −β·KL; the score added at the last response token
 *   4. optional whitening of the rewards
 *   5. GAE advantages and returns; advantages whitened (and optionally clipped)
 * Everything after the forward passes is plain-array math from src/core, the same functions the
 * public API exports. Nothing here takes a gradient.
 */
import { classifyClip, gae, klPerToken, maskedWhiten, type KlEstimator } from '../../core';
import type { PpoTraceRow } from '../../shared/traceFormat';
import type { Rollout } from '../rollout/rolloutEngine';
import type { Tokenizer } from '../tokenizer';

/** How computeAdvantages builds rewards (−β·KL, the score) and advantages (GAE) from a rollout. */
export interface AdvantageOptions {
  readonly klCoef: number;
  readonly klEstimator: KlEstimator;
  readonly whitenRewards: boolean;
  readonly whitenAdvantages: boolean;
  readonly advantageClip?: number;
  readonly gamma: number;
  readonly lam: number;
}

export interface Advantages {
  /** Per-token KL estimate. */
  readonly kl: number[][];
  /** −β·KL per token. */
  readonly nonScoreReward: number[][];
  /** −β·KL, plus the score at the last response token. */
  readonly rewards: number[][];
  readonly advantages: number[][];
  readonly returns: number[][];
}

/** Right-pads ragged rows to a matrix and returns the mask (1 on real entries). */
export function padRows(rows: readonly number[][]): { matrix: number[][]; mask: number[][]; width: number } {
  const width = Math.max(1, ...rows.map((row) => row.length));
  return {
    matrix: rows.map((row) => Array.from({ length: width }, (_, t) => (t < row.length ? row[t] : 0))),
    mask: rows.map((row) => Array.from({ length: width }, (_, t) => (t < row.length ? 1 : 0))),
    width,
  };
}

const unpad = (matrix: number[][], lengths: readonly number[]) => matrix.map((row, b) => row.slice(0, lengths[b]));

/** Phases 3–5 on plain arrays; `scores` are already scaled and clipped. */
export function computeAdvantages(rollout: Rollout, scores: readonly number[], options: AdvantageOptions): Advantages {
  const lengths = rollout.logprobs.map((row) => row.length);
  const { matrix: logprobs, mask } = padRows(rollout.logprobs);
  const { matrix: refLogprobs } = padRows(rollout.refLogprobs);
  const { matrix: values } = padRows(rollout.values);

  // 3. compute rewards: r_t = −β·KL_t, and the score at the last response token
  const kl = klPerToken(logprobs, refLogprobs, options.klEstimator).map((row, b) =>
    row.map((value, t) => value * mask[b][t]),
  );
  const nonScoreReward = kl.map((row) => row.map((value) => -options.klCoef * value));
  let rewards = nonScoreReward.map((row, b) =>
    row.map((value, t) => (t === lengths[b] - 1 ? value + scores[b] : value)),
  );
  // 4. whiten rewards (TRL: masked_whiten(rewards, shift_mean=False))
  if (options.whitenRewards)
    rewards = maskedWhiten(rewards, mask, false).map((row, b) => row.map((value, t) => value * mask[b][t]));
  // 5. advantages and returns by GAE; then whiten (and clip) the advantages
  const generalized = gae(rewards, values, mask, options.gamma, options.lam);
  let advantages = generalized.advantages;
  if (options.whitenAdvantages)
    advantages = maskedWhiten(advantages, mask).map((row, b) => row.map((value, t) => value * mask[b][t]));
  if (options.advantageClip !== undefined) {
    const c = options.advantageClip;
    advantages = advantages.map((row) => row.map((value) => Math.min(c, Math.max(-c, value))));
  }
  return {
    kl: unpad(kl, lengths),
    nonScoreReward: unpad(nonScoreReward, lengths),
    rewards: unpad(rewards, lengths),
    advantages: unpad(advantages, lengths),
    returns: unpad(generalized.returns, lengths),
  };
}

/** What a step's trace holds besides the rollout and its advantages. */
export interface TraceRowParts {
  readonly step: number;
  readonly prompts: readonly string[];
  /** Decoded responses, special tokens skipped. */
  readonly responses: readonly string[];
  /** The demo oracle's score per sample, or null where the task has no oracle. */
  readonly oracleScores: readonly number[] | null;
  /** Per sample, the ratio of each token at every PPO epoch (empty when nothing trains). */
  readonly ratios: readonly (readonly number[][])[] | null;
  /** The stage's ε, which the loss clipped the ratios with (unused when nothing trains). */
  readonly cliprange: number;
}

/** One trace row per sample: every per-token quantity of the rollout, in DESIGN.md's PPO trace schema. */
export function ppoTraceRows(
  rollout: Rollout,
  advantages: Advantages,
  tokenizer: Tokenizer,
  parts: TraceRowParts,
): PpoTraceRow[] {
  const { cliprange } = parts;
  return rollout.items.map((item, i) => {
    const ratio = parts.ratios?.[i] ?? [];
    const advantage = advantages.advantages[i];
    // Classified on the float32 values the file stores, so clip_class is a function of the file's own
    // ratio and advantage columns and ε: a reader recomputing it from them gets the same class.
    const clipClass = (epoch: readonly number[]) =>
      epoch.map((r, t) => classifyClip(Math.fround(r), Math.fround(advantage[t]), cliprange));
    return {
      step: parts.step,
      sample: i,
      prompt: parts.prompts[i],
      response: parts.responses[i],
      score: rollout.rawScores[i],
      oracle_score: parts.oracleScores ? parts.oracleScores[i] : null,
      tokens: item.response.map((id) => tokenizer.tokenText(id)),
      token_ids: [...item.response],
      logprob: rollout.logprobs[i],
      ref_logprob: rollout.refLogprobs[i],
      kl: advantages.kl[i],
      value: rollout.values[i],
      reward: advantages.rewards[i],
      advantage,
      return: advantages.returns[i],
      entropy: rollout.entropy[i],
      ratio: ratio.map((epoch) => [...epoch]),
      clip_class: ratio.map(clipClass),
    };
  });
}
