/**
 * A Hugging Face gpt2 folder as the trainer's GptConfig, for both engines: our GPT is GPT-2's layout, so a gpt2
 * model is one, with the two settings a released GPT-2 may change (`layer_norm_epsilon`, `activation_function`)
 * kept in the config. Settings our GPT does not compute are refused, each named as config.json names it.
 */
import { UserError } from '../../shared/userError';
import type { Gpt2Architecture } from '../hf/hfArchitecture';
import type { GptConfig, ScorePooling } from './gptConfig';

/** The GPT multiplies its MLP width by this (nanoGPT, GPT-2). */
const GPT_MLP_RATIO = 4;

/** What a stage asks of the model it builds from the folder; absent: the folder's whole context, no dropout. */
export interface Gpt2ConfigOptions {
  /** The run's context: the first block_size position rows are used (at most n_positions). */
  readonly blockSize?: number;
  readonly dropout?: number;
  readonly scorePooling?: ScorePooling;
}

/**
 * The GPT shape of a gpt2 architecture read from `file`, or a UserError naming the setting (config.json's key) the GPT
 * does not run — an MLP width other than 4 × n_embd, an untied head, attention scaled otherwise than by 1/√D — and
 * every other one. Every released GPT-2 and DistilGPT-2 fits.
 */
export function gptConfigOfGpt2(a: Gpt2Architecture, file: string, options: Gpt2ConfigOptions = {}): GptConfig {
  const unsupported: { field: string; what: string }[] = [];
  if (a.intermediateSize !== GPT_MLP_RATIO * a.hiddenSize)
    unsupported.push({
      field: 'n_inner',
      what: `is ${a.intermediateSize}, not ${GPT_MLP_RATIO} × n_embd (${GPT_MLP_RATIO * a.hiddenSize})`,
    });
  if (!a.tieWordEmbeddings) unsupported.push({ field: 'tie_word_embeddings', what: 'is false (an untied lm_head)' });
  if (!a.scaleAttnWeights) unsupported.push({ field: 'scale_attn_weights', what: 'is false' });
  if (a.scaleAttnByInverseLayerIdx) unsupported.push({ field: 'scale_attn_by_inverse_layer_idx', what: 'is true' });
  if (a.headDim * a.numHeads !== a.hiddenSize)
    unsupported.push({ field: 'n_head', what: `gives heads of ${a.headDim} × ${a.numHeads} ≠ n_embd` });
  if (unsupported.length > 0) {
    const [first, ...others] = unsupported;
    const also = others.map((u) => `; ${u.field} ${u.what}`).join('');
    throw new UserError(`${first.what}${also}: RLHF Lens' GPT-2 cannot run it`, {
      file,
      field: first.field,
      hint: "gpt2 folders run with GPT-2's own layout (n_inner 4 × n_embd, tied head, attention scaled by 1/√D)",
    });
  }
  return {
    vocab_size: a.vocabSize,
    block_size: Math.min(options.blockSize ?? a.maxPositions, a.maxPositions),
    n_layer: a.numLayers,
    n_head: a.numHeads,
    n_embd: a.hiddenSize,
    dropout: options.dropout ?? 0,
    layer_norm_epsilon: a.layerNormEpsilon,
    activation_function: a.activation,
    ...(options.scorePooling !== undefined && { score_pooling: options.scorePooling }),
  };
}
