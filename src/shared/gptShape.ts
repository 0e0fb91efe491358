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

/**
 * config.json of a checkpoint written before checkpoints became Hugging Face folders (model_type "rlhf-lens-gpt",
 * heads under the engine's names): still read, so older runs resume.
 */
export interface LegacyCheckpointConfig extends GptShape {
  readonly model_type: 'rlhf-lens-gpt';
  readonly heads: readonly ScalarHead[];
  readonly bos_token_id: number;
  readonly eos_token_id: number;
  readonly pad_token_id: number;
}

/** The architectures a checkpoint's config.json may name (transformers' model_type). */
export const checkpointModelTypes = ['gpt2', 'llama', 'qwen2', 'mistral'] as const;
export type CheckpointModelType = (typeof checkpointModelTypes)[number];

/** Which tokenizer a checkpoint's tokenizer files are: our trained BPE, or a Hugging Face model's own. */
export type CheckpointTokenizerKind = 'bpe' | 'hf';

/** What a checkpoint's config.json keeps under `rlhf_lens`: what transformers has no key for. */
export interface RlhfLensConfigKeys {
  readonly heads: readonly ScalarHead[];
  readonly score_pooling?: ScorePooling;
  /** The context the run trained with (≤ the architecture's positions). */
  readonly block_size: number;
  readonly tokenizer: CheckpointTokenizerKind;
}

/**
 * config.json of a checkpoint: transformers' config of its architecture (model_type gpt2 for our GPT, or the
 * Llama-family source folder's), which transformers loads, plus the `rlhf_lens` key it ignores.
 */
export interface HfCheckpointConfig {
  readonly model_type: CheckpointModelType;
  readonly rlhf_lens: RlhfLensConfigKeys;
  readonly [key: string]: unknown;
}

/** A checkpoint's config.json in either format. */
export type CheckpointConfig = LegacyCheckpointConfig | HfCheckpointConfig;

export function isLegacyCheckpointConfig(config: CheckpointConfig): config is LegacyCheckpointConfig {
  return config.model_type === 'rlhf-lens-gpt';
}
