/**
 * The trainer's GPT (engine/tfjs/gpt.ts; exported node for node by onnx/gptOnnxGraph.ts) as a differentiable
 * forward for one static batch shape: weights are graph inputs, the causal bias is a constant, and there is no KV
 * cache — what a training step's forward needs. GPT-2's `layer_norm_epsilon` and `activation_function` come from
 * the config (absent: 1e-5 and gelu_new), so any Hugging Face gpt2 folder runs.
 */
import type { Gpt2Activation } from '../../hf/hfArchitecture';
import type { GptConfig, ScalarHead } from '../../model/gptConfig';
import { gptWeightShapes } from '../../model/gptWeightShapes';
import type { DiffGraph } from './autodiff/graph';
import * as op from './autodiff/ops';

/** The additive bias that hides the future: −1e9 where key j > query i (gpt.ts's attentionBias). */
const NEGATIVE_INFINITY = -1e9;
/** GPT-2's defaults for the settings a config.json may change (gptConfig.ts). */
const DEFAULT_LAYER_NORM_EPSILON = 1e-5;
const DEFAULT_ACTIVATION: Gpt2Activation = 'gelu_new';

/** Declares every weight (and those of `heads`) as a float input; returns name → value. */
export function gptWeightInputs(
  g: DiffGraph,
  config: GptConfig,
  heads: readonly ScalarHead[] = [],
): Map<string, string> {
  const weights = new Map<string, string>();
  for (const [name, shape] of gptWeightShapes(config, heads)) weights.set(name, g.input(name, shape));
  return weights;
}

/** The causal bias [1, 1, T, T]: 0 where j ≤ i, −1e9 elsewhere. */
function causalBias(g: DiffGraph, length: number): string {
  const values = Array.from({ length: length * length }, (_, k) =>
    k % length <= Math.floor(k / length) ? 0 : NEGATIVE_INFINITY,
  );
  return g.floatTensor(values, [1, 1, length, length]);
}

/** Sees a linear layer's input x and output y (module named as PEFT names it) and returns the layer's result. */
export type LinearHook = (module: string, x: string, y: string) => string;

/**
 * The k-th dropout site's multiplier (0 or 1/(1 − p) per element; model/dropoutMasks.ts draws them for
 * both engines), given its shape: a graph input. Sites in gpt.ts's order: embeddings, then per layer
 * attention probabilities, attention output, MLP output.
 */
export type DropoutMaskInput = (site: number, shape: readonly number[]) => string;

/** The graph input name of the k-th dropout site's mask. */
export const dropoutMaskInput = (site: number) => `dropout_mask.${site}`;

/**
 * GPT-2's `activation_function` (transformers' ACT2FN) on the graph: gelu_new and gelu_pytorch_tanh are the tanh
 * approximation, gelu the exact erf form, silu / swish x·σ(x), relu max(x, 0).
 */
export function gpt2Activation(g: DiffGraph, name: Gpt2Activation, x: string): string {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return op.geluTanh(g, x);
    case 'gelu':
      return op.geluExact(g, x);
    case 'relu':
      return op.max(g, x, g.scalar(0));
    case 'silu':
    case 'swish':
      return op.mul(g, x, op.sigmoid(g, x));
    case 'tanh':
      return op.tanh(g, x);
    default:
      throw new Error(`gpt graph: unknown activation_function ${JSON.stringify(name satisfies never)}`);
  }
}

/**
 * The transformer: ids int64 [B, T] → logits [B, T, V] and the hidden state after ln_f [B, T, C]. `adapt` sees
 * each linear layer's input and output (LoRA adds its update there).
 */
export function gptForward(
  g: DiffGraph,
  config: GptConfig,
  weights: ReadonlyMap<string, string>,
  ids: string,
  dropoutMask?: DropoutMaskInput,
  adapt?: LinearHook,
): { logits: string; hidden: string } {
  const { n_head: heads, n_embd: width, n_layer: layers } = config;
  const [batch, length] = g.shape(ids);
  const headWidth = width / heads;
  const W = (name: string) => {
    const value = weights.get(name);
    if (!value) throw new Error(`gpt graph: no weight "${name}"`);
    return value;
  };
  // Conv1D: y = x·W + b with W stored [in, out].
  const linear = (x: string, prefix: string) => {
    const y = op.add(g, op.matMul(g, x, W(`${prefix}.weight`)), W(`${prefix}.bias`));
    return adapt ? adapt(prefix, x, y) : y;
  };
  const epsilon = config.layer_norm_epsilon ?? DEFAULT_LAYER_NORM_EPSILON;
  const activation = config.activation_function ?? DEFAULT_ACTIVATION;
  const layerNorm = (x: string, prefix: string) =>
    op.layerNorm(g, x, W(`${prefix}.weight`), W(`${prefix}.bias`), epsilon);
  // [B, T, C] → [B, H, T, D]
  const splitHeads = (x: string) => op.transpose(g, op.reshape(g, x, [batch, length, heads, headWidth]), [0, 2, 1, 3]);

  let dropoutSite = 0;
  const dropout = (x: string) => (dropoutMask ? op.mul(g, x, dropoutMask(dropoutSite++, g.shape(x))) : x);

  const positions = g.int64(
    Array.from({ length: batch * length }, (_, k) => k % length),
    [batch, length],
  );
  let x = dropout(
    op.add(g, op.gather(g, W('transformer.wte.weight'), ids), op.gather(g, W('transformer.wpe.weight'), positions)),
  );
  const bias = causalBias(g, length);
  const scale = g.scalar(1 / Math.sqrt(headWidth));
  for (let l = 0; l < layers; l++) {
    const p = `transformer.h.${l}`;
    const h = layerNorm(x, `${p}.ln_1`);
    const [q, k, v] = op.split(g, linear(h, `${p}.attn.c_attn`), [width, width, width], 2).map(splitHeads);
    const scores = op.add(g, op.mul(g, op.matMul(g, q, op.transposeLast(g, k)), scale), bias); // [B, H, T, T]
    const attention = dropout(op.softmax(g, scores));
    const mixed = op.reshape(g, op.transpose(g, op.matMul(g, attention, v), [0, 2, 1, 3]), [batch, length, width]);
    x = op.add(g, x, dropout(linear(mixed, `${p}.attn.c_proj`)));
    const fc = gpt2Activation(g, activation, linear(layerNorm(x, `${p}.ln_2`), `${p}.mlp.c_fc`)); // [B, T, 4C]
    x = op.add(g, x, dropout(linear(fc, `${p}.mlp.c_proj`)));
  }
  const hidden = layerNorm(x, 'transformer.ln_f');
  // Tied LM head: logits = hidden · wteᵀ
  const logits = op.matMul(g, hidden, op.transpose(g, W('transformer.wte.weight'), [1, 0]));
  return { logits, hidden };
}
