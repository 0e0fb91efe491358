/** The GPT's shape (declared in src/shared/gptShape.ts, which checkpoint readers share) and its checks. */
import { scorePoolings, type GptShape } from '../../shared/gptShape';
import type { Gpt2Activation } from '../hf/hfArchitecture';

export { scorePoolings, type ScalarHead, type ScorePooling } from '../../shared/gptShape';
/**
 * Our GPT, and any Hugging Face gpt2 folder: GPT-2's config.json names for the two settings a released GPT-2 may
 * change (absent: 1e-5 and `gelu_new`, what our GPT has always used).
 */
export interface GptConfig extends GptShape {
  readonly layer_norm_epsilon?: number;
  readonly activation_function?: Gpt2Activation;
}

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
