/**
 * A GPT-2-style decoder in TensorFlow.js, following nanoGPT (karpathy/nanoGPT, model.py): token and
 * position embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a GELU MLP, a
 * final LayerNorm, and an LM head tied to the token embedding. Optional scalar heads read the final
 * hidden state: `v_head` (PPO's critic, a value per position) and `score` (a reward model, read at
 * the last non-pad token). Parameter names follow nanoGPT's state dict so checkpoints read familiarly.
 *
 * Shapes: B batch, T positions in this call, P positions already in the KV cache, C = n_embd,
 * H = n_head, D = C / H, V = vocab_size.
 */
import { batchMatMul, embedding, gelu, layerNorm, linear, swapLastAxes } from './ops';
import { readVariables } from './readVariables';
import { headPerPosition, pooledScores } from './scalarHeads';
import { tf, type Tensor, type Variable } from './tfRuntime';
import { validateGptConfig, type GptConfig, type ScalarHead } from '../../model/gptConfig';
import { initialGptWeights } from '../../model/gptInit';
import { gptWeightShapes } from '../../model/gptWeightShapes';
import type { DropoutMask } from '../../model/dropoutMasks';
import type { LinearAdapters } from './loraAdapters';

export type { ScalarHead } from '../../model/gptConfig';

/** Keys and values of earlier positions, per layer: [B, H, P, D] each. Owned by the caller. */
export interface KvCache {
  readonly layers: readonly { readonly k: Tensor; readonly v: Tensor }[];
  readonly length: number;
}

export interface ForwardOptions {
  /**
   * Dropout on: one multiplier per dropout site in forward order (model/dropoutMasks.ts draws them, the
   * same for both engines); without them the forward is evaluation's.
   */
  readonly dropoutMasks?: readonly DropoutMask[];
  /** int32 [B, T] position of each token; defaults to P, P+1, … (left-padded batches pass their own). */
  readonly positions?: Tensor;
  /** 1 for a real token, 0 for padding, over cached and new positions: [B, P + T]. */
  readonly keyMask?: Tensor;
  /** Earlier positions' keys and values; when given, the result holds the extended cache. */
  readonly cache?: KvCache;
  /** LoRA updates added to the adapted linear layers' outputs (none: the base model). */
  readonly adapters?: LinearAdapters;
}

export interface ForwardResult {
  /** [B, T, V] */
  readonly logits: Tensor;
  /** Final hidden state after ln_f: [B, T, C]. */
  readonly hidden: Tensor;
  readonly cache?: KvCache;
}

const negativeInfinity = -1e9;

/**
 * What a GPT-2 folder's config.json may set that does not change any weight's shape: LayerNorm's ε and the MLP's
 * activation. RLHF Lens' own GPT uses {@link ourGptMath}.
 */
export interface GptMath {
  readonly layerNormEpsilon: number;
  readonly activation: (x: Tensor) => Tensor;
}

/** nanoGPT's and GPT-2's: ε 1e-5, tanh GELU. */
export const ourGptMath: GptMath = { layerNormEpsilon: 1e-5, activation: gelu };

/** Inverted dropout at one site: x · m, the mask already 0 or 1/(1 − p) (model/dropoutMasks.ts). */
function applyDropout(x: Tensor, mask: DropoutMask | undefined, site: number): Tensor {
  if (!mask) throw new Error(`no dropout mask for dropout site ${site}`);
  if (mask.shape.join() !== x.shape.join())
    throw new Error(`dropout site ${site}: mask [${mask.shape.join(', ')}] for a tensor [${x.shape.join(', ')}]`);
  return tf.mul(x, tf.tensor(mask.data, [...mask.shape], 'float32'));
}

export class Gpt {
  readonly config: GptConfig;
  readonly heads: readonly ScalarHead[];
  /** Every weight by its state-dict name, in a fixed order. */
  readonly weights: ReadonlyMap<string, Variable>;
  readonly math: GptMath;

  private constructor(config: GptConfig, heads: readonly ScalarHead[], weights: Map<string, Variable>, math: GptMath) {
    this.config = config;
    this.heads = heads;
    this.weights = weights;
    this.math = math;
  }

  /**
   * New weights as nanoGPT initialises them: N(0, 0.02), residual projections N(0, 0.02/√(2·n_layer))
   * (GPT-2's scaling), biases 0, LayerNorm γ 1. Deterministic in `seed`.
   */
  static create(config: GptConfig, options: { seed: number; heads?: readonly ScalarHead[]; math?: GptMath }): Gpt {
    const problems = validateGptConfig(config);
    if (problems.length > 0) throw new Error(`Invalid model config: ${problems.join('; ')}`);
    const heads = options.heads ?? [];
    const weights = new Map<string, Variable>();
    // tidy disposes the initial tensor (the variable keeps its data). No tfjs name: tfjs names must be
    // unique engine-wide and several models (policy, reference, reward) live at once; the map holds the name.
    for (const [name, { shape, data }] of initialGptWeights(config, { seed: options.seed, heads }))
      weights.set(
        name,
        tf.tidy(() => tf.variable(tf.tensor(data, shape), true)),
      );
    return new Gpt(config, heads, weights, options.math ?? ourGptMath);
  }

