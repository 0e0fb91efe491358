/**
 * Rotary position embeddings (Su et al. 2021, RoFormer) as the Llama family's weights expect them: the
 * "half-split" layout (dimension i pairs with i + D/2), angles position · θ_i, and θ_i rescaled as config.json's
 * rope_scaling says (src/trainer/hf/ropeFrequencies.ts, shared with the ONNX graph).
 */
import { tf, type Tensor } from './tfRuntime';

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
