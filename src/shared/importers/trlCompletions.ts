/**
 * TRL runs: the completions tables of `GRPOTrainer` with `log_completions=True` (TRL ≥ 0.28). Read from
 * huggingface/trl, trl/trainer/grpo_trainer.py (July 2026):
 *
 * - On the main process, `GRPOTrainer.log` builds `pd.DataFrame({"step": [global_step] * n, "prompt",
 *   "completion", **rewards, **extra, "advantage"})` and writes it with `df.to_parquet(...)` (pyarrow, snappy, the
 *   RangeIndex as metadata only) to `<output_dir>/completions/completions_{global_step:05d}.parquet`, once per
 *   logging step, straight to that path (not atomically: a file being written is truncated). An evaluation's
 *   `log` writes to the same name as the training step it happens at.
 * - The rows are the last `generation_batch_size` samples (deques of that length), gathered from every process.
 * - `prompt` and `completion` are decoded text (`processing_class.batch_decode(..., skip_special_tokens=True)`):
 *   a conversational dataset's prompt is its chat template's text without special tokens, not a list of messages.
 * - One DOUBLE column per reward function, named `reward_func_names[i]` (the function's name, or a reward model's
 *   id after its last "/"), holding `rewards_per_func[:, i]` — unweighted; NaN where the function returned None.
 * - `extra`: the columns reward functions logged with `log_extra(column, values)` (any Python value).
 * - `advantage`: the sample's GRPO advantage (one number per completion; 0 for an unscorable one).
 * - Images are never written to the parquet (only to wandb / trackio tables).
 *
 * Each row becomes a lens PPO trace row (the rows `decodeJsonlTrace` reads, src/shared/traceJsonl.ts): `sample` ←
 * the row's place (the DataFrame's index), `prompt`, `response` ← completion, each reward column and each extra
 * column as an extra per-sample column under its own name (`trl_<name>` where that is one of the lens's
 * columns), `sample_advantage` ← advantage (the lens's `advantage` is per token), and `score` ← the unweighted sum
 * of the reward columns (NaN ones left out; NaN when all are). TRL logs no per-sample total: this `score` is TRL's
 * `reward` metric only when every `reward_weights` is 1 (the default) — `trlScoreMeaning` says so to the user.
 */
import { readFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { NotLoggedField } from '../dashboardMessages';
import { decodeJsonlTrace } from '../traceJsonl';
import { UserError } from '../userError';
import { reservedColumns, type ImportedStep } from './convertedLines';

export const trlCompletionsFolder = 'completions';
export const trlCompletionsFilePattern = /^completions_(\d+)\.parquet$/;
export const trlCompletionsVersion = 'trl-completions-parquet';

/** What the lens's `score` is for a TRL completions table (shown next to the score). */
export const trlScoreMeaning =
  'score = the sum of the reward functions\u2019 columns, unweighted (TRL logs no per-sample total; it equals ' +
  'TRL\u2019s "reward" only when every reward_weights entry is 1, the default)';

const mixinAdvice =
  'TRL computes it inside GRPOTrainer but does not write it: train with RLHFLensGRPOMixin from ' +
  'rlhf_lens.adapters.trl (pip install ./python; class LensGRPOTrainer(RLHFLensGRPOMixin, GRPOTrainer), ' +
  'rlhf_lens_dir="runs/grpo") and open that run folder: it has the per-token traces';

/**
 * What a TRL output_dir does not hold (absent in the lens, never 0), and how to get each: rollouts only with
 * log_completions, and nothing per token even then.
 */
export const trlNotLogged: readonly NotLoggedField[] = [
  {
    field: 'rollouts',
    how:
      'set log_completions=True in GRPOConfig: GRPOTrainer then writes completions/completions_<step>.parquet ' +
      '(prompts, completions, rewards, advantages; nothing per token)',
  },
  { field: 'tokens', how: `the completion's token ids and texts: ${mixinAdvice}` },
  { field: 'token_ids', how: `completion_ids: ${mixinAdvice}` },
  { field: 'logprob', how: `old_per_token_logps (the sampling policy's log-probs): ${mixinAdvice}` },
  { field: 'ref_logprob', how: `ref_per_token_logps (needs beta > 0 for TRL to compute it): ${mixinAdvice}` },
  { field: 'kl', how: `per_token_kl (TRL logs only its mean, "kl", with beta > 0): ${mixinAdvice}` },
  { field: 'ratio', how: `the importance ratio per token and iteration (num_iterations): ${mixinAdvice}` },
  { field: 'clip_class', how: `the clipped-ratio masks per iteration (TRL logs only "clip_ratio/*"): ${mixinAdvice}` },
  { field: 'entropy', how: `per-token entropies (TRL logs only their mean, "entropy"): ${mixinAdvice}` },
  { field: 'advantage', how: `per token: GRPO gives every token its sample's advantage (sample_advantage here)` },
  { field: 'value', how: 'GRPO has no value model (no critic): nothing to log' },
  { field: 'reward', how: 'per-token rewards: GRPO scores whole completions (the reward columns here)' },
  { field: 'return', how: 'GRPO computes no returns (its advantage is the group-normalized reward)' },
];

const trlFixedColumns = new Set(['step', 'prompt', 'completion', 'advantage']);

export interface TrlCompletionsOptions {
  /**
   * The reward functions' names (from `trlRewardNames` over trainer_state.json's log_history). Without them, the
   * reward columns are the run of number columns right after `completion` (a number column a reward function
   * logged with `log_extra` right after them would be counted as a reward).
   */
  readonly rewardNames?: readonly string[];
}

/** The reward functions' names in TRL's logged metric names (`rewards/<name>/mean`), in first-seen order. */
export function trlRewardNames(metricNames: Iterable<string>): string[] {
  const names = new Set<string>();
  for (const metric of metricNames) {
    const match = /^(?:eval_)?rewards\/(.+)\/mean$/.exec(metric);
    if (match) names.add(match[1]);
  }
  return [...names];
}

/** A parquet value as plain JSON: int64 (bigint) → number, bytes → their hex, dates → ISO text. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}

/** A text column's value: a string, or (another writer's conversational rows) a list of {role, content}. */
function textOf(value: unknown, column: string): string | { reason: string } {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((m) => typeof m === 'object' && m !== null && 'content' in m))
    return value
      .map((m: { role?: unknown; content: unknown }) => `${String(m.role ?? '')}: ${String(m.content)}`)
      .join('\n');
  return { reason: `column "${column}" must be text (or a list of {role, content} messages), not ${typeof value}` };
}

const isNumberOrNull = (value: unknown) => value === null || typeof value === 'number';

/** The reward columns of a table with these columns (see TrlCompletionsOptions.rewardNames). */
function rewardColumnsOf(columns: readonly string[], rows: Record<string, unknown>[], names?: readonly string[]) {
  if (names) return columns.filter((column) => names.includes(column) && !trlFixedColumns.has(column));
  const rewards: string[] = [];
  for (const column of columns.slice(columns.indexOf('completion') + 1)) {
    if (column === 'advantage' || !rows.every((row) => isNumberOrNull(plain(row[column])))) break;
    rewards.push(column);
  }
  return rewards;
}

type RowResult = { ok: true; line: Record<string, unknown> } | { ok: false; reason: string };