  /** Builds a model around existing weights (a checkpoint), checking every name and shape. */
  static fromWeights(
    config: GptConfig,
    heads: readonly ScalarHead[],
    values: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
    options: { keepMissingHeads?: boolean; seed?: number; math?: GptMath } = {},
  ): Gpt {
    const template = Gpt.create(config, { seed: options.seed ?? 0, heads, math: options.math });
    try {
      template.assign(values, options);
    } catch (error) {
      template.dispose();
      throw error;
    }
    return template;
  }

  /**
   * Builds a model around weights `read` gives one at a time, by state-dict name, in state-dict order: a large
   * model (a Hugging Face gpt2 folder) is never held twice, nor drawn at random first.
   */
  static async load(
    config: GptConfig,
    read: (name: string) => Promise<Float32Array>,
    options: { heads?: readonly ScalarHead[]; math?: GptMath } = {},
  ): Promise<Gpt> {
    const problems = validateGptConfig(config);
    if (problems.length > 0) throw new Error(`Invalid model config: ${problems.join('; ')}`);
    const heads = options.heads ?? [];
    const weights = await readVariables(gptWeightShapes(config, heads), read);
    return new Gpt(config, heads, weights, options.math ?? ourGptMath);
  }

  /**
   * Overwrites every weight; throws naming the first missing or mis-shaped one, before changing any.
   * `keepMissingHeads` keeps this model's own (fresh) head weights where `values` has none — a value
   * or score head added on top of an SFT checkpoint.
   */
  assign(
    values: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
    options: { keepMissingHeads?: boolean } = {},
  ): void {
    const isHead = (name: string) => this.heads.some((head) => name.startsWith(`${head}.`));
    const skipped = new Set<string>();
    for (const [name, variable] of this.weights) {
      const value = values.get(name);
      if (!value && options.keepMissingHeads && isHead(name)) {
        skipped.add(name);
        continue;
      }
      if (!value) throw new Error(`the checkpoint has no weight "${name}"`);
      if (value.shape.join(',') !== variable.shape.join(',')) {
        throw new Error(
          `weight "${name}" has shape [${value.shape}] in the checkpoint but [${variable.shape}] in the model config`,
        );
      }
    }
    for (const [name, variable] of this.weights) {
      if (skipped.has(name)) continue;
      const value = values.get(name) as { data: Float32Array };
      tf.tidy(() => variable.assign(tf.tensor(value.data, variable.shape)));
    }
  }

