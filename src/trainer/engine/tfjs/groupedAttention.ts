/**
 * Attention of the Llama family: grouped-query attention (Ainslie et al. 2023) — H query heads share
 * K key/value heads, query head h reading key/value head ⌊h / (H / K)⌋ — under a causal mask that mistral's
 * (and qwen2's upper layers') sliding window narrows to the last `window` keys.
 *
 * Shapes: B batch, H query heads, K key/value heads, G = H / K, T new positions, S = P + T keys, D head dim.
 */
import { batchMatMul, swapLastAxes } from './ops';
import { tf, type Tensor } from './tfRuntime';

/** An additive score that softmax turns into 0 (−∞ would give NaN on a fully hidden row of padding). */
export const maskedScore = -1e9;

/**
 * The causal bias [1, 1, T, S]: 0 where query i (position P + i) sees key j — j ≤ P + i, and with a window
 * j > P + i − window — and {@link maskedScore} elsewhere.
 */
export function causalBias(length: number, past: number, window: number | null): Tensor {
  const keys = past + length;
  const values = new Float32Array(length * keys);
  for (let i = 0; i < length; i++)
    for (let j = 0; j < keys; j++) {
      const visible = j <= past + i && (window === null || j > past + i - window);
      values[i * keys + j] = visible ? 0 : maskedScore;
    }
  return tf.tensor(values, [1, 1, length, keys]);
}

/** The bias of padding keys: keyMask [B, S] (1 real, 0 padding) → [B, 1, 1, S]. */
export function paddingBias(keyMask: Tensor): Tensor {
  const [batch, keys] = keyMask.shape as [number, number];
  return tf.mul(tf.sub(1, keyMask.toFloat()), maskedScore).reshape([batch, 1, 1, keys]);
}

/**
 * softmax(q·kᵀ/√D + bias) · v with q [B, H, T, D], k and v [B, K, S, D], bias broadcastable to [B, H, T, S]
 * → [B, H, T, D]. Query heads of one group are adjacent, so q reshapes to [B, K, G·T, D] and each key/value
 * head is used as stored, never repeated.
 */
export function groupedQueryAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor): Tensor {
  const [batch, heads, length, headDim] = q.shape as [number, number, number, number];
  const [, kvHeads, keys] = k.shape as [number, number, number, number];
  const grouped = q.reshape([batch, kvHeads, (heads / kvHeads) * length, headDim]); // [B, K, G·T, D]
  const scores = tf.mul(batchMatMul(grouped, swapLastAxes(k)), 1 / Math.sqrt(headDim)); // [B, K, G·T, S]
  const weights = tf.softmax(tf.add(scores.reshape([batch, heads, length, keys]), bias), -1); // [B, H, T, S]
  const mixed = batchMatMul(weights.reshape([batch, kvHeads, (heads / kvHeads) * length, keys]), v); // [B, K, G·T, D]
  return mixed.reshape([batch, heads, length, headDim]);
}