/** One parquet row as a line of the lens's JSONL trace, or why it is not usable. */
function convertRow(row: Record<string, unknown>, index: number, step: number, rewards: readonly string[]): RowResult {
  const rowStep = plain(row.step);
  if (rowStep !== undefined && rowStep !== null && rowStep !== step)
    return { ok: false, reason: `column "step" is ${JSON.stringify(rowStep)} in the file of step ${step}` };
  const line: Record<string, unknown> = { step, sample: index };
  for (const [from, to] of [
    ['prompt', 'prompt'],
    ['completion', 'response'],
  ]) {
    const text = textOf(row[from], from);
    if (typeof text !== 'string') return { ok: false, reason: text.reason };
    line[to] = text;
  }
  let sum = 0;
  let scored = false;
  for (const column of rewards) {
    const value = plain(row[column]);
    if (!isNumberOrNull(value))
      return { ok: false, reason: `reward column "${column}" must be a number, not ${JSON.stringify(value)}` };
    if (typeof value === 'number' && !Number.isNaN(value)) {
      sum += value;
      scored = true;
    }
  }
  // JSON has no NaN: null is the trace's "no score" (decodeJsonlTrace reads it back as NaN).
  line.score = scored ? sum : null;
  const advantage = plain(row.advantage);
  if (advantage !== undefined) {
    if (!isNumberOrNull(advantage))
      return { ok: false, reason: `column "advantage" must be a number, not ${JSON.stringify(advantage)}` };
    line.sample_advantage = advantage;
  }
  for (const [column, value] of Object.entries(row)) {
    if (trlFixedColumns.has(column)) continue;
    line[reservedColumns.has(column) ? `trl_${column}` : column] = plain(value);
  }
  return { ok: true, line };
}

/**
 * Decodes one `completions_{step:05d}.parquet` (its bytes and the name problems are reported under) into a PPO
 * trace table of step `step`. A file that is not readable parquet (damaged, or still being written by pandas) is
 * one problem naming it and an empty table; a row that does not convert is skipped and named as `file: row <i>`.
 */
export async function decodeTrlCompletionsParquet(
  file: string,
  bytes: Uint8Array,
  step: number,
  options: TrlCompletionsOptions = {},
): Promise<ImportedStep> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  let columns: string[];
  try {
    const metadata = parquetMetadata(buffer);
    columns = parquetSchema(metadata).children.map((child) => child.element.name);
    rows = (await parquetReadObjects({ file: buffer, metadata })) as Record<string, unknown>[];
  } catch (error) {
    const empty = decodeJsonlTrace([], step).table;
    return {
      table: { ...empty, version: trlCompletionsVersion },
      problems: [
        `${file}: not a readable parquet file (${(error as Error).message}); ` +
          'if TRL is still writing it, it is read again when it changes',
      ],
    };
  }
  const problems: string[] = [];
  const rewards = rewardColumnsOf(columns, rows, options.rewardNames);
  const lines = rows.map((row, index) => {
    const result = convertRow(row, index, step, rewards);
    if (result.ok) return JSON.stringify(result.line);
    problems.push(`${file}: row ${index}: ${result.reason}; row skipped`);
    return '';
  });
  const decoded = decodeJsonlTrace([{ file, text: lines.join('\n') }], step);
  return {
    table: { ...decoded.table, version: trlCompletionsVersion },
    problems: [...problems, ...decoded.problems],
  };
}

/** The steps of a TRL output_dir that have a completions table, ascending (none when there is no such folder). */
export async function listTrlCompletionSteps(outputDir: string): Promise<number[]> {
  const names = await readdir(path.join(outputDir, trlCompletionsFolder)).catch(() => [] as string[]);
  const steps: number[] = [];
  for (const name of names) {
    const match = trlCompletionsFilePattern.exec(name);
    if (match) steps.push(Number(match[1]));
  }
  return steps.sort((a, b) => a - b);
}

/** The completions table of step `step`: `<outputDir>/completions/completions_{step:05d}.parquet`. */
export function trlCompletionsFile(outputDir: string, step: number): string {
  return path.join(outputDir, trlCompletionsFolder, `completions_${String(step).padStart(5, '0')}.parquet`);
}

/** Reads and decodes one step's completions table; a missing file is a UserError naming it. */
export async function readTrlCompletionsStep(
  outputDir: string,
  step: number,
  options: TrlCompletionsOptions = {},
): Promise<ImportedStep> {
  const file = trlCompletionsFile(outputDir, step);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UserError(
        `TRL completions table of step ${step} is missing (moved or deleted while the lens read it?)`,
        {
          file,
        },
      );
    throw error;
  }
  return decodeTrlCompletionsParquet(file, bytes, step, options);
}