  /** Copies of every weight, for checkpoints and for syncing another engine. */
  async readWeights(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, variable] of this.weights)
      out.set(name, { shape: [...variable.shape], data: (await variable.data()) as Float32Array });
    return out;
  }

  get trainableVariables(): Variable[] {
    return [...this.weights.values()];
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

  /** The transformer: ids int32 [B, T] → logits [B, T, V] and the final hidden state [B, T, C]. */
  forward(ids: Tensor, options: ForwardOptions = {}): ForwardResult {
    const { n_head: heads, n_embd: width, block_size: blockSize } = this.config;
    const [batch, length] = ids.shape as [number, number];
    const past = options.cache?.length ?? 0;
    if (past + length > blockSize)
      throw new Error(`sequence of ${past + length} positions exceeds block_size ${blockSize}`);
    const headWidth = width / heads;
    const epsilon = this.math.layerNormEpsilon;
    const masks = options.dropoutMasks ?? [];
    let dropoutSite = 0;
    const maybeDropout = (x: Tensor) => {
      if (masks.length === 0) return x;
      const site = dropoutSite++;
      return applyDropout(x, masks[site], site);
    };

    const positions =
      options.positions ?? tf.add(tf.range(past, past + length, 1, 'int32'), tf.zeros([batch, length], 'int32'));
    let x = tf.add(
      embedding(this.w('transformer.wte.weight'), ids),
      embedding(this.w('transformer.wpe.weight'), positions),
    ); // [B, T, C]
    x = maybeDropout(x);

    const bias = this.attentionBias(batch, length, past, options.keyMask); // [B or 1, 1, T, P + T]
    // [B, T, C] → [B, H, T, D]
    const splitHeads = (t: Tensor) => tf.transpose(t.reshape([batch, length, heads, headWidth]), [0, 2, 1, 3]);
    const newCache: { k: Tensor; v: Tensor }[] = [];
    // A Conv1D layer (weight [in, out]) plus its LoRA update when it has one.
    const dense = (input: Tensor, module: string) => {
      const base = linear(input, this.w(`${module}.weight`), this.w(`${module}.bias`));
      const update = options.adapters?.delta(module, input);
      return update ? tf.add(base, update) : base;
    };

    for (let l = 0; l < this.config.n_layer; l++) {
      const p = `transformer.h.${l}`;
      // Attention: softmax(q·kᵀ/√D + causal/padding bias) · v
      const h = layerNorm(x, this.w(`${p}.ln_1.weight`), this.w(`${p}.ln_1.bias`), epsilon);
      const qkv = dense(h, `${p}.attn.c_attn`); // [B, T, 3C]
      const [q, kNew, vNew] = tf.split(qkv, 3, 2).map(splitHeads); // [B, H, T, D] each
      const cached = options.cache?.layers[l];
      const k = cached ? tf.concat([cached.k, kNew], 2) : kNew; // [B, H, P+T, D]
      const v = cached ? tf.concat([cached.v, vNew], 2) : vNew;
      if (options.cache) newCache.push({ k, v });
      const scores = tf.add(tf.mul(batchMatMul(q, swapLastAxes(k)), 1 / Math.sqrt(headWidth)), bias); // [B, H, T, P+T]
      const attention = maybeDropout(tf.softmax(scores, -1));
      const mixed = tf.transpose(batchMatMul(attention, v), [0, 2, 1, 3]).reshape([batch, length, width]); // [B, T, C]
      x = tf.add(x, maybeDropout(dense(mixed, `${p}.attn.c_proj`)));
      // MLP: W₂ · GELU(W₁ · LN(x)) (GELU or the activation a GPT-2 folder names); fc is [B, T, 4C]
      const m = layerNorm(x, this.w(`${p}.ln_2.weight`), this.w(`${p}.ln_2.bias`), epsilon);
      const fc = this.math.activation(dense(m, `${p}.mlp.c_fc`));
      x = tf.add(x, maybeDropout(dense(fc, `${p}.mlp.c_proj`)));
    }
    if (dropoutSite !== masks.length) throw new Error(`${masks.length} dropout masks for ${dropoutSite} dropout sites`);
    // The final hidden state, [B, T, C].
    const hidden = layerNorm(x, this.w('transformer.ln_f.weight'), this.w('transformer.ln_f.bias'), epsilon);
    // Tied LM head: logits = hidden · wteᵀ (explicit transpose; see ops.ts).
    const logits = linear(hidden, tf.transpose(this.w('transformer.wte.weight'))); // [B, T, V]
    return { logits, hidden, cache: options.cache ? { layers: newCache, length: past + length } : undefined };
  }

  /** A scalar per position from a head: hidden [B, T, C] → [B, T]. */
  scalarHead(head: ScalarHead, hidden: Tensor): Tensor {
    if (!this.heads.includes(head)) throw new Error(`this model has no ${head} head`);
    return headPerPosition(hidden, this.w(`${head}.weight`), this.w(`${head}.bias`));
  }

  /** A reward model's score of each sequence: ids [B, T] right-padded, lengths [B] → [B] (scalarHeads.ts). */
  score(ids: Tensor, lengths: readonly number[]): Tensor {
    const { hidden } = this.forward(ids);
    return pooledScores(this.scalarHead('score', hidden), lengths, this.w('score.bias'), this.config.score_pooling);
  }

  private readonly biasCache = new Map<string, Tensor>();

  /**
   * Additive attention bias: 0 where query i may see key j (j ≤ P + i, and key j is not padding), −1e9
   * elsewhere.
   */
  private attentionBias(batch: number, length: number, past: number, keyMask?: Tensor): Tensor {
    const key = `${length}:${past}`;
    let causal = this.biasCache.get(key);
    if (!causal) {
      const values = new Float32Array(length * (past + length));
      for (let i = 0; i < length; i++)
        for (let j = 0; j < past + length; j++) values[i * (past + length) + j] = j <= past + i ? 0 : negativeInfinity;
      causal = tf.keep(tf.tensor(values, [1, 1, length, past + length]));
      this.biasCache.set(key, causal);
    }
    if (!keyMask) return causal;
    // [B, 1, 1, P+T]
    const padding = tf.mul(tf.sub(1, keyMask.toFloat()), negativeInfinity).reshape([batch, 1, 1, past + length]);
    return tf.add(causal, padding); // [B, 1, T, P+T]
  }

  dispose(): void {
    for (const variable of this.weights.values()) variable.dispose();
    for (const tensor of this.biasCache.values()) tensor.dispose();
    this.biasCache.clear();
  }
}
