/**
 * The shape of our GPT and the config.json of its checkpoints: one declaration the checkpoint reader
 * (src/shared/runFiles.ts) and the trainer's model (src/trainer/model/gptConfig.ts) share.
 */
/**
 * A scalar head on the final hidden state: `v_head` (PPO's critic, a value per position) and `score`
 * (a reward model's score of a sequence).
 */
export type ScalarHead = 'v_head' | 'score';

/** Shape of a GPT: nanoGPT's names, so a reader of nanoGPT or GPT-2's config.json finds their way. */
export interface GptShape {
  /** Tokens in the vocabulary (the tokenizer's size). */
  readonly vocab_size: number;
  /** Context length: the most positions a sequence may have. */
  readonly block_size: number;
  readonly n_layer: number;
  readonly n_head: number;
  /** Width of the residual stream; divisible by n_head. */
  readonly n_embd: number;
  /** Dropout on attention weights and residual branches while training; 0 turns it off. */
  readonly dropout: number;
  /** How the `score` head turns per-position outputs into one reward; absent = 'last'. */
  readonly score_pooling?: ScorePooling;
}

/**
 * 'last': the head read at the last token (InstructGPT, TRL's reward models).
 * 'sum': the head's projection summed over every token, its bias added once — a reward that is a sum of
 * per-token contributions, each seeing its context through attention.
 */
export type ScorePooling = 'last' | 'sum';
export const scorePoolings: readonly ScorePooling[] = ['last', 'sum'];

/** config.json of a checkpoint (RLHF Lens' own, model_type "rlhf-lens-gpt"): the shape, heads and special tokens. */
export interface CheckpointConfig extends GptShape {
  readonly model_type: 'rlhf-lens-gpt';
  readonly heads: readonly ScalarHead[];
  readonly bos_token_id: number;
  readonly eos_token_id: number;
  readonly pad_token_id: number;
}
