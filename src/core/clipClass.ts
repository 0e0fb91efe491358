/**
 * What PPO's ratio clipping did to one token: the one meaning of "clipped" that the trainer's
 * `policy/clipfrac_avg`, the trace's `clip_class` column and the dashboard share.
 *
 * PPO's clipped surrogate (Schulman et al. 2017, https://arxiv.org/abs/1707.06347, eq. 7), per token t:
 *
 *   L^CLIP_t = min( r_t·A_t , clip(r_t, 1−ε, 1+ε)·A_t ),   r_t = π_θ(a_t | s_t) / π_old(a_t | s_t)
 *
 * Inside the band [1−ε, 1+ε] both terms are r_t·A_t. Outside it, clip(r_t, …) is a constant, so the
 * token's policy gradient is removed exactly when the min picks the clipped term, i.e. when
 * clip(r_t)·A_t < r_t·A_t:
 *
 *   r_t > 1+ε and A_t > 0   (the policy already raised a good token's probability enough), or
 *   r_t < 1−ε and A_t < 0   (it already lowered a bad token's probability enough).
 *
 * On the other side (r_t > 1+ε with A_t < 0, r_t < 1−ε with A_t > 0) the min picks the unclipped
 * term and the gradient is kept: PPO is pessimistic, so it never stops a move back toward the band.
 *
 * cleanrl's ppo.py and TRL's PPOTrainer count `clipfrac = mean(pg_losses2 > pg_losses)` with
 * `pg_losses = −A·r` and `pg_losses2 = −A·clip(r, 1−ε, 1+ε)`: exactly the `clipped` class (strict `>`,
 * so A = 0 and r = 1 ± ε are not counted). That is the same condition: the two can differ only where
 * rounding makes −A·r and −A·(1 ± ε) equal for a ratio a rounding error away from 1 ± ε (this test
 * then says `clipped`). The trainer's metric and the trace use this function, so they never differ.
 */
import { type Matrix, applyMask, assertFinite, assertSameShape } from './arrays';

/** Each token's class; the numbers are the values of the trace's `clip_class` column. */
export const ClipClass = {
  /** 1−ε ≤ r ≤ 1+ε: the band is closed, so r exactly at 1 ± ε is inside. */
  inside: 0,
  /** Outside the band, but the min picks r·A: the gradient is kept (and A = 0 outside the band). */
  outsideKept: 1,
  /** Outside the band on A's side: the min picks clip(r)·A and the gradient is removed. */
  clipped: 2,
} as const;
export type ClipClass = (typeof ClipClass)[keyof typeof ClipClass];

/** The class values in order, for validators and legends. */
export const clipClassValues: readonly ClipClass[] = [ClipClass.inside, ClipClass.outsideKept, ClipClass.clipped];

/** One line per class: what a reader of the trace (or a legend) needs to know. */
export const clipClassMeanings: Readonly<Record<ClipClass, string>> = {
  [ClipClass.inside]: 'inside the band [1−ε, 1+ε]',
  [ClipClass.outsideKept]: 'outside the band, gradient kept (the min picks r·A)',
  [ClipClass.clipped]: 'clipped, gradient removed (A > 0 and r > 1+ε, or A < 0 and r < 1−ε)',
};

/**
 * The class of one token from its ratio r, advantage A and the clip range ε (TRL's `cliprange`).
 *
 * A NaN ratio or advantage throws a RangeError: the loss there is NaN too, so no class is true, and
 * a silent `inside` would hide the divergence. ±Infinity is classified (exp overflows to a ratio of
 * Infinity, which is outside the band). ε must be a finite number ≥ 0.
 */
export function classifyClip(ratio: number, advantage: number, cliprange: number): ClipClass {
  assertFinite('classifyClip', 'cliprange (ε)', cliprange, 0);
  if (Number.isNaN(ratio) || Number.isNaN(advantage)) {
    const which = Number.isNaN(ratio) ? 'ratio' : 'advantage';
    throw new RangeError(
      `classifyClip: the ${which} is NaN, so the token has no clip class (its PPO loss is NaN too); ` +
        'find where the NaN starts (log-probs, values, rewards) or leave the token out with the mask.',
    );
  }
  if (ratio >= 1 - cliprange && ratio <= 1 + cliprange) return ClipClass.inside;
  const gradientRemoved = (ratio > 1 + cliprange && advantage > 0) || (ratio < 1 - cliprange && advantage < 0);
  return gradientRemoved ? ClipClass.clipped : ClipClass.outsideKept;
}

/**
 * The fraction of counted tokens whose gradient clipping removed: Σ m·[clipped] / Σ m over `[batch][time]`
 * rows (TRL's `masked_mean(pg_losses2 > pg_losses, mask)`, logged as `policy/clipfrac_avg`). Masked-out
 * entries are not classified, so padding may hold anything, NaN included. With no counted token the
 * result is NaN (0/0), as `ppoPolicyLoss` and TRL's `masked_mean`.
 */
export function clipFraction(ratios: Matrix, advantages: Matrix, mask: Matrix, cliprange: number): number {
  assertSameShape('clipFraction', { ratios, advantages, mask });
  assertFinite('clipFraction', 'cliprange (ε)', cliprange, 0);
  let clipped = 0;
  let counted = 0;
  for (let b = 0; b < ratios.length; b++) {
    for (let t = 0; t < ratios[b].length; t++) {
      const weight = mask[b][t];
      if (weight === 0) continue;
      const isClipped = classifyClip(ratios[b][t], advantages[b][t], cliprange) === ClipClass.clipped ? 1 : 0;
      clipped += applyMask(isClipped, weight);
      counted += weight;
    }
  }
  return clipped / counted;
}
