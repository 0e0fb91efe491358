/**
 * A PPO step's trace packed into flat typed arrays for the dashboard webview: one array per
 * per-token quantity over all samples' tokens, plus offsets. `postMessage` moves typed arrays
 * without JSON, and the webview's heatmap reads token `t` of sample `s` at `tokenStart[s] + t`
 * without allocating per-row objects (1,024 samples × 256 tokens is 262,144 tokens).
 *
 * Pure: the host packs what `decodeTraceTable` reads; tests and the benchmark pack synthetic rows.
 */
import type { PpoTraceRowAsRead } from './traceFormat';

/** The per-token scalars of a PPO trace row, in the order the dashboard lists them. */
export const tokenFields = [
  'reward',
  'kl',
  'value',
  'advantage',
  'return',
  'entropy',
  'logprob',
  'ref_logprob',
] as const;
export type TokenField = (typeof tokenFields)[number];

export interface PackedPpoTrace {
  readonly step: number;
  readonly numSamples: number;
  readonly numTokens: number;
  /** The largest number of PPO epochs any sample has; missing epochs hold NaN ratios. */
  readonly numEpochs: number;
  /** The trace's `sample` column, per row. */
  readonly sample: Int32Array;
  readonly prompts: string[];
  readonly score: Float32Array;
  /** NaN where the task has no oracle. */
  readonly oracleScore: Float32Array;
  /** Sample s's tokens are tokenStart[s] … tokenStart[s + 1] − 1 (length numSamples + 1). */
  readonly tokenStart: Uint32Array;
  /** Every token's text, concatenated; token t is tokenText.slice(tokenTextStart[t], tokenTextStart[t + 1]). */
  readonly tokenText: string;
  readonly tokenTextStart: Uint32Array;
  /** `noTokenId` where the trace has no id for the token (a JSONL trace without `token_ids`). */
  readonly tokenIds: Int32Array;
  readonly values: { readonly [F in TokenField]: Float32Array };
  /** ratio[e · numTokens + t]: π_θ/π_old of token t at PPO epoch e. */
  readonly ratio: Float32Array;
  /**
   * clipClass[e · numTokens + t]: the trace's `clip_class` (src/core `ClipClass`: 0 inside the band, 1 outside
   * with the gradient kept, 2 clipped — gradient removed), `noClipClass` where the sample has no ratio at
   * epoch e; null for a version-1 trace, which has no `clip_class` (the dashboard derives it and says so).
   */
  readonly clipClass: Int8Array | null;
  /**
   * The trace's fields no row has (absent, not 0: their packed values are NaN), among `packedFields`; e.g.
   * `['kl', 'value', …]` for a NeMo-RL dump. Empty for the lens's own Arrow traces, which have every column.
   */
  readonly absent: readonly PackedField[];
  /**
   * The `response` text of each sample that has no tokens ('' for the others): another engine's rows (a TRL
   * completions table, a verl dump) have the response as text only, and it must still be shown. Absent when every
   * sample has tokens (the lens's own traces).
   */
  readonly untokenizedResponses?: readonly string[];
}

/** The fields whose absence the dashboard explains: the per-token scalars, token text and ids, ratio and clip class. */
export const packedFields = [...tokenFields, 'tokens', 'token_ids', 'ratio', 'clip_class', 'score'] as const;
export type PackedField = (typeof packedFields)[number];

/** The packed text of a token whose text the trace lacks but whose id it has (until a tokenizer decodes it). */
export const idTokenText = (id: number) => `#${id}`;

/** The packed id of a token whose id the trace does not have (never 0, a real id). */
export const noTokenId = -1;

/** The packed `clipClass` of a token without a ratio at that epoch. */
export const noClipClass = -1;

/**
 * A row's token count: its token texts, or (a trace of another engine without texts) its ids or per-token values.
 */
function tokenCount(row: PpoTraceRowAsRead): number {
  if (row.tokens.length > 0) return row.tokens.length;
  return Math.max(row.token_ids.length, ...tokenFields.map((field) => row[field].length));
}

