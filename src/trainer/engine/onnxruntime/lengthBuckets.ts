/**
 * Length buckets: a batch's time axis is padded up to the next multiple of LENGTH_BUCKET_STEP (never past
 * the model's block_size), so that the sessions built per batch shape are a few per kind, not one per
 * minibatch length (PPO's minibatches have as many lengths as their longest prompt + response).
 *
 * Padding goes on the right, with mask 0 and token 0. That changes nothing the losses compute:
 *  - attention is causal, so positions t < T never see the padded positions t ≥ T;
 *  - every loss and reported mean is a mask-weighted sum (Σ mask·x / Σ mask), DPO's and the score's sums
 *    multiply by the mask or by `score_pick` (0 on padding), so padded positions add exact zeros;
 *  - their gradients are multiplied by the same zeros.
 * The padded inputs are finite (token 0, old log-prob 0, …), so 0·x stays 0. What can differ is float
 * rounding in kernels that block differently on another shape (matmuls), ~1e-7 relative.
 * Per-position outputs [B, T_padded] are trimmed back to [B, T].
 */
import type { ScoreBatch, TokenBatch } from '../engine';

/** Bucket width in positions: at most 7 padded positions per row, ⌈block_size / 8⌉ buckets per kind. */
export const LENGTH_BUCKET_STEP = 8;

/** The padded length of a batch of `length` positions; `length` itself when already at or past the cap. */
export function bucketLength(length: number, blockSize: number): number {
  if (length >= blockSize) return length;
  return Math.min(blockSize, Math.ceil(length / LENGTH_BUCKET_STEP) * LENGTH_BUCKET_STEP);
}

type Grid = Float32Array | Int32Array;

/** A row-major [B, T] grid copied into [B, padded], zeros on the right. */
export function padGrid<T extends Grid>(values: T, batchSize: number, length: number, padded: number): T {
  if (padded === length) return values;
  const out = new (values.constructor as new (size: number) => T)(batchSize * padded);
  for (let b = 0; b < batchSize; b++) out.set(values.subarray(b * length, (b + 1) * length), b * padded);
  return out;
}

/** A [B, padded] grid's first `length` positions of every row, as [B, length]. */
export function trimGrid(values: Float32Array, batchSize: number, padded: number, length: number): Float32Array {
  if (padded === length) return values;
  const out = new Float32Array(batchSize * length);
  for (let b = 0; b < batchSize; b++) out.set(values.subarray(b * padded, b * padded + length), b * length);
  return out;
}

export function padTokenBatch(batch: TokenBatch, padded: number): TokenBatch {
  const { batchSize, length } = batch;
  if (padded === length) return batch;
  return {
    batchSize,
    length: padded,
    inputs: padGrid(batch.inputs, batchSize, length, padded),
    targets: padGrid(batch.targets, batchSize, length, padded),
    mask: padGrid(batch.mask, batchSize, length, padded),
  };
}

/** A score batch padded on the right; `lengths` (what the pooling reads) are unchanged. */
export function padScoreBatch(batch: ScoreBatch, padded: number): ScoreBatch {
  if (padded === batch.length) return batch;
  return { ...batch, length: padded, ids: padGrid(batch.ids, batch.batchSize, batch.length, padded) };
}

/** The time axis of a run's main grid: outputs of dims [batchSize, padded] are trimmed to `length`. */
export interface TimeAxis {
  readonly batchSize: number;
  readonly length: number;
  readonly padded: number;
}

/** `data` trimmed back to the unpadded length when its dims are the padded grid's; as is otherwise. */
export function trimOutput(data: Float32Array, dims: readonly number[], axis: TimeAxis | undefined): Float32Array {
  if (!axis || axis.padded === axis.length) return data;
  const isGrid = dims.length === 2 && dims[0] === axis.batchSize && dims[1] === axis.padded;
  return isGrid ? trimGrid(data, axis.batchSize, axis.padded, axis.length) : data;
}
