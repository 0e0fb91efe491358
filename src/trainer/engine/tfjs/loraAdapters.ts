/**
 * LoRA adapters in the tfjs engine (Hu et al. 2021, eq. 3; PEFT's `Linear.forward`): each targeted linear layer
 * with frozen weight W₀ computes
 *   h = W₀x + b + (α/r) · B(A(dropout(x))),   A [r, in], B [out, r]
 * whatever W₀'s own layout (GPT-2's Conv1D stores it [in, out]; the update only reads x, so A and B are the same).
 * Adapters a checkpoint lacks start as PEFT starts them (lora/loraInit.ts, shared with the ONNX Runtime engine):
 * A ~ U(−1/√in, 1/√in), B = 0, so a fresh LoRA model computes exactly the base model.
 *
 * Dropout on the adapter's input acts only in a training forward with a dropout seed (SFT's LM steps). Its masks,
 * one site per target, are model/dropoutMasks.ts's (drawLoraDropoutMasks), the ONNX Runtime engine's too.
 */
import { initialLoraWeights } from '../../lora/loraInit';
import type { DropoutMask } from '../../model/dropoutMasks';
import {
  isLoraWeight,
  loraAName,
  loraBName,
  loraScale,
  type LoraSettings,
  type LoraTarget,
} from '../../lora/loraTargets';
import { linear } from './ops';
import { tf, type Tensor, type Variable } from './tfRuntime';

/** What a model's forward asks of its adapters: the update of a linear layer's output, or none. */
export interface LinearAdapters {
  /** (α/r)·B(A(dropout(x))) for `module` (x [..., in] → [..., out]), or undefined when it is not adapted. */
  delta(module: string, x: Tensor): Tensor | undefined;
}

export class LoraAdapters {
  /** lora_A and lora_B of every target, by PEFT's names, in target order. */
  readonly weights: ReadonlyMap<string, Variable>;
  private readonly byModule: ReadonlyMap<string, LoraTarget>;

  private constructor(
    readonly settings: LoraSettings,
    readonly targets: readonly LoraTarget[],
    weights: Map<string, Variable>,
  ) {
    this.weights = weights;
    this.byModule = new Map(targets.map((target) => [target.module, target]));
  }

  /**
   * Adapters for `targets`: from `values` where it holds them (a resumed run; both A and B, or an error), fresh
   * (PEFT's start, seeded) where it holds neither. An adapter in `values` for a module not targeted is an error.
   */
  static create(
    settings: LoraSettings,
    targets: readonly LoraTarget[],
    seed: number,
    values?: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  ): LoraAdapters {
    if (!(Number.isInteger(settings.r) && settings.r >= 1)) throw new Error(`lora.r must be ≥ 1, got ${settings.r}`);
    if (!(settings.dropout >= 0 && settings.dropout < 1))
      throw new Error(`lora.dropout must be in [0, 1), got ${settings.dropout}`);
    const expected = new Set(targets.flatMap((t) => [loraAName(t.module), loraBName(t.module)]));
    for (const name of values?.keys() ?? [])
      if (isLoraWeight(name) && !expected.has(name))
        throw new Error(`the checkpoint has adapter "${name}" for a module lora.target_modules does not name`);
    const fresh = initialLoraWeights(targets, settings.r, seed);
    const weights = new Map<string, Variable>();
    const make = (name: string, shape: number[], data: Float32Array) =>
      weights.set(
        name,
        tf.tidy(() => tf.variable(tf.tensor(data, shape), true)),
      );
    try {
      for (const target of targets) {
        const shapes = {
          [loraAName(target.module)]: [settings.r, target.inFeatures],
          [loraBName(target.module)]: [target.outFeatures, settings.r],
        };
        const given = Object.keys(shapes).filter((name) => values?.has(name));
        if (given.length === 1)
          throw new Error(`the checkpoint has "${given[0]}" but not its partner (an adapter needs lora_A and lora_B)`);
        for (const [name, shape] of Object.entries(shapes)) {
          const value = values?.get(name);
          if (value && value.shape.join(',') !== shape.join(','))
            throw new Error(
              `adapter "${name}" has shape [${value.shape}] in the checkpoint but [${shape}] for r ${settings.r}`,
            );
          make(name, shape, (value ?? (fresh.get(name) as { data: Float32Array })).data);
        }
      }
    } catch (error) {
      for (const variable of weights.values()) variable.dispose();
      throw error;
    }
    return new LoraAdapters(settings, targets, weights);
  }

  /** The adapters as a forward uses them; `dropout`: the training forward's masks by module (none: no dropout). */
  linear(dropout?: ReadonlyMap<string, DropoutMask>): LinearAdapters {
    const scale = loraScale(this.settings);
    return {
      delta: (module, x) => {
        if (!this.byModule.has(module)) return undefined;
        const a = this.weights.get(loraAName(module)) as Variable; // [r, in]
        const b = this.weights.get(loraBName(module)) as Variable; // [out, r]
        let input = x;
        const mask = dropout?.get(module);
        if (mask) {
          if (mask.data.length !== x.size)
            throw new Error(`LoRA dropout mask of ${module} has ${mask.data.length} elements, its input ${x.size}`);
          input = tf.mul(x, tf.tensor(mask.data, x.shape));
        }
        // x·Aᵀ·Bᵀ·(α/r): [..., in] → [..., r] → [..., out]
        return tf.mul(linear(linear(input, tf.transpose(a)), tf.transpose(b)), scale);
      },
    };
  }

  dispose(): void {
    for (const variable of this.weights.values()) variable.dispose();
  }
}
