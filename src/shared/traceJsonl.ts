/**
 * Per-step traces as JSON Lines, `traces/step-<n>.jsonl` (python/README.md, "traces/step-<n>.jsonl"): what the
 * `rlhf-lens` Python package's RunWriter writes for any trainer. One object per PPO sample, under the field names
 * of the Arrow PPO trace (`PpoTraceRow`); every field but `step` and `sample` may be missing.
 *
 * This turns such lines (one or more files: a step's rank shards, rank 0 first) into the `TraceTable` that
 * `decodeTraceTable` returns for an Arrow file, so the host packs and the dashboard shows both alike. What a
 * writer did not log stays absent, never 0: the table's `columns` lists only the fields some line has, a missing
 * per-token field is an empty list, a missing score NaN, a missing oracle score or clip class null (the dashboard
 * derives clip classes from ratio, advantage and ε, as for a version-1 Arrow trace), and a `null` inside a
 * number list (a NaN or infinity the writer replaced) is NaN.
 *
 * A line that is not a usable sample is skipped and reported as `file:line: field "…" …`; the others are kept.
 *
 * Pure: no `fs`, no Node built-ins (the host reads and gunzips the files).
 */
import type { DecodedTraceRow, TraceTable } from './traceFormat';

/** `run.json`'s `trace_format` for these files, and the version this reader reads. */
export const jsonlTraceFormat = 'rlhf-lens-trace-jsonl';
export const jsonlTraceVersion = '1';

/** One file's text and the name its problems are reported under. */
export interface JsonlTraceSource {
  readonly file: string;
  readonly text: string;
}

export interface JsonlTraceDecoded {
  readonly table: TraceTable;
  /** Skipped lines, as `file:line: reason`. */
  readonly problems: string[];
}

/** The per-token number fields of a PPO sample (one entry per response token). */
const tokenNumberFields = ['logprob', 'ref_logprob', 'kl', 'value', 'reward', 'advantage', 'return', 'entropy'];
/** The fixed columns of a PPO trace, in the Arrow writer's order. */
export const ppoTraceColumns: readonly string[] = [
  'step',
  'sample',
  'prompt',
  'response',
  'score',
  'oracle_score',
  'tokens',
  'token_ids',
  ...tokenNumberFields,
  'ratio',
  'clip_class',
];

type Checked = { ok: true; row: Record<string, unknown> } | { ok: false; reason: string };

const isNumberOrNull = (value: unknown) => value === null || typeof value === 'number';

/** A list of numbers (null → NaN), or undefined when `value` is not one. */
function numberList(value: unknown): number[] | undefined {
  if (!Array.isArray(value) || !value.every(isNumberOrNull)) return undefined;
  return value.map((item: number | null) => (item === null ? Number.NaN : item));
}

/** A list of per-epoch number lists (a flat list is one epoch), or undefined when `value` is not one. */
function epochLists(value: unknown): number[][] | undefined {
  if (!Array.isArray(value)) return undefined;
  if (value.every(isNumberOrNull)) return value.length === 0 ? [] : [numberList(value) as number[]];
  const epochs = value.map(numberList);
  return epochs.every((epoch): epoch is number[] => epoch !== undefined) ? epochs : undefined;
}

