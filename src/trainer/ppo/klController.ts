/**
 * The coefficient β of the per-token KL penalty −β·KL(π‖π_ref). Fixed, or adaptive as in Ziegler et
 * al. 2019, "Fine-Tuning Language Models from Human Preferences" §2.2 (TRL's AdaptiveKLController):
 *   e = clip(KL / target − 1, −0.2, 0.2);   β ← β · (1 + e · n / horizon)
 * where KL is the batch's mean summed KL and n the episodes in the batch. Its value is checkpointed.
 */
export class KlController {
  constructor(
    public value: number,
    private readonly adaptive: { target: number; horizon: number } | undefined,
  ) {}

  update(currentKl: number, episodes: number): void {
    if (!this.adaptive) return;
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.adaptive.target - 1));
    this.value *= 1 + (error * episodes) / this.adaptive.horizon;
  }
}
