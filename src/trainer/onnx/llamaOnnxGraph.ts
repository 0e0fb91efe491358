/**
 * The Llama family (`llama`, `qwen2`, `mistral`) of a Hugging Face model folder as an ONNX graph: token
 * embedding, pre-RMSNorm blocks with rotary positions and grouped-query attention, SwiGLU MLP, final RMSNorm, and
 * the LM head (the embedding when tied). It follows transformers' LlamaForCausalLM operation for operation.
 *
 * Inputs and outputs are Optimum's for these models, which transformers.js loads as a `llama` / `qwen2` /
 * `mistral` model:
 *   input_ids, position_ids                   int64 [batch_size, sequence_length]
 *   attention_mask                            int64 [batch_size, total_sequence_length] (past + new, 1 = token)
 *   past_key_values.<l>.key / .value          float [batch_size, num_key_value_heads, past_sequence_length, head_dim]
 *   logits                                    float [batch_size, sequence_length, vocab_size]
 *   present.<l>.key / .value                  float [batch_size, num_key_value_heads, total_sequence_length, head_dim]
 * A past of length 0 makes the same graph a full-sequence forward. Keys are cached after the rotation, as
 * transformers caches them, so a decode step rotates only its own query and key.
 */
import type { LlamaFamilyArchitecture } from '../hf/hfArchitecture';
import type { HfWeights } from '../hf/hfWeights';
import type { ScalarHead } from '../model/gptConfig';
import { headOutputName } from './gptOnnxGraph';
import { OnnxGraphBuilder } from './onnxGraphBuilder';
import { ropeInverseFrequencies } from '../hf/ropeFrequencies';

/** Added to the score of a key a query must not see: far below any real score, yet finite (no NaN rows). */
const hiddenKeyBias = -1e9;
const onnxFloat = 1;

/** A weight stored [out, in] (torch Linear) as the [in, out] matrix MatMul multiplies by. */
function transposed(data: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) out[c * rows + r] = data[r * columns + c];
  return out;
}

/**
 * Builds the ONNX model bytes of `weights`' Llama-family model (weights baked in as float32 initializers); `heads`
 * (read from `weights` as `<head>.weight` [C, 1] and `<head>.bias` [1]) become outputs `values` / `scores` [B, T]
 * on the final hidden state, as gptOnnxGraph.ts exposes them.
 */
