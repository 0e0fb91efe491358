/**
 * One typed description of a Hugging Face model folder's architecture, read from its config.json by
 * {@link readHfConfig}: everything a model builder needs, with transformers' defaults filled in for absent keys,
 * so builders never look at config.json themselves.
 *
 * Two families: `gpt2` (learned positions, LayerNorm, Conv1D weights stored [in, out], GELU MLP) and the Llama
 * family — `llama` (SmolLM2, Llama 3.x), `qwen2`, `mistral` — (rotary positions, RMSNorm, Linear weights stored
 * [out, in], SwiGLU MLP, grouped-query attention).
 */

/** The config.json `model_type`s the lens loads. */
export const supportedModelTypes = ['gpt2', 'llama', 'qwen2', 'mistral'] as const;
export type HfModelType = (typeof supportedModelTypes)[number];

/** transformers' ACT2FN names a GPT-2 MLP may use. */
export const gpt2Activations = ['gelu_new', 'gelu', 'gelu_pytorch_tanh', 'relu', 'silu', 'swish', 'tanh'] as const;
export type Gpt2Activation = (typeof gpt2Activations)[number];

/** The dtype config.json says the weights were saved in (`torch_dtype`, or `dtype` since transformers 5). */
export type HfTorchDtype = 'float32' | 'float16' | 'bfloat16';

/** Token ids config.json names; `eos` may be several (Llama 3.1 Instruct lists three). */
export interface HfSpecialTokenIds {
  bos: number | null;
  eos: number[];
  pad: number | null;
}

interface HfArchitectureBase {
  modelType: HfModelType;
  /** config.json's `architectures[0]` (e.g. `LlamaForCausalLM`), null when absent. */
  architectureClass: string | null;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Per attention head; hiddenSize / numHeads unless config.json says otherwise (Llama family `head_dim`). */
  headDim: number;
  /** The longest context the model was built for (`n_positions` / `max_position_embeddings`). */
  maxPositions: number;
  /** When true the output projection is the token embedding (no `lm_head.weight` in the files). */
  tieWordEmbeddings: boolean;
  tokenIds: HfSpecialTokenIds;
  /** null when config.json does not say. */
  torchDtype: HfTorchDtype | null;
}

export interface Gpt2Architecture extends HfArchitectureBase {
  family: 'gpt2';
  modelType: 'gpt2';
  /** MLP width (`n_inner`, default 4 × hiddenSize). */
  intermediateSize: number;
  layerNormEpsilon: number;
  activation: Gpt2Activation;
  /** Attention scores divided by sqrt(headDim) (`scale_attn_weights`, default true). */
  scaleAttnWeights: boolean;
  /** Scores further divided by layer index + 1 (`scale_attn_by_inverse_layer_idx`, default false). */
  scaleAttnByInverseLayerIdx: boolean;
}

/** Rotary position embedding: base frequency and how the frequencies are rescaled for longer contexts. */
export interface RopeSettings {
  theta: number;
  scaling: RopeScaling;
}

export type RopeScaling =
  | { type: 'default' }
  /** Positions divided by `factor`. */
  | { type: 'linear'; factor: number }
  /** Llama 3.1+: low frequencies divided by `factor`, high ones kept, a smooth ramp between. */
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

export interface LlamaFamilyArchitecture extends HfArchitectureBase {
  family: 'llama';
  modelType: 'llama' | 'qwen2' | 'mistral';
  /** Key/value heads (grouped-query attention when fewer than numHeads); numHeads divides by it. */
  numKeyValueHeads: number;
  /** SwiGLU width: gate_proj and up_proj are [intermediateSize, hiddenSize]. */
  intermediateSize: number;
  rmsNormEps: number;
  /** The MLP gate's activation (`hidden_act`); `silu` in every supported model. */
  hiddenAct: 'silu';
  rope: RopeSettings;
  /** Biases on q_proj, k_proj, v_proj (llama `attention_bias`; always for qwen2). */
  qkvBias: boolean;
  /** Bias on o_proj (llama `attention_bias`; never for qwen2 and mistral). */
  outputBias: boolean;
  /** Biases on gate/up/down_proj (llama `mlp_bias`). */
  mlpBias: boolean;
  /** Sliding-window attention: each token sees the last `size` tokens, in layers from `fromLayer` on; null: none. */
  slidingWindow: { size: number; fromLayer: number } | null;
}

export type HfArchitecture = Gpt2Architecture | LlamaFamilyArchitecture;
