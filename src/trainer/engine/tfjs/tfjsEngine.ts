/**
 * The TensorFlow.js engine behind the seam (engine/engine.ts): a Gpt per model, AdamW per optimizer,
 * and each LossSpec built as the tensor graph of lossGraphs.ts. An optimizer step is
 *   value, grads = variableGrads(loss graph);  g ← clipByGlobalNorm(g, maxGradNorm);  AdamW(g, lr)
 * with the update skipped when the loss or the norm is not finite, or when the caller's `shouldApply`
 * says no. Every tensor a call makes is disposed before it returns: the algorithms see numbers only.
 */
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
import type { GptConfig, ScalarHead } from '../../model/gptConfig';
import { AdamW, clipByGlobalNorm } from './adamW';
import type { BackendChoice } from './backend';
import { Gpt } from './gpt';
import { lossGraph } from './lossGraphs';
import { entropyFromLogits, maskedNll, tokenLogprobs } from './losses';
import { scoreBatchTensor, tokenBatchTensors } from './sequenceTensors';
import { tf, type Tensor } from './tfRuntime';
import { webgpuFailure } from './webgpuBackend';

/**
 * The KV-cache sampler (src/trainer/sampling/sampler.ts). Passed in by whoever creates the engine, so
 * that engine/ does not import sampling/ (which imports the Gpt): no folder cycle.
 */
export type GptSampler = (
  model: Gpt,
  prompts: readonly (readonly number[])[],
  sampling: SamplingOptions,
) => Promise<SampledSequence[]>;

export class TfjsEngine implements TrainingEngine {
  readonly name = 'tfjs';
  readonly backend: string;

  constructor(
    backend: BackendChoice,
    private readonly sampler: GptSampler,
  ) {
    this.backend = backend.name;
  }

  gpuFailure(): string | undefined {
    return this.backend === 'webgpu' ? webgpuFailure() : undefined;
  }

  createModel(config: GptConfig, options: CreateModelOptions): TfjsModel {
    const gpt = options.weights
      ? Gpt.fromWeights(config, options.heads, options.weights, {
          keepMissingHeads: options.keepMissingHeads,
          seed: options.seed,
        })
      : Gpt.create(config, { seed: options.seed, heads: options.heads });
    return new TfjsModel(gpt, this.sampler);
  }
}

async function readAndDispose(tensor: Tensor): Promise<Float32Array> {
  const data = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return data;
}

export class TfjsModel implements EngineModel {
  constructor(
    /** The tfjs model itself, for tfjs-only tools (ONNX export, the sampler, benchmarks). */
    readonly gpt: Gpt,
    private readonly sampler: GptSampler,
  ) {}

  get config(): GptConfig {
    return this.gpt.config;
  }

  get heads(): readonly ScalarHead[] {
    return this.gpt.heads;
  }

  get parameterCount(): number {
    return this.gpt.parameterCount;
  }

  async evaluate(batch: TokenBatch, request: EvaluateRequest): Promise<Evaluation> {
    const temperature = request.temperature ?? 1;
    const named = tf.tidy(() => {
      const { inputs, targets, mask } = tokenBatchTensors(batch);
      const { logits, hidden } = this.gpt.forward(inputs);
      const out: Record<string, Tensor> = {};
      if (request.lmLoss) out.lmLoss = maskedNll(logits, targets, mask);
      // logits / T, as the sampler drew them
      const scaled = temperature > 0 && temperature !== 1 ? tf.div(logits, temperature) : logits;
      if (request.logprobs || request.maskedLogprobs) {
        const logprobs = tokenLogprobs(scaled, targets); // [B, T]
        if (request.logprobs) out.logprobs = logprobs;
        if (request.maskedLogprobs) {
          out.maskedLogprobs = tf.mul(logprobs, mask); // [B, T]
          out.logprobSums = tf.sum(out.maskedLogprobs, 1); // [B]
        }
      }
      if (request.values) out.values = this.gpt.scalarHead('v_head', hidden);
      if (request.entropy) out.entropy = entropyFromLogits(scaled);
      return out;
    });
    const result: Record<string, Float32Array | number> = {};
    for (const [name, tensor] of Object.entries(named)) {
      const data = await readAndDispose(tensor);
      result[name] = name === 'lmLoss' ? data[0] : data;
    }
    return result as Evaluation;
  }

  async scores(batch: ScoreBatch): Promise<Float32Array> {
    return readAndDispose(tf.tidy(() => this.scoreTensor(batch)));
  }

  async scoreTotal(batch: ScoreBatch): Promise<number> {
    return (await readAndDispose(tf.tidy(() => tf.sum(this.scoreTensor(batch)))))[0];
  }

  private scoreTensor(batch: ScoreBatch): Tensor {
    return scoreBatchTensor(this.gpt, batch);
  }

  generate(prompts: readonly (readonly number[])[], sampling: SamplingOptions): Promise<SampledSequence[]> {
    return this.sampler(this.gpt, prompts, sampling);
  }

  subtractFromWeight(name: string, amount: number): void {
    const weight = this.gpt.weights.get(name);
    if (!weight) throw new Error(`the model has no weight ${name}`);
    tf.tidy(() => weight.assign(tf.sub(weight, amount)));
  }

  readWeights(): Promise<NamedArrays> {
    return this.gpt.readWeights();
  }

  createOptimizer(options: AdamWOptions): EngineOptimizer {
    return new TfjsOptimizer(this, options);
  }

  dispose(): void {
    this.gpt.dispose();
  }
}

class TfjsOptimizer implements EngineOptimizer {
  private readonly adamW: AdamW;

  constructor(
    private readonly model: TfjsModel,
    options: AdamWOptions,
  ) {
    this.adamW = new AdamW(model.gpt.weights, options);
  }

  async step(loss: LossSpec, options: StepOptions): Promise<StepResult> {
    const variables = this.model.gpt.trainableVariables;
    const names = [...this.model.gpt.weights.keys()];
    // Scalars and outputs the graph reports besides the loss, kept past variableGrads' tidy.
    let reported: Record<string, Tensor> = {};
    const { value, grads } = tf.variableGrads(() => {
      const graph = lossGraph(this.model.gpt, loss);
      reported = Object.fromEntries(Object.entries(graph.reported).map(([name, t]) => [name, tf.keep(t)]));
      return graph.loss as never;
    }, variables);
    const named: Record<string, Tensor> = {};
    variables.forEach((variable, i) => (named[names[i]] = grads[variable.name]));
    const { clipped, norm } = clipByGlobalNorm(named, options.maxGradNorm);
    try {
      const scalars: Record<string, number> = { loss: (await value.data())[0], gradNorm: (await norm.data())[0] };
      const outputs: Record<string, Float32Array> = {};
      for (const [name, tensor] of Object.entries(reported)) {
        const data = (await tensor.data()) as Float32Array;
        if (tensor.rank === 0) scalars[name] = data[0];
        else outputs[name] = data;
      }
      const finite = Number.isFinite(scalars.loss) && Number.isFinite(scalars.gradNorm);
      const applied = finite && (options.shouldApply?.(scalars) ?? true);
      if (applied) this.adamW.apply(clipped, options.learningRate);
      return { scalars, outputs, applied };
    } finally {
      tf.dispose([value, norm, ...Object.values(reported), ...Object.values(grads), ...Object.values(clipped)]);
    }
  }

  readState(): Promise<OptimizerState> {
    return this.adamW.readState();
  }

  loadState(state: OptimizerState): void {
    this.adamW.loadState(state);
  }

  dispose(): void {
    this.adamW.dispose();
  }
}