export async function buildLlamaOnnx(
  weights: HfWeights,
  heads: readonly ScalarHead[] = [],
  options: LlamaOnnxOptions = {},
): Promise<Uint8Array> {
  const a = weights.architecture;
  if (a.family !== 'llama') throw new Error(`buildLlamaOnnx: ${a.modelType} is not of the Llama family`);
  const g = new OnnxGraphBuilder();
  const shapes = new Map(weights.tensors.map((spec) => [spec.name, spec.shape]));
  const hasTensor = (name: string) => shapes.has(name);
  /** A weight as stored (an initializer, or an input of its own name and shape). */
  const stored = async (name: string, shape: number[]): Promise<string> =>
    options.weightsAsInputs
      ? g.input(name, 'float32', shape)
      : g.floatInitializer(name, shape, await weights.read(name));
  /** A [out, in] matrix as the [in, out] one MatMul multiplies by: transposed once here, or in the graph. */
  const matrix = async (name: string, out: number, into: number): Promise<string> =>
    options.weightsAsInputs
      ? g.op1('Transpose', [g.input(name, 'float32', [out, into])], { perm: [1, 0] })
      : g.floatInitializer(name, [into, out], transposed(await weights.read(name), out, into));

  /** A Linear layer's weight (and bias when the folder has one), applied to `x`. */
  const linear = async (x: string, name: string): Promise<string> => {
    const [out, into] = shapes.get(`${name}.weight`) as number[];
    const y = g.op1('MatMul', [x, await matrix(`${name}.weight`, out, into)]);
    if (!hasTensor(`${name}.bias`)) return y;
    return g.op1('Add', [y, await stored(`${name}.bias`, [out])]);
  };
  const rmsNorm = async (x: string, name: string): Promise<string> => {
    const weight = await stored(name, [a.hiddenSize]);
    const meanSquare = g.op1('ReduceMean', [g.op1('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const inverseRms = g.op1('Reciprocal', [
      g.op1('Sqrt', [g.op1('Add', [meanSquare, g.floatConstant(a.rmsNormEps)])]),
    ]);
    return g.op1('Mul', [weight, g.op1('Mul', [x, inverseRms])]);
  };

  const inputs = declareInputs(g, a);
  const masks = attentionBiases(g, a, inputs);
  const rope = rotaryTables(g, a, inputs.positions);
  const embedding = await stored('model.embed_tokens.weight', [a.vocabSize, a.hiddenSize]);
  const group = a.numHeads / a.numKeyValueHeads;
  // [B, T, H·D] → [B, H, T, D]
  const splitHeads = (x: string, heads: number) =>
    g.op1('Transpose', [g.op1('Reshape', [x, g.int64Constant([0, 0, heads, a.headDim])])], { perm: [0, 2, 1, 3] });
  const groupedQueryShape = g.int64Constant([0, a.numKeyValueHeads, group, -1, a.headDim]);
  const keyValueGroupAxis = g.int64Constant([2]);

  let x = g.op1('Gather', [embedding, inputs.ids]); // [B, T, C]
  for (let l = 0; l < a.numLayers; l++) {
    const p = `model.layers.${l}`;
    const h = await rmsNorm(x, `${p}.input_layernorm.weight`);
    const q = rope.apply(splitHeads(await linear(h, `${p}.self_attn.q_proj`), a.numHeads)); // [B, H, T, D]
    const newKey = rope.apply(splitHeads(await linear(h, `${p}.self_attn.k_proj`), a.numKeyValueHeads));
    const newValue = splitHeads(await linear(h, `${p}.self_attn.v_proj`), a.numKeyValueHeads);
    const key = g.rename(g.op1('Concat', [inputs.past[l].key, newKey], { axis: 2 }), `present.${l}.key`);
    const value = g.rename(g.op1('Concat', [inputs.past[l].value, newValue], { axis: 2 }), `present.${l}.value`);
    // Grouped-query attention without copying keys: queries [B, KV, G, T, D] against keys [B, KV, 1, S, D];
    // query head h = kv·G + g reads key/value head kv, as transformers' repeat_kv arranges them.
    const groupedQuery = g.op1('Reshape', [q, groupedQueryShape]);
    const groupKey = g.op1('Unsqueeze', [key, keyValueGroupAxis]);
    const groupValue = g.op1('Unsqueeze', [value, keyValueGroupAxis]);
    const scores = g.op1('Add', [
      g.op1('Mul', [
        g.op1('MatMul', [groupedQuery, g.op1('Transpose', [groupKey], { perm: [0, 1, 2, 4, 3] })]),
        g.floatConstant(1 / Math.sqrt(a.headDim)),
      ]),
      masks.forLayer(l),
    ]); // [B, KV, G, T, S]
    const mixed = g.op1('MatMul', [g.op1('Softmax', [scores], { axis: -1 }), groupValue]); // [B, KV, G, T, D]
    const merged = g.op1('Reshape', [
      g.op1('Transpose', [g.op1('Reshape', [mixed, g.int64Constant([0, a.numHeads, -1, a.headDim])])], {
        perm: [0, 2, 1, 3],
      }),
      g.int64Constant([0, 0, a.numHeads * a.headDim]),
    ]); // [B, T, H·D]
    x = g.op1('Add', [x, await linear(merged, `${p}.self_attn.o_proj`)]);
    const m = await rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gate = await linear(m, `${p}.mlp.gate_proj`);
    const swish = g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]); // SiLU
    x = g.op1('Add', [
      x,
      await linear(g.op1('Mul', [swish, await linear(m, `${p}.mlp.up_proj`)]), `${p}.mlp.down_proj`),
    ]);
  }
  const hidden = await rmsNorm(x, 'model.norm.weight');
  const head = a.tieWordEmbeddings
    ? g.op1('Transpose', [embedding], { perm: [1, 0] })
    : await matrix('lm_head.weight', a.vocabSize, a.hiddenSize);
  g.rename(g.op1('MatMul', [hidden, head]), 'logits');
  for (const scalarHead of heads) {
    const weight = await stored(`${scalarHead}.weight`, [a.hiddenSize, 1]);
    const bias = await stored(`${scalarHead}.bias`, [1]);
    const perPosition = g.op1('Squeeze', [
      g.op1('Add', [g.op1('MatMul', [hidden, weight]), bias]),
      g.int64Constant([2]),
    ]);
    g.rename(perPosition, headOutputName[scalarHead]);
  }
  g.output('logits', 'float32', ['batch_size', 'sequence_length', a.vocabSize]);
  const cacheDims = ['batch_size', a.numKeyValueHeads, 'total_sequence_length', a.headDim];
  for (let l = 0; l < a.numLayers; l++) {
    g.output(`present.${l}.key`, 'float32', cacheDims);
    g.output(`present.${l}.value`, 'float32', cacheDims);
  }
  for (const scalarHead of heads) g.output(headOutputName[scalarHead], 'float32', ['batch_size', 'sequence_length']);
  const metadata = { model_type: a.modelType, kv_cache: 'true', ...(heads.length > 0 && { heads: heads.join(',') }) };
  return g.encode(`rlhf-lens-${a.modelType}`, metadata);
}

export interface LlamaOnnxOptions {
  /**
   * Every weight a graph input of its own name and stored shape (Linear [out, in], transposed in the graph) instead
   * of an initializer: a trainer's policy feeds its current weights to each run (no rebuild after an update, and no
   * 2 GiB protobuf limit); `weights.read` is then never called.
   */
  readonly weightsAsInputs?: boolean;
}

