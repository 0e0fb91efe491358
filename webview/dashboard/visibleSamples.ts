/**
 * The Rollouts tab's rows as data, with no DOM: each sample's numbers (score, oracle score, summed KL,
 * length, clipped tokens, search text), the fields a row can be sorted and filtered by, and the query
 * that picks and orders the rows to show.
 */
import { responseText, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { clippedTokenCounts, type TraceClipClasses } from './clipAnalysis';

/** A per-sample number the rows show: what they can be sorted by, and (all but `sample`) filtered by. */
export type SampleField = 'sample' | 'score' | 'oracle' | 'kl' | 'length' | 'clipped';
export type SortKey = SampleField;
/** The sample's index is an order, not a quantity: the filter leaves it out. */
export type FilterKey = Exclude<SampleField, 'sample'>;
/** Each field's name in the sort and filter controls. */
export const sampleFieldLabels: Record<SampleField, string> = {
  sample: 'sample',
  score: 'score',
  oracle: 'oracle score',
  kl: 'KL (sum)',
  length: 'length',
  clipped: 'clipped tokens',
};

/** Per-sample numbers the rows show and the sort and filter use. */
export interface SampleStats {
  readonly score: Float32Array;
  readonly oracle: Float32Array;
  readonly kl: Float64Array;
  readonly length: Uint32Array;
  /** Tokens clipped at some epoch; NaN when the trace's clip classes are unknown. */
  readonly clipped: Float64Array;
  readonly searchText: string[];
}

export function sampleStats(trace: PackedPpoTrace, clipClasses: TraceClipClasses): SampleStats {
  const kl = new Float64Array(trace.numSamples);
  const length = new Uint32Array(trace.numSamples);
  const klAbsent = trace.absent.includes('kl');
  for (let s = 0; s < trace.numSamples; s++) {
    let sum = 0;
    for (let t = trace.tokenStart[s]; t < trace.tokenStart[s + 1]; t++) sum += trace.values.kl[t];
    // A trace without KL (another engine's) has no sum to show, even for a sample without tokens: not 0.
    kl[s] = klAbsent ? Number.NaN : sum;
    length[s] = trace.tokenStart[s + 1] - trace.tokenStart[s];
  }
  return {
    score: trace.score,
    oracle: trace.oracleScore,
    kl,
    length,
    // Neither ratios nor clip classes logged (another engine's trace): how many were clipped is unknown, not 0.
    clipped:
      trace.absent.includes('ratio') && trace.absent.includes('clip_class')
        ? new Float64Array(trace.numSamples).fill(Number.NaN)
        : clippedTokenCounts(trace, clipClasses),
    searchText: Array.from({ length: trace.numSamples }, (_, s) =>
      `${trace.prompts[s]}\u0000${responseText(trace, s)}`.toLowerCase(),
    ),
  };
}

export function sampleValue(stats: SampleStats, trace: PackedPpoTrace, field: SampleField, s: number): number {
  switch (field) {
    case 'sample':
      return trace.sample[s];
    case 'score':
      return stats.score[s];
    case 'oracle':
      return stats.oracle[s];
    case 'kl':
      return stats.kl[s];
    case 'length':
      return stats.length[s];
    case 'clipped':
      return stats.clipped[s];
  }
}

/** Which rows to show and in what order: the sort, search and filter controls' choices. */
export interface RowQuery {
  readonly sortKey: SortKey;
  readonly descending: boolean;
  readonly search: string;
  readonly filterKey: FilterKey;
  readonly min: number;
  readonly max: number;
}

/** The sample indices to show, filtered then sorted (NaN values last, ties by sample). */
export function visibleSamples(trace: PackedPpoTrace, stats: SampleStats, query: RowQuery): number[] {
  const needle = query.search.trim().toLowerCase();
  const rows: number[] = [];
  for (let s = 0; s < trace.numSamples; s++) {
    if (needle && !stats.searchText[s].includes(needle)) continue;
    const value = sampleValue(stats, trace, query.filterKey, s);
    if (value < query.min || value > query.max) continue;
    if ((Number.isFinite(query.min) || Number.isFinite(query.max)) && Number.isNaN(value)) continue;
    rows.push(s);
  }
  const sign = query.descending ? -1 : 1;
  return rows.sort((a, b) => {
    const va = sampleValue(stats, trace, query.sortKey, a);
    const vb = sampleValue(stats, trace, query.sortKey, b);
    if (Number.isNaN(va) !== Number.isNaN(vb)) return Number.isNaN(va) ? 1 : -1;
    return sign * (va - vb) || trace.sample[a] - trace.sample[b];
  });
}
