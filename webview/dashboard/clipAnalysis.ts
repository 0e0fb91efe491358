/**
 * PPO's ratio clipping, token by token. The clipped surrogate max(−A·r, −A·clip(r, 1−ε, 1+ε)) takes
 * its clipped branch — and the token's policy gradient is zero — exactly when A > 0 and r > 1 + ε, or
 * A < 0 and r < 1 − ε (Schulman et al. 2017, eq. 7; TRL's `pg_clipfrac` counts the same tokens).
 * A ratio outside the band on the other side keeps its gradient: the min picks the unclipped term.
 */
import type { PackedPpoTrace } from '../../src/shared/packedTrace';

export type ClipClass = 'inside' | 'removed-above' | 'removed-below' | 'outside-kept' | 'none';

/** The class of one token at one epoch. `none`: the sample has no ratio at that epoch. */
export function classifyClip(ratio: number, advantage: number, cliprange: number): ClipClass {
  if (!Number.isFinite(ratio)) return 'none';
  const above = ratio > 1 + cliprange;
  const below = ratio < 1 - cliprange;
  if (!above && !below) return 'inside';
  if (above && advantage > 0) return 'removed-above';
  if (below && advantage < 0) return 'removed-below';
  return 'outside-kept';
}

export const clipClassLabels: Record<ClipClass, string> = {
  inside: 'inside the band',
  'removed-above': 'clipped: A > 0 and r > 1 + ε, gradient removed',
  'removed-below': 'clipped: A < 0 and r < 1 − ε, gradient removed',
  'outside-kept': 'outside the band, gradient kept',
  none: 'no ratio at this epoch',
};

export const isRemoved = (value: ClipClass) => value === 'removed-above' || value === 'removed-below';

/** Tokens whose gradient clipping removed at some epoch, per sample. */
export function clippedTokenCounts(trace: PackedPpoTrace, cliprange: number): Uint32Array {
  const counts = new Uint32Array(trace.numSamples);
  const advantage = trace.values.advantage;
  for (let s = 0; s < trace.numSamples; s++) {
    let count = 0;
    for (let t = trace.tokenStart[s]; t < trace.tokenStart[s + 1]; t++) {
      for (let e = 0; e < trace.numEpochs; e++) {
        if (isRemoved(classifyClip(trace.ratio[e * trace.numTokens + t], advantage[t], cliprange))) {
          count++;
          break;
        }
      }
    }
    counts[s] = count;
  }
  return counts;
}

export interface EpochClipSummary {
  readonly epoch: number;
  /** Tokens with a ratio at this epoch. */
  readonly tokens: number;
  readonly removedAbove: number;
  readonly removedBelow: number;
  readonly outsideKept: number;
  /** (removedAbove + removedBelow) / tokens: the token-weighted `policy/clipfrac`. */
  readonly removedFraction: number;
  /** Tokens outside the band on either side / tokens. */
  readonly outsideFraction: number;
}

export interface TokenStringClipSummary {
  readonly text: string;
  readonly occurrences: number;
  /** Occurrence × epoch pairs whose gradient was removed. */
  readonly removed: number;
  readonly fraction: number;
}

export interface ClipSummary {
  readonly epochs: EpochClipSummary[];
  /** removedByPosition[e][p]: the removed fraction at response position p, epoch e (NaN where no token). */
  readonly removedByPosition: Float64Array[];
  readonly tokensAtPosition: Uint32Array;
  /** Token strings with the most removed occurrences (ties: more occurrences first). */
  readonly byToken: TokenStringClipSummary[];
}

export function summariseClipping(
  trace: PackedPpoTrace,
  cliprange: number,
  tokenText: (t: number) => string,
  topTokens = 20,
): ClipSummary {
  let longest = 0;
  for (let s = 0; s < trace.numSamples; s++) longest = Math.max(longest, trace.tokenStart[s + 1] - trace.tokenStart[s]);
  const tokensAtPosition = new Uint32Array(longest);
  const removedAtPosition = Array.from({ length: trace.numEpochs }, () => new Uint32Array(longest));
  const countedAtPosition = Array.from({ length: trace.numEpochs }, () => new Uint32Array(longest));
  const epochs = Array.from({ length: trace.numEpochs }, (_, epoch) => ({
    epoch,
    tokens: 0,
    removedAbove: 0,
    removedBelow: 0,
    outsideKept: 0,
  }));
  const byText = new Map<string, { occurrences: number; removed: number }>();
  for (let s = 0; s < trace.numSamples; s++) {
    for (let t = trace.tokenStart[s], p = 0; t < trace.tokenStart[s + 1]; t++, p++) {
      tokensAtPosition[p]++;
      const text = tokenText(t);
      const entry = byText.get(text) ?? { occurrences: 0, removed: 0 };
      entry.occurrences++;
      for (let e = 0; e < trace.numEpochs; e++) {
        const cls = classifyClip(trace.ratio[e * trace.numTokens + t], trace.values.advantage[t], cliprange);
        if (cls === 'none') continue;
        const summary = epochs[e];
        summary.tokens++;
        countedAtPosition[e][p]++;
        if (cls === 'removed-above') summary.removedAbove++;
        else if (cls === 'removed-below') summary.removedBelow++;
        else if (cls === 'outside-kept') summary.outsideKept++;
        if (isRemoved(cls)) {
          removedAtPosition[e][p]++;
          entry.removed++;
        }
      }
      byText.set(text, entry);
    }
  }
  const byToken = [...byText.entries()]
    .filter(([, entry]) => entry.removed > 0)
    .map(([text, entry]) => ({
      text,
      occurrences: entry.occurrences,
      removed: entry.removed,
      fraction: entry.removed / (entry.occurrences * Math.max(1, trace.numEpochs)),
    }))
    .sort((a, b) => b.removed - a.removed || b.occurrences - a.occurrences || a.text.localeCompare(b.text))
    .slice(0, topTokens);
  return {
    epochs: epochs.map((e) => ({
      ...e,
      removedFraction: e.tokens === 0 ? 0 : (e.removedAbove + e.removedBelow) / e.tokens,
      outsideFraction: e.tokens === 0 ? 0 : (e.removedAbove + e.removedBelow + e.outsideKept) / e.tokens,
    })),
    removedByPosition: removedAtPosition.map((removed, e) =>
      Float64Array.from(removed, (count, p) =>
        countedAtPosition[e][p] === 0 ? Number.NaN : count / countedAtPosition[e][p],
      ),
    ),
    tokensAtPosition,
    byToken,
  };
}
