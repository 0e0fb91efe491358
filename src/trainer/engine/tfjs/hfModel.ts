/**
 * A Hugging Face causal LM in the tfjs engine, built from the typed architecture and weights of src/trainer/hf.
 * gpt2 folders are RLHF Lens' own GPT (same tensor names, Conv1D [in, out] layout and tied head) with the
 * folder's LayerNorm ε and activation; the Llama family is {@link LlamaModel}. Both answer the same forward:
 * ids [B, T] → logits [B, T, V], the final hidden state, and the extended KV cache when one is passed.
 */
import type { Gpt2Architecture, HfArchitecture } from '../../hf/hfArchitecture';
import type { HfWeights } from '../../hf/hfWeights';
import type { GptConfig } from '../../model/gptConfig';
import { UserError } from '../../../shared/userError';
import { Gpt, type ForwardResult } from './gpt';
import { LlamaModel, type CausalLmForwardOptions } from './llamaModel';
import type { Tensor, Variable } from './tfRuntime';
import { gptMath } from './tfjsModels';

export type { CausalLmForwardOptions } from './llamaModel';

export interface HfCausalLm {
  readonly architecture: HfArchitecture;
  /** Every weight by its causal-LM name in the folder. */
  readonly weights: ReadonlyMap<string, Variable>;
  readonly parameterCount: number;
  forward(ids: Tensor, options?: CausalLmForwardOptions): ForwardResult;
  dispose(): void;
}

/**
 * Builds the model `weights`' architecture describes, reading its tensors one at a time (F16 and BF16 widened to
 * F32) into tfjs variables.
 */
export async function loadHfCausalLm(weights: HfWeights): Promise<HfCausalLm> {
  const architecture = weights.architecture;
  const read = (name: string) => weights.read(name);
  if (architecture.family === 'llama') {
    const model = await LlamaModel.load(architecture, read);
    return {
      architecture,
      weights: model.weights,
      get parameterCount() {
        return model.parameterCount;
      },
      forward: (ids, options) => model.forward(ids, options),
      dispose: () => model.dispose(),
    };
  }
  // Refused before a byte is read when the GPT cannot run this GPT-2 variant.
  const config = gpt2AsGptConfig(architecture, weights.folder);
  const gpt = await Gpt.load(config, read, { math: gptMath(config) });
  return {
    architecture,
    weights: gpt.weights,
    get parameterCount() {
      return gpt.parameterCount;
    },
    forward: (ids, options) => gpt.forward(ids, options),
    dispose: () => gpt.dispose(),
  };
}

/** The GPT multiplies its MLP width by this (nanoGPT, GPT-2). */
const gptMlpRatio = 4;

/**
 * The GPT config of a gpt2 architecture (its LayerNorm ε and activation included, which createModel honours), or a
 * UserError naming each setting the GPT does not run: an MLP width other than 4 × n_embd, an untied head, attention
 * scaled otherwise than by 1/√D. Every released GPT-2 and DistilGPT-2 fits.
 */
export function gpt2AsGptConfig(a: Gpt2Architecture, folder: string): GptConfig {
  const unsupported: string[] = [];
  if (a.intermediateSize !== gptMlpRatio * a.hiddenSize)
    unsupported.push(`n_inner ${a.intermediateSize} (only ${gptMlpRatio} × n_embd = ${gptMlpRatio * a.hiddenSize})`);
  if (!a.tieWordEmbeddings) unsupported.push('tie_word_embeddings false (only a head tied to wte)');
  if (!a.scaleAttnWeights) unsupported.push('scale_attn_weights false');
  if (a.scaleAttnByInverseLayerIdx) unsupported.push('scale_attn_by_inverse_layer_idx true');
  if (a.headDim * a.numHeads !== a.hiddenSize) unsupported.push(`head size ${a.headDim} × ${a.numHeads} heads`);
  if (unsupported.length > 0)
    throw new UserError(`is a gpt2 model with settings the tfjs engine does not run: ${unsupported.join('; ')}`, {
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