/** One parsed line as a PPO row, or why it is not usable. */
function checkLine(value: unknown, fileStep: number | undefined): Checked {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'expected a JSON object (one sample per line)' };
  const line = value as Record<string, unknown>;
  for (const key of ['step', 'sample']) {
    if (typeof line[key] !== 'number' || !Number.isInteger(line[key]) || (line[key] as number) < 0)
      return { ok: false, reason: `field "${key}" must be a whole number ≥ 0, not ${JSON.stringify(line[key])}` };
  }
  if (fileStep !== undefined && line.step !== fileStep)
    return { ok: false, reason: `field "step" is ${String(line.step)} in the file of step ${fileStep}` };
  const row: Record<string, unknown> = { ...line };
  for (const key of ['prompt', 'response']) {
    if (line[key] === undefined || line[key] === null) row[key] = '';
    else if (typeof line[key] !== 'string') return { ok: false, reason: `field "${key}" must be a string` };
  }
  for (const key of ['score', 'oracle_score']) {
    if (line[key] === undefined || line[key] === null) row[key] = key === 'score' ? Number.NaN : null;
    else if (typeof line[key] !== 'number') return { ok: false, reason: `field "${key}" must be a number or null` };
  }
  if (line.tokens === undefined) row.tokens = [];
  else if (!Array.isArray(line.tokens) || !line.tokens.every((token) => typeof token === 'string'))
    return { ok: false, reason: 'field "tokens" must be a list of strings (the text of each token)' };
  if (line.token_ids === undefined) row.token_ids = [];
  else if (!Array.isArray(line.token_ids) || !line.token_ids.every((id) => Number.isInteger(id)))
    return { ok: false, reason: 'field "token_ids" must be a list of whole numbers' };
  for (const key of tokenNumberFields) {
    if (line[key] === undefined) {
      row[key] = [];
      continue;
    }
    const numbers = numberList(line[key]);
    if (numbers === undefined) return { ok: false, reason: `field "${key}" must be a list of numbers (or null)` };
    row[key] = numbers;
  }
  for (const key of ['ratio', 'clip_class']) {
    if (line[key] === undefined) {
      row[key] = key === 'ratio' ? [] : null;
      continue;
    }
    const epochs = epochLists(line[key]);
    if (epochs === undefined)
      return { ok: false, reason: `field "${key}" must be a list of per-epoch lists of numbers (or one flat list)` };
    row[key] = epochs;
  }
  // Every per-token list of the sample is as long as its tokens.
  const lengths: [string, number][] = [];
  for (const key of ['tokens', 'token_ids', ...tokenNumberFields])
    if (line[key] !== undefined) lengths.push([key, (row[key] as unknown[]).length]);
  for (const key of ['ratio', 'clip_class'])
    ((row[key] as number[][] | null) ?? []).forEach((epoch, e) => lengths.push([`${key}[${e}]`, epoch.length]));
  const [first, ...others] = lengths;
  const other = others.find(([, length]) => length !== first[1]);
  if (other)
    return {
      ok: false,
      reason: `field "${other[0]}" has ${other[1]} entries but "${first[0]}" has ${first[1]} (one per response token)`,
    };
  return { ok: true, row };
}

/**
 * Decodes a step's JSONL trace files into one PPO table. `sources` are the step's files in rank order (rank 0,
 * i.e. the unsharded file, first); their rows are kept in that order, and a sample number already taken by an
 * earlier file or line is renumbered to one past the largest so far (the row keeps its `rank` field). `step`, when
 * given, is the step the file names say: a line of another step is skipped.
 */
export function decodeJsonlTrace(sources: readonly JsonlTraceSource[], step?: number): JsonlTraceDecoded {
  const problems: string[] = [];
  const rows: Record<string, unknown>[] = [];
  const present = new Set<string>(['step', 'sample']);
  const taken = new Set<number>();
  let largest = -1;
  for (const { file, text } of sources) {
    const lines = text.split('\n');
    // A file ends with a newline: the empty string after it is not a line.
    if (lines.at(-1) === '') lines.pop();
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        problems.push(`${file}:${index + 1}: not valid JSON (${(error as Error).message})`);
        return;
      }
      const checked = checkLine(value, step);
      if (!checked.ok) {
        problems.push(`${file}:${index + 1}: ${checked.reason}; line skipped`);
        return;
      }
      const row = checked.row;
      for (const key of Object.keys(value as object)) present.add(key);
      let sample = row.sample as number;
      if (taken.has(sample)) sample = largest + 1;
      row.sample = sample;
      taken.add(sample);
      largest = Math.max(largest, sample);
      rows.push(row);
    });
  }
  const columns = [
    ...ppoTraceColumns.filter((column) => present.has(column)),
    ...[...present].filter((column) => !ppoTraceColumns.includes(column)),
  ];
  const numRows = rows.length;
  const row = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= numRows)
      throw new RangeError(`Row ${index} is outside the trace's ${numRows} rows.`);
    return { ...rows[index] } as DecodedTraceRow<'ppo'>;
  };
  return { table: { kind: 'ppo', version: `jsonl-${jsonlTraceVersion}`, numRows, columns, row }, problems };
}
