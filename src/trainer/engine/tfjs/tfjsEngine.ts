/**
 * The TensorFlow.js engine behind the seam (engine/engine.ts): a TfjsLm per model (our GPT or a Llama-family trunk,
 * the scalar heads, LoRA adapters when asked; causalLm.ts, tfjsModels.ts), AdamW per optimizer (tfjsOptimizer.ts),
 * and each LossSpec built as the tensor graph of lossGraphs.ts. Every tensor a call makes is disposed before it
 * returns: the algorithms see numbers only.
 */
import type {
  AdamWOptions,
  CreateModelOptions,
  EngineModel,
  EvaluateRequest,
  Evaluation,
  NamedArrays,
  SampledSequence,
  SamplingOptions,
  ScoreBatch,
  TokenBatch,
  TrainingEngine,
} from '../engine';
import type { LoraSettings } from '../../lora/loraTargets';
import type { CausalLmConfig } from '../../model/causalLmConfig';
import type { ScalarHead } from '../../model/gptConfig';
import type { BackendChoice } from './backend';
import type { SamplableModel, TfjsLm } from './causalLm';
import type { Gpt } from './gpt';
import { entropyFromLogits, maskedNll, tokenLogprobs } from './losses';
import { scoreBatchTensor, tokenBatchTensors } from './sequenceTensors';
import { tf, type Tensor } from './tfRuntime';
import { asTfjsLm, createTfjsLm } from './tfjsModels';
import { TfjsOptimizer } from './tfjsOptimizer';
import { webgpuFailure } from './webgpuBackend';

/**
 * The KV-cache sampler (src/trainer/sampling/sampler.ts). Passed in by whoever creates the engine, so
 * that engine/ does not import sampling/ (which imports the Gpt): no folder cycle.
 */
export type GptSampler = (
  model: SamplableModel,
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

  createModel(config: CausalLmConfig, options: CreateModelOptions): TfjsModel {
    return new TfjsModel(createTfjsLm(config, options), this.sampler);
  }
}

async function readAndDispose(tensor: Tensor): Promise<Float32Array> {
  const data = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return data;
}

export class TfjsModel implements EngineModel {
  /** The model itself (trunk, heads, adapters), for the optimizer and tfjs-only tools. */
  readonly lm: TfjsLm;

  constructor(
    /** A TfjsLm, or our GPT alone (no adapters). */
    model: TfjsLm | Gpt,
    private readonly sampler: GptSampler,
  ) {
    this.lm = asTfjsLm(model);
  }

  get config(): CausalLmConfig {
    return this.lm.config;
  }

  get lora(): LoraSettings | undefined {
    return this.lm.lora;
  }

  get heads(): readonly ScalarHead[] {
    return this.lm.heads;
  }

  get parameterCount(): number {
    return this.lm.parameterCount;
  }

  async evaluate(batch: TokenBatch, request: EvaluateRequest): Promise<Evaluation> {
    const temperature = request.temperature ?? 1;
    const named = tf.tidy(() => {
      const { inputs, targets, mask } = tokenBatchTensors(batch);
      const { logits, hidden } = this.lm.forward(inputs, { adaptersOff: request.adaptersOff });
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
      if (request.values) out.values = this.lm.scalarHead('v_head', hidden);
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
    return readAndDispose(tf.tidy(() => scoreBatchTensor(this.lm, batch)));
  }

  async scoreTotal(batch: ScoreBatch): Promise<number> {
    return (await readAndDispose(tf.tidy(() => tf.sum(scoreBatchTensor(this.lm, batch)))))[0];
  }

  generate(prompts: readonly (readonly number[])[], sampling: SamplingOptions): Promise<SampledSequence[]> {
    return this.sampler(this.lm.samplable, prompts, sampling);
  }

  subtractFromWeight(name: string, amount: number): void {
    const weight = this.lm.weight(name);
    tf.tidy(() => weight.assign(tf.sub(weight, amount)));
  }

  readWeights(): Promise<NamedArrays> {
    return this.lm.readWeights();
  }

  createOptimizer(options: AdamWOptions): TfjsOptimizer {
    return new TfjsOptimizer(this.lm, options);
  }

  dispose(): void {
    this.lm.dispose();
  }
}
