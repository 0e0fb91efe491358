/**
 * The Llama family (llama, qwen2, mistral) on a differentiable graph, for one static batch shape: the training
 * forward of transformers' LlamaForCausalLM, operation for operation as onnx/llamaOnnxGraph.ts computes inference,
 * but with weights as graph inputs (so `gradients` reaches them) and no KV cache:
 *   x = embed(ids);  per layer  x += o_proj(attention(rope(q_proj(n₁)), rope(k_proj(n₁)), v_proj(n₁))),  n₁ = rms(x)
 *                               x += down_proj(silu(gate_proj(n₂)) ⊙ up_proj(n₂)),  n₂ = rms(x)
 *   hidden = rms(x),  logits = hidden · headᵀ (head = the embedding when tied)
 * with RMSNorm y = γ ⊙ x / √(mean(x²) + ε) and rotary positions y = x·cos + rotate_half(x)·sin (Su et al. 2021,
 * the half-split layout of Llama weights). Batches are right-padded, so position t of every row is t: cos and sin
 * are constants of the graph, from hf/ropeFrequencies.ts (llama3 / linear rope_scaling included).
 * Grouped-query attention reads query head h = kv·G + g against key/value head kv without copying keys.
 * Shapes: B batch, T positions, C hidden, H query heads, K key/value heads (G = H / K), D head dim, V vocabulary.
 */
import type { LlamaFamilyArchitecture } from '../../hf/hfArchitecture';
import { expectedHfTensors, lmHeadName } from '../../hf/hfTensorNames';
import { ropeInverseFrequencies } from '../../hf/ropeFrequencies';
import type { LlamaConfig } from '../../model/causalLmConfig';
import type { ScalarHead } from '../../model/gptConfig';
import type { DiffGraph } from './autodiff/graph';
import * as op from './autodiff/ops';
import type { LinearHook } from './gptForward';

/** Added to the score of a key a query must not see (as llamaOnnxGraph.ts): far below any score, yet finite. */
const HIDDEN_KEY_BIAS = -1e9;

/** Every weight of the model and of `heads` ([C, 1] and [1] on the final hidden state), in state-dict order. */
export function llamaWeightShapes(config: LlamaConfig, heads: readonly ScalarHead[]): Map<string, number[]> {
  const shapes = new Map(expectedHfTensors(config.architecture).map(({ name, shape }) => [name, shape]));
  for (const head of heads) {
    shapes.set(`${head}.weight`, [config.architecture.hiddenSize, 1]);
    shapes.set(`${head}.bias`, [1]);
  }
  return shapes;
}

/**
 * Additive attention bias [T, T]: 0 where query i sees key j, −1e9 where j is in the future (j > i) or, with a
 * sliding window of `window` tokens, fell out of it (i − j ≥ window, as transformers' sliding-window mask).
 */
function attentionBias(g: DiffGraph, length: number, window?: number): string {
  const values = Array.from({ length: length * length }, (_, k) => {
    const [i, j] = [Math.floor(k / length), k % length];
    const hidden = j > i || (window !== undefined && i - j >= window);
    return hidden ? HIDDEN_KEY_BIAS : 0;
  });
  return g.floatTensor(values, [length, length]);
}

