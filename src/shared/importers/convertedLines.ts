/**
 * The loop every JSONL importer shares: each line of another engine's file parsed as Python writes JSON (NaN,
 * Infinity), converted by the importer into a line of the lens's own trace format (shared/traceJsonl.ts), and a
 * line that does not parse or convert reported as `file:line: …; line skipped` while the others are kept.
 */
import type { TraceTable } from '../traceFormat';
import { decodeJsonlTrace, ppoTraceColumns } from '../traceJsonl';
import { parsePythonJson } from './pythonJson';

/** An importer's verdict on one parsed line: the lens's line (with `extra`, e.g. its step) or why it is skipped. */
export type Converted<Extra = object> =
  ({ ok: true; line: Record<string, unknown> } & Extra) | { ok: false; reason: string };

/**
 * The names an engine's own extra column cannot keep: the lens's PPO trace columns and those importers add (`rank`,
 * `ground_truth`, `sample_advantage`). An importer keeps such a column under a prefix of its own (`trl_kl`).
 */
export const reservedColumns: ReadonlySet<string> = new Set([
  ...ppoTraceColumns,
  'rank',
  'ground_truth',
  'sample_advantage',
]);

/** One imported step: its table and the lines skipped, as `file:line: field "…" …; line skipped`. */
export interface ImportedStep {
  readonly table: TraceTable;
  readonly problems: string[];
}

/**
 * Each line of `text` (from `file`) through `convert`: index i of the result is line i + 1's conversion, undefined
 * where the line is blank or skipped (then named in `problems`).
 */
export function convertPythonJsonLines<Extra>(
  file: string,
  text: string,
  convert: (value: unknown, lineIndex: number) => Converted<Extra>,
  problems: string[],
): (Extract<Converted<Extra>, { ok: true }> | undefined)[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((raw, index) => {
    if (raw.trim() === '') return undefined;
    let value: unknown;
    try {
      value = parsePythonJson(raw);
    } catch (error) {
      problems.push(`${file}:${index + 1}: not valid JSON (${(error as Error).message}); line skipped`);
      return undefined;
    }
    const result = convert(value, index);
    if (!result.ok) {
      problems.push(`${file}:${index + 1}: ${result.reason}; line skipped`);
      return undefined;
    }
    return result as Extract<Converted<Extra>, { ok: true }>;
  });
}

/**
 * One file holding one step (NeMo-RL's, verl's dumps) decoded into a PPO trace table of `version`. Each lens line
 * keeps its file line's position (a blank line where one was skipped), so decodeJsonlTrace's line numbers are the
 * file's.
 */
export function decodeConvertedJsonl(
  file: string,
  text: string,
  step: number,
  version: string,
  convert: (value: unknown, lineIndex: number) => Converted,
): ImportedStep {
  const problems: string[] = [];
  const converted = convertPythonJsonLines(file, text, convert, problems);
  const lensText = converted.map((result) => (result ? JSON.stringify(result.line) : '')).join('\n');
  const decoded = decodeJsonlTrace([{ file, text: lensText }], step);
  return { table: { ...decoded.table, version } as TraceTable, problems: [...problems, ...decoded.problems] };
}
