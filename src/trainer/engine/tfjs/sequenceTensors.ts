/** The seam's batches as tensors. */
import type { ScoreBatch, TokenBatch } from '../engine';
import type { LmForwardOptions, TfjsLm } from './causalLm';
import { tf, type Tensor } from './tfRuntime';

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
export function scoreBatchTensor(model: TfjsLm, batch: ScoreBatch, options: LmForwardOptions = {}): Tensor {
  return model.score(tf.tensor2d(batch.ids, [batch.batchSize, batch.length], 'int32'), batch.lengths, options);
}
