/**
 * Which examples a step trains on, for every stage: a deterministic train/eval split, and batches that
 * are a pure function of (seed, step) — each epoch is a fresh shuffle seeded by the epoch number, so a
 * resumed run sees exactly the batches an uninterrupted one would.
 */
import { Random } from '../../core/random';
import { seeds } from '../seeds';

/** Deterministic split: a seeded shuffle, the first `evalFraction` held out (at least one of each when possible). */
export function splitExamples<T>(
  examples: readonly T[],
  evalFraction: number,
  seed: number,
): { train: T[]; evaluation: T[] } {
  const order = new Random(seeds.evalSplit(seed)).shuffle(examples.map((_, i) => i));
  const evalCount =
    evalFraction > 0 && examples.length > 1 ? Math.max(1, Math.round(examples.length * evalFraction)) : 0;
  return {
    evaluation: order.slice(0, evalCount).map((i) => examples[i]),
    train: order.slice(evalCount).map((i) => examples[i]),
  };
}

/** The training examples of optimizer step `step` (0-based): epochs of seeded shuffles, read in order. */
export function batchIndices(step: number, batchSize: number, datasetSize: number, seed: number): number[] {
  const indices: number[] = [];
  let position = step * batchSize;
  let cachedEpoch = -1;
  let order: number[] = [];
  while (indices.length < batchSize) {
    const epoch = Math.floor(position / datasetSize);
    if (epoch !== cachedEpoch) {
      order = new Random(seeds.epochShuffle(seed, epoch)).shuffle(Array.from({ length: datasetSize }, (_, i) => i));
      cachedEpoch = epoch;
    }
    indices.push(order[position % datasetSize]);
    position++;
  }
  return indices;
}
