/**
 * Running mean and standard deviation of scores across steps (TRL's RunningMoments, used for the
 * PPO-max reward scaling): batches merge by the parallel-variance formula of Chan et al.
 */
import { mean, sum } from '../../core/stats';

export interface MomentsState {
  mean: number;
  /** Population variance of everything seen. */
  variance: number;
  count: number;
}

export class RunningMoments {
  state: MomentsState = { mean: 0, variance: 1, count: 1e-24 };

  /** Adds a batch; returns the batch's own mean and (sample) standard deviation. */
  update(values: readonly number[]): { mean: number; std: number } {
    const n = values.length;
    const batchMean = mean(values);
    const batchVariance = sum(values.map((value) => (value - batchMean) ** 2)) / n; // population variance
    const { mean: runningMean, variance, count } = this.state;
    const delta = batchMean - runningMean;
    const total = count + n;
    const m2 = variance * count + batchVariance * n + (delta * delta * count * n) / total;
    this.state = { mean: runningMean + (delta * n) / total, variance: m2 / total, count: total };
    return { mean: batchMean, std: Math.sqrt((batchVariance * n) / Math.max(1, n - 1)) };
  }

  /** Bessel-corrected running standard deviation. */
  get std(): number {
    const { variance, count } = this.state;
    return Math.sqrt((variance * count) / Math.max(1, count - 1));
  }

  get mean(): number {
    return this.state.mean;
  }
}
