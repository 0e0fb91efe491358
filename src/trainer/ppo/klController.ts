/**
 * The coefficient β of the per-token KL penalty −β·KL(π‖π_ref). Fixed, or adaptive as in Ziegler et
 * al. 2019, "Fine-Tuning Language Models from Human Preferences" §2.2 (TRL's AdaptiveKLController):
 *   e = clip(KL / target − 1, −0.2, 0.2);   β ← β · (1 + e · n / horizon)
 * where KL is the batch's mean summed KL and n the episodes in the batch. β is `klCoef` here, the config's
 * `init_kl_coef` at the start, `kl_coef` in the checkpoint's trainer state and `objective/kl_coef` in the metrics.
 */
export class KlController {
  constructor(
    /** β, the coefficient the next rollouts' rewards are built with. */
    public klCoef: number,
    private readonly adaptive: { target: number; horizon: number } | undefined,
  ) {}

  update(currentKl: number, episodes: number): void {
    if (!this.adaptive) return;
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.adaptive.target - 1));
    this.klCoef *= 1 + (error * episodes) / this.adaptive.horizon;
  }
}
