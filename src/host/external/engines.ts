/**
 * What the lens knows about each engine whose run folders it opens: the label it shows, the files the engine
 * writes (for the error when a folder matches none) and what the engine does not log.
 */
import type { NotLoggedField } from '../../shared/dashboardMessages';
import { nemoRlNotLogged } from '../../shared/importers/nemoRl';
import { rlLoggingBoardNotLogged } from '../../shared/importers/rlLoggingBoard';
import type { RunFormat } from '../../shared/importers/runFormat';
import { trlNotLogged } from '../../shared/importers/trlCompletions';
import { verlNotLogged } from '../../shared/importers/verl';

/** The formats of other engines (a folder with run.json opens as a native run). */
export type ExternalFormat = Exclude<RunFormat, 'rlhf-lens'>;

export const engineLabels: Readonly<Record<RunFormat, string>> = {
  'rlhf-lens': 'rlhf-lens (Python)',
  trl: 'TRL',
  verl: 'verl',
  'nemo-rl': 'NeMo-RL',
  'rl-logging-board': 'RL Logging Board',
};

/** What each format's folder holds, as the error for a folder that matches none lists it. */
export const engineFiles: Readonly<Record<RunFormat, string>> = {
  'rlhf-lens': 'rlhf-lens: run.json (+ metrics.jsonl, traces/step-<n>.arrow|.jsonl|.jsonl.gz)',
  trl: 'TRL: trainer_state.json in the output_dir or its checkpoint-<n>/ folders',
  'nemo-rl': 'NeMo-RL: train_data_step<N>.jsonl / val_data_step<N>.jsonl (the logger log_dir)',
  verl: 'verl: <global_step>.jsonl (trainer.rollout_data_dir or validation_data_dir)',
  'rl-logging-board': 'RL Logging Board (OpenRLHF): *.jsonl whose lines have "step", "prompt" and "response"',
};

export const engineNotLogged: Readonly<Record<ExternalFormat, readonly NotLoggedField[]>> = {
  trl: trlNotLogged,
  'nemo-rl': nemoRlNotLogged,
  verl: verlNotLogged,
  'rl-logging-board': rlLoggingBoardNotLogged,
};

/** The message for a folder that no format matches: which files each engine writes. */
export function noFormatMessage(folder: string): string {
  return (
    `${folder} is not a run folder the lens can read: it has none of the files an engine writes there — ` +
    Object.values(engineFiles).join('; ') +
    '.'
  );
}
