/**
 * The Llama family (llama, qwen2, mistral) in TensorFlow.js, from the typed architecture of src/trainer/hf: token
 * embedding, pre-RMSNorm blocks of rotary grouped-query attention and a SwiGLU MLP (down(silu(gate(x)) · up(x))),
 * a final RMSNorm and the LM head — the embedding itself when tied. Weights keep transformers' names and Linear
 * layout [out, in], so a folder's tensors load as they are and save back the same.
 *
 * Shapes: B batch, T positions in this call, P positions already in the KV cache, C hidden size, H query heads,
 * K key/value heads, D head dim, V vocabulary.
 */
import type { LlamaFamilyArchitecture } from '../../hf/hfArchitecture';
import { expectedHfTensors, lmHeadName } from '../../hf/hfTensorNames';
import { silu } from './activations';
import type { ForwardResult, KvCache } from './gpt';
import { causalBias, groupedQueryAttention, paddingBias } from './groupedAttention';
import type { LinearAdapters } from './loraAdapters';
import { embedding, linear } from './ops';
import { makeVariables, readVariables } from './readVariables';
import { rmsNorm } from './rmsNorm';
import { ropeInverseFrequencies } from '../../hf/ropeFrequencies';
import { applyRotary, rotaryTables } from './rotary';
import { tf, type Tensor, type Variable } from './tfRuntime';

export interface CausalLmForwardOptions {
  /** int32 [B, T] position of each token; defaults to P, P+1, … (left-padded batches pass their own). */
  readonly positions?: Tensor;
  /** 1 for a real token, 0 for padding, over cached and new positions: [B, P + T]. */
  readonly keyMask?: Tensor;
  /** Earlier positions' keys and values ([B, K, P, D]: key/value heads, not repeated); the result extends it. */
  readonly cache?: KvCache;
  /** LoRA updates added to the adapted linear layers' outputs (none: the base model). */
  readonly adapters?: LinearAdapters;
}

export class LlamaModel {
  readonly architecture: LlamaFamilyArchitecture;
  /** Every weight by its causal-LM name (`model.layers.0.self_attn.q_proj.weight`, …), in the files' order. */
  readonly weights: ReadonlyMap<string, Variable>;
  /** θ_i of the rotary embedding, [D/2]. */
  private readonly inverseFrequencies: Tensor;
  /**
   * Causal biases of full forwards by "window:T", kept across calls (T² values each, built on the CPU). A decoding
   * step's bias is one row and its key count grows every step, so it is built afresh instead of cached.
   */
  private readonly biasCache = new Map<string, Tensor>();

  private constructor(architecture: LlamaFamilyArchitecture, weights: Map<string, Variable>) {
    this.architecture = architecture;
    this.weights = weights;
    this.inverseFrequencies = tf.tensor1d(ropeInverseFrequencies(architecture.rope, architecture.headDim));
  }

  /**
   * Builds the model from weights `read` gives one at a time by causal-LM name (HfWeights.read: F32 whatever the
   * file's dtype), so a large folder is never held twice in memory.
   */
  static async load(
    architecture: LlamaFamilyArchitecture,
    read: (name: string) => Promise<Float32Array>,
  ): Promise<LlamaModel> {
    const specs = expectedHfTensors(architecture).map(({ name, shape }) => [name, shape] as const);
    const weights = await readVariables(specs, read);
    return new LlamaModel(architecture, weights);
  }

  /** Builds the model from values at hand by causal-LM name (a checkpoint in memory, a fresh initialisation). */
  static fromValues(
    architecture: LlamaFamilyArchitecture,
    value: (name: string, shape: readonly number[]) => Float32Array,
  ): LlamaModel {
    const specs = expectedHfTensors(architecture).map(({ name, shape }) => [name, shape] as const);
    return new LlamaModel(architecture, makeVariables(specs, value));
  }

  get parameterCount(): number {
    let total = 0;
    for (const variable of this.weights.values()) total += variable.size;
    return total;
  }

  private w(name: string): Variable {
    const variable = this.weights.get(name);
    if (!variable) throw new Error(`model has no weight ${name}`);
    return variable;
  }

  /** A Linear layer: x [..., in] · Wᵀ (W stored [out, in]) + b, plus its LoRA update when it has one. */
  private project(x: Tensor, name: string, hasBias: boolean, adapters?: LinearAdapters): Tensor {
    const base = linear(x, tf.transpose(this.w(`${name}.weight`)), hasBias ? this.w(`${name}.bias`) : undefined);
    const update = adapters?.delta(name, x);
    return update ? tf.add(base, update) : base;
  }

