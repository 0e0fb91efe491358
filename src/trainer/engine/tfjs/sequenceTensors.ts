/** The seam's batches as tensors, and the log-probabilities of a batch's targets under a GPT. */
import type { ScoreBatch, TokenBatch } from '../engine';
import type { Gpt } from './gpt';
import { tokenLogprobs } from './losses';
import { tf, type Tensor } from './tfRuntime';

/** The tensors of a batch; the caller disposes them (or builds them inside a tidy). */
export function sequenceTensors(batch: {
  readonly batchSize: number;
  readonly length: number;
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
  readonly responseMask: Float32Array;
}): { inputs: Tensor; targets: Tensor; mask: Tensor } {
  const shape: [number, number] = [batch.batchSize, batch.length];
  return {
    inputs: tf.tensor2d(batch.inputs, shape, 'int32'),
    targets: tf.tensor2d(batch.targets, shape, 'int32'),
    mask: tf.tensor2d(batch.responseMask, shape),
  };
}

/** log p(target) at every position, at a sampling temperature (logits / T, as the sampler drew them): [B, T]. */
export function sequenceLogprobs(
  model: Gpt,
  inputs: Tensor,
  targets: Tensor,
  temperature = 1,
): { logprobs: Tensor; logits: Tensor; hidden: Tensor } {
  const { logits, hidden } = model.forward(inputs);
  const scaled = temperature > 0 && temperature !== 1 ? tf.div(logits, temperature) : logits;
  return { logprobs: tokenLogprobs(scaled, targets), logits: scaled, hidden };
}

/** [B, T] tensors of a token batch; the caller disposes them (or builds them inside a tidy). */
export function tokenBatchTensors(batch: TokenBatch): { inputs: Tensor; targets: Tensor; mask: Tensor } {
  const shape: [number, number] = [batch.batchSize, batch.length];
  return {
    inputs: tf.tensor2d(batch.inputs, shape, 'int32'),
    targets: tf.tensor2d(batch.targets, shape, 'int32'),
    mask: tf.tensor2d(batch.mask, shape, 'float32'),
  };
}

/** [B]: the `score` head's reward of every row of a score batch. */
export function scoreBatchTensor(model: Gpt, batch: ScoreBatch): Tensor {
  return model.score(tf.tensor2d(batch.ids, [batch.batchSize, batch.length], 'int32'), batch.lengths);
}
