/**
 * A causal language model on onnxruntime-node: one session over a GPT-2-convention graph (see
 * gptOnnxGraph.ts), either built in memory from the trainer's weights or read from a
 * transformers.js-style folder. `forward` takes plain arrays and returns plain arrays, so nothing
 * outside this file touches onnxruntime's types.
 *
 * Weight sync after a PPO update (DESIGN.md, "Training and inference engines") has two modes:
 * - 'reexport': rebuild the graph with the new weights as initializers and open a new session;
 * - 'inputs': the graph takes every weight as an input, and each run feeds the current ones.
 * bench/rolloutBench.ts measures both (interleaved): feeding inputs syncs in ~1 ms against 35–45 ms
 * and was as fast or faster per sync + sampling pass, so OnnxRolloutEngine feeds inputs; a model
 * built for sampling alone keeps its weights as initializers (the default here).
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../../shared/isRecord';
import { FileFormatError, objectProblems, parseJsonText } from '../../shared/runFiles';
import * as ort from 'onnxruntime-node';
import { decodeSessionOptions } from '../engine/onnxruntime/onnxThreads';
import type { GptConfig, ScorePooling } from '../model/gptConfig';
import type { ScalarHead } from '../engine/tfjs/gpt';
import { gptWeightShapes } from '../model/gptWeightShapes';
import { buildGptOnnx, headOutputName, type WeightValues } from './gptOnnxGraph';
import { hfWeightsInMemory, type HfWeights } from '../hf/hfWeights';
import { buildHfOnnx } from './hfOnnxGraph';
import { isLlamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import { buildLlamaOnnx } from './llamaOnnxGraph';
import { llamaWeightShapes } from '../engine/onnxruntime/llamaGraph';

export type WeightSyncMode = 'reexport' | 'inputs';

/** What a caller needs to know of a model to drive it. */
export interface CausalLmInfo {
  readonly vocabSize: number;
  /** Most positions a sequence may have (n_positions / block_size). */
  readonly maxPositions: number;
  readonly layers: number;
  /** Heads and width of each cached key/value. */
  readonly kvHeads: number;
  readonly headDim: number;
  readonly hasCache: boolean;
  readonly hasPositionIds: boolean;
  /** Scalar outputs beside logits ('values', 'scores'). */
  readonly scalarOutputs: readonly string[];
  /**
   * How a reward model's per-position `scores` become one score (gptConfig.ts's ScorePooling), and its head's bias b,
   * which 'sum' adds once.
   */
  readonly scorePooling: ScorePooling;
  readonly scoreBias: number;
}

/** Past keys and values, per layer, each [B, H, P, D] flattened. */
export interface PastKeyValues {
  readonly length: number;
  readonly layers: readonly { readonly key: ort.Tensor; readonly value: ort.Tensor }[];
}

export interface ForwardInputs {
  readonly batch: number;
  /** New positions in this call. */
  readonly length: number;
  /** [B, T] token ids. */
  readonly ids: ArrayLike<number>;
  /** [B, P + T]: 1 on real tokens; all ones when omitted. */
  readonly attentionMask?: ArrayLike<number>;
  /** [B, T]; P, P+1, … when omitted. */
  readonly positions?: ArrayLike<number>;
  readonly past?: PastKeyValues;
}

export interface ForwardOutputs {
  /** [B, T, V] */
  readonly logits: Float32Array;
  /** [B, T] per scalar output. */
  readonly scalars: Record<string, Float32Array>;
  /** The extended cache (when the model has one). */
  readonly present?: PastKeyValues;
}

/** An int64 tensor, filled in place (no intermediate array of BigInts: this runs for every sampled token). */
function int64(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}

export interface SessionSettings {
  /**
   * onnxruntime's intra-op threads; one when omitted (decodeSessionOptions, engine/onnxruntime/onnxThreads.ts: a
   * decode step is a handful of small ops, and a thread pool's hand-offs cost more than they save).
   */
  readonly threads?: number;
  /**
   * false: onnxruntime's intra-op threads sleep between ops instead of spin-waiting
   * (`session.intra_op.allow_spinning` = 0). A sampler runs one small forward per token and draws in JavaScript between
   * them, and spinning threads take the cores that JavaScript needs. On 2 shared cores a `train` run of the quick
   * demo's preferences stage alone took a median 1.96 s with spinning and 1.21 s without (7 interleaved rounds, issue
   * 15); bench/samplingBench.ts compares one sampling pass both ways. onnxruntime's default (spin) when omitted.
   */
  readonly spinWait?: boolean;
  /**
   * The execution providers (engine/onnxruntime/ortProvider.ts: webgpu then cpu, or cpu); onnxruntime's default
   * (the CPU provider) when omitted.
   */
  readonly executionProviders?: readonly ort.InferenceSession.ExecutionProviderConfig[];
}

