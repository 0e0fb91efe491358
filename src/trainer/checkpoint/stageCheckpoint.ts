/**
 * The checkpoint every trainable stage writes: model, optimizer state, trainer state and tokenizer,
 * recorded in run.json.
 */
import * as path from 'node:path';
import type { EngineModel, EngineOptimizer } from '../engine/engine';
import { checkpointConfig } from './modelLoading';
import type { RunDirectory } from '../run/runDirectory';
import type { BpeTokenizer } from '../tokenizer';
import { saveCheckpoint, type TrainerState } from './checkpoint';

export async function saveStageCheckpoint(
  run: RunDirectory,
  step: number,
  parts: {
    model: Pick<EngineModel, 'config' | 'heads' | 'readWeights'>;
    optimizer: Pick<EngineOptimizer, 'readState'>;
    tokenizer: BpeTokenizer;
    trainerState: TrainerState;
  },
): Promise<string> {
  const dir = run.checkpointDir(step);
  await saveCheckpoint(dir, {
    config: checkpointConfig(parts.model, parts.tokenizer),
    weights: await parts.model.readWeights(),
    optimizer: await parts.optimizer.readState(),
    trainerState: parts.trainerState,
    tokenizer: parts.tokenizer,
  });
  run.update({ step, last_checkpoint: path.relative(run.dir, dir) });
  return dir;
}
