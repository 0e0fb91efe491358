/**
 * A Hugging Face causal LM in the tfjs engine, built from the typed architecture and weights of src/trainer/hf.
 * gpt2 folders are RLHF Lens' own GPT (same tensor names, Conv1D [in, out] layout and tied head) with the
 * folder's LayerNorm ε and activation; the Llama family is {@link LlamaModel}. Both answer the same forward:
 * ids [B, T] → logits [B, T, V], the final hidden state, and the extended KV cache when one is passed.
 */
import type { HfArchitecture } from '../../hf/hfArchitecture';
import { gptConfigOfGpt2 } from '../../model/gpt2Config';
import type { HfWeights } from '../../hf/hfWeights';
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
  const config = gptConfigOfGpt2(architecture, weights.folder);
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