interface GraphInputs {
  ids: string;
  mask: string;
  positions: string;
  past: { key: string; value: string }[];
}

function declareInputs(g: OnnxGraphBuilder, a: LlamaFamilyArchitecture): GraphInputs {
  const cacheDims = ['batch_size', a.numKeyValueHeads, 'past_sequence_length', a.headDim];
  return {
    ids: g.input('input_ids', 'int64', ['batch_size', 'sequence_length']),
    mask: g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']),
    positions: g.input('position_ids', 'int64', ['batch_size', 'sequence_length']),
    past: Array.from({ length: a.numLayers }, (_, l) => ({
      key: g.input(`past_key_values.${l}.key`, 'float32', cacheDims),
      value: g.input(`past_key_values.${l}.value`, 'float32', cacheDims),
    })),
  };
}

/**
 * Additive attention biases [B, 1, 1, T, P+T] (broadcast over key/value heads and their query groups): a key
 * is hidden from query i (absolute index P + i) when it is in the future (j > P + i), padding (mask 0), or — in
 * sliding-window layers — more than `size − 1` positions back (j ≤ P + i − size), as transformers' sliding
 * window masks. Layers before `fromLayer` see the whole causal context.
 */
function attentionBiases(g: OnnxGraphBuilder, a: LlamaFamilyArchitecture, inputs: GraphInputs) {
  const zero = g.int64Constant([0]);
  const one = g.int64Constant([1]);
  const newLength = g.op1('Slice', [g.op1('Shape', [inputs.ids]), one, g.int64Constant([2])]); // [1] = T
  const pastLength = g.op1('Slice', [g.op1('Shape', [inputs.past[0].key]), g.int64Constant([2]), g.int64Constant([3])]);
  const totalLength = g.op1('Add', [pastLength, newLength]);
  const scalar = (v: string) => g.op1('Squeeze', [v, zero]);
  const queryIndex = g.op1('Unsqueeze', [g.op1('Range', [scalar(pastLength), scalar(totalLength), scalar(one)]), one]);
  const keyIndex = g.op1('Unsqueeze', [g.op1('Range', [scalar(zero), scalar(totalLength), scalar(one)]), zero]);
  const asFloat = (v: string) => g.op1('Cast', [v], { to: onnxFloat });
  const future = asFloat(g.op1('Greater', [keyIndex, queryIndex])); // [T, P+T]
  const padding = g.op1('Sub', [g.floatConstant(1), asFloat(inputs.mask)]); // [B, P+T], 1 on padding
  const paddingBias = g.op1('Unsqueeze', [padding, g.int64Constant([1, 2, 3])]); // [B, 1, 1, 1, P+T]
  const toBias = (hidden: string) =>
    g.op1('Mul', [g.op1('Add', [hidden, paddingBias]), g.floatConstant(hiddenKeyBias)]);
  const causal = toBias(future);
  const window = a.slidingWindow;
  if (window === null) return { forLayer: () => causal };
  // j ≤ i − size ⇔ i − j ≥ size: the key fell out of the window.
  const distance = g.op1('Sub', [queryIndex, keyIndex]);
  const outside = asFloat(g.op1('Greater', [distance, g.int64Constant([window.size - 1])]));
  const windowed = toBias(g.op1('Add', [future, outside]));
  return { forLayer: (layer: number) => (layer >= window.fromLayer ? windowed : causal) };
}

/** cos and sin of each position's angles [B, 1, T, D] and the rotation of [B, heads, T, D] queries or keys. */
function rotaryTables(g: OnnxGraphBuilder, a: LlamaFamilyArchitecture, positions: string) {
  const half = a.headDim / 2;
  const frequencies = g.floatInitializer(
    'rope.inverse_frequencies',
    [1, 1, half],
    ropeInverseFrequencies(a.rope, a.headDim),
  );
  const positionsAsFloat = g.op1('Unsqueeze', [g.op1('Cast', [positions], { to: onnxFloat }), g.int64Constant([2])]);
  const angles = g.op1('Mul', [positionsAsFloat, frequencies]); // [B, T, D/2]
  const doubled = g.op1('Unsqueeze', [g.op1('Concat', [angles, angles], { axis: -1 }), g.int64Constant([1])]);
  const cos = g.op1('Cos', [doubled]);
  const sin = g.op1('Sin', [doubled]);
  const halves = g.int64Constant([half, half]);
  return {
    /** x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁] (the half-split layout of Llama weights). */
    apply(x: string): string {
      const [first, second] = g.op('Split', [x, halves], { axis: -1 }, 2);
      const rotated = g.op1('Concat', [g.op1('Neg', [second]), first], { axis: -1 });
      return g.op1('Add', [g.op1('Mul', [x, cos]), g.op1('Mul', [rotated, sin])]);
    },
  };
}
