/**
 * Training warnings users ask for, from the metrics alone: KL rising fast, entropy collapsing,
 * response length running away, and the learned reward rising while the oracle's score falls (reward
 * hacking; only on tasks with an oracle). Each compares the mean of the latest window of steps with
 * an earlier one, so single noisy steps do not fire it.
 */
import { mean } from '../../src/core/stats';
import type { MetricPoint } from '../../src/shared/dashboardMessages';

export type WarningKind = 'kl-rising' | 'entropy-collapse' | 'length-runaway' | 'reward-hacking';

export interface TrainingWarning {
  readonly kind: WarningKind;
  readonly title: string;
  readonly detail: string;
  /** The step of the latest point the warning looked at. */
  readonly step: number;
  /** The metrics to look at. */
  readonly metrics: readonly string[];
}

function valuesOf(points: readonly MetricPoint[], metric: string): { steps: number[]; values: number[] } {
  const steps: number[] = [];
  const values: number[] = [];
  for (const point of points) {
    const value = point[metric];
    if (typeof value === 'number' && Number.isFinite(value)) {
      steps.push(point.step);
      values.push(value);
    }
  }
  return { steps, values };
}

/** Window length: a third of the points, between 3 and 10 steps. */
const windowFor = (n: number) => Math.max(3, Math.min(10, Math.floor(n / 3)));

/** Least-squares slope of values against their index. */
function slope(values: readonly number[]): number {
  const n = values.length;
  const xMean = (n - 1) / 2;
  const yMean = mean(values);
  let num = 0;
  let den = 0;
  values.forEach((y, x) => {
    num += (x - xMean) * (y - yMean);
    den += (x - xMean) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

const fmt = (value: number) => Number(value.toPrecision(3)).toString();

export interface WarningThresholds {
  /** KL (nats) must grow by at least this much, and by half, between two consecutive windows. */
  readonly klIncrease: number;
  /** Entropy below this fraction of the first window's. */
  readonly entropyFraction: number;
  /** Response length above this multiple of the first window's (and up by ≥ 4 tokens). */
  readonly lengthGrowth: number;
}

export const defaultThresholds: WarningThresholds = { klIncrease: 0.5, entropyFraction: 0.5, lengthGrowth: 1.5 };

export function detectWarnings(
  points: readonly MetricPoint[],
  thresholds: WarningThresholds = defaultThresholds,
): TrainingWarning[] {
  const warnings: TrainingWarning[] = [];

  const kl = valuesOf(points, 'objective/kl');
  if (kl.values.length >= 6) {
    const w = windowFor(kl.values.length);
    const before = mean(kl.values.slice(-2 * w, -w));
    const now = mean(kl.values.slice(-w));
    if (now - before >= thresholds.klIncrease && now >= 1.5 * Math.max(before, 0.05)) {
      warnings.push({
        kind: 'kl-rising',
        title: 'KL is rising fast',
        detail:
          `objective/kl rose from ${fmt(before)} to ${fmt(now)} nats (means of ${w} steps): the policy is ` +
          `moving away from the reference quickly. Consider a larger ` +
          `init_kl_coef, adaptive KL control, or a lower learning rate.`,
        step: kl.steps.at(-1) as number,
        metrics: ['objective/kl'],
      });
    }
  }

  const entropyMetric = points.some((point) => typeof point['objective/entropy'] === 'number')
    ? 'objective/entropy'
    : 'policy/entropy_avg';
  const entropy = valuesOf(points, entropyMetric);
  if (entropy.values.length >= 6) {
    const w = windowFor(entropy.values.length);
    const first = mean(entropy.values.slice(0, w));
    const now = mean(entropy.values.slice(-w));
    if (first > 0 && now < thresholds.entropyFraction * first) {
      warnings.push({
        kind: 'entropy-collapse',
        title: 'Entropy is collapsing',
        detail:
          `${entropyMetric} fell from ${fmt(first)} to ${fmt(now)} (${Math.round((100 * now) / first)}% of the ` +
          `start): the policy is becoming deterministic and may repeat itself. ` +
          `Consider an entropy bonus (entropy_coef) or a stronger KL penalty.`,
        step: entropy.steps.at(-1) as number,
        metrics: [entropyMetric],
      });
    }
  }

  const length = valuesOf(points, 'response_length');
  if (length.values.length >= 6) {
    const w = windowFor(length.values.length);
    const first = mean(length.values.slice(0, w));
    const now = mean(length.values.slice(-w));
    if (now > thresholds.lengthGrowth * first && now - first >= 4) {
      warnings.push({
        kind: 'length-runaway',
        title: 'Response length is running away',
        detail:
          `response_length grew from ${fmt(first)} to ${fmt(now)} tokens: the reward may favour long responses. ` +
          `Consider a missing-EOS penalty or length-normalised scores.`,
        step: length.steps.at(-1) as number,
        metrics: ['response_length'],
      });
    }
  }

  // Reward hacking: over the latest 2w steps, the learned score goes up while the oracle goes down,
  // each by more than half its own step-to-step noise.
  const scores = valuesOf(points, 'objective/scores');
  const oracle = valuesOf(points, 'oracle/score');
  const n = Math.min(scores.values.length, oracle.values.length);
  if (n >= 6) {
    const w = 2 * windowFor(n);
    const recentScores = scores.values.slice(-w);
    const recentOracle = oracle.values.slice(-w);
    const noise = (values: readonly number[]) =>
      Math.sqrt(mean(values.slice(1).map((v, i) => (v - values[i]) ** 2)) / 2);
    const scoreChange = slope(recentScores) * (recentScores.length - 1);
    const oracleChange = slope(recentOracle) * (recentOracle.length - 1);
    if (
      scoreChange > 0.5 * noise(recentScores) &&
      oracleChange < -0.5 * noise(recentOracle) &&
      scoreChange > 0 &&
      oracleChange < 0
    ) {
      warnings.push({
        kind: 'reward-hacking',
        title: 'Reward is rising while the oracle score falls',
        detail:
          `Over the last ${recentScores.length} steps objective/scores changed by +${fmt(scoreChange)} while ` +
          `oracle/score changed by ${fmt(oracleChange)}: the policy may be exploiting the reward model (reward ` +
          `hacking). Look at the latest rollouts; consider a stronger KL penalty or a better reward model.`,
        step: scores.steps.at(-1) as number,
        metrics: ['objective/scores', 'oracle/score'],
      });
    }
  }
  return warnings;
}
