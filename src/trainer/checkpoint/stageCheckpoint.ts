/**
 * The checkpoint every trainable stage writes: model, optimizer state, trainer state and tokenizer,
 * recorded in run.json.
 */
import * as path from 'node:path';
import type { EngineModel, EngineOptimizer } from '../engine/engine';
import { checkpointConfig } from './modelLoading';
import type { RunDirectory } from '../run/runDirectory';
import type { Tokenizer } from '../tokenizer';
import { latestCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint';
import { saveLoraCheckpoint } from './loraCheckpoint';

/** What a stage checkpoints besides its trainer state. */
export interface StageCheckpointParts {
  readonly model: Pick<EngineModel, 'config' | 'heads' | 'readWeights' | 'lora'>;
  readonly optimizer: Pick<EngineOptimizer, 'readState'>;
  readonly tokenizer: Tokenizer;
  /**
   * The folder whose weights are a LoRA model's base (modelLoading.ts loraBaseOf): its checkpoints are then PEFT
   * adapter folders naming it (loraCheckpoint.ts). Without one (SFT refuses LoRA on a GPT built from scratch) the
   * model is saved whole.
   */
  readonly loraBase?: string;
}

export async function saveStageCheckpoint(
  run: RunDirectory,
  step: number,
  parts: StageCheckpointParts & { readonly trainerState: TrainerState },
): Promise<string> {
  const dir = run.checkpointDir(step);
  const { config, heads, lora } = parts.model;
  const contents = {
    config: checkpointConfig({ config, heads }, parts.tokenizer),
    weights: await parts.model.readWeights(),
    optimizer: await parts.optimizer.readState(),
    trainerState: parts.trainerState,
    tokenizer: parts.tokenizer,
  };
  if (lora && parts.loraBase !== undefined)
    await saveLoraCheckpoint(dir, { ...contents, lora: { settings: lora, base: parts.loraBase } });
  else await saveCheckpoint(dir, contents);
  run.update({ step, last_checkpoint: path.relative(run.dir, dir) });
  return dir;
}

/** The stage loop's `checkpoint`: writes `parts` and the trainer state of `step` steps; returns the folder. */
export function stageCheckpointer(
  run: RunDirectory,
  parts: StageCheckpointParts,
  trainerStateAt: (step: number) => TrainerState,
): (step: number) => Promise<string> {
  return (step) => saveStageCheckpoint(run, step, { ...parts, trainerState: trainerStateAt(step) });
}

/**
 * The checkpoint a resumed stage continues from: the run's latest readable one (damaged ones are skipped with
 * a warning); undefined when the stage is not resuming. A resumed stage without one cannot continue.
 */
export function resumeCheckpoint(
  resume: boolean | undefined,
  run: RunDirectory,
  warn: (message: string) => void,
): { dir: string; step: number } | undefined {
  if (!resume) return undefined;
  const latest = latestCheckpoint(run.dir, warn);
  if (!latest)
    throw new Error(
      `${run.dir} has no checkpoint to resume from yet; start the stage afresh ` +
        '("rlhf-lens train --resume" does that by itself).',
    );
  return latest;
}
