/**
 * Dropout masks drawn once, engine-neutral, from the project's own generator (core/random.ts), so the
 * tfjs and ONNX Runtime engines drop the same units for the same seed. Inverted dropout (Srivastava et
 * al. 2014, as nanoGPT's nn.Dropout): each unit is kept with probability 1 − p and scaled, so that
 *   y = x · m,   m = 1/(1 − p) with probability 1 − p, else 0,   E[m] = 1,
 * and evaluation (no masks) needs no rescaling. The mask of the k-th dropout site of a forward whose
 * dropout seed is `forwardSeed` is drawn from `Random(seeds.dropoutMask(forwardSeed, k))`, one uniform
 * per element in row-major order. The sites, in forward order (both engines' GPTs): the embeddings,
 * then per layer the attention probabilities, the attention's output projection and the MLP's output.
 *
 * LoRA's dropout (PEFT's `lora_dropout` on each adapter's input x [B, T, in]) continues the numbering: after the
 * model's own sites (1 + 3·n_layer for a GPT with dropout > 0, none otherwise: a Llama-family model has none), one
 * site per targeted module in target order (lora/loraTargets.ts), whichever order the forward meets them in.
 * Masks are drawn only for a forward with a dropout seed — SFT's LM steps; the reward model's, PPO's and DPO's
 * steps run without dropout, as TRL's trainers do by default (`disable_dropout=True`, which zeroes every
 * nn.Dropout, LoRA's included).
 */
import { Random } from '../../core/random';
import { seeds } from '../seeds';
import { isLlamaConfig, type CausalLmConfig } from './causalLmConfig';
import type { GptConfig } from './gptConfig';

/** One dropout site's multiplier: 0 or 1/(1 − p) per element, row-major over `shape`. */
export interface DropoutMask {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** The token grid of a training forward: no KV cache, so attention is T × T. */
export interface DropoutBatchShape {
  readonly batchSize: number;
  readonly length: number;
}

/** The shapes of a forward's dropout sites, in forward order. */
export function dropoutSiteShapes(config: GptConfig, shape: DropoutBatchShape): number[][] {
  const { batchSize: b, length: t } = shape;
  const hidden = [b, t, config.n_embd];
  const attention = [b, config.n_head, t, t];
  const sites = [hidden];
  for (let layer = 0; layer < config.n_layer; layer++) sites.push(attention, hidden, hidden);
  return sites;
}

/** `size` multipliers at rate p from `random`: kept (u < 1 − p) → 1/(1 − p), dropped → 0. */
export function dropoutMultipliers(size: number, rate: number, random: Random): Float32Array {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
  const keep = 1 - rate;
  const kept = 1 / keep;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) if (random.next() < keep) out[i] = kept;
  return out;
}

/**
 * Every mask of one training forward at the model's dropout rate, in forward order; none when the rate
 * is 0 (dropout is then the identity, and drawing would only cost time).
 */
export function drawDropoutMasks(config: GptConfig, shape: DropoutBatchShape, forwardSeed: number): DropoutMask[] {
  if (config.dropout === 0) return [];
  return dropoutSiteShapes(config, shape).map((siteShape, site) => {
    const size = siteShape.reduce((product, dim) => product * dim, 1);
    const random = new Random(seeds.dropoutMask(forwardSeed, site));
    return { shape: siteShape, data: dropoutMultipliers(size, config.dropout, random) };
  });
}

/** How many dropout sites a training forward of `config` has before LoRA's (none for the Llama family). */
export function modelDropoutSiteCount(config: CausalLmConfig, shape: DropoutBatchShape): number {
  if (isLlamaConfig(config) || config.dropout === 0) return 0;
  return dropoutSiteShapes(config, shape).length;
}

/** What LoRA's dropout needs of a target (lora/loraTargets.ts's LoraTarget). */
export interface DropoutTarget {
  readonly module: string;
  readonly inFeatures: number;
}

/**
 * The masks of LoRA's dropout sites of one training forward at `rate`, one per target in target order (site
 * `modelDropoutSiteCount + i` for the i-th target); none when the rate is 0.
 */
export function drawLoraDropoutMasks(
  config: CausalLmConfig,
  targets: readonly DropoutTarget[],
  rate: number,
  shape: DropoutBatchShape,
  forwardSeed: number,
): Map<string, DropoutMask> {
  const masks = new Map<string, DropoutMask>();
  if (rate === 0) return masks;
  const first = modelDropoutSiteCount(config, shape);
  targets.forEach((target, i) => {
    const siteShape = [shape.batchSize, shape.length, target.inFeatures];
    const random = new Random(seeds.dropoutMask(forwardSeed, first + i));
    masks.set(target.module, {
      shape: siteShape,
      data: dropoutMultipliers(
        siteShape.reduce((a, b) => a * b, 1),
        rate,
        random,
      ),
    });
  });
  return masks;
}
