/**
 * The ONNX Runtime engine behind the seam (engine/engine.ts). A model's weights are named Float32Arrays
 * in TypeScript, fed to every run as inputs. An optimizer step is
 *   loss, grads = run(the loss's loss+gradient graph);  g ← clip(g, maxGradNorm);  AdamW(g, lr)
 * with the graph built once per key (kind, batch shapes padded to length buckets, the constants it holds)
 * and its session kept in a least-recently-used cache (sessionCache.ts);
 * the update is skipped when the loss or the norm is not finite, or when `shouldApply` says no — as the
 * tfjs engine (tfjsEngine.ts) does, with the same scalars, outputs and optimizer state layout.
 * Models are our GPT or a Llama-family model, each graph built on "a model forward" (modelForward.ts); with LoRA
 * (loraForward.ts) the adapters are inputs beside the frozen base weights, only adapters and heads get gradient
 * outputs and AdamW moments, and `adaptersOff` evaluates a graph without the adapters.
 * Sampling is passed in (`EngineSampler`; onnx/onnxEngineSampler.ts runs the KV-cache sessions), so
 * that engine/ does not import onnx/; without one, `generate` refuses.
 */
import * as ort from 'onnxruntime-node';
import type {
  AdamWOptions,
  CreateModelOptions,
  EngineModel,
  EngineOptimizer,
  EvaluateRequest,
  Evaluation,
  LossSpec,
  NamedArrays,
  OptimizerState,
  SampledSequence,
  SamplingOptions,
  ScoreBatch,
  StepOptions,
  StepResult,
  TokenBatch,
  TrainingEngine,
} from '../engine';
import { validateGptConfig, type ScalarHead } from '../../model/gptConfig';
import { initialGptWeights } from '../../model/gptInit';
import { isLlamaConfig, type CausalLmConfig } from '../../model/causalLmConfig';
import { isLoraWeight, loraTargets, type LoraSettings } from '../../lora/loraTargets';
import { initialLlamaHeads, initialLlamaWeights } from '../../model/llamaInit';
import { initialLoraWeights } from '../../lora/loraInit';
import { loraForward } from './loraForward';
import { mergeLoraWeights } from '../../lora/mergeLora';
import { baseModelForward, type ModelForward } from './modelForward';
import { ArrayAdamW, clipByGlobalNormInPlace } from './adamW';
import { buildEvaluateGraph, buildScoreGraph } from './forwardGraphs';
import { gradientOutput, lmGraphInputs } from './gptGraph';
import { bucketLength, padScoreBatch, padTokenBatch, trimOutput, type TimeAxis } from './lengthBuckets';
import { floatTensor, int64Tensor, lossRun, scorePoolingFeeds, type LossRunOptions } from './lossRuns';
import { onnxThreadSetting } from './onnxThreads';
import { chooseOrtProvider, type OrtProviderChoice } from './ortProvider';
import { MAX_CACHED_SESSIONS, SessionCache, type BuiltGraph, type SessionCacheStats } from './sessionCache';
import { bradleyTerryGraphInputs } from './preferenceGraphs';

/** Samples from one model's current weights with a KV cache; made once per model. */
export interface EngineSampler {
  generate(
    weights: NamedArrays,
    prompts: readonly (readonly number[])[],
    sampling: SamplingOptions,
  ): Promise<SampledSequence[]>;
  release(): Promise<void>;
}

/**
 * `executionProviders`: the engine's provider choice (ortProvider.ts), for the sampler's decode sessions. A LoRA
 * model's sampler is given its merged weights (W₀ + (α/r)·B·A), so it samples the model it trains.
 */
export type EngineSamplerFactory = (
  config: CausalLmConfig,
  heads: readonly ScalarHead[],
  executionProviders: readonly ort.InferenceSession.ExecutionProviderConfig[],
) => EngineSampler;

/** How an engine's models run their graphs. */
export interface OnnxModelOptions {
  /** Threads, graph optimization level, execution mode: given to every session; {} is onnxruntime's defaults. */
  readonly sessionOptions: ort.InferenceSession.SessionOptions;
}

/** How a model keeps and shapes its sessions. */
export interface OnnxCacheOptions {
  /** Sessions kept per model (sessionCache.ts). */
  readonly maxCachedSessions: number;
  /** Pad time axes to length buckets (lengthBuckets.ts); off: one graph per exact length (for tests). */
  readonly padToBuckets: boolean;
}

export const defaultOnnxModelOptions: OnnxModelOptions & OnnxCacheOptions = {
  sessionOptions: {},
  maxCachedSessions: MAX_CACHED_SESSIONS,
  padToBuckets: true,
};

