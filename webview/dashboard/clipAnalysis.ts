/**
 * PPO's ratio clipping, token by token, as the dashboard draws it. The class of each token is core's
 * (`classifyClip`, src/core/clipClass.ts: inside the band; outside with the gradient kept; clipped —
 * gradient removed, the tokens `policy/clipfrac_avg` counts), read from the trace's `clip_class`
 * column. A version-1 trace predates that column: its classes are derived here with the same function
 * from the stored ratio and advantage and the run's ε, and every view says so. Without ε in the run's
 * header they are unknown, and the views say why instead of assuming one.
 */
import { ClipClass, classifyClip } from '../../src/core';
import type { RunSetting } from '../../src/shared/dashboardMessages';
import { noClipClass, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { formatNumber } from './colorScale';

/** Where a trace's clip classes come from. `classes[e · numTokens + t]` as `PackedPpoTrace.clipClass`. */
export type TraceClipClasses =
  | { readonly origin: 'recorded'; readonly classes: Int8Array }
  | { readonly origin: 'derived'; readonly classes: Int8Array; readonly cliprange: number; readonly source: string }
  | { readonly origin: 'unknown'; readonly reason: string };

/** The trace's own classes, or (version 1) classes derived from its ratio and advantage with the run's ε. */
export function traceClipClasses(trace: PackedPpoTrace, cliprange: RunSetting<number> | undefined): TraceClipClasses {
  if (trace.clipClass) return { origin: 'recorded', classes: trace.clipClass };
  // No epoch (an inspection run trains nothing): no class to record or derive, whatever the version.
  if (trace.numEpochs === 0) return { origin: 'recorded', classes: new Int8Array(0) };
  const before = 'this trace was written before the clip_class column (trace format 1)';
  if (cliprange === undefined) return { origin: 'unknown', reason: `${before}, and the run's header has not arrived` };
  if (cliprange.value === undefined)
    return { origin: 'unknown', reason: `${before}, and the run's header has no cliprange (${cliprange.missing})` };
  const { numTokens } = trace;
  const classes = new Int8Array(trace.numEpochs * numTokens).fill(noClipClass);
  for (let e = 0; e < trace.numEpochs; e++) {
    for (let t = 0; t < numTokens; t++) {
      const ratio = trace.ratio[e * numTokens + t];
      const advantage = trace.values.advantage[t];
      // No ratio at this epoch (NaN padding), or a NaN the trainer wrote: no class rather than a wrong one.
      if (!Number.isNaN(ratio) && !Number.isNaN(advantage))
        classes[e * numTokens + t] = classifyClip(ratio, advantage, cliprange.value);
    }
  }
  return { origin: 'derived', classes, cliprange: cliprange.value, source: cliprange.source };
}

/** One line on where the classes come from, for tooltips, legends and the Clipping tab. */
export function clipClassesOrigin(classes: TraceClipClasses): string {
  switch (classes.origin) {
    case 'recorded':
      return 'from the trace’s clip_class column';
    case 'derived':
      return (
        `derived from ratio, advantage and ε = ${formatNumber(classes.cliprange)} (${classes.source}): ` +
        'this trace was written before the clip_class column (trace format 1)'
      );
    case 'unknown':
      return `unknown: ${classes.reason}`;
  }
}

/** "band [0.8, 1.2] (ε = 0.2)", or why ε is unknown. */
export function bandText(cliprange: RunSetting<number> | undefined): string {
  if (cliprange === undefined) return 'ε not known yet';
  if (cliprange.value === undefined) return `ε unknown (${cliprange.missing})`;
  const cliprangeValue = cliprange.value;
  return (
    `band [${formatNumber(1 - cliprangeValue)}, ${formatNumber(1 + cliprangeValue)}] (ε = ` +
    `${formatNumber(cliprangeValue)})`
  );
}

/** What one token at one epoch is drawn as: core's class, with the band's side for clipped tokens. */
export type ClipCell = 'inside' | 'clipped-above' | 'clipped-below' | 'outside-kept' | 'none' | 'unknown';

export const clipCellLabels: Record<ClipCell, string> = {
  inside: 'inside the band',
  'clipped-above': 'clipped: A > 0 and r > 1 + ε, gradient removed',
  'clipped-below': 'clipped: A < 0 and r < 1 − ε, gradient removed',
  'outside-kept': 'outside the band, gradient kept',
  none: 'no ratio at this epoch',
  unknown: 'clip class unknown',
};

export const isClipped = (cell: ClipCell) => cell === 'clipped-above' || cell === 'clipped-below';

/** Token t at epoch e. A clipped token is above the band exactly when its ratio is above 1. */
export function clipCellAt(trace: PackedPpoTrace, classes: TraceClipClasses, epoch: number, t: number): ClipCell {
  if (classes.origin === 'unknown') return 'unknown';
  const index = epoch * trace.numTokens + t;
  switch (classes.classes[index]) {
    case ClipClass.inside:
      return 'inside';
    case ClipClass.outsideKept:
      return 'outside-kept';
    case ClipClass.clipped:
      return trace.ratio[index] > 1 ? 'clipped-above' : 'clipped-below';
    default:
      return 'none';
  }
}

/** Tokens whose gradient clipping removed at some epoch, per sample; NaN for every sample when unknown. */
export function clippedTokenCounts(trace: PackedPpoTrace, classes: TraceClipClasses): Float64Array {
  const counts = new Float64Array(trace.numSamples);
  if (classes.origin === 'unknown') return counts.fill(Number.NaN);
  for (let s = 0; s < trace.numSamples; s++) {
    let count = 0;
    for (let t = trace.tokenStart[s]; t < trace.tokenStart[s + 1]; t++) {
      for (let e = 0; e < trace.numEpochs; e++) {
        if (classes.classes[e * trace.numTokens + t] === ClipClass.clipped) {
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
  /** Tokens with a class at this epoch. */
  readonly tokens: number;
  readonly clippedAbove: number;
  readonly clippedBelow: number;
  readonly outsideKept: number;
  /** (clippedAbove + clippedBelow) / tokens: the token-weighted `policy/clipfrac`. */
  readonly clippedFraction: number;
  /** Tokens outside the band on either side / tokens. */
  readonly outsideFraction: number;
}

export interface TokenStringClipSummary {
  readonly text: string;
  readonly occurrences: number;
  /** Occurrence × epoch pairs whose gradient was removed. */
  readonly clipped: number;
  readonly fraction: number;
}

export interface ClipSummary {
  readonly epochs: EpochClipSummary[];
  /** clippedByPosition[e][p]: the clipped fraction at response position p, epoch e (NaN where no token). */
  readonly clippedByPosition: Float64Array[];
  readonly tokensAtPosition: Uint32Array;
  /** Token strings with the most clipped occurrences (ties: more occurrences first). */
  readonly byToken: TokenStringClipSummary[];
}

/** Per epoch, per response position and per token string; undefined when the classes are unknown. */
export function summariseClipping(
  trace: PackedPpoTrace,
  classes: TraceClipClasses,
  tokenText: (t: number) => string,
  topTokens = 20,
): ClipSummary | undefined {
  if (classes.origin === 'unknown') return undefined;
  let longest = 0;
  for (let s = 0; s < trace.numSamples; s++) longest = Math.max(longest, trace.tokenStart[s + 1] - trace.tokenStart[s]);
  const tokensAtPosition = new Uint32Array(longest);
  const clippedAtPosition = Array.from({ length: trace.numEpochs }, () => new Uint32Array(longest));
  const countedAtPosition = Array.from({ length: trace.numEpochs }, () => new Uint32Array(longest));
  const epochs = Array.from({ length: trace.numEpochs }, (_, epoch) => ({
    epoch,
    tokens: 0,
    clippedAbove: 0,
    clippedBelow: 0,
    outsideKept: 0,
  }));
  const byText = new Map<string, { occurrences: number; clipped: number }>();
  for (let s = 0; s < trace.numSamples; s++) {
    for (let t = trace.tokenStart[s], p = 0; t < trace.tokenStart[s + 1]; t++, p++) {
      tokensAtPosition[p]++;
      const text = tokenText(t);
      const entry = byText.get(text) ?? { occurrences: 0, clipped: 0 };
      entry.occurrences++;
      for (let e = 0; e < trace.numEpochs; e++) {
        const cell = clipCellAt(trace, classes, e, t);
        if (cell === 'none') continue;
        const summary = epochs[e];
        summary.tokens++;
        countedAtPosition[e][p]++;
        if (cell === 'clipped-above') summary.clippedAbove++;
        else if (cell === 'clipped-below') summary.clippedBelow++;
        else if (cell === 'outside-kept') summary.outsideKept++;
        if (isClipped(cell)) {
          clippedAtPosition[e][p]++;
          entry.clipped++;
        }
      }
      byText.set(text, entry);
    }
  }
  const byToken = [...byText.entries()]
    .filter(([, entry]) => entry.clipped > 0)
    .map(([text, entry]) => ({
      text,
      occurrences: entry.occurrences,
      clipped: entry.clipped,
      fraction: entry.clipped / (entry.occurrences * Math.max(1, trace.numEpochs)),
    }))
    .sort((a, b) => b.clipped - a.clipped || b.occurrences - a.occurrences || a.text.localeCompare(b.text))
    .slice(0, topTokens);
  return {
    epochs: epochs.map((e) => ({
      ...e,
      clippedFraction: e.tokens === 0 ? 0 : (e.clippedAbove + e.clippedBelow) / e.tokens,
      outsideFraction: e.tokens === 0 ? 0 : (e.clippedAbove + e.clippedBelow + e.outsideKept) / e.tokens,
    })),
    clippedByPosition: clippedAtPosition.map((clipped, e) =>
      Float64Array.from(clipped, (count, p) =>
        countedAtPosition[e][p] === 0 ? Number.NaN : count / countedAtPosition[e][p],
      ),
    ),
    tokensAtPosition,
    byToken,
  };
}
