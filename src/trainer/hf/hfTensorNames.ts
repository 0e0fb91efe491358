/**
 * The tensors each architecture's weights must hold, named and shaped as transformers saves them from
 * GPT2LMHeadModel and LlamaForCausalLM (Qwen2ForCausalLM, MistralForCausalLM): GPT-2's Conv1D weights are stored
 * [in, out], the Llama family's Linear weights [out, in]. A base model saved alone (GPT2Model, LlamaModel) has the
 * same names without the `transformer.` / `model.` prefix, and no `lm_head`.
 */
import type { Gpt2Architecture, HfArchitecture, LlamaFamilyArchitecture } from './hfArchitecture';

export interface HfTensorSpec {
  /** The name in a …LMHeadModel / …ForCausalLM file (the canonical name readers ask for). */
  name: string;
  shape: number[];
}

/** The prefix the base model's tensors have inside a causal-LM file. */
export function basePrefix(architecture: HfArchitecture): string {
  return architecture.family === 'gpt2' ? 'transformer.' : 'model.';
}

export const lmHeadName = 'lm_head.weight';

/** Every tensor the model needs, in a stable order (embeddings, layers, final norm, head). */
export function expectedHfTensors(architecture: HfArchitecture): HfTensorSpec[] {
  const tensors = architecture.family === 'gpt2' ? gpt2Tensors(architecture) : llamaTensors(architecture);
  if (!architecture.tieWordEmbeddings)
    tensors.push({ name: lmHeadName, shape: [architecture.vocabSize, architecture.hiddenSize] });
  return tensors;
}

/**
 * Tensors a file may hold that the model does not use: GPT-2's saved causal-mask buffers (`attn.bias`,
 * `attn.masked_bias`, in files converted from older checkpoints), the Llama family's `rotary_emb.inv_freq` (older
 * transformers saved it), and `lm_head.weight` when the embeddings are tied (the head is the embedding then).
 */
export function isUnusedHfTensor(architecture: HfArchitecture, canonicalName: string): boolean {
  if (architecture.tieWordEmbeddings && canonicalName === lmHeadName) return true;
  return architecture.family === 'gpt2'
    ? /^transformer\.h\.\d+\.attn\.(?:bias|masked_bias)$/.test(canonicalName)
    : /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(canonicalName);
}

function gpt2Tensors(a: Gpt2Architecture): HfTensorSpec[] {
  const d = a.hiddenSize;
  const tensors: HfTensorSpec[] = [
    { name: 'transformer.wte.weight', shape: [a.vocabSize, d] },
    { name: 'transformer.wpe.weight', shape: [a.maxPositions, d] },
  ];
  for (let layer = 0; layer < a.numLayers; layer++) {
    const p = `transformer.h.${layer}.`;
    tensors.push(
      { name: `${p}ln_1.weight`, shape: [d] },
      { name: `${p}ln_1.bias`, shape: [d] },
      { name: `${p}attn.c_attn.weight`, shape: [d, 3 * d] },
      { name: `${p}attn.c_attn.bias`, shape: [3 * d] },
      { name: `${p}attn.c_proj.weight`, shape: [d, d] },
      { name: `${p}attn.c_proj.bias`, shape: [d] },
      { name: `${p}ln_2.weight`, shape: [d] },
      { name: `${p}ln_2.bias`, shape: [d] },
      { name: `${p}mlp.c_fc.weight`, shape: [d, a.intermediateSize] },
      { name: `${p}mlp.c_fc.bias`, shape: [a.intermediateSize] },
      { name: `${p}mlp.c_proj.weight`, shape: [a.intermediateSize, d] },
      { name: `${p}mlp.c_proj.bias`, shape: [d] },
    );
  }
  tensors.push({ name: 'transformer.ln_f.weight', shape: [d] }, { name: 'transformer.ln_f.bias', shape: [d] });
  return tensors;
}

function llamaTensors(a: LlamaFamilyArchitecture): HfTensorSpec[] {
  const d = a.hiddenSize;
  const queryWidth = a.numHeads * a.headDim;
  const keyValueWidth = a.numKeyValueHeads * a.headDim;
  const tensors: HfTensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [a.vocabSize, d] }];
  const linear = (name: string, out: number, into: number, bias: boolean) => {
    tensors.push({ name: `${name}.weight`, shape: [out, into] });
    if (bias) tensors.push({ name: `${name}.bias`, shape: [out] });
  };
  for (let layer = 0; layer < a.numLayers; layer++) {
    const p = `model.layers.${layer}.`;
    tensors.push({ name: `${p}input_layernorm.weight`, shape: [d] });
    linear(`${p}self_attn.q_proj`, queryWidth, d, a.qkvBias);
    linear(`${p}self_attn.k_proj`, keyValueWidth, d, a.qkvBias);
    linear(`${p}self_attn.v_proj`, keyValueWidth, d, a.qkvBias);
    linear(`${p}self_attn.o_proj`, d, queryWidth, a.outputBias);
    tensors.push({ name: `${p}post_attention_layernorm.weight`, shape: [d] });
    linear(`${p}mlp.gate_proj`, a.intermediateSize, d, a.mlpBias);
    linear(`${p}mlp.up_proj`, a.intermediateSize, d, a.mlpBias);
    linear(`${p}mlp.down_proj`, d, a.intermediateSize, a.mlpBias);
  }
  tensors.push({ name: 'model.norm.weight', shape: [d] });
  return tensors;
}
