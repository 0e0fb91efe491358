/**
 * A Hugging Face gpt2 folder as the trainer's GptConfig, for both engines: our GPT is GPT-2's layout, so a gpt2
 * model is one, with the two settings a released GPT-2 may change (`layer_norm_epsilon`, `activation_function`)
 * kept in the config. Settings our GPT does not compute are refused, each named as config.json names it.
 */
import { UserError } from '../../shared/userError';
import type { Gpt2Architecture } from '../hf/hfArchitecture';
import type { GptConfig } from './gptConfig';

/** The GPT multiplies its MLP width by this (nanoGPT, GPT-2). */
const GPT_MLP_RATIO = 4;

/**
 * The GPT shape of a gpt2 architecture read from `folder`, or a UserError naming each setting the GPT does not run:
 * an MLP width other than 4 × n_embd, an untied head, attention scaled otherwise than by 1/√D. Every released GPT-2
 * and DistilGPT-2 fits. block_size is the position table's length (n_positions).
 */
export function gptConfigOfGpt2(a: Gpt2Architecture, folder: string): GptConfig {
  const unsupported: string[] = [];
  if (a.intermediateSize !== GPT_MLP_RATIO * a.hiddenSize)
    unsupported.push(
      `n_inner ${a.intermediateSize} (only ${GPT_MLP_RATIO} × n_embd = ${GPT_MLP_RATIO * a.hiddenSize})`,
    );
  if (!a.tieWordEmbeddings) unsupported.push('tie_word_embeddings false (only a head tied to wte)');
  if (!a.scaleAttnWeights) unsupported.push('scale_attn_weights false');
  if (a.scaleAttnByInverseLayerIdx) unsupported.push('scale_attn_by_inverse_layer_idx true');
  if (a.headDim * a.numHeads !== a.hiddenSize) unsupported.push(`head size ${a.headDim} × ${a.numHeads} heads`);
  if (unsupported.length > 0)
    throw new UserError(`is a gpt2 model with settings RLHF Lens does not run: ${unsupported.join('; ')}`, {
      file: folder,
      hint: "gpt2 folders run with GPT-2's own layout (n_inner 4 × n_embd, tied head, attention scaled by 1/√D)",
    });
  return {
    vocab_size: a.vocabSize,
    block_size: a.maxPositions,
    n_layer: a.numLayers,
    n_head: a.numHeads,
    n_embd: a.hiddenSize,
    dropout: 0,
    layer_norm_epsilon: a.layerNormEpsilon,
    activation_function: a.activation,
  };
}
