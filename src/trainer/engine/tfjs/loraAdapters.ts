/**
 * LoRA adapters in the tfjs engine (Hu et al. 2021, eq. 3; PEFT's `Linear.forward`): each targeted linear layer
 * with frozen weight W₀ computes
 *   h = W₀x + b + (α/r) · B(A(dropout(x))),   A [r, in], B [out, r]
 * whatever W₀'s own layout (GPT-2's Conv1D stores it [in, out]; the update only reads x, so A and B are the same).
 * Adapters a checkpoint lacks start as PEFT starts them: A ~ U(−1/√in, 1/√in) (kaiming_uniform with a = √5), B = 0,
 * so a fresh LoRA model computes exactly the base model.
 *
 * Dropout on the adapter's input acts only while training. Its masks come from the project's generator
 * (core/random.ts), never from tfjs's: one stream per training forward, `Random(seeds.dropoutMask(forwardSeed,
 * loraDropoutCall))`, drawn in forward order (layer by layer, targets in the order the forward meets them), one
 * uniform per element of x, kept (u < 1 − p) → 1/(1 − p), else 0. `forwardSeed` is the LM step's `dropoutSeed`
 * when it has one (SFT), and otherwise `seeds.sftDropout(model seed, optimizer step)` (see tfjsOptimizer.ts).
 */
import { Random, scrambleSeed } from '../../../core/random';
import { dropoutMultipliers } from '../../model/dropoutMasks';
import {
  isLoraWeight,
  loraAName,
  loraBName,
  loraScale,
  type LoraSettings,
  type LoraTarget,
} from '../../lora/loraTargets';
import { seeds } from '../../seeds';
import { linear } from './ops';
import { tf, type Tensor, type Variable } from './tfRuntime';

/**
 * The dropout "call" of a forward whose stream the adapters draw from: the last of the 1000 a forward seed spreads
 * over (seeds.dropoutMask), far above the GPT's own 1 + 3·n_layer sites.
 */
const loraDropoutCall = 999;
/** XOR mask that keeps the adapters' initial stream apart from the trunk's and the heads' (same seed). */
const adapterInitMask = 0x10ab;

/** What a model's forward asks of its adapters: the update of a linear layer's output, or none. */
export interface LinearAdapters {
  /** (α/r)·B(A(dropout(x))) for `module` (x [..., in] → [..., out]), or undefined when it is not adapted. */
  delta(module: string, x: Tensor): Tensor | undefined;
}

/** The dropout stream of one training forward (see the file's comment). */
export function loraDropoutStream(forwardSeed: number): Random {
  return new Random(seeds.dropoutMask(forwardSeed, loraDropoutCall));
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
    const random = new Random(scrambleSeed(seed ^ adapterInitMask));
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
          make(name, shape, value ? value.data : initialAdapter(name, shape, target.inFeatures, random));
        }
      }
    } catch (error) {
      for (const variable of weights.values()) variable.dispose();
      throw error;
    }
    return new LoraAdapters(settings, targets, weights);
  }

  /** The adapters as a forward uses them; `dropout` is the training forward's mask stream (none: no dropout). */
  linear(dropout?: Random): LinearAdapters {
    const scale = loraScale(this.settings);
    const rate = this.settings.dropout;
    return {
      delta: (module, x) => {
        if (!this.byModule.has(module)) return undefined;
        const a = this.weights.get(loraAName(module)) as Variable; // [r, in]
        const b = this.weights.get(loraBName(module)) as Variable; // [out, r]
        let input = x;
        if (dropout && rate > 0) {
          const multipliers = dropoutMultipliers(x.size, rate, dropout);
          input = tf.mul(x, tf.tensor(multipliers, x.shape));
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

/** PEFT's start: A ~ U(−1/√in, 1/√in), B = 0. */
function initialAdapter(name: string, shape: number[], inFeatures: number, random: Random): Float32Array {
  const data = new Float32Array(shape[0] * shape[1]);
  if (name.endsWith('.lora_B.weight')) return data;
  const bound = 1 / Math.sqrt(inFeatures);
  for (let i = 0; i < data.length; i++) data[i] = (2 * random.next() - 1) * bound;
  return data;
}
