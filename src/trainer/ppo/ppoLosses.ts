/**
 * PPO's losses as tensors, for the update; twins of `ppoPolicyLoss` and `ppoValueLoss` in src/core
 * (tested to agree). Following TRL's PPOTrainer and cleanrl's ppo.py:
 *   ratio = exp(log π_new − log π_old)
 *   pg_loss1 = −A · ratio,  pg_loss2 = −A · clip(ratio, 1 − ε, 1 + ε)
 *   pg_loss = masked_mean(max(pg_loss1, pg_loss2))
 *   v_clipped = V_old + clip(V_new − V_old, −ε_v, ε_v)
 *   vf_loss = ½ · masked_mean(max((V_new − R)², (v_clipped − R)²))
 */
import { tf, type Tensor } from '../engine/tfjs/tfRuntime';

export function maskedMeanTensor(x: Tensor, mask: Tensor): Tensor {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1e-8));
}

export interface PolicyLossTensors {
  readonly loss: Tensor;
  readonly clipFrac: Tensor;
  readonly approxKl: Tensor;
  /** [B, T] */
  readonly ratio: Tensor;
}

export function ppoPolicyLossTensor(
  newLogprobs: Tensor,
  oldLogprobs: Tensor,
  advantages: Tensor,
  mask: Tensor,
  clipRange: number,
): PolicyLossTensors {
  const logRatio = tf.sub(newLogprobs, oldLogprobs);
  const ratio = tf.exp(logRatio);
  const pgLoss1 = tf.mul(tf.neg(advantages), ratio);
  const pgLoss2 = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipRange, 1 + clipRange));
  return {
    loss: maskedMeanTensor(tf.maximum(pgLoss1, pgLoss2), mask),
    clipFrac: maskedMeanTensor(tf.cast(tf.greater(pgLoss2, pgLoss1), 'float32'), mask),
    approxKl: maskedMeanTensor(tf.mul(0.5, tf.square(logRatio)), mask),
    ratio,
  };
}

export function ppoValueLossTensor(
  newValues: Tensor,
  oldValues: Tensor,
  returns: Tensor,
  mask: Tensor,
  clipRangeValue: number,
): { loss: Tensor; clipFrac: Tensor } {
  const clipped = tf.add(oldValues, tf.clipByValue(tf.sub(newValues, oldValues), -clipRangeValue, clipRangeValue));
  const losses1 = tf.square(tf.sub(newValues, returns));
  const losses2 = tf.square(tf.sub(clipped, returns));
  return {
    loss: tf.mul(0.5, maskedMeanTensor(tf.maximum(losses1, losses2), mask)),
    clipFrac: maskedMeanTensor(tf.cast(tf.greater(losses2, losses1), 'float32'), mask),
  };
}
