/**
 * Merging LoRA adapters into their base weights (Hu et al. 2021, §4.1: "W = W₀ + BA", scaled by α/r as in PEFT's
 * `merge`): the merged model computes W·x = W₀x + (α/r)·B·A·x with no adapter left, so it exports and runs as a
 * plain model. For a Linear weight stored [out, in]: W = W₀ + (α/r)·B·A. For GPT-2's Conv1D, stored [in, out]
 * (PEFT's fan_in_fan_out): W = W₀ + (α/r)·(B·A)ᵀ. A is [r, in] and B is [out, r] either way.
 *
 * The base weights are never modified: merged tensors are new arrays, the others are shared with the input.
 */
import type { CausalLmConfig } from '../model/causalLmConfig';
import {
  isLoraWeight,
  loraAName,
  loraBName,
  loraScale,
  loraTargets,
  type LoraSettings,
  type NamedArrays,
  type LoraTarget,
} from './loraTargets';

type Tensor = { shape: number[]; data: Float32Array };

/** `base` with every target's (α/r)·B·A added (`scale` = α/r); adapters are named `<module>.lora_A/B.weight`. */
export function mergeLora(
  base: NamedArrays,
  adapters: NamedArrays,
  targets: readonly LoraTarget[],
  scale: number,
): NamedArrays {
  const merged: NamedArrays = new Map(base);
  for (const target of targets) {
    const weight = required(base, target.baseWeight, 'base weight');
    const a = required(adapters, loraAName(target.module), 'adapter');
    const b = required(adapters, loraBName(target.module), 'adapter');
    const { inFeatures, outFeatures } = target;
    const baseShape = target.fanInFanOut ? [inFeatures, outFeatures] : [outFeatures, inFeatures];
    checkShape(target.baseWeight, weight, baseShape);
    const r = a.shape[0];
    checkShape(loraAName(target.module), a, [r, inFeatures]);
    checkShape(loraBName(target.module), b, [outFeatures, r]);
    merged.set(target.baseWeight, {
      shape: [...weight.shape],
      data: addScaledProduct(weight.data, a, b, target, scale),
    });
  }
  return merged;
}

/** W₀ + s·B·A laid out as W₀ ([out, in], or [in, out] for fan_in_fan_out), in a new array. */
function addScaledProduct(base: Float32Array, a: Tensor, b: Tensor, target: LoraTarget, scale: number): Float32Array {
  const { inFeatures, outFeatures, fanInFanOut } = target;
  const r = a.shape[0];
  const out = Float32Array.from(base);
  for (let o = 0; o < outFeatures; o++)
    for (let i = 0; i < inFeatures; i++) {
      let delta = 0; // (B·A)[o, i], summed in float64
      for (let k = 0; k < r; k++) delta += b.data[o * r + k] * a.data[k * inFeatures + i];
      out[fanInFanOut ? i * outFeatures + o : o * inFeatures + i] += scale * delta;
    }
  return out;
}

/**
 * A LoRA model's weights as an engine reads them (base + `…lora_A/B.weight` + heads) merged into a plain model's:
 * the adapters of `settings`' targets added in and every adapter tensor dropped.
 */
export function mergeLoraWeights(weights: NamedArrays, config: CausalLmConfig, settings: LoraSettings): NamedArrays {
  const merged = mergeLora(weights, weights, loraTargets(config, settings), loraScale(settings));
  const targeted = new Set(loraTargets(config, settings).flatMap((t) => [loraAName(t.module), loraBName(t.module)]));
  for (const name of merged.keys()) {
    if (!isLoraWeight(name)) continue;
    if (!targeted.has(name))
      throw new Error(`${name}: an adapter of a module the LoRA settings do not target (target_modules)`);
    merged.delete(name);
  }
  return merged;
}

/** True when `weights` hold LoRA adapter tensors. */
export const hasLoraWeights = (weights: NamedArrays) => [...weights.keys()].some(isLoraWeight);

function required(weights: NamedArrays, name: string, what: string): Tensor {
  const tensor = weights.get(name);
  if (tensor === undefined) throw new Error(`LoRA merge: the ${what} "${name}" is missing`);
  return tensor;
}

function checkShape(name: string, tensor: Tensor, expected: readonly number[]): void {
  const elements = expected.reduce((product, size) => product * size, 1);
  if (tensor.shape.join(',') !== expected.join(',') || tensor.data.length !== elements)
    throw new Error(`LoRA merge: "${name}" has shape [${tensor.shape.join(', ')}], expected [${expected.join(', ')}]`);
}