/** cos and sin of position t's angles t·θ_i, each half repeated ([θ, θ]), as constants [T, D]. */
function rotaryTables(g: DiffGraph, a: LlamaFamilyArchitecture, length: number): { cos: string; sin: string } {
  const frequencies = ropeInverseFrequencies(a.rope, a.headDim);
  const half = a.headDim / 2;
  const cos: number[] = [];
  const sin: number[] = [];
  for (let t = 0; t < length; t++)
    for (let d = 0; d < a.headDim; d++) {
      // transformers multiplies float32 inverse frequencies by float32 positions, then takes cos and sin.
      const angle = Math.fround(t * frequencies[d % half]);
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
  return { cos: g.floatTensor(cos, [length, a.headDim]), sin: g.floatTensor(sin, [length, a.headDim]) };
}

/** ids int64 [B, T] → logits [B, T, V] and the hidden state after the final RMSNorm [B, T, C]. */
export function llamaForward(
  g: DiffGraph,
  config: LlamaConfig,
  weights: ReadonlyMap<string, string>,
  ids: string,
  adapt?: LinearHook,
): { logits: string; hidden: string } {
  const a = config.architecture;
  const [batch, length] = g.shape(ids);
  const group = a.numHeads / a.numKeyValueHeads;
  const W = (name: string) => {
    const value = weights.get(name);
    if (!value) throw new Error(`llama graph: no weight "${name}"`);
    return value;
  };
  /** A Linear layer (weight stored [out, in]): y = x·Wᵀ (+ b), then the LoRA hook's update. */
  const linear = (x: string, module: string) => {
    const product = op.matMul(g, x, op.transpose(g, W(`${module}.weight`), [1, 0]));
    const y = weights.has(`${module}.bias`) ? op.add(g, product, W(`${module}.bias`)) : product;
    return adapt ? adapt(module, x, y) : y;
  };
  const epsilon = g.scalar(a.rmsNormEps);
  const rmsNorm = (x: string, name: string) =>
    op.mul(g, W(name), op.div(g, x, op.sqrt(g, op.add(g, op.reduceMean(g, op.mul(g, x, x), [-1]), epsilon))));
  // [B, T, heads·D] → [B, heads, T, D]
  const splitHeads = (x: string, heads: number) =>
    op.transpose(g, op.reshape(g, x, [batch, length, heads, a.headDim]), [0, 2, 1, 3]);
  const { cos, sin } = rotaryTables(g, a, length);
  const rotate = (x: string) => {
    const [first, second] = op.split(g, x, [a.headDim / 2, a.headDim / 2], -1);
    const rotated = op.concat(g, [op.neg(g, second), first], -1); // rotate_half(x) = [−x₂, x₁]
    return op.add(g, op.mul(g, x, cos), op.mul(g, rotated, sin));
  };
  // Built when first used (a graph whose layers all slide holds no plain causal bias).
  const window = a.slidingWindow;
  const biases = new Map<number | undefined, string>();
  const biasOf = (size?: number) => {
    const key = size !== undefined && size < length ? size : undefined;
    if (!biases.has(key)) biases.set(key, attentionBias(g, length, key));
    return biases.get(key) as string;
  };
  const scale = g.scalar(1 / Math.sqrt(a.headDim));

  let x = op.gather(g, W('model.embed_tokens.weight'), ids); // [B, T, C]
  for (let l = 0; l < a.numLayers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);
    const q = rotate(splitHeads(linear(h, `${p}.self_attn.q_proj`), a.numHeads)); // [B, H, T, D]
    const k = rotate(splitHeads(linear(h, `${p}.self_attn.k_proj`), a.numKeyValueHeads)); // [B, K, T, D]
    const v = splitHeads(linear(h, `${p}.self_attn.v_proj`), a.numKeyValueHeads);
    // Queries [B, K, G, T, D] against keys [B, K, 1, T, D]: transformers' repeat_kv without the copy.
    const groupedQuery = op.reshape(g, q, [batch, a.numKeyValueHeads, group, length, a.headDim]);
    const groupKey = op.unsqueeze(g, k, [2]);
    const groupValue = op.unsqueeze(g, v, [2]);
    const bias = biasOf(window && l >= window.fromLayer ? window.size : undefined);
    const scores = op.add(g, op.mul(g, op.matMul(g, groupedQuery, op.transposeLast(g, groupKey)), scale), bias);
    const mixed = op.matMul(g, op.softmax(g, scores), groupValue); // [B, K, G, T, D]
    const heads = op.reshape(g, mixed, [batch, a.numHeads, length, a.headDim]);
    const merged = op.reshape(g, op.transpose(g, heads, [0, 2, 1, 3]), [batch, length, a.numHeads * a.headDim]);
    x = op.add(g, x, linear(merged, `${p}.self_attn.o_proj`));
    const m = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gate = linear(m, `${p}.mlp.gate_proj`);
    const swish = op.mul(g, gate, op.sigmoid(g, gate)); // SiLU
    x = op.add(g, x, linear(op.mul(g, swish, linear(m, `${p}.mlp.up_proj`)), `${p}.mlp.down_proj`));
  }
  const hidden = rmsNorm(x, 'model.norm.weight');
  const head = a.tieWordEmbeddings ? W('model.embed_tokens.weight') : W(lmHeadName); // [V, C]
  const logits = op.matMul(g, hidden, op.transpose(g, head, [1, 0]));
  return { logits, hidden };
}