/** An engine made with `new` and no provider runs on the CPU provider, as before the provider choice. */
const CPU_BY_CONSTRUCTION: OrtProviderChoice = {
  name: 'cpu',
  label: 'cpu',
  reason: 'the engine was made without a provider choice',
  executionProviders: ['cpu'],
};

export class OnnxEngine implements TrainingEngine {
  readonly name = 'onnxruntime';
  /** ONNX Runtime's execution provider: `cpu`, or `webgpu (<adapter>)` (ortProvider.ts). */
  readonly backend: string;
  readonly backendReason: string;
  private readonly options: OnnxModelOptions & OnnxCacheOptions;

  /** The engine on the provider RLHF_LENS_ORT_PROVIDER asks for (probed once per process, ortProvider.ts). */
  static async create(samplerFactory?: EngineSamplerFactory): Promise<OnnxEngine> {
    return new OnnxEngine(samplerFactory, undefined, {}, await chooseOrtProvider());
  }

  /**
   * `sessionOptions` go to every training session the engine's models create; absent, the thread setting of
   * onnxThreads.ts (one thread per core, not spinning, or RLHF_LENS_ORT_THREADS) applies; `{}` is onnxruntime's own
   * defaults. The sampler's decode sessions use one thread either way (onnxThreads.ts says why). `provider`: the
   * execution providers of every session, training and decode; the CPU one when omitted.
   */
  constructor(
    private readonly samplerFactory?: EngineSamplerFactory,
    sessionOptions?: ort.InferenceSession.SessionOptions,
    cacheOptions: Partial<OnnxCacheOptions> = {},
    readonly provider: OrtProviderChoice = CPU_BY_CONSTRUCTION,
  ) {
    const described = `onnxruntime-node's ${provider.name === 'webgpu' ? 'webgpu' : 'CPU'} execution provider`;
    this.backend = provider.label;
    if (sessionOptions) this.backendReason = `${described}, session options ${JSON.stringify(sessionOptions)}`;
    else {
      const threads = onnxThreadSetting();
      const threadsUsed = `${threads.description} for training, 1 for sampling: ${threads.reason}`;
      this.backendReason = `${described} (${provider.reason}), ${threadsUsed}`;
      sessionOptions = threads.sessionOptions;
    }
    const withProviders = { ...sessionOptions, executionProviders: provider.executionProviders };
    this.options = { ...defaultOnnxModelOptions, ...cacheOptions, sessionOptions: withProviders };
  }

  /**
   * Our GPT or a Llama-family model (dropout 0: refused otherwise), fresh from `seed` or from `weights`; with
   * `lora`, adapters on the targeted layers (from `weights` when it has them, PEFT's start otherwise).
   */
  createModel(config: CausalLmConfig, options: CreateModelOptions): OnnxModel {
    const base = baseModelForward(config); // refuses a Llama-family config with dropout
    if (!isLlamaConfig(config)) {
      const problems = validateGptConfig(config);
      if (problems.length > 0) throw new Error(`Invalid model config: ${problems.join('; ')}`);
    }
    const forward = options.lora ? loraForward(base, options.lora) : base;
    const weights = freshWeights(config, options);
    const ordered: NamedArrays = new Map();
    for (const [name, shape] of forward.weightShapes(options.heads)) {
      // A Llama-family trunk loaded from `weights` is not drawn first (freshWeights): its arrays start at 0.
      const weight = weights.get(name) ?? (options.weights && { shape, data: new Float32Array(sizeOf(shape)) });
      if (!weight) throw new Error(`no initial value for weight "${name}"`);
      ordered.set(name, weight);
    }
    if (options.weights)
      assignWeights(ordered, options.weights, {
        keepHeadsOf: options.keepMissingHeads ? options.heads : [],
        keepAdapters: options.lora !== undefined,
      });
    const sampler = this.samplerFactory?.(config, options.heads, this.provider.executionProviders);
    return new OnnxModel(config, options.heads, ordered, sampler, this.options, options.lora);
  }
}

const sizeOf = (shape: readonly number[]) => shape.reduce((product, dim) => product * dim, 1);

/**
 * The fresh weights `options` ask for, from the engine-neutral initialisers the tfjs engine also calls (so a seed
 * gives the same model in both): our GPT whole (gptInit.ts: its heads come after its trunk in one stream); a
 * Llama-family trunk (model/llamaInit.ts) only when no `weights` replace it, its heads always; LoRA's adapters
 * (lora/loraInit.ts). `weights` then overwrite what they hold (assignWeights).
 */
