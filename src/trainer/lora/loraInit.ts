/**
 * Fresh LoRA adapters as PEFT starts them (`LoraLayer.reset_lora_parameters` with init_lora_weights = True):
 *   A ~ U(−1/√in, 1/√in)   (nn.init.kaiming_uniform_ with a = √5: bound = √(6 / ((1 + a²)·in)) = 1/√in),   B = 0,
 * so B·A = 0 and a fresh LoRA model computes exactly its base model. Engine-neutral: both engines call this, so a
 * seed gives the same adapters in each. A's uniforms come from one stream of their own,
 * `Random(scrambleSeed(seed ^ 0x10ab))` (apart from the trunk's and the heads' streams of the same seed), target by
 * target in `targets` order (loraTargets), row-major; B draws nothing.
 */
import { Random, scrambleSeed } from '../../core/random';
import { loraAName, loraBName, type LoraTarget } from './loraTargets';

/** XOR mask that keeps the adapters' stream apart from the trunk's and the heads' (same seed). */
const ADAPTER_INIT_MASK = 0x10ab;

/** `<module>.lora_A.weight` [r, in] and `<module>.lora_B.weight` [out, r] of every target, in target order. */
export function initialLoraWeights(
  targets: readonly LoraTarget[],
  r: number,
  seed: number,
): Map<string, { shape: number[]; data: Float32Array }> {
  const random = new Random(scrambleSeed(seed ^ ADAPTER_INIT_MASK));
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const target of targets) {
    const bound = 1 / Math.sqrt(target.inFeatures);
    const a = new Float32Array(r * target.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (2 * random.next() - 1) * bound;
    weights.set(loraAName(target.module), { shape: [r, target.inFeatures], data: a });
    const b = new Float32Array(target.outFeatures * r);
    weights.set(loraBName(target.module), { shape: [target.outFeatures, r], data: b });
  }
  return weights;
}
