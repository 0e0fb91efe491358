/**
 * The tfjs engine's optimizer: one step is
 *   value, grads = variableGrads(loss graph, trainable weights);  g ← clipByGlobalNorm(g, maxGradNorm);  AdamW(g, lr)
 * with the update skipped when the loss or the norm is not finite, or when the caller's `shouldApply` says no. Only
 * the model's trainable weights get gradients and moments: all of them, or with LoRA the adapters and the heads.
 * AdamW's decay touches weights of rank ≥ 2 only (adamW.ts): never norms' weights or biases (rank 1), in every
 * architecture; embeddings, linear weights, heads' [C, 1] weights and LoRA's A and B are decayed.
 */
import type {
  AdamWOptions,
  EngineOptimizer,
  LossSpec,
  NamedArrays,
  OptimizerState,
  StepOptions,
  StepResult,
} from '../engine';
import { drawLoraDropoutMasks } from '../../model/dropoutMasks';
import { AdamW, clipByGlobalNorm } from './adamW';
import type { TfjsLm } from './causalLm';
import { lossGraph } from './lossGraphs';
import { tf, type Tensor } from './tfRuntime';

/** One forward and backward: the loss, its gradients by weight name, and what the graph reports. */
interface Backward {
  readonly value: Tensor;
  readonly grads: Record<string, Tensor>;
  readonly reported: Record<string, Tensor>;
}

/** The loss, the global gradient norm and every trainable weight's gradient of one batch (nothing applied). */
export interface Gradients {
  readonly loss: number;
  readonly gradNorm: number;
  readonly grads: NamedArrays;
}

export class TfjsOptimizer implements EngineOptimizer {
  private readonly adamW: AdamW;

  constructor(
    private readonly model: TfjsLm,
    options: AdamWOptions,
  ) {
    this.adamW = new AdamW(model.trainableWeights, options);
  }

  /**
   * The LoRA dropout masks of this step's training forward (model/dropoutMasks.ts): only an LM step with a dropout
   * seed has them (SFT); reward, PPO and DPO steps run without dropout, as TRL's `disable_dropout` default, and as
   * the ONNX Runtime engine.
   */
  private loraDropout(loss: LossSpec) {
    const { adapters } = this.model;
    if (!adapters || loss.kind !== 'lm' || loss.dropoutSeed === undefined) return undefined;
    const { batchSize, length } = loss.batch;
    const rate = adapters.settings.dropout;
    return drawLoraDropoutMasks(this.model.config, adapters.targets, rate, { batchSize, length }, loss.dropoutSeed);
  }

  private backward(loss: LossSpec): Backward {
    const trainable = this.model.trainableWeights;
    const variables = [...trainable.values()];
    // Scalars and outputs the graph reports besides the loss, kept past variableGrads' tidy.
    let reported: Record<string, Tensor> = {};
    const training = { loraDropout: this.loraDropout(loss) };
    const { value, grads } = tf.variableGrads(() => {
      const graph = lossGraph(this.model, loss, training);
      reported = Object.fromEntries(Object.entries(graph.reported).map(([name, t]) => [name, tf.keep(t)]));
      return graph.loss as never;
    }, variables);
    // A weight the loss does not reach (a head another loss trains) has no gradient, and is left out.
    const named: Record<string, Tensor> = {};
    [...trainable.keys()].forEach((name, i) => {
      const grad = grads[variables[i].name] as Tensor | undefined;
      if (grad) named[name] = grad;
    });
    return { value, grads: named, reported };
  }

  async step(loss: LossSpec, options: StepOptions): Promise<StepResult> {
    const { value, grads, reported } = this.backward(loss);
    const { clipped, norm } = clipByGlobalNorm(grads, options.maxGradNorm);
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

  /**
   * The gradients `step` would apply, before clipping, read out instead of applied (tests compare them with an
   * independent autograd; the step, the moments and the weights are untouched).
   */
  async gradients(loss: LossSpec): Promise<Gradients> {
    const { value, grads, reported } = this.backward(loss);
    const { clipped, norm } = clipByGlobalNorm(grads, 0);
    try {
      const out: NamedArrays = new Map();
      for (const [name, tensor] of Object.entries(grads))
        out.set(name, { shape: [...tensor.shape], data: (await tensor.data()) as Float32Array });
      return { loss: (await value.data())[0], gradNorm: (await norm.data())[0], grads: out };
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
