/**
 * TRL (any transformers `Trainer`) runs: `<output_dir>/checkpoint-<n>/trainer_state.json`, and
 * `<output_dir>/trainer_state.json` when the script calls `trainer.save_state()`. transformers writes the file in
 * `TrainerState.save_to_json` (huggingface/transformers, src/transformers/trainer_callback.py):
 * `json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"`, so a NaN loss is the bare token `NaN`.
 * Its fields: `epoch`, `global_step`, `max_steps`, `logging_steps`, `eval_steps`, `save_steps`,
 * `train_batch_size`, `num_train_epochs`, `num_input_tokens_seen`, `total_flos`, `log_history`, `best_metric`,
 * `best_global_step`, `best_model_checkpoint`, `is_local_process_zero`, `is_world_process_zero`,
 * `is_hyper_param_search`, `trial_name`, `trial_params`, `stateful_callbacks` (older versions lack some).
 *
 * `log_history` holds every dict `Trainer.log` ever logged, each with `"step": global_step` added: the training
 * logs (`loss`, `grad_norm`, `learning_rate`, `epoch` and, for TRL's trainers, their metrics under TRL's names:
 * `objective/kl`, `kl`, `reward`, `completions/mean_length`, `clip_ratio/region_mean` …), the evaluation logs
 * (`eval_*`) and the final summary (`train_runtime`, `train_loss`, `total_flos` …). Each entry with a step becomes
 * one metrics point with its numeric fields under the names TRL gave them, as the lens reads metrics.jsonl
 * (src/host/runData.ts, `parseMetricLine`); strings and other values are dropped. The newest checkpoint's file
 * holds the whole history, so only that one is read.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { MetricPoint } from '../dashboardMessages';
import { UserError } from '../userError';
import { parsePythonJson } from './pythonJson';
import { readImportedFile } from './readText';

export const trainerStateName = 'trainer_state.json';
export const checkpointFolderPattern = /^checkpoint-(\d+)$/;

export interface TrlMetrics {
  /** One point per `log_history` entry with a step, in file order. */
  readonly points: MetricPoint[];
  /**
   * Skipped entries, as `file:line: log_history[i]: field "…" …`, the line where the entry starts in the layout
   * save_to_json writes (indent=2); `file: log_history[i]: …` when the file was written another way.
   */
  readonly problems: string[];
  /** `global_step` and `max_steps` of the state, when they are numbers. */
  readonly globalStep?: number;
  readonly maxSteps?: number;
}

/** The metrics of one trainer_state.json's text; throws a UserError naming `file` when it is not a state. */
export function decodeTrainerState(text: string, file: string): TrlMetrics {
  let state: unknown;
  try {
    state = parsePythonJson(text);
  } catch (error) {
    throw new UserError(`not valid JSON (${(error as Error).message})`, { file });
  }
  if (typeof state !== 'object' || state === null || Array.isArray(state))
    throw new UserError('expected a JSON object (a transformers TrainerState)', { file });
  const record = state as Record<string, unknown>;
  const history = record.log_history ?? [];
  if (!Array.isArray(history))
    throw new UserError('must be a list of logged dicts', { file, field: 'field "log_history"' });
  const points: MetricPoint[] = [];
  const problems: string[] = [];
  const lines = entryLines(text, history.length);
  history.forEach((entry: unknown, index) => {
    const where = `${file}${lines ? `:${lines[index]}` : ''}: log_history[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where}: expected a JSON object; entry skipped`);
      return;
    }
    const logged = entry as Record<string, unknown>;
    if (typeof logged.step !== 'number' || !Number.isInteger(logged.step) || logged.step < 0) {
      problems.push(`${where}: field "step" must be a whole number ≥ 0, not ${String(logged.step)}; entry skipped`);
      return;
    }
    const point: Record<string, number> = {};
    for (const [key, value] of Object.entries(logged)) if (typeof value === 'number') point[key] = value;
    points.push(point);
  });
  const number = (key: string) => (typeof record[key] === 'number' ? (record[key] as number) : undefined);
  return { points, problems, globalStep: number('global_step'), maxSteps: number('max_steps') };
}

/**
 * The 1-based line where each `log_history` entry starts, in save_to_json's layout: `  "log_history": [` at indent
 * 2, each entry starting at indent 4 (`    {` or a scalar), `  ]` closing it. Undefined when the text is laid out
 * otherwise (or the count differs from the parsed list's).
 */
function entryLines(text: string, count: number): number[] | undefined {
  const lines = text.split('\n');
  const open = lines.findIndex((line) => line === '  "log_history": [');
  if (open < 0) return count === 0 ? [] : undefined;
  const starts: number[] = [];
  for (let index = open + 1; index < lines.length; index++) {
    const line = lines[index];
    if (line.startsWith('  ]')) break;
    if (/^ {4}[^ }\]]/.test(line)) starts.push(index + 1);
  }
  return starts.length === count ? starts : undefined;
}

/** `checkpoint-<n>` folders of `outputDir` that hold a trainer_state.json, newest (largest n) first. */
export async function trlStateFiles(outputDir: string): Promise<string[]> {
  const entries = await readdir(outputDir, { withFileTypes: true });
  const checkpoints = entries
    .filter((entry) => entry.isDirectory() && checkpointFolderPattern.test(entry.name))
    .map((entry) => ({ name: entry.name, n: Number(checkpointFolderPattern.exec(entry.name)?.[1]) }))
    .sort((a, b) => b.n - a.n);
  const files: string[] = [];
  if (entries.some((entry) => entry.isFile() && entry.name === trainerStateName))
    files.push(path.join(outputDir, trainerStateName));
  for (const { name } of checkpoints) {
    const names = await readdir(path.join(outputDir, name)).catch(() => [] as string[]);
    if (names.includes(trainerStateName)) files.push(path.join(outputDir, name, trainerStateName));
  }
  return files;
}

/**
 * The metrics of a TRL output folder: of its own trainer_state.json and its newest checkpoint's, the one with
 * the larger `global_step` (the root file, when the script saved it, is written after the last checkpoint).
 * Throws a UserError naming the folder when neither exists.
 */
export async function readTrlMetrics(outputDir: string): Promise<TrlMetrics & { readonly file: string }> {
  const files = await trlStateFiles(outputDir);
  const root = files.find((file) => path.dirname(file) === outputDir);
  const newestCheckpoint = files.find((file) => file !== root);
  const candidates = [root, newestCheckpoint].filter((file): file is string => file !== undefined);
  if (candidates.length === 0)
    throw new UserError(`no ${trainerStateName} in the folder or its checkpoint-*/ folders`, {
      file: outputDir,
      hint: 'TRL writes it at each save (save_steps); open the output_dir of the run',
    });
  let best: (TrlMetrics & { file: string }) | undefined;
  for (const file of candidates) {
    const decoded = { ...decodeTrainerState(await readImportedFile(file, 'TRL trainer state'), file), file };
    if (best === undefined || (decoded.globalStep ?? -1) > (best.globalStep ?? -1)) best = decoded;
  }
  return best as TrlMetrics & { file: string };
}
