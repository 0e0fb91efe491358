/**
 * RL Logging Board runs (the per-token format used with OpenRLHF): a folder of `*.jsonl` files, one per rank
 * (by convention `rollout_data_rank<r>.jsonl` or `rollout_data_rank_<r>_<pid>.jsonl`), each appended to every
 * step, so one file holds many steps.
 *
 * - Reader: `load_log_file` in OpenRLHF/OpenRLHF, openrlhf/utils/rl_logging_board/rl_logging_board.py (the
 *   board itself, a Streamlit app): every `*.jsonl` of the folder, one JSON object per line, grouped by
 *   `int(data["step"])`; per-sample `prompt`, `response`, `reward`, optional `ref_response`, `ref_reward`,
 *   `valid_reward`, `ref_valid_reward`; per token `response_tokens` (the text of each response token),
 *   `logprobs`, `ref_logprobs`, `values`, `token_rewards`. From `logprobs` and `ref_logprobs` the board derives
 *   `log_ratio = logprobs − ref_logprobs` (its default "KL" chart, "Use LogP as KL") and
 *   `kl = exp(log_ratio) − 1 − log_ratio` (the k3 estimator). Where `response_tokens` is longer than `logprobs`
 *   it cuts the tokens to the log-probs' length (padding or clipped response tokens). A line it cannot read is
 *   counted as an error and skipped.
 * - Writer (one of them): `RLLoggingBoardLogger.log` in a verl fork (DeepEyes, verl/utils/rl_logging_board_utils.py)
 *   appends `json.dumps(cur_sample, ensure_ascii=False) + "\n"` per sample with `step`, `prompt`, `response`,
 *   `response_tokens` (`tokenizer.decode([token])` of each valid response id), `logprobs` (old_log_probs),
 *   `ref_logprobs` (ref_log_prob), `token_rewards` (token_level_rewards, with the KL penalty), `reward`
 *   (token_level_scores summed, without it), optional `values` and `ground_truth`.
 *
 * Each line becomes a lens PPO trace row of its step (the rows `decodeJsonlTrace` reads, src/shared/traceJsonl.ts):
 * `tokens` ← response_tokens (a list of ids instead goes to `token_ids`), `logprob` ← logprobs, `ref_logprob` ←
 * ref_logprobs, `value` ← values, `reward` ← token_rewards, `score` ← reward; extra per-sample columns
 * `ref_response`, `ref_reward`, `valid_reward`, `ref_valid_reward`, `rank` (from the file name) and any other field
 * the writer added (`ground_truth`, …). A step's rows are in file order (rank order), numbered from 0.
 *
 * `kl` is left absent: the board's `kl` is k3, not the trainer's estimator, and it is not in the file; the lens
 * has `logprob` and `ref_logprob` to derive one. Not in the format at all, so absent (never 0): `advantage`,
 * `return`, `entropy`, `ratio`, `clip_class`, `oracle_score`.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { TraceTable } from '../traceFormat';
import { decodeJsonlTrace } from '../traceJsonl';
import { convertPythonJsonLines, reservedColumns, type Converted as BaseConverted } from './convertedLines';
import { readImportedFile } from './readText';
import type { NotLoggedField } from '../dashboardMessages';

/** What an RL Logging Board file does not hold (the comment above), as the dashboard explains it. */
export const rlLoggingBoardNotLogged: readonly NotLoggedField[] = [
  {
    field: 'kl',
    how:
      'not in the format (the board derives k3 from logprobs and ref_logprobs): ' +
      "log the trainer's KL with rlhf_lens.RunWriter",
  },
  ...['advantage', 'return', 'entropy', 'ratio', 'clip_class'].map((field) => ({
    field,
    how: 'not in the RL Logging Board format: the rlhf_lens OpenRLHF adapter (python/rlhf_lens/adapters) logs it',
  })),
  { field: 'metrics', how: 'the format has no training metrics: log them with rlhf_lens.RunWriter (metrics.jsonl)' },
];

/** One file's text and the name its problems are reported under. */
export interface BoardSource {
  readonly file: string;
  readonly text: string;
}

export interface BoardDecoded {
  /** The steps that have rows, ascending. */
  readonly steps: number[];
  /** Each step's rows as a PPO trace table. */
  readonly tables: Map<number, TraceTable>;
  /** Skipped lines, as `file:line: field "…" …; line skipped`. */
  readonly problems: string[];
}

/** Board field → lens per-token field. */
const tokenFields: [string, string][] = [
  ['logprobs', 'logprob'],
  ['ref_logprobs', 'ref_logprob'],
  ['values', 'value'],
  ['token_rewards', 'reward'],
];
/** Board per-sample number fields kept under their own names. */
const sampleNumberFields = ['ref_reward', 'valid_reward', 'ref_valid_reward'];
/** Fields taken care of; any other is passed through as an extra column (unless it is one of the lens's). */
const handled = new Set([
  'step',
  'prompt',
  'response',
  'ref_response',
  'reward',
  'response_tokens',
  ...tokenFields.map(([from]) => from),
  ...sampleNumberFields,
]);
const isNumberOrNull = (value: unknown) => value === null || typeof value === 'number';

type Converted = BaseConverted<{ step: number }>;

/** The board's `int(data["step"])`: a whole number, or a string of one. */
function stepOf(value: unknown): number | undefined {
  const step = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  return typeof step === 'number' && Number.isInteger(step) && step >= 0 ? step : undefined;
}

