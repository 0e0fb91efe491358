/**
 * Metrics as chart series: names grouped by TRL's namespaces, an x axis by step or episode, and
 * TensorBoard's smoothing (an exponential moving average, debiased so the first points are not
 * pulled toward zero).
 */
import type { MetricPoint } from '../../src/shared/dashboardMessages';

/** The namespaces the dashboard groups by, in display order; anything else goes under "other". */
export const namespaces = [
  'objective',
  'oracle',
  'policy',
  'loss',
  'val',
  'rewards',
  'logps',
  'eval',
  'other',
] as const;
export type Namespace = (typeof namespaces)[number];

/** Keys that are axes or bookkeeping, not charts. */
const notCharted = new Set(['step', 'time', 'episode', 'epoch']);

export function namespaceOf(metric: string): Namespace {
  const head = metric.split('/')[0];
  return (namespaces as readonly string[]).includes(head) && head !== 'other' ? (head as Namespace) : 'other';
}

/** Charted metric names of all runs, grouped by namespace, sorted by name inside a group. */
export function groupMetrics(runs: readonly (readonly MetricPoint[])[]): Map<Namespace, string[]> {
  const names = new Set<string>();
  for (const points of runs)
    for (const point of points)
      for (const key of Object.keys(point)) if (!notCharted.has(key) && !key.startsWith('time/')) names.add(key);
  const groups = new Map<Namespace, string[]>();
  for (const namespace of namespaces) {
    const inGroup = [...names].filter((name) => namespaceOf(name) === namespace).sort();
    if (inGroup.length > 0) groups.set(namespace, inGroup);
  }
  return groups;
}

export type XAxis = 'step' | 'episode';

/** [x, y] pairs of one metric of one run, in file order, skipping points without it. */
export function seriesOf(points: readonly MetricPoint[], metric: string, axis: XAxis): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (const point of points) {
    const value = point[metric];
    const position = point[axis];
    if (typeof value !== 'number' || typeof position !== 'number') continue;
    x.push(position);
    y.push(value);
  }
  return { x, y };
}

/** TensorBoard's smoothing: EMA with weight w ∈ [0, 1), debiased by 1 − w^n; NaN and ∞ pass through. */
export function smooth(values: readonly number[], weight: number): number[] {
  if (weight <= 0) return [...values];
  let last = 0;
  let n = 0;
  return values.map((value) => {
    if (!Number.isFinite(value)) return value;
    last = last * weight + (1 - weight) * value;
    n++;
    return last / (1 - weight ** n);
  });
}