function freshWeights(config: CausalLmConfig, options: CreateModelOptions): NamedArrays {
  const { seed, heads } = options;
  let weights: NamedArrays;
  if (!isLlamaConfig(config)) weights = initialGptWeights(config, { seed, heads });
  else if (options.weights) weights = initialLlamaHeads(config.architecture.hiddenSize, heads, seed);
  else weights = initialLlamaWeights(config, { seed, heads });
  if (options.lora)
    for (const [name, value] of initialLoraWeights(loraTargets(config, options.lora), options.lora.r, seed))
      weights.set(name, value);
  return weights;
}

/**
 * Copies `values` into `weights` (gpt.ts's assign: every name and shape checked before any change); the fresh
 * weights of the heads in `keepHeadsOf`, and LoRA adapters when `keepAdapters`, stay where `values` has none.
 */
function assignWeights(
  weights: NamedArrays,
  values: NamedArrays,
  keep: { keepHeadsOf: readonly ScalarHead[]; keepAdapters: boolean },
) {
  const kept = (name: string) =>
    keep.keepHeadsOf.some((head) => name.startsWith(`${head}.`)) || (keep.keepAdapters && isLoraWeight(name));
  for (const [name, weight] of weights) {
    const value = values.get(name);
    if (!value && kept(name)) continue;
    if (!value) throw new Error(`the checkpoint has no weight "${name}"`);
    if (value.shape.join(',') !== weight.shape.join(','))
      throw new Error(
        `weight "${name}" has shape [${value.shape}] in the checkpoint but [${weight.shape}] in the model config`,
      );
  }
  for (const [name, weight] of weights) {
    const value = values.get(name);
    if (value) weight.data.set(value.data);
  }
}

export class OnnxModel implements EngineModel {
  private readonly sessions: SessionCache;
  /** The model's forward: the config's own, with LoRA adapters when it has them. */
  readonly forward: ModelForward;
  /** The forward without adapters (evaluate's `adaptersOff`: a graph without them, which is also cheaper). */
  private readonly baseForward: ModelForward;

  constructor(
    readonly config: CausalLmConfig,
    readonly heads: readonly ScalarHead[],
    /** The weights (base, adapters, heads), updated in place by the optimizer. */
    readonly weights: NamedArrays,
    private readonly sampler?: EngineSampler,
    readonly options: OnnxModelOptions & OnnxCacheOptions = defaultOnnxModelOptions,
    readonly lora?: LoraSettings,
  ) {
    this.sessions = new SessionCache(options.sessionOptions, options.maxCachedSessions);
    this.baseForward = baseModelForward(config);
    this.forward = lora ? loraForward(this.baseForward, lora) : this.baseForward;
  }

  /** The weights the optimizer updates: the adapters and heads of a LoRA model, every weight otherwise. */
  get trainedWeights(): NamedArrays {
    return new Map([...this.weights].filter(([name]) => this.forward.trains(name)));
  }

  /** Sessions built, released and kept so far. */
  get sessionStats(): SessionCacheStats {
    return this.sessions.stats;
  }

  /** How loss runs are laid out for this model. */
  get lossRunOptions(): LossRunOptions {
    return { padToBuckets: this.options.padToBuckets };
  }

  /** The length a batch of `length` positions is run at (its bucket, or itself). */
  private runLength(length: number): number {
    return this.options.padToBuckets ? bucketLength(length, this.config.block_size) : length;
  }

  get parameterCount(): number {
    let total = 0;
    for (const weight of this.weights.values()) total += weight.data.length;
    return total;
  }

  /** Runs the graph cached under `key` (built by `build` the first time) with the weights and `feeds`. */
  async run(
    key: string,
    build: () => BuiltGraph,
    feeds: Record<string, ort.Tensor>,
  ): Promise<{ results: ort.InferenceSession.OnnxValueMapType; weightNames: readonly string[] }> {
    return this.sessions.use(key, build, async ({ session, weightNames }) => {
      const inputs: Record<string, ort.Tensor> = { ...feeds };
      for (const name of weightNames) {
        const weight = this.weights.get(name);
        if (!weight) throw new Error(`the model has no weight ${name} (a loss that needs a head it lacks)`);
        inputs[name] = new ort.Tensor('float32', weight.data, weight.shape);
      }
      return { results: await session.run(inputs), weightNames };
    });
  }

