/**
 * PPO's phase 3, first half: the reward model's raw scores turned into the scores the reward is built
 * from, with the options of "Secrets of RLHF in Large Language Models Part I: PPO" (PPO-max) and TRL's
 * missing-EOS penalty, in this order:
 *   s ← s − missing_eos_penalty          for a response that did not end with EOS
 *   s ← s / (σ + ϵ)  or  (s − μ) / (σ + ϵ) with the running moments μ, σ of every score seen (scaling, norm)
 *   s ← clip(s, −score_clip, score_clip)
 */
import type { PpoStageConfig } from '../../shared/runConfig';
import type { RunningMoments } from './runningMoments';

/** The stage settings that shape the scores. */
export type ScoreShaping = Pick<
  PpoStageConfig,
  'missing_eos_penalty' | 'use_score_scaling' | 'use_score_norm' | 'score_clip'
>;

/** The shaped score of each rollout; `moments` take in this batch's scores first when scaling is on. */
export function shapeScores(
  rawScores: readonly number[],
  endedWithEos: readonly boolean[],
  shaping: ScoreShaping,
  moments: RunningMoments,
): number[] {
  const penalty = shaping.missing_eos_penalty;
  let scores = rawScores.map((score, i) => (penalty !== undefined && !endedWithEos[i] ? score - penalty : score));
  if (shaping.use_score_scaling) {
    moments.update(scores);
    const factor = moments.std + Number.EPSILON;
    scores = scores.map((score) => (shaping.use_score_norm ? (score - moments.mean) / factor : score / factor));
  }
  const limit = shaping.score_clip;
  if (limit !== undefined) scores = scores.map((score) => Math.min(limit, Math.max(-limit, score)));
  return scores;
}
