/**
 * The model behind the engine seam, whatever its architecture: a trunk — any forward that turns ids into logits and
 * the final hidden state (our GPT, or a Llama-family model) — with the scalar heads on that hidden state and,
 * optionally, LoRA adapters on the trunk's linear layers. Evaluation, scoring, sampling and every loss graph talk to
 * this one class; an architecture only supplies its trunk.
 *
 * Trainable weights: every weight without LoRA; with LoRA only the adapters and the heads (the trunk is frozen: no
 * gradient, no optimizer moments).
 */
import type { LoraSettings } from '../../lora/loraTargets';
import type { CausalLmConfig } from '../../model/causalLmConfig';
import type { DropoutMask } from '../../model/dropoutMasks';
import type { ScalarHead } from '../../model/gptConfig';
import type { Gpt, ForwardResult, KvCache } from './gpt';
import type { CausalLmForwardOptions } from './llamaModel';
import type { LinearAdapters, LoraAdapters } from './loraAdapters';
import { headPerPosition, pooledScores } from './scalarHeads';
import type { Tensor, Variable } from './tfRuntime';

/** What a trunk's forward takes: the cache and padding of sampling, and the adapters' updates. */
export interface TrunkForwardOptions extends CausalLmForwardOptions {
  readonly adapters?: LinearAdapters;
  /** Training forward with the architecture's own dropout, masks drawn from this seed (GPT, dropout > 0). */
  readonly dropoutSeed?: number;
}

/** An architecture's forward: ids int32 [B, T] → logits [B, T, V] and hidden [B, T, C] (and the extended cache). */
export interface Trunk {
  readonly config: CausalLmConfig;
  /** The trunk's own weights (no heads, no adapters), in state-dict order. */
  readonly weights: ReadonlyMap<string, Variable>;
  forward(ids: Tensor, options: TrunkForwardOptions): ForwardResult;
  /** Frees the trunk's weights and the heads' weights it was given. */
  dispose(): void;
}

export interface LmForwardOptions extends CausalLmForwardOptions {
  /** Training: the architecture's dropout masks from this seed (only when its dropout > 0). */
  readonly dropoutSeed?: number;
  /** Training: the LoRA dropout masks of this forward by module (model/dropoutMasks.ts); none in evaluation. */
  readonly loraDropout?: ReadonlyMap<string, DropoutMask>;
  /** Compute as the base model (the PPO / DPO reference of a LoRA run). */
  readonly adaptersOff?: boolean;
}

/** What the KV-cache sampler needs of a model (src/trainer/sampling/sampler.ts). */
export interface SamplableModel {
  readonly config: { readonly block_size: number; readonly vocab_size: number };
  forward(ids: Tensor, options: { positions?: Tensor; keyMask?: Tensor; cache?: KvCache }): ForwardResult;
}

export class TfjsLm {
  /** Every weight readWeights returns: trunk, heads, adapters, in that order. */
  readonly weights: ReadonlyMap<string, Variable>;
  /** What the optimizer updates and saves moments for. */
  readonly trainableWeights: ReadonlyMap<string, Variable>;

  constructor(
    private readonly trunk: Trunk,
    readonly heads: readonly ScalarHead[],
    private readonly headWeights: ReadonlyMap<string, Variable>,
    readonly adapters?: LoraAdapters,
    /** Our GPT itself when the trunk is one (ONNX export, benchmarks). */
    readonly gpt?: Gpt,
  ) {
    this.weights = new Map([...trunk.weights, ...headWeights, ...(adapters?.weights ?? [])]);
    this.trainableWeights = adapters ? new Map([...headWeights, ...adapters.weights]) : this.weights;
  }

  get config(): CausalLmConfig {
    return this.trunk.config;
  }

  get lora(): LoraSettings | undefined {
    return this.adapters?.settings;
  }

  get parameterCount(): number {
    let total = 0;
    for (const variable of this.weights.values()) total += variable.size;
    return total;
  }

  forward(ids: Tensor, options: LmForwardOptions = {}): ForwardResult {
    const { loraDropout, adaptersOff, ...rest } = options;
    const adapters = adaptersOff ? undefined : this.adapters?.linear(loraDropout);
    return this.trunk.forward(ids, { ...rest, adapters });
  }

  /** A scalar per position from a head: hidden [B, T, C] → [B, T]. */
  scalarHead(head: ScalarHead, hidden: Tensor): Tensor {
    if (!this.heads.includes(head)) throw new Error(`this model has no ${head} head`);
    return headPerPosition(hidden, this.weight(`${head}.weight`), this.weight(`${head}.bias`));
  }

  /** The `score` head's reward of each right-padded sequence: ids [B, T], lengths [B] → [B]. */
  score(ids: Tensor, lengths: readonly number[], options: LmForwardOptions = {}): Tensor {
    const { hidden } = this.forward(ids, options);
    const perPosition = this.scalarHead('score', hidden);
    return pooledScores(perPosition, lengths, this.weight('score.bias'), this.config.score_pooling);
  }

  /** The sampler's view: the model with its adapters on, no dropout. */
  get samplable(): SamplableModel {
    return { config: this.config, forward: (ids, options) => this.forward(ids, options) };
  }

  weight(name: string): Variable {
    const variable = this.weights.get(name);
    if (!variable) throw new Error(`the model has no weight ${name}`);
    return variable;
  }

  async readWeights(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, variable] of this.weights)
      out.set(name, { shape: [...variable.shape], data: (await variable.data()) as Float32Array });
    return out;
  }

  dispose(): void {
    this.trunk.dispose();
    this.adapters?.dispose();
  }
}
