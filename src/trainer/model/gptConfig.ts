/**
 * A scalar head on the final hidden state: `v_head` (PPO's critic, a value per position) and `score`
 * (a reward model's score of a sequence).
 */
export type ScalarHead = 'v_head' | 'score';

/** Shape of a GPT: nanoGPT's names, so a reader of nanoGPT or GPT-2's config.json finds their way. */
export interface GptConfig {
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

export function validateGptConfig(config: GptConfig): string[] {
  const problems: string[] = [];
  for (const key of ['vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd'] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 1)
      problems.push(`${key} must be a positive integer, got ${config[key]}`);
  }
  if (config.n_embd % config.n_head !== 0)
    problems.push(`n_embd (${config.n_embd}) must be divisible by n_head (${config.n_head})`);
  if (!(config.dropout >= 0 && config.dropout < 1)) problems.push(`dropout must be in [0, 1), got ${config.dropout}`);
  if (config.score_pooling !== undefined && !scorePoolings.includes(config.score_pooling))
    problems.push(
      `score_pooling must be one of ${scorePoolings.join(', ')}, got ${JSON.stringify(config.score_pooling)}`,
    );
  return problems;
}

/** Parameters of the transformer (embeddings included, tied LM head counted once), without heads. */
export function countParameters(config: GptConfig): number {
  const { vocab_size: v, block_size: t, n_layer: l, n_embd: c } = config;
  const block = 2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c);
  return v * c + t * c + l * block + 2 * c;
}