function sessionOptions(settings: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    ...decodeSessionOptions,
    graphOptimizationLevel: 'all',
    ...(settings.threads ? { intraOpNumThreads: settings.threads } : {}),
    ...(settings.spinWait === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    ...(settings.executionProviders ? { executionProviders: settings.executionProviders } : {}),
  };
}

export class OnnxCausalLm {
  private session: ort.InferenceSession;
  readonly info: CausalLmInfo;
  /** For models built from trainer weights: how they are rebuilt or fed. */
  private readonly source?: {
    config: CausalLmConfig;
    heads: readonly ScalarHead[];
    kvCache: boolean;
    mode: WeightSyncMode;
    settings: SessionSettings;
  };
  private weightFeeds: Record<string, ort.Tensor> = {};

  private constructor(session: ort.InferenceSession, info: CausalLmInfo, source?: OnnxCausalLm['source']) {
    this.session = session;
    this.info = info;
    this.source = source;
  }

  /** A session over the trainer's GPT with these weights (`heads` become extra outputs). */
  static async fromGpt(
    config: GptConfig,
    heads: readonly ScalarHead[],
    weights: WeightValues,
    options: { kvCache: boolean; weightSync?: WeightSyncMode } & SessionSettings,
  ): Promise<OnnxCausalLm> {
    const mode = options.weightSync ?? 'reexport';
    const bytes = buildGptOnnx(config, weights, {
      heads,
      kvCache: options.kvCache,
      weightsAsInputs: mode === 'inputs',
    });
    const session = await ort.InferenceSession.create(bytes, sessionOptions(options));
    const info: CausalLmInfo = {
      vocabSize: config.vocab_size,
      maxPositions: config.block_size,
      layers: config.n_layer,
      kvHeads: config.n_head,
      headDim: config.n_embd / config.n_head,
      hasCache: options.kvCache,
      hasPositionIds: true,
      scalarOutputs: heads.map((head) => headOutputName[head]),
      scorePooling: config.score_pooling ?? 'last',
      scoreBias: weights.get('score.bias')?.data[0] ?? 0,
    };
    const model = new OnnxCausalLm(session, info, { config, heads, kvCache: options.kvCache, mode, settings: options });
    if (mode === 'inputs') model.setWeightFeeds(weights);
    return model;
  }

  /**
   * A session over a trainer model's weights, our GPT (fromGpt) or a Llama-family model: its graph of
   * llamaOnnxGraph.ts with `heads` as outputs, always with the KV cache (a past of length 0 is a full forward); its
   * weights are initializers ('reexport': `updateWeights` rebuilds) or inputs fed at every run ('inputs').
   */
  static async fromCausalLm(
    config: CausalLmConfig,
    heads: readonly ScalarHead[],
    weights: WeightValues,
    options: { kvCache: boolean; weightSync?: WeightSyncMode } & SessionSettings,
  ): Promise<OnnxCausalLm> {
    if (!isLlamaConfig(config)) return OnnxCausalLm.fromGpt(config, heads, weights, options);
    const a = config.architecture;
    const mode = options.weightSync ?? 'reexport';
    const bytes = await buildLlamaOnnx(
      hfWeightsInMemory(config.architecture, weights, "the trainer's weights"),
      heads,
      { weightsAsInputs: mode === 'inputs' },
    );
    const session = await ort.InferenceSession.create(bytes, sessionOptions(options));
    const info: CausalLmInfo = {
      vocabSize: a.vocabSize,
      maxPositions: config.block_size,
      layers: a.numLayers,
      kvHeads: a.numKeyValueHeads,
      headDim: a.headDim,
      hasCache: true,
      hasPositionIds: true,
      scalarOutputs: heads.map((head) => headOutputName[head]),
      scorePooling: config.score_pooling ?? 'last',
      scoreBias: weights.get('score.bias')?.data[0] ?? 0,
    };
    const model = new OnnxCausalLm(session, info, { config, heads, kvCache: true, mode, settings: options });
    if (mode === 'inputs') model.setWeightFeeds(weights);
    return model;
  }

