/**
 * The sizes the memory estimate needs, for our GPT (a ModelShape, or a GptConfig: an HF gpt2 folder too) and for a
 * Llama-family model, and their parameter counts. The Llama family's count is the sum of the tensors
 * {@link expectedHfTensors} lists for the architecture (GQA's narrower k/v, SwiGLU's three projections, biases, an
 * untied head), so the estimate and the loader can never disagree about what a folder holds.
 */
import type { Gpt2Architecture, HfArchitecture } from '../hf/hfArchitecture';
import { hfParameterCount } from '../hf/hfModelFolder';
import { expectedHfTensors } from '../hf/hfTensorNames';
import { isLlamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import type { GptConfig } from '../model/gptConfig';

/** Our GPT's shape as a run config gives it. */
export interface ModelShape {
  readonly n_layer: number;
  readonly n_head: number;
  readonly n_embd: number;
  readonly block_size: number;
  readonly vocab_size: number;
}

/** Every width the activation model reads, whatever the family. */
export interface ModelDims {
  readonly layers: number;
  readonly heads: number;
  /** Key/value heads: `heads` without grouped-query attention. */
  readonly keyValueHeads: number;
  readonly headDim: number;
  readonly hidden: number;
  /** MLP width: 4 × hidden for GPT-2's GELU MLP, `intermediate_size` for SwiGLU. */
  readonly intermediate: number;
  readonly vocab: number;
  /** The context the run feeds the model. */
  readonly blockSize: number;
  readonly mlp: 'gelu' | 'swiglu';
  /** Rotary position embeddings on q and k (the Llama family). */
  readonly rotary: boolean;
}

/** GPT-2's MLP is 4 × the hidden size. */
export const gptMlpRatio = 4;

export function shapeDims(shape: ModelShape): ModelDims {
  return {
    layers: shape.n_layer,
    heads: shape.n_head,
    keyValueHeads: shape.n_head,
    headDim: shape.n_embd / shape.n_head,
    hidden: shape.n_embd,
    intermediate: gptMlpRatio * shape.n_embd,
    vocab: shape.vocab_size,
    blockSize: shape.block_size,
    mlp: 'gelu',
    rotary: false,
  };
}

export function causalLmDims(config: CausalLmConfig): ModelDims {
  if (!isLlamaConfig(config)) return shapeDims(config);
  const a = config.architecture;
  return {
    layers: a.numLayers,
    heads: a.numHeads,
    keyValueHeads: a.numKeyValueHeads,
    headDim: a.headDim,
    hidden: a.hiddenSize,
    intermediate: a.intermediateSize,
    vocab: a.vocabSize,
    blockSize: config.block_size,
    mlp: 'swiglu',
    rotary: true,
  };
}

/** A config with another context (the search for the block_size that fits). */
export function withBlockSize(config: CausalLmConfig, blockSize: number): CausalLmConfig {
  return { ...config, block_size: blockSize };
}

/** Our GPT as the gpt2 architecture it is saved as (learned positions over block_size, tied head, 4 × C MLP). */
export function gptArchitecture(config: GptConfig): Gpt2Architecture {
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    architectureClass: null,
    vocabSize: config.vocab_size,
    hiddenSize: config.n_embd,
    numLayers: config.n_layer,
    numHeads: config.n_head,
    headDim: config.n_embd / config.n_head,
    maxPositions: config.block_size,
    tieWordEmbeddings: true,
    tokenIds: { bos: null, eos: [], pad: null },
    torchDtype: null,
    intermediateSize: gptMlpRatio * config.n_embd,
    layerNormEpsilon: config.layer_norm_epsilon ?? 1e-5,
    activation: config.activation_function ?? 'gelu_new',
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
  };
}

export function architectureOf(config: CausalLmConfig): HfArchitecture {
  return isLlamaConfig(config) ? config.architecture : gptArchitecture(config);
}

const elements = (shape: readonly number[]) => shape.reduce((product, size) => product * size, 1);

/** The transformer's parameters (embeddings, blocks, final norm, an untied head), without scalar heads. */
export function transformerParameters(config: CausalLmConfig): number {
  return hfParameterCount(architectureOf(config));
}

/** Elements of the model's largest tensor (the embedding, in every released model): one read, one GPU buffer. */
export function largestTensorElements(config: CausalLmConfig): number {
  return Math.max(...expectedHfTensors(architectureOf(config)).map((tensor) => elements(tensor.shape)));
}

/** A scalar head on the final hidden state (`v_head` or `score`): weight [C, 1] and bias [1]. */
export const scalarHeadParameters = (hidden: number) => hidden + 1;

/** Our GPT with one scalar head (what the run config's stages train), from its shape alone. */
export function parameterCount(shape: ModelShape): number {
  const { n_layer: L, n_embd: C, block_size: T, vocab_size: V } = shape;
  // wte, wpe, L × (ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj), ln_f, a scalar head.
  return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + scalarHeadParameters(C);
}
