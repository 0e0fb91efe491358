/**
 * Per-token estimators of KL(π ‖ π_ref) from the log-probabilities of the sampled tokens, the
 * penalty PPO subtracts from the reward at every token.
 *
 * Names follow John Schulman, "Approximating KL divergence" (http://joschu.net/blog/kl-approx.html),
 * with r = π_ref(x)/π(x), so log r = ref − logp:
 *   k1 = −log r                    unbiased, high variance, can be negative per token
 *   k2 = ½(log r)²                 biased, low variance, ≥ 0
 *   k3 = (r − 1) − log r           unbiased, low variance, ≥ 0
 *   abs = |log r|
 * Mirrors TRL: `kl_estimator` "k1" and "k3" in PPOTrainer (trl/experimental/ppo/ppo_trainer.py,
 * "# 4. compute rewards"), and the original PPOTrainer's `_kl_penalty` (trl/trainer/ppo_trainer.py
 * before TRL PR #2174), whose "kl", "mse" and "abs" are k1, k2 and abs here.
 */
import { type Matrix, assertSameShape, zipMap } from './arrays';

/** Every estimator, in the order the docs list them: the config's `kl_estimator` and the CLI take these. */
export const klEstimators = ['k1', 'k2', 'k3', 'abs'] as const;
export type KlEstimator = (typeof klEstimators)[number];

/** `'k1', 'k2', 'k3' or 'abs'` (each passed through `quote`), for messages that list the estimators. */
export function klEstimatorList(quote: (name: string) => string = (name) => name): string {
  const quoted = klEstimators.map(quote);
  return `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** The estimator as a function of logp and ref (log-probabilities of the same sampled token). */
const estimators: Record<KlEstimator, (logp: number, ref: number) => number> = {
  k1: (logp, ref) => logp - ref,
  k2: (logp, ref) => 0.5 * (logp - ref) ** 2,
  // (e^logr − 1) − logr, with expm1 so that small log r keeps its digits (TRL: (logr.exp() - 1) - logr)
  k3: (logp, ref) => {
    const logr = ref - logp;
    return Math.expm1(logr) - logr;
  },
  abs: (logp, ref) => Math.abs(logp - ref),
};

/**
 * The KL estimate at every token, `[batch][time]` like the inputs. No mask: padding positions get
 * whatever their inputs give (TRL fills both log-probs with the same value there, so KL = 0).
 */
export function klPerToken(logprobs: Matrix, refLogprobs: Matrix, estimator: KlEstimator): number[][] {
  if (!Object.hasOwn(estimators, estimator)) {
    const known = klEstimatorList((name) => `'${name}'`);
    throw new RangeError(`klPerToken: unknown estimator ${JSON.stringify(estimator)}; use ${known}.`);
  }
  assertSameShape('klPerToken', { logprobs, refLogprobs });
  return zipMap([logprobs, refLogprobs], estimators[estimator]);
}
