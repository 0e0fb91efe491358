/**
 * Loads a checkpoint as a model with the heads a stage needs: a policy gets a value head, a reward
 * model a score head. A head the checkpoint lacks starts fresh (seeded); trunk weights must all be
 * there.
 */
import type { EngineModel, TrainingEngine } from '../engine/engine';
import type { GptConfig, ScalarHead } from '../model/gptConfig';
import { loadCheckpoint, type CheckpointContents, type ModelCheckpointConfig } from './checkpoint';

export interface LoadedModel {
  readonly model: EngineModel;
  readonly checkpoint: CheckpointContents;
}

export function gptConfigOf(config: ModelCheckpointConfig, dropout = 0): GptConfig {
  const { vocab_size, block_size, n_layer, n_head, n_embd, score_pooling } = config;
  return {
    vocab_size,
    block_size,
    n_layer,
    n_head,
    n_embd,
    dropout,
    ...(score_pooling !== undefined && { score_pooling }),
  };
}

/** Loads checkpoint `dir` into the engine as a model with `heads`. */
export async function loadEngineModel(
  engine: TrainingEngine,
  dir: string,
  heads: readonly ScalarHead[],
  seed: number,
): Promise<LoadedModel> {
  const checkpoint = await loadCheckpoint(dir);
  const model = engine.createModel(gptConfigOf(checkpoint.config), {
    heads,
    weights: checkpoint.weights,
    keepMissingHeads: true,
    seed,
  });
  return { model, checkpoint };
}

/** The checkpoint config a stage writes for a model it trained. */
export function checkpointConfig(
  model: { readonly config: GptConfig; readonly heads: readonly ScalarHead[] },
  tokenizer: { bosId: number; eosId: number; padId: number },
): ModelCheckpointConfig {
  const { vocab_size, block_size, n_layer, n_head, n_embd, dropout, score_pooling } = model.config;
  return {
    model_type: 'rlhf-lens-gpt',
    vocab_size,
    block_size,
    n_layer,
    n_head,
    n_embd,
    dropout,
    heads: model.heads,
    ...(model.heads.includes('score') && { score_pooling: score_pooling ?? 'last' }),
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
}
