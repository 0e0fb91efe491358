/**
 * The trainer's GPT (src/trainer/engine/tfjs/gpt.ts) as an ONNX graph, node for node: token + position
 * embeddings, pre-LayerNorm blocks (causal attention with an additive −1e9 bias, tanh-GELU MLP),
 * ln_f, the LM head tied to wte, and the scalar heads as extra outputs.
 *
 * Inputs and outputs follow the conventions of Hugging Face's GPT-2 ONNX export (optimum), which is
 * what lets transformers.js load the folder as a `gpt2` model:
 *   input_ids, attention_mask, position_ids   int64 [batch_size, sequence_length] (mask over past + new)
 *   past_key_values.<l>.key / .value          float [batch_size, n_head, past_sequence_length, head_dim]
 *   logits                                    float [batch_size, sequence_length, vocab_size]
 *   present.<l>.key / .value                  float [batch_size, n_head, total_sequence_length, head_dim]
 * plus `values` (v_head) and `scores` (score head), float [batch_size, sequence_length].
 * A past of length 0 makes the same graph a plain full-sequence forward.
 *
 * With `weightsAsInputs`, every weight is a graph input instead of an initializer, so a session can
 * run with new weights without being rebuilt (the alternative weight sync after a PPO update).
 */
import type { GptConfig } from '../model/gptConfig';
import type { ScalarHead } from '../engine/tfjs/gpt';
import { gptWeightShapes } from '../model/gptWeightShapes';
import { OnnxGraphBuilder } from './onnxGraphBuilder';

export type WeightValues = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

export interface GptOnnxOptions {
  /** Scalar heads to expose as outputs (each must have weights in `weights`). */
  readonly heads: readonly ScalarHead[];
  /** past_key_values inputs and present outputs (the KV-cache graph). */
  readonly kvCache: boolean;
  /** Weights as graph inputs rather than initializers. */
  readonly weightsAsInputs?: boolean;
}

/** The output name of each scalar head. */
export const headOutputName: Record<ScalarHead, string> = { v_head: 'values', score: 'scores' };

const negativeInfinity = -1e9;