  /**
   * A session over a Hugging Face model folder's weights (gpt2 or the Llama family; hfOnnxGraph.ts), built in
   * memory with the KV cache: no ONNX folder on disk. The cache has the model's key/value heads (grouped-query
   * attention caches fewer heads than it queries).
   */
  static async fromHfWeights(weights: HfWeights, settings: SessionSettings = {}): Promise<OnnxCausalLm> {
    const a = weights.architecture;
    const session = await ort.InferenceSession.create(await buildHfOnnx(weights), sessionOptions(settings));
    const info: CausalLmInfo = {
      vocabSize: a.vocabSize,
      maxPositions: a.maxPositions,
      layers: a.numLayers,
      kvHeads: a.family === 'llama' ? a.numKeyValueHeads : a.numHeads,
      headDim: a.headDim,
      hasCache: true,
      hasPositionIds: true,
      scalarOutputs: [],
      scorePooling: 'last',
      scoreBias: 0,
    };
    return new OnnxCausalLm(session, info);
  }

  /**
   * A transformers.js-style folder (`config.json`, `onnx/model.onnx`) of a GPT-2-convention causal
   * LM: ours, or any export with input_ids / attention_mask [/ position_ids] [/ past_key_values.N.*].
   */
  static async fromFolder(dir: string, settings: SessionSettings = {}): Promise<OnnxCausalLm> {
    const configFile = path.join(dir, 'config.json');
    const modelFile = path.join(dir, 'onnx', 'model.onnx');
    for (const file of [configFile, modelFile])
      if (!existsSync(file))
        throw new Error(`${dir} is not a transformers.js-style ONNX folder: ${path.relative(dir, file)} is missing.`);
    const parsed = parseJsonText(readFileSync(configFile, 'utf8'), configFile);
    if (!isRecord(parsed)) throw new FileFormatError(configFile, objectProblems(parsed));
    const config = parsed;
    const number = (...keys: string[]): number | undefined =>
      keys.map((key) => config[key]).find((value): value is number => typeof value === 'number');
    const need = (what: string, ...keys: string[]): number => {
      const value = number(...keys);
      if (value === undefined)
        throw new Error(
          `${configFile}: field "${keys[0]}" is missing (${what}; also read as ` +
            `${keys.slice(1).join(', ') || 'nothing else'}).`,
        );
      if (!Number.isSafeInteger(value) || value < 1)
        throw new Error(
          `${configFile}: ${keys.find((key) => config[key] === value)} (${what}) must be a whole number ≥ 1, ` +
            `got ${value}.`,
        );
      return value;
    };
    const vocabSize = need('vocabulary size', 'vocab_size');
    const layers = need('number of layers', 'n_layer', 'num_hidden_layers');
    const heads = need('attention heads', 'n_head', 'num_attention_heads');
    const width = need('hidden width', 'n_embd', 'hidden_size');
    const session = await ort.InferenceSession.create(modelFile, sessionOptions(settings));
    for (const input of ['input_ids', 'attention_mask']) {
      if (!session.inputNames.includes(input))
        throw new Error(
          `${modelFile}: the graph has no "${input}" input (inputs: ${session.inputNames.join(', ')}); RLHF ` +
            `Lens reads GPT-2-style causal LM exports.`,
        );
    }
    if (!session.outputNames.includes('logits'))
      throw new Error(`${modelFile}: the graph has no "logits" output (outputs: ${session.outputNames.join(', ')}).`);
    const pastMeta = session.inputMetadata.find((meta) => meta.name === 'past_key_values.0.key');
    const pastShape = pastMeta && pastMeta.isTensor ? pastMeta.shape : [];
    const info: CausalLmInfo = {
      vocabSize,
      maxPositions: number('n_positions', 'max_position_embeddings', 'n_ctx') ?? Number.MAX_SAFE_INTEGER,
      layers,
      kvHeads: typeof pastShape[1] === 'number' ? pastShape[1] : (number('num_key_value_heads') ?? heads),
      headDim: typeof pastShape[3] === 'number' ? pastShape[3] : (number('head_dim') ?? width / heads),
      hasCache: pastMeta !== undefined,
      hasPositionIds: session.inputNames.includes('position_ids'),
      scalarOutputs: session.outputNames.filter((name) => name === 'values' || name === 'scores'),
      scorePooling: config.score_pooling === 'sum' ? 'sum' : 'last',
      scoreBias: number('score_bias') ?? 0,
    };
    return new OnnxCausalLm(session, info);
  }

