/**
 * What an engine builds: our GPT (GPT-2's layout; a Hugging Face gpt2 folder is one too) or a Llama-family model
 * (llama, qwen2, mistral) read from a Hugging Face folder. Algorithms read only the fields both share —
 * `vocab_size`, `block_size`, `dropout`, `score_pooling` — so they never ask which one they train.
 */
import type { HfArchitecture, LlamaFamilyArchitecture } from '../hf/hfArchitecture';
import { gptConfigOfGpt2 } from './gpt2Config';
import type { GptConfig, ScorePooling } from './gptConfig';

/** A Llama-family model: its architecture from config.json, and the run's context and heads' pooling. */
export interface LlamaConfig {
  readonly family: 'llama';
  readonly architecture: LlamaFamilyArchitecture;
  /** The architecture's vocabulary (`architecture.vocabSize`), under the name algorithms read. */
  readonly vocab_size: number;
  /** The longest prompt plus response this run feeds the model (at most `architecture.maxPositions`). */
  readonly block_size: number;
  /** Always 0: the Llama family trains without dropout (transformers' `attention_dropout` defaults to 0). */
  readonly dropout: number;
  readonly score_pooling?: ScorePooling;
}

export type CausalLmConfig = GptConfig | LlamaConfig;

export function isLlamaConfig(config: CausalLmConfig): config is LlamaConfig {
  return 'family' in config && config.family === 'llama';
}

/** A Llama-family config for `architecture`, its context capped at `blockSize` when given. */
export function llamaConfig(
  architecture: LlamaFamilyArchitecture,
  options: { blockSize?: number; scorePooling?: ScorePooling } = {},
): LlamaConfig {
  return {
    family: 'llama',
    architecture,
    vocab_size: architecture.vocabSize,
    block_size: Math.min(options.blockSize ?? architecture.maxPositions, architecture.maxPositions),
    dropout: 0,
    ...(options.scorePooling !== undefined && { score_pooling: options.scorePooling }),
  };
}

/** The engine's config of a folder's architecture: a gpt2 folder is our GPT (refused, naming `folder`, if not). */
export function causalLmConfigOf(architecture: HfArchitecture, folder: string): CausalLmConfig {
  return architecture.family === 'llama' ? llamaConfig(architecture) : gptConfigOfGpt2(architecture, folder);
}
