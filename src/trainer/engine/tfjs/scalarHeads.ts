/**
 * The scalar heads every architecture shares, on the final hidden state (after ln_f / model.norm): `v_head` (PPO's
 * critic, a value per position) and `score` (a reward model's reward of a sequence), each a [C, 1] weight and a [1]
 * bias, named so in every engine.
 */
import type { ScorePooling } from '../../model/gptConfig';
import { linear } from './ops';
import { tf, type Tensor } from './tfRuntime';

/** w·h_t + b at every position: hidden [B, T, C] → [B, T]. */
export function headPerPosition(hidden: Tensor, weight: Tensor, bias: Tensor): Tensor {
  const [batch, length] = hidden.shape as [number, number, number];
  return linear(hidden, weight, bias).reshape([batch, length]);
}

/**
 * A reward model's score of each right-padded sequence from its per-position head output [B, T] → [B].
 *   'last' (InstructGPT's reward model reads the final token): r = w·h_{n−1} + b
 *   'sum': r = Σ_{t<n} w·h_t + b — the bias once, so the score does not grow with length by itself.
 */
export function pooledScores(
  perPosition: Tensor,
  lengths: readonly number[],
  bias: Tensor,
  pooling: ScorePooling = 'last',
): Tensor {
  const [batch, length] = perPosition.shape as [number, number];
  if (pooling === 'last') {
    const last = tf.tensor1d(
      lengths.map((n) => n - 1),
      'int32',
    );
    return tf.sum(tf.mul(perPosition, tf.oneHot(last, length).toFloat()), 1); // [B]
  }
  const mask = new Float32Array(batch * length);
  lengths.forEach((n, b) => mask.fill(1, b * length, b * length + n));
  const summed = tf.sum(tf.mul(perPosition, tf.tensor2d(mask, [batch, length])), 1); // [B] = Σ w·h_t + n·b
  return tf.sub(summed, tf.mul(bias.reshape([1]), tf.tensor1d(lengths.map((n) => n - 1)))); // [B]
}
