/**
 * Plain statistics over one row, shared by the dashboard and the trainer so both report the same
 * numbers. For masked `[batch][time]` statistics (TRL's `masked_mean` and friends) see `masked.ts`.
 */
import { type Row } from './arrays';

/** Σx, added left to right from 0. 0 for an empty row (the empty sum, like `torch.sum`). */
export function sum(x: Row): number {
  let total = 0;
  for (let i = 0; i < x.length; i++) total += x[i];
  return total;
}

/** Arithmetic mean Σx / n. NaN for an empty row (like `torch.mean` of an empty tensor). */
export function mean(x: Row): number {
  return sum(x) / x.length;
}

/** Population standard deviation √(Σ(x − mean)² / n). NaN for an empty row. */
export function std(x: Row): number {
  const mu = mean(x);
  let sumSq = 0;
  for (let i = 0; i < x.length; i++) sumSq += (x[i] - mu) ** 2;
  return Math.sqrt(sumSq / x.length);
}
