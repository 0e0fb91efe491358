/**
 * Generalized Advantage Estimation (Schulman et al. 2016, https://arxiv.org/abs/1506.02438, eq. 16):
 *   δ_t = r_t + γ·V_{t+1} − V_t
 *   A_t = δ_t + γλ·A_{t+1}          (= Σ_l (γλ)^l δ_{t+l})
 *   R_t = A_t + V_t                  (the value target, "returns")
 * with V_T = 0 and A_T = 0 past the last token: a response is one episode that ends at its last token.
 *
 * Mirrors TRL's PPOTrainer "# 6. compute advantages and returns" (trl/experimental/ppo/ppo_trainer.py)
 * and the original `PPOTrainer.compute_advantages` (which zeroes rewards and values by the mask first),
 * written as cleanrl's ppo.py writes it. No whitening here: TRL whitens the advantages afterwards with
 * `masked_whiten(advantages, mask)` (see `maskedWhiten`), and the returns are not whitened.
 */
import { type Matrix, applyMask, assertFinite, assertSameShape } from './arrays';

export interface GaeResult {
  /** A_t, `[batch][time]`, not whitened. */
  advantages: number[][];
  /** R_t = A_t + V_t (with V zeroed where the mask is 0), `[batch][time]`. */
  returns: number[][];
}

/**
 * GAE over each row of a `[batch][time]` batch. Rewards and values are zeroed where the mask is 0
 * before the recurrence, so padding after the last token adds nothing. (TRL masks values with
 * `padding_mask_p1`, one token longer than the policy mask; pass that mask to match it exactly.)
 */
export function gae(rewards: Matrix, values: Matrix, mask: Matrix, gamma: number, lam: number): GaeResult {
  assertSameShape('gae', { rewards, values, mask });
  assertFinite('gae', 'gamma', gamma, 0);
  assertFinite('gae', 'lam', lam, 0);
  const advantages: number[][] = [];
  const returns: number[][] = [];
  for (let b = 0; b < rewards.length; b++) {
    const T = rewards[b].length;
    const r = Array.from({ length: T }, (_, t) => applyMask(rewards[b][t], mask[b][t])); // [T]
    const V = Array.from({ length: T }, (_, t) => applyMask(values[b][t], mask[b][t])); // [T]
    const A = new Array<number>(T);
    let lastgaelam = 0; // A_{t+1}
    for (let t = T - 1; t >= 0; t--) {
      const nextValue = t + 1 < T ? V[t + 1] : 0; // V_{t+1}
      const delta = r[t] + gamma * nextValue - V[t]; // δ_t = r_t + γ·V_{t+1} − V_t
      lastgaelam = delta + gamma * lam * lastgaelam; // A_t = δ_t + γλ·A_{t+1}
      A[t] = lastgaelam;
    }
    advantages.push(A);
    returns.push(A.map((a, t) => a + V[t])); // R_t = A_t + V_t
  }
  return { advantages, returns };
}
