/**
 * Which engine wrote a run folder, from its contents alone:
 * - `rlhf-lens`: `run.json` (the lens's own trainer, or the `rlhf-lens` Python package's RunWriter);
 * - `trl`: `trainer_state.json` in the folder or in a `checkpoint-<n>/` folder of it (a transformers/TRL output_dir);
 * - `nemo-rl`: a `train_data_step<N>.jsonl` or `val_data_step<N>.jsonl` (a NeMo-RL log dir, `logs/exp_<n>/`).
 * The first that matches wins; undefined when none does (or the folder cannot be read).
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { nemoRlFilePattern } from './nemoRl';
import { checkpointFolderPattern, trainerStateName } from './trlTrainerState';

export type RunFormat = 'rlhf-lens' | 'trl' | 'nemo-rl';

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
  if ([...files].some((name) => nemoRlFilePattern.test(name))) return 'nemo-rl';
  return undefined;
}