  async evaluate(unpadded: TokenBatch, request: EvaluateRequest): Promise<Evaluation> {
    const batch = padTokenBatch(unpadded, this.runLength(unpadded.length));
    const timeAxis: TimeAxis = { batchSize: batch.batchSize, length: unpadded.length, padded: batch.length };
    const shape = { batchSize: batch.batchSize, length: batch.length };
    const dims = [batch.batchSize, batch.length];
    const adaptersOff = this.lora !== undefined && request.adaptersOff === true;
    const forward = adaptersOff ? this.baseForward : this.forward;
    const { results } = await this.run(
      JSON.stringify(['evaluate', shape, { ...request, adaptersOff }]),
      () => buildEvaluateGraph(forward, this.heads, shape, request),
      {
        [lmGraphInputs.ids]: int64Tensor(batch.inputs, dims),
        [lmGraphInputs.targets]: int64Tensor(batch.targets, dims),
        [lmGraphInputs.mask]: floatTensor(batch.mask, dims),
      },
    );
    const evaluation: Record<string, Float32Array | number> = {};
    for (const [name, tensor] of Object.entries(results)) {
      const data = tensor.data as Float32Array;
      evaluation[name] = name === 'lmLoss' ? data[0] : trimOutput(data, tensor.dims, timeAxis);
    }
    return evaluation as Evaluation;
  }

  async scores(unpadded: ScoreBatch): Promise<Float32Array> {
    const batch = padScoreBatch(unpadded, this.runLength(unpadded.length));
    const shape = { batchSize: batch.batchSize, length: batch.length };
    const { pick, biasCount } = scorePoolingFeeds(this.config, batch);
    const { results } = await this.run(
      JSON.stringify(['scores', shape]),
      () => buildScoreGraph(this.forward, this.heads, shape),
      {
        [bradleyTerryGraphInputs.ids]: int64Tensor(batch.ids, [batch.batchSize, batch.length]),
        [bradleyTerryGraphInputs.pick]: floatTensor(pick, [batch.batchSize, batch.length]),
        [bradleyTerryGraphInputs.biasCount]: floatTensor(biasCount, [batch.batchSize]),
      },
    );
    return results.scores.data as Float32Array;
  }

  async scoreTotal(batch: ScoreBatch): Promise<number> {
    return (await this.scores(batch)).reduce((sum, score) => sum + score, 0);
  }

  generate(prompts: readonly (readonly number[])[], sampling: SamplingOptions): Promise<SampledSequence[]> {
    if (!this.sampler) return Promise.reject(new Error('this onnxruntime engine was made without a sampler'));
    const weights = this.lora ? mergeLoraWeights(this.weights, this.config, this.lora) : this.weights;
    return this.sampler.generate(weights, prompts, sampling);
  }

  subtractFromWeight(name: string, amount: number): void {
    const weight = this.weights.get(name);
    if (!weight) throw new Error(`the model has no weight ${name}`);
    for (let i = 0; i < weight.data.length; i++) weight.data[i] -= amount;
  }

  async readWeights(): Promise<NamedArrays> {
    const copy: NamedArrays = new Map();
    for (const [name, { shape, data }] of this.weights) copy.set(name, { shape: [...shape], data: data.slice() });
    return copy;
  }

  createOptimizer(options: AdamWOptions): EngineOptimizer {
    return new OnnxOptimizer(this, options);
  }

  dispose(): void {
    this.sessions.clear();
    void this.sampler?.release();
  }
}

class OnnxOptimizer implements EngineOptimizer {
  private readonly adamW: ArrayAdamW;

  constructor(
    private readonly model: OnnxModel,
    options: AdamWOptions,
  ) {
    this.adamW = new ArrayAdamW(model.trainedWeights, options);
  }

  async step(loss: LossSpec, options: StepOptions): Promise<StepResult> {
    const lossGraphRun = lossRun(this.model.forward, loss, this.model.lossRunOptions);
    const { results, weightNames } = await this.model.run(lossGraphRun.key, lossGraphRun.build, lossGraphRun.feeds());
    const grads = new Map<string, Float32Array>();
    for (const name of weightNames) {
      const grad = results[gradientOutput(name)];
      if (grad) grads.set(name, grad.data as Float32Array);
    }
    const gradNorm = clipByGlobalNormInPlace(grads, options.maxGradNorm);
    const scalars: Record<string, number> = { loss: results.loss.data[0] as number, gradNorm };
    const outputs: Record<string, Float32Array> = {};
    for (const [name, tensor] of Object.entries(results)) {
      if (name === 'loss' || name.startsWith(gradientOutput(''))) continue;
      if (tensor.dims.length === 0) scalars[name] = tensor.data[0] as number;
      else outputs[name] = trimOutput(tensor.data as Float32Array, tensor.dims, lossGraphRun.timeAxis);
    }
    const finite = Number.isFinite(scalars.loss) && Number.isFinite(gradNorm);
    const applied = finite && (options.shouldApply?.(scalars) ?? true);
    if (applied) this.adamW.apply(grads, options.learningRate);
    return { scalars, outputs, applied };
  }

  async readState(): Promise<OptimizerState> {
    return this.adamW.readState();
  }

  loadState(state: OptimizerState): void {
    this.adamW.loadState(state);
  }

  dispose(): void {}
}