  /** A cache of length 0 for a batch, the first call's past. */
  emptyPast(batch: number): PastKeyValues {
    const empty = () =>
      new ort.Tensor('float32', new Float32Array(0), [batch, this.info.kvHeads, 0, this.info.headDim]);
    return { length: 0, layers: Array.from({ length: this.info.layers }, () => ({ key: empty(), value: empty() })) };
  }

  async forward(inputs: ForwardInputs): Promise<ForwardOutputs> {
    const { batch, length } = inputs;
    const past = inputs.past ?? (this.info.hasCache ? this.emptyPast(batch) : undefined);
    const pastLength = past?.length ?? 0;
    const total = pastLength + length;
    if (total > this.info.maxPositions)
      throw new Error(`sequence of ${total} positions exceeds the model's ${this.info.maxPositions}`);
    const feeds: Record<string, ort.Tensor> = {
      ...this.weightFeeds,
      input_ids: int64(inputs.ids, [batch, length]),
      attention_mask: inputs.attentionMask
        ? int64(inputs.attentionMask, [batch, total])
        : int64(new Array<number>(batch * total).fill(1), [batch, total]),
    };
    if (this.info.hasPositionIds) {
      feeds.position_ids = inputs.positions
        ? int64(inputs.positions, [batch, length])
        : int64(
            Array.from({ length: batch * length }, (_, i) => pastLength + (i % length)),
            [batch, length],
          );
    }
    if (this.session.inputNames.includes('use_cache_branch'))
      feeds.use_cache_branch = new ort.Tensor('bool', [pastLength > 0], [1]);
    past?.layers.forEach((layer, l) => {
      feeds[`past_key_values.${l}.key`] = layer.key;
      feeds[`past_key_values.${l}.value`] = layer.value;
    });
    const results = await this.session.run(feeds);
    const scalars: Record<string, Float32Array> = {};
    for (const name of this.info.scalarOutputs) scalars[name] = results[name].data as Float32Array;
    const present = this.info.hasCache
      ? {
          length: total,
          layers: Array.from({ length: this.info.layers }, (_, l) => ({
            key: results[`present.${l}.key`],
            value: results[`present.${l}.value`],
          })),
        }
      : undefined;
    return { logits: results.logits.data as Float32Array, scalars, present };
  }

  /** Brings new trainer weights in (after a PPO update), by the mode this model was built with. */
  async updateWeights(weights: WeightValues): Promise<void> {
    if (!this.source) throw new Error('only models built from trainer weights can take new weights');
    const { config, heads, kvCache, mode, settings } = this.source;
    if (mode === 'inputs') {
      this.setWeightFeeds(weights);
      return;
    }
    const bytes = isLlamaConfig(config)
      ? await buildLlamaOnnx(hfWeightsInMemory(config.architecture, weights, "the trainer's weights"), heads)
      : buildGptOnnx(config, weights, { heads, kvCache });
    const next = await ort.InferenceSession.create(bytes, sessionOptions(settings));
    await this.session.release();
    this.session = next;
  }

  private setWeightFeeds(weights: WeightValues): void {
    const { config, heads } = this.source as NonNullable<OnnxCausalLm['source']>;
    const feeds: Record<string, ort.Tensor> = {};
    const shapes = isLlamaConfig(config) ? llamaWeightShapes(config, heads) : gptWeightShapes(config, heads);
    for (const [name, shape] of shapes) {
      const value = weights.get(name);
      if (!value) throw new Error(`the new weights have no "${name}"`);
      feeds[name] = new ort.Tensor('float32', value.data, shape);
    }
    this.weightFeeds = feeds;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
