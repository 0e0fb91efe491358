/**
 * Which engine wrote a run folder, from its contents alone:
 * - `rlhf-lens`: `run.json` (the lens's own trainer, or the `rlhf-lens` Python package's RunWriter);
 * - `trl`: `trainer_state.json` in the folder or in a `checkpoint-<n>/` folder of it (a transformers/TRL output_dir),
 *   or a `completions/completions_<step>.parquet` (GRPO's log_completions, written before the first checkpoint);
 * - `nemo-rl`: a `train_data_step<N>.jsonl` or `val_data_step<N>.jsonl` (a NeMo-RL log dir, `logs/exp_<n>/`);
 * - `verl`: a `<N>.jsonl` (verl's `trainer.rollout_data_dir` or `validation_data_dir`);
 * - `rl-logging-board`: a `*.jsonl` whose first line has `"step"`, `"prompt"` and `"response"` fields (an RL
 *   Logging Board folder, one file per rank).
 * The first that matches wins; undefined when none does (or the folder cannot be read).
 */
import { open, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { nemoRlFilePattern } from './nemoRl';
import { verlFilePattern } from './verl';
import { listTrlCompletionSteps } from './trlCompletions';
import { checkpointFolderPattern, trainerStateName } from './trlTrainerState';

export type RunFormat = 'rlhf-lens' | 'trl' | 'nemo-rl' | 'verl' | 'rl-logging-board';

/** The start of a file (up to 64 KiB), or '' when it cannot be read. */
async function head(file: string): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Whether a file's first line looks like an RL Logging Board sample (field names only: it may be cut off). */
async function isBoardFile(file: string): Promise<boolean> {
  const firstLine = (await head(file)).split('\n', 1)[0];
  return ['step', 'prompt', 'response'].every((key) => new RegExp(`"${key}"\\s*:`).test(firstLine));
}

export async function detectRunFormat(folder: string): Promise<RunFormat | undefined> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch {
    return undefined;
  }
  const files = new Set(entries.filter((entry) => entry.isFile()).map((entry) => entry.name));
  if (files.has('run.json')) return 'rlhf-lens';
  if (files.has(trainerStateName)) return 'trl';
  for (const entry of entries) {
    if (!entry.isDirectory() || !checkpointFolderPattern.test(entry.name)) continue;
    const names = await readdir(path.join(folder, entry.name)).catch(() => [] as string[]);
    if (names.includes(trainerStateName)) return 'trl';
  }
  if ((await listTrlCompletionSteps(folder)).length > 0) return 'trl';
  if ([...files].some((name) => nemoRlFilePattern.test(name))) return 'nemo-rl';
  if ([...files].some((name) => verlFilePattern.test(name))) return 'verl';
  for (const name of files)
    if (name.endsWith('.jsonl') && (await isBoardFile(path.join(folder, name)))) return 'rl-logging-board';
  return undefined;
}
