/**
 * Token-level log-probabilities and the language-modelling loss. `tf.gather` along the vocabulary
 * would need `UnsortedSegmentSum` for its gradient on wasm, so the target's log-probability is read
 * with a one-hot product instead: log p(yₜ) = Σᵥ onehot(yₜ)ᵥ · log_softmax(zₜ)ᵥ.
 */
import { tf, type Tensor } from './tfRuntime';

/** log p(targets | logits): logits [B, T, V], targets int32 [B, T] → [B, T]. */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  const vocabSize = logits.shape[2] as number;
  const logProbs = tf.logSoftmax(logits, -1); // [B, T, V]
  return tf.sum(tf.mul(logProbs, tf.oneHot(targets, vocabSize).toFloat()), -1); // [B, T]
}

/** Mean negative log-likelihood over the positions where mask is 1: Σ −log p · m / Σ m. */
export function maskedNll(logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  const nll = tf.neg(tokenLogprobs(logits, targets)); // [B, T]
  return tf.div(tf.sum(tf.mul(nll, mask)), tf.maximum(tf.sum(mask), 1));
}

/** Entropy of each position's next-token distribution: −Σ p log p, [B, T, V] → [B, T]. */
export function entropyFromLogits(logits: Tensor): Tensor {
  const logProbs = tf.logSoftmax(logits, -1);
  return tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), -1));
}