/** Builds the ONNX model bytes. `weights` may be omitted only with `weightsAsInputs`. */
export function buildGptOnnx(
  config: GptConfig,
  weights: WeightValues | undefined,
  options: GptOnnxOptions,
): Uint8Array {
  const { n_head: heads, n_embd: width, n_layer: layers, vocab_size: vocab } = config;
  const headWidth = width / heads;
  const g = new OnnxGraphBuilder();

  // Weights: initializers (checked against the config's shapes) or graph inputs.
  const w = new Map<string, string>();
  for (const [name, shape] of gptWeightShapes(config, options.heads)) {
    if (options.weightsAsInputs) {
      w.set(name, g.input(name, 'float32', shape));
      continue;
    }
    const value = weights?.get(name);
    if (!value) throw new Error(`cannot export: the model has no weight "${name}"`);
    if (value.shape.join(',') !== shape.join(','))
      throw new Error(`cannot export: weight "${name}" has shape [${value.shape}], the config needs [${shape}]`);
    w.set(name, g.floatInitializer(name, shape, value.data));
  }
  const W = (name: string) => w.get(name) as string;

  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positions = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const past = options.kvCache
    ? Array.from({ length: layers }, (_, l) => ({
        k: g.input(`past_key_values.${l}.key`, 'float32', ['batch_size', heads, 'past_sequence_length', headWidth]),
        v: g.input(`past_key_values.${l}.value`, 'float32', ['batch_size', heads, 'past_sequence_length', headWidth]),
      }))
    : [];

  // Additive attention bias [B, 1, T, P+T]: −1e9 where key j is in query i's future (j > P + i), and
  // another −1e9 where key j is padding — the same sum gpt.ts's attentionBias builds.
  const zero = g.int64Constant([0]);
  const one = g.int64Constant([1]);
  const newLength = g.op1('Slice', [g.op1('Shape', [ids]), one, g.int64Constant([2])]); // [1] = T
  const pastLength = options.kvCache
    ? g.op1('Slice', [g.op1('Shape', [past[0].k]), g.int64Constant([2]), g.int64Constant([3])])
    : zero; // [1] = P
  const totalLength = g.op1('Add', [pastLength, newLength]);
  const scalar = (x: string) => g.op1('Squeeze', [x, zero]);
  const queryPositions = g.op1('Unsqueeze', [
    g.op1('Range', [scalar(pastLength), scalar(totalLength), scalar(one)]),
    one,
  ]); // [T, 1] = P + i
  // [1, P+T] = j
  const keyPositions = g.op1('Unsqueeze', [g.op1('Range', [scalar(zero), scalar(totalLength), scalar(one)]), zero]);
  // [T, P+T], 1 where j > P + i
  const future = g.op1('Cast', [g.op1('Greater', [keyPositions, queryPositions])], { to: 1 });
  const padding = g.op1('Sub', [g.floatConstant(1), g.op1('Cast', [mask], { to: 1 })]); // [B, P+T], 1 on padding
  const paddingBias = g.op1('Unsqueeze', [padding, g.int64Constant([1, 2])]); // [B, 1, 1, P+T]
  const bias = g.op1('Mul', [g.op1('Add', [future, paddingBias]), g.floatConstant(negativeInfinity)]); // [B, 1, T, P+T]

  const linear = (x: string, weight: string, biasName?: string) => {
    const y = g.op1('MatMul', [x, W(weight)]);
    return biasName ? g.op1('Add', [y, W(biasName)]) : y;
  };
  const layerNorm = (x: string, prefix: string) =>
    g.op1('LayerNormalization', [x, W(`${prefix}.weight`), W(`${prefix}.bias`)], {
      axis: -1,
      epsilon: { float: config.layer_norm_epsilon ?? 1e-5 },
    });
  // GELU, tanh approximation (GPT-2): ½x(1 + tanh(√(2/π)(x + 0.044715x³))); opset 17 has no Gelu op.
  const geluTanh = (x: string) => {
    const cube = g.op1('Mul', [x, g.op1('Mul', [x, x])]);
    const inner = g.op1('Mul', [
      g.floatConstant(Math.sqrt(2 / Math.PI)),
      g.op1('Add', [x, g.op1('Mul', [g.floatConstant(0.044715), cube])]),
    ]);
    return g.op1('Mul', [
      g.op1('Mul', [g.floatConstant(0.5), x]),
      g.op1('Add', [g.floatConstant(1), g.op1('Tanh', [inner])]),
    ]);
  };
  // GPT-2's `activation_function` (transformers' ACT2FN names).
  const gelu = (x: string): string => {
    const activation = config.activation_function ?? 'gelu_new';
    switch (activation) {
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
        return geluTanh(x);
      case 'gelu': // ½x(1 + erf(x/√2))
        return g.op1('Mul', [
          g.op1('Mul', [g.floatConstant(0.5), x]),
          g.op1('Add', [g.floatConstant(1), g.op1('Erf', [g.op1('Mul', [x, g.floatConstant(Math.SQRT1_2)])])]),
        ]);
      case 'relu':
        return g.op1('Relu', [x]);
      case 'silu':
      case 'swish':
        return g.op1('Mul', [x, g.op1('Sigmoid', [x])]);
      case 'tanh':
        return g.op1('Tanh', [x]);
      default:
        throw new Error(`gpt graph: unknown activation_function ${JSON.stringify(activation satisfies never)}`);
    }
  };
  const headsShape = g.int64Constant([0, 0, heads, headWidth]);
  // [B, H, T, D]
  const splitHeads = (x: string) => g.op1('Transpose', [g.op1('Reshape', [x, headsShape])], { perm: [0, 2, 1, 3] });

  let x = g.op1('Add', [
    g.op1('Gather', [W('transformer.wte.weight'), ids]),
    g.op1('Gather', [W('transformer.wpe.weight'), positions]),
  ]); // [B, T, C]
  const presents: { k: string; v: string }[] = [];
  for (let l = 0; l < layers; l++) {
    const p = `transformer.h.${l}`;
    const h = layerNorm(x, `${p}.ln_1`);
    const qkv = linear(h, `${p}.attn.c_attn.weight`, `${p}.attn.c_attn.bias`); // [B, T, 3C]
    const [qFlat, kFlat, vFlat] = g.op('Split', [qkv, g.int64Constant([width, width, width])], { axis: 2 }, 3);
    const q = splitHeads(qFlat);
    // [B, H, P+T, D]
    const k = options.kvCache ? g.op1('Concat', [past[l].k, splitHeads(kFlat)], { axis: 2 }) : splitHeads(kFlat);
    const v = options.kvCache ? g.op1('Concat', [past[l].v, splitHeads(vFlat)], { axis: 2 }) : splitHeads(vFlat);
    if (options.kvCache) presents.push({ k: g.rename(k, `present.${l}.key`), v: g.rename(v, `present.${l}.value`) });
    const scores = g.op1('Add', [
      g.op1('Mul', [
        g.op1('MatMul', [q, g.op1('Transpose', [k], { perm: [0, 1, 3, 2] })]),
        g.floatConstant(1 / Math.sqrt(headWidth)),
      ]),
      bias,
    ]); // [B, H, T, P+T]
    const attention = g.op1('Softmax', [scores], { axis: -1 });
    const mixed = g.op1('Reshape', [
      g.op1('Transpose', [g.op1('MatMul', [attention, v])], { perm: [0, 2, 1, 3] }),
      g.int64Constant([0, 0, width]),
    ]); // [B, T, C]
    x = g.op1('Add', [x, linear(mixed, `${p}.attn.c_proj.weight`, `${p}.attn.c_proj.bias`)]);
    const m = layerNorm(x, `${p}.ln_2`);
    const fc = gelu(linear(m, `${p}.mlp.c_fc.weight`, `${p}.mlp.c_fc.bias`)); // [B, T, 4C]
    x = g.op1('Add', [x, linear(fc, `${p}.mlp.c_proj.weight`, `${p}.mlp.c_proj.bias`)]);
  }
  const hidden = layerNorm(x, 'transformer.ln_f'); // [B, T, C]
  // Tied LM head: logits = hidden · wteᵀ
  g.rename(g.op1('MatMul', [hidden, g.op1('Transpose', [W('transformer.wte.weight')], { perm: [1, 0] })]), 'logits');
  g.output('logits', 'float32', ['batch_size', 'sequence_length', vocab]);
  presents.forEach((_, l) => {
    g.output(`present.${l}.key`, 'float32', ['batch_size', heads, 'total_sequence_length', headWidth]);
    g.output(`present.${l}.value`, 'float32', ['batch_size', heads, 'total_sequence_length', headWidth]);
  });
  for (const head of options.heads) {
    // [B, T]
    const perPosition = g.op1('Squeeze', [linear(hidden, `${head}.weight`, `${head}.bias`), g.int64Constant([2])]);
    g.rename(perPosition, headOutputName[head]);
    g.output(headOutputName[head], 'float32', ['batch_size', 'sequence_length']);
  }
  return g.encode('rlhf-lens-gpt', { heads: options.heads.join(','), kv_cache: String(options.kvCache) });
}
