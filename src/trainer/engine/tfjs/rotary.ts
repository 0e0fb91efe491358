/**
 * Rotary position embeddings (Su et al. 2021, RoFormer) as the Llama family's weights expect them: the
 * "half-split" layout (dimension i pairs with i + D/2), angles position · θ_i, and θ_i rescaled as config.json's
 * rope_scaling says (transformers' modeling_rope_utils: default, linear, llama3).
 */
import type { RopeSettings } from '../../hf/hfArchitecture';
import { tf, type Tensor } from './tfRuntime';

/**
 * θ_i = theta^(−2i/D) for i < D/2, then rescaled:
 * - linear: every θ_i divided by `factor` (positions stretched by it);
 * - llama3 (Llama 3.1): wavelengths 2π/θ_i longer than originalMaxPositions / lowFreqFactor are divided by
 *   `factor`, shorter than originalMaxPositions / highFreqFactor kept, and those between blended by
 *   s = (originalMaxPositions / wavelength − lowFreqFactor) / (highFreqFactor − lowFreqFactor):
 *   (1 − s) · θ_i / factor + s · θ_i.
 */
export function ropeInverseFrequencies(rope: RopeSettings, headDim: number): Float32Array {
  const half = headDim / 2;
  const frequencies = new Float32Array(half);
  for (let i = 0; i < half; i++) frequencies[i] = 1 / rope.theta ** ((2 * i) / headDim);
  const scaling = rope.scaling;
  if (scaling.type === 'linear') return frequencies.map((frequency) => frequency / scaling.factor);
  if (scaling.type === 'default') return frequencies;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  const longWavelength = originalMaxPositions / lowFreqFactor;
  const shortWavelength = originalMaxPositions / highFreqFactor;
  return frequencies.map((frequency) => {
    const wavelength = (2 * Math.PI) / frequency;
    if (wavelength < shortWavelength) return frequency;
    if (wavelength > longWavelength) return frequency / factor;
    const smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (frequency / factor) + smooth * frequency;
  });
}

/** cos and sin of each position's angles, [B, 1, T, D] (broadcast over heads). */
export interface RotaryTables {
  readonly cos: Tensor;
  readonly sin: Tensor;
}

/** positions int32 [B, T], θ [D/2] → the tables for {@link applyRotary}. */
export function rotaryTables(positions: Tensor, inverseFrequencies: Tensor): RotaryTables {
  const [batch, length] = positions.shape as [number, number];
  const half = inverseFrequencies.shape[0];
  // [B, T, 1] · [1, 1, D/2] → [B, T, D/2]: angle of pair i at each position (float32, as transformers computes it).
  const angles = tf.mul(positions.toFloat().reshape([batch, length, 1]), inverseFrequencies.reshape([1, 1, half]));
  const both = tf.concat([angles, angles], -1).reshape([batch, 1, length, 2 * half]); // [B, 1, T, D]
  return { cos: tf.cos(both), sin: tf.sin(both) };
}

/** x [B, H, T, D] rotated: x · cos + rotate_half(x) · sin, rotate_half(x) = [−x₂, x₁] for x = [x₁, x₂]. */
export function applyRotary(x: Tensor, tables: RotaryTables): Tensor {
  const [first, second] = tf.split(x, 2, -1);
  const rotated = tf.concat([tf.neg(second), first], -1);
  return tf.add(tf.mul(x, tables.cos), tf.mul(rotated, tables.sin));
}