/**
 * Packs rows (in file order) of one step's PPO trace. `columns`: the table's columns when it may lack some (a
 * JSONL trace, another engine's); a field not among them is listed in `absent`. Without it every field is present.
 */
export function packPpoTrace(
  step: number,
  rowCount: number,
  rowAt: (index: number) => PpoTraceRowAsRead,
  columns?: readonly string[],
): PackedPpoTrace {
  const rows: PpoTraceRowAsRead[] = [];
  let numTokens = 0;
  let numEpochs = 0;
  for (let i = 0; i < rowCount; i++) {
    const row = rowAt(i);
    rows.push(row);
    numTokens += tokenCount(row);
    numEpochs = Math.max(numEpochs, row.ratio.length);
  }
  const tokenStart = new Uint32Array(rowCount + 1);
  const tokenTextStart = new Uint32Array(numTokens + 1);
  const tokenIds = new Int32Array(numTokens);
  const values = Object.fromEntries(tokenFields.map((field) => [field, new Float32Array(numTokens)])) as {
    [F in TokenField]: Float32Array;
  };
  const ratio = new Float32Array(numEpochs * numTokens).fill(Number.NaN);
  // A file has clip_class in every row or in none (it is a required column of version 2).
  const clipClass = rows.every((row) => row.clip_class !== null)
    ? new Int8Array(numEpochs * numTokens).fill(noClipClass)
    : null;
  const texts: string[] = [];
  let textLength = 0;
  let t = 0;
  rows.forEach((row, s) => {
    tokenStart[s] = t;
    const count = tokenCount(row);
    for (let i = 0; i < count; i++, t++) {
      tokenTextStart[t] = textLength;
      const text = row.tokens[i] ?? (row.token_ids[i] === undefined ? '' : idTokenText(row.token_ids[i]));
      texts.push(text);
      textLength += text.length;
      tokenIds[t] = row.token_ids[i] ?? noTokenId;
      for (const field of tokenFields) values[field][t] = row[field][i];
      for (let e = 0; e < row.ratio.length; e++) {
        ratio[e * numTokens + t] = row.ratio[e][i];
        if (clipClass) clipClass[e * numTokens + t] = row.clip_class?.[e]?.[i] ?? noClipClass;
      }
    }
  });
  tokenStart[rowCount] = t;
  tokenTextStart[numTokens] = textLength;
  const untokenized = rows.map((row, s) =>
    tokenStart[s] === tokenStart[s + 1] && typeof row.response === 'string' ? row.response : '',
  );
  return {
    step,
    numSamples: rowCount,
    numTokens,
    numEpochs,
    sample: Int32Array.from(rows, (row) => row.sample),
    prompts: rows.map((row) => row.prompt),
    score: Float32Array.from(rows, (row) => row.score),
    oracleScore: Float32Array.from(rows, (row) => row.oracle_score ?? Number.NaN),
    tokenStart,
    tokenText: texts.join(''),
    tokenTextStart,
    tokenIds,
    values,
    ratio,
    clipClass,
    absent: columns ? packedFields.filter((field) => !columns.includes(field)) : [],
    ...(untokenized.some((text) => text !== '') ? { untokenizedResponses: untokenized } : {}),
  };
}

/** The text of token t. */
export function tokenTextAt(trace: PackedPpoTrace, t: number): string {
  return trace.tokenText.slice(trace.tokenTextStart[t], trace.tokenTextStart[t + 1]);
}

/** The response text of sample s: its tokens' text joined, or the response a sample without tokens has as text. */
export function responseText(trace: PackedPpoTrace, s: number): string {
  if (trace.tokenStart[s] === trace.tokenStart[s + 1]) return trace.untokenizedResponses?.[s] ?? '';
  return trace.tokenText.slice(
    trace.tokenTextStart[trace.tokenStart[s]],
    trace.tokenTextStart[trace.tokenStart[s + 1]],
  );
}