  /** ids int32 [B, T] → logits [B, T, V] and the final hidden state [B, T, C]. */
  forward(ids: Tensor, options: CausalLmForwardOptions = {}): ForwardResult {
    const a = this.architecture;
    const [batch, length] = ids.shape as [number, number];
    const past = options.cache?.length ?? 0;
    if (past + length > a.maxPositions)
      throw new Error(`sequence of ${past + length} positions exceeds max_position_embeddings ${a.maxPositions}`);
    const positions =
      options.positions ?? tf.add(tf.range(past, past + length, 1, 'int32'), tf.zeros([batch, length], 'int32'));
    const rotary = rotaryTables(positions, this.inverseFrequencies);
    const padding = options.keyMask ? paddingBias(options.keyMask) : undefined;
    // [B, T, n·D] → [B, n, T, D]
    const splitHeads = (t: Tensor, count: number) =>
      tf.transpose(t.reshape([batch, length, count, a.headDim]), [0, 2, 1, 3]);
    const newCache: { k: Tensor; v: Tensor }[] = [];
    const project = (input: Tensor, name: string, hasBias: boolean) =>
      this.project(input, name, hasBias, options.adapters);

    let x = embedding(this.w('model.embed_tokens.weight'), ids); // [B, T, C]
    for (let layer = 0; layer < a.numLayers; layer++) {
      const p = `model.layers.${layer}`;
      const h = rmsNorm(x, this.w(`${p}.input_layernorm.weight`), a.rmsNormEps);
      const q = applyRotary(splitHeads(project(h, `${p}.self_attn.q_proj`, a.qkvBias), a.numHeads), rotary);
      // [B, K, T, D]
      const kNew = applyRotary(splitHeads(project(h, `${p}.self_attn.k_proj`, a.qkvBias), a.numKeyValueHeads), rotary);
      const vNew = splitHeads(project(h, `${p}.self_attn.v_proj`, a.qkvBias), a.numKeyValueHeads);
      const cached = options.cache?.layers[layer];
      const k = cached ? tf.concat([cached.k, kNew], 2) : kNew; // [B, K, P+T, D]
      const v = cached ? tf.concat([cached.v, vNew], 2) : vNew;
      if (options.cache) newCache.push({ k, v });
      const causal = this.causalBias(layer, length, past);
      const bias = padding ? tf.add(causal, padding) : causal; // [B or 1, 1, T, P+T]
      const mixed = tf
        .transpose(groupedQueryAttention(q, k, v, bias), [0, 2, 1, 3])
        .reshape([batch, length, a.numHeads * a.headDim]); // [B, T, H·D]
      x = tf.add(x, project(mixed, `${p}.self_attn.o_proj`, a.outputBias));
      // SwiGLU: down(silu(gate(m)) · up(m))
      const m = rmsNorm(x, this.w(`${p}.post_attention_layernorm.weight`), a.rmsNormEps);
      const gated = tf.mul(
        silu(project(m, `${p}.mlp.gate_proj`, a.mlpBias)),
        project(m, `${p}.mlp.up_proj`, a.mlpBias),
      );
      x = tf.add(x, project(gated, `${p}.mlp.down_proj`, a.mlpBias));
    }
    const hidden = rmsNorm(x, this.w('model.norm.weight'), a.rmsNormEps); // [B, T, C]
    const head = a.tieWordEmbeddings ? this.w('model.embed_tokens.weight') : this.w(lmHeadName); // [V, C]
    const logits = linear(hidden, tf.transpose(head)); // [B, T, V]
    return { logits, hidden, cache: options.cache ? { layers: newCache, length: past + length } : undefined };
  }

  /** The causal bias of a layer: windowed from the architecture's `fromLayer` on, full below it. */
  private causalBias(layer: number, length: number, past: number): Tensor {
    const sliding = this.architecture.slidingWindow;
    const window = sliding !== null && layer >= sliding.fromLayer ? sliding.size : null;
    if (past > 0) return causalBias(length, past, window);
    const key = `${window}:${length}`;
    let bias = this.biasCache.get(key);
    if (!bias) {
      bias = tf.keep(causalBias(length, past, window));
      this.biasCache.set(key, bias);
    }
    return bias;
  }

  dispose(): void {
    for (const variable of this.weights.values()) variable.dispose();
    this.inverseFrequencies.dispose();
    for (const tensor of this.biasCache.values()) tensor.dispose();
    this.biasCache.clear();
  }
}
