/**
 * Masked statistics over a `[batch][time]` batch: the mean, variance and whitening PPO applies to
 * rewards and advantages so that padding tokens do not count.
 *
 * Mirrors TRL's `masked_mean`, `masked_var` and `masked_whiten` (trl/experimental/ppo/ppo_trainer.py;
 * formerly trl/core.py), always over all entries (TRL's `axis=None`). Where TRL and these differ:
 * a masked-out entry counts as exactly 0 even if it holds NaN (see `applyMask`).
 */
import { type Matrix, applyMask, assertSameShape, zipMap } from './arrays';

/** The ε TRL adds under the square root when whitening: (x − μ)·rsqrt(σ² + 1e-8). */
const WHITEN_EPS = 1e-8;

/** Σ(m·x) and Σm over every entry. */
function maskedSums(x: Matrix, mask: Matrix): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let b = 0; b < x.length; b++) {
    for (let t = 0; t < x[b].length; t++) {
      sum += applyMask(x[b][t], mask[b][t]);
      count += mask[b][t];
    }
  }
  return { sum, count };
}

/**
 * μ = Σ(m·x) / Σm over all entries. With no counted entry (Σm = 0) this is 0/0 = NaN, as in TRL:
 * callers that can see an all-padding batch should check first.
 */
export function maskedMean(x: Matrix, mask: Matrix): number {
  assertSameShape('maskedMean', { x, mask });
  const { sum, count } = maskedSums(x, mask);
  return sum / count;
}

/**
 * σ² = Σ m·(x − μ)² / Σm, times the Bessel correction n/(n − 1) with n = Σm when `unbiased`.
 *
 * - n = 0 and `unbiased`: throws, as TRL raises (usually a minibatch of one padded sample).
 * - n = 1 and `unbiased`: NaN, as in TRL — the variance of one value is 0 and n/(n − 1) = 1/0, so
 *   0·∞ = NaN (TRL's comment: "if mask_sum == 1, then there is a division by zero issue").
 * - n = 0 and not `unbiased`: NaN (0/0), as in TRL.
 */
export function maskedVar(x: Matrix, mask: Matrix, unbiased = true): number {
  assertSameShape('maskedVar', { x, mask });
  const mu = maskedMean(x, mask);
  const centredSq = zipMap([x], (v) => (v - mu) ** 2); // [B, T]
  const { sum, count } = maskedSums(centredSq, mask);
  let variance = sum / count;
  if (unbiased) {
    if (count === 0) {
      throw new RangeError(
        'maskedVar: the mask sums to zero, so there is no token to take a variance of. ' +
          'This happens with a minibatch of one fully padded sample; use a larger minibatch or check the mask.',
      );
    }
    const besselCorrection = count / (count - 1);
    variance = variance * besselCorrection;
  }
  return variance;
}

/**
 * Whitening: (x − μ)·rsqrt(σ² + 1e-8) with μ, σ² the masked mean and unbiased variance; when
 * `shiftMean` is false, μ is added back (TRL whitens PPO rewards this way, keeping their mean).
 *
 * Every entry is transformed, masked-out ones included, exactly as TRL returns them: TRL zeroes the
 * padding afterwards (`torch.masked_fill(advantages, padding_mask, 0)`), and so should the caller.
 * The same errors as `maskedVar`: throws when the mask sums to 0, NaN everywhere when it sums to 1.
 */
export function maskedWhiten(x: Matrix, mask: Matrix, shiftMean = true): number[][] {
  assertSameShape('maskedWhiten', { x, mask });
  const mu = maskedMean(x, mask);
  const variance = maskedVar(x, mask);
  const rsqrt = 1 / Math.sqrt(variance + WHITEN_EPS);
  return zipMap([x], (v) => {
    const whitened = (v - mu) * rsqrt;
    return shiftMean ? whitened : whitened + mu;
  });
}