/** One board line (parsed) as a line of the lens's JSONL trace (sample set later), or why it is not usable. */
function convertLine(value: unknown, rank: number | undefined): Converted {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'expected a JSON object (one sample per line)' };
  const board = value as Record<string, unknown>;
  const step = stepOf(board.step);
  if (step === undefined)
    return { ok: false, reason: `field "step" must be a whole number ≥ 0, not ${JSON.stringify(board.step)}` };
  const line: Record<string, unknown> = { step };
  if (rank !== undefined) line.rank = rank;
  for (const key of ['prompt', 'response', 'ref_response']) {
    if (board[key] === undefined || board[key] === null) continue;
    if (typeof board[key] !== 'string') return { ok: false, reason: `field "${key}" must be a string` };
    line[key] = board[key];
  }
  for (const [from, to] of [['reward', 'score'], ...sampleNumberFields.map((key) => [key, key])]) {
    if (board[from] === undefined) continue;
    if (!isNumberOrNull(board[from]))
      return { ok: false, reason: `field "${from}" must be a number, not ${JSON.stringify(board[from])}` };
    line[to] = board[from];
  }
  const lengths: [string, number][] = [];
  for (const [from, to] of tokenFields) {
    if (board[from] === undefined) continue;
    const list = board[from];
    if (!Array.isArray(list) || !list.every(isNumberOrNull))
      return { ok: false, reason: `field "${from}" must be a list of numbers (one per response token)` };
    line[to] = list;
    lengths.push([from, list.length]);
  }
  const [first, ...others] = lengths;
  const other = others.find(([, length]) => length !== first[1]);
  if (other)
    return {
      ok: false,
      reason: `field "${other[0]}" has ${other[1]} entries but "${first[0]}" has ${first[1]} (one per response token)`,
    };
  if (board.response_tokens !== undefined) {
    const tokens = board.response_tokens;
    const isTexts = Array.isArray(tokens) && tokens.every((token) => typeof token === 'string');
    const isIds = Array.isArray(tokens) && tokens.every((token) => Number.isInteger(token));
    if (!isTexts && !isIds)
      return { ok: false, reason: 'field "response_tokens" must be a list of strings (the text of each token)' };
    // As the board does: tokens beyond the log-probs (padding, clipped tokens) are cut off.
    const count = first === undefined ? tokens.length : first[1];
    if (tokens.length < count)
      return {
        ok: false,
        reason: `field "response_tokens" has ${tokens.length} entries but "${first[0]}" has ${count}`,
      };
    line[isTexts && tokens.length > 0 ? 'tokens' : 'token_ids'] = tokens.slice(0, count);
  }
  // A board line's ground truth is the lens's `ground_truth` (the verl importer's too); other names the lens
  // uses are kept under `board_<name>`.
  for (const [key, extra] of Object.entries(board))
    if (!handled.has(key)) line[reservedColumns.has(key) && key !== 'ground_truth' ? `board_${key}` : key] = extra;
  return { ok: true, step, line };
}

/** The rank a file's name gives (`…rank<r>…`, `…rank_<r>…`), if any. */
export function rankOfFile(file: string): number | undefined {
  const match = /rank_?(\d+)/.exec(path.basename(file));
  return match ? Number(match[1]) : undefined;
}

/**
 * Decodes an RL Logging Board folder's files (in rank order) into one PPO trace table per step, merging the
 * files' rows of each step. A malformed line is skipped and reported as `file:line: …`; the others are kept.
 */
export function decodeRlLoggingBoard(sources: readonly BoardSource[]): BoardDecoded {
  const problems: string[] = [];
  const byStep = new Map<number, Map<string, string[]>>();
  for (const { file, text } of sources) {
    const rank = rankOfFile(file);
    for (const result of convertPythonJsonLines(file, text, (value) => convertLine(value, rank), problems)) {
      if (!result) continue;
      const files = byStep.get(result.step) ?? new Map<string, string[]>();
      byStep.set(result.step, files);
      const stepLines = files.get(file) ?? [];
      files.set(file, stepLines);
      stepLines.push(JSON.stringify(result.line));
    }
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const tables = new Map<number, TraceTable>();
  for (const step of steps) {
    let sample = 0;
    const stepSources = [...(byStep.get(step) as Map<string, string[]>)].map(([file, lines]) => ({
      file,
      // Samples numbered across the step's files; every line was checked above, so decodeJsonlTrace keeps all.
      text: lines.map((line) => line.replace(/^\{/, `{"sample":${sample++},`)).join('\n'),
    }));
    const decoded = decodeJsonlTrace(stepSources, step);
    problems.push(...decoded.problems);
    tables.set(step, { ...decoded.table, version: 'rl-logging-board-jsonl' } as TraceTable);
  }
  return { steps, tables, problems };
}

/** The `*.jsonl` files of a board folder, in rank order (then by name). */
export async function listRlLoggingBoardFiles(folder: string): Promise<string[]> {
  const names = (await readdir(folder)).filter((name) => name.endsWith('.jsonl'));
  const key = (name: string) => rankOfFile(name) ?? Number.POSITIVE_INFINITY;
  return names.sort((a, b) => key(a) - key(b) || (a < b ? -1 : a > b ? 1 : 0)).map((name) => path.join(folder, name));
}

/** Reads and decodes every file of a board folder; a file gone while read is a UserError naming it. */
export async function readRlLoggingBoard(folder: string): Promise<BoardDecoded> {
  const sources: BoardSource[] = [];
  for (const file of await listRlLoggingBoardFiles(folder))
    sources.push({ file, text: await readImportedFile(file, 'RL Logging Board log file') });
  return decodeRlLoggingBoard(sources);
}
