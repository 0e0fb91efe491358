/**
 * Loads a checkpoint as a model with the heads a stage needs: a policy gets a value head, a reward
 * model a score head. A head the checkpoint lacks starts fresh (seeded); trunk weights must all be
 * there.
 */
import { loadCheckpoint, type CheckpointContents, type ModelCheckpointConfig } from './checkpoint';
import { Gpt, type ScalarHead } from '../engine/tfjs/gpt';
import type { GptConfig } from '../model/gptConfig';

export interface LoadedModel {
  readonly model: Gpt;
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

/** The checkpoint config a stage writes for a model it trained. */
export function checkpointConfig(
  model: Gpt,
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
