/** RMSNorm (Zhang & Sennrich 2019), the Llama family's normalisation: no mean subtracted, no bias. */
import { tf, type Tensor } from './tfRuntime';

/** weight · x / √(mean(x²) + ε) over the last axis. */
export function rmsNorm(x: Tensor, weight: Tensor, epsilon: number): Tensor {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(meanSquare, epsilon))));
}
