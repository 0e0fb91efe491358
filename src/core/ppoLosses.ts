/**
 * PPO's clipped surrogate and clipped value losses (Schulman et al. 2017,
 * https://arxiv.org/abs/1707.06347, eq. 7 and §5), per token and averaged over counted tokens.
 *
 * Mirrors TRL's PPOTrainer minibatch update (trl/experimental/ppo/ppo_trainer.py: `pg_losses`,
 * `pg_losses2`, `pg_loss_max`, `vpredclipped`, `vf_losses1`, `vf_losses2`) and the original
 * `PPOTrainer.loss` (trl/trainer/ppo_trainer.py before TRL PR #2174); names follow cleanrl's ppo.py.
 * Losses are to be minimised, hence the minus signs.
 */
import { type Matrix, assertFinite, assertSameShape, zipMap } from './arrays';
import { maskedMean } from './masked';

export interface PpoPolicyLossResult {
  /** L^CLIP as a loss: masked mean of max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)). */
  loss: number;
  /** Fraction of counted tokens where the clipped term won (TRL's `policy/clipfrac_avg`). */
  clipFrac: number;
  /** Masked mean of ½(log π − log π_old)² (TRL's `policy/approxkl_avg`). */
  approxKl: number;
}

export interface PpoValueLossResult {
  /** ½ · masked mean of max((V − R)², (V_clipped − R)²) (TRL's `loss/value_avg`). */
  loss: number;
  /** Fraction of counted tokens where the clipped term won (TRL's `val/clipfrac_avg`). */
  clipFrac: number;
}

function clip(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

/**
 * The clipped policy loss. ρ_t = exp(log π(a_t) − log π_old(a_t)) is the importance ratio;
 * a token counts as clipped when the clipped term is strictly larger, so a ratio exactly at 1 ± ε
 * is not clipped.
 *
 * `approxKl` is masked, as in TRL's original PPOTrainer; the current TRL PPOTrainer takes a plain
 * mean over all entries, padding included, which equals this when there is no padding.
 * With no counted token the results are NaN (0/0), as TRL's `masked_mean`.
 */
export function ppoPolicyLoss(
  newLogprobs: Matrix,
  oldLogprobs: Matrix,
  advantages: Matrix,
  mask: Matrix,
  clipRange: number,
): PpoPolicyLossResult {
  assertSameShape('ppoPolicyLoss', { newLogprobs, oldLogprobs, advantages, mask });
  assertFinite('ppoPolicyLoss', 'clipRange', clipRange, 0);
  const ratio = zipMap([newLogprobs, oldLogprobs], (logp, oldLogp) => Math.exp(logp - oldLogp)); // [B, T]
  const pg_loss1 = zipMap([advantages, ratio], (A, rho) => -A * rho); // −A·ρ
  // −A·clip(ρ, 1−ε, 1+ε)
  const pg_loss2 = zipMap([advantages, ratio], (A, rho) => -A * clip(rho, 1 - clipRange, 1 + clipRange));
  const pg_loss_max = zipMap([pg_loss1, pg_loss2], Math.max);
  const clipped = zipMap([pg_loss1, pg_loss2], (l1, l2) => (l2 > l1 ? 1 : 0));
  const halfSqDiff = zipMap([newLogprobs, oldLogprobs], (logp, oldLogp) => 0.5 * (logp - oldLogp) ** 2);
  return {
    loss: maskedMean(pg_loss_max, mask),
    clipFrac: maskedMean(clipped, mask),
    approxKl: maskedMean(halfSqDiff, mask),
  };
}

/**
 * The clipped value loss: V_clipped = V_old + clip(V − V_old, −ε_v, ε_v), so the value head cannot
 * move further than ε_v from its rollout-time prediction through the clipped term.
 * With no counted token the results are NaN (0/0), as TRL's `masked_mean`.
 */
export function ppoValueLoss(
  newValues: Matrix,
  oldValues: Matrix,
  returns: Matrix,
  mask: Matrix,
  clipRangeValue: number,
): PpoValueLossResult {
  assertSameShape('ppoValueLoss', { newValues, oldValues, returns, mask });
  assertFinite('ppoValueLoss', 'clipRangeValue', clipRangeValue, 0);
  const v_clipped = zipMap([newValues, oldValues], (V, Vold) => Vold + clip(V - Vold, -clipRangeValue, clipRangeValue));
  const vf_loss1 = zipMap([newValues, returns], (V, R) => (V - R) ** 2); // (V − R)²
  const vf_loss2 = zipMap([v_clipped, returns], (Vc, R) => (Vc - R) ** 2); // (V_clipped − R)²
  const vf_loss_max = zipMap([vf_loss1, vf_loss2], Math.max);
  const clipped = zipMap([vf_loss1, vf_loss2], (l1, l2) => (l2 > l1 ? 1 : 0));
  return {
    loss: 0.5 * maskedMean(vf_loss_max, mask),
    clipFrac: maskedMean(clipped, mask),
  };
}
