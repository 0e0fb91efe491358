/**
 * Prompt + response sequences as the RL stages see them: `[BOS, prompt…, response…]`, right-padded
 * to a common length, with the targets shifted by one and a mask that is 1 exactly where a target
 * is a response token. Per-token quantities of a response (log-probabilities, values, rewards) are
 * read at those positions: position t predicts token t + 1.
 */
import type { TokenBatch } from '../engine/engine';

export interface PromptResponse {
  /** Prompt token ids, BOS included. */
  readonly prompt: readonly number[];
  /** Response token ids (EOS included when the response ended with it). */
  readonly response: readonly number[];
}

export interface SequenceBatch {
  readonly batchSize: number;
  /** Positions per row: the longest prompt + response, minus one (the last token is never an input). */
  readonly length: number;
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
  /** 1 where the target is a response token. */
  readonly responseMask: Float32Array;
  /** Position of each row's first response target (= prompt length − 1). */
  readonly responseStart: number[];
  readonly responseLengths: number[];
}

export function buildSequenceBatch(items: readonly PromptResponse[], padId: number): SequenceBatch {
  const length = Math.max(1, ...items.map((item) => item.prompt.length + item.response.length - 1));
  const batchSize = items.length;
  const inputs = new Int32Array(batchSize * length).fill(padId);
  const targets = new Int32Array(batchSize * length).fill(padId);
  const responseMask = new Float32Array(batchSize * length);
  const responseStart: number[] = [];
  items.forEach((item, b) => {
    const ids = [...item.prompt, ...item.response];
    for (let t = 0; t < ids.length - 1; t++) {
      inputs[b * length + t] = ids[t];
      targets[b * length + t] = ids[t + 1];
      if (t + 1 >= item.prompt.length) responseMask[b * length + t] = 1;
    }
    responseStart.push(item.prompt.length - 1);
  });
  return {
    batchSize,
    length,
    inputs,
    targets,
    responseMask,
    responseStart,
    responseLengths: items.map((item) => item.response.length),
  };
}

/** The batch as the engine takes it: its mask is the response mask. */
export function tokenBatchOf(batch: SequenceBatch): TokenBatch {
  const { batchSize, length, inputs, targets, responseMask } = batch;
  return { batchSize, length, inputs, targets, mask: responseMask };
}

/** Reads the response positions of a [B, T] array row by row: one list per sample, aligned with its response tokens. */
export function responseValues(values: Float32Array | number[], batch: SequenceBatch): number[][] {
  return Array.from({ length: batch.batchSize }, (_, b) => {
    const out: number[] = [];
    for (let i = 0; i < batch.responseLengths[b]; i++) out.push(values[b * batch.length + batch.responseStart[b] + i]);
    return out;
  });
}

/**
 * Sequences for a reward model: `[BOS, prompt…, completion…, EOS]` right-padded, with the length of
 * each (the score is read at its last token, as InstructGPT's reward model reads the final token).
 */
export function rewardInputs(
  items: readonly PromptResponse[],
  padId: number,
): { ids: Int32Array; batchSize: number; length: number; lengths: number[] } {
  const lengths = items.map((item) => item.prompt.length + item.response.length);
  const length = Math.max(...lengths);
  const ids = new Int32Array(items.length * length).fill(padId);
  items.forEach((item, b) => [...item.prompt, ...item.response].forEach((id, t) => (ids[b * length + t] = id)));
  return { ids, batchSize: items.length, length, lengths };
}

/**
 * The same batch right-padded to `length` positions (a fixed width keeps the model's attention-bias cache
 * to one shape).
 */
export function padTo(batch: SequenceBatch, length: number, padId: number): SequenceBatch {
  if (batch.length === length) return batch;
  const inputs = new Int32Array(batch.batchSize * length).fill(padId);
  const targets = new Int32Array(batch.batchSize * length).fill(padId);
  const responseMask = new Float32Array(batch.batchSize * length);
  for (let b = 0; b < batch.batchSize; b++) {
    const row = (from: Int32Array | Float32Array) => from.subarray(b * batch.length, (b + 1) * batch.length);
    inputs.set(row(batch.inputs), b * length);
    targets.set(row(batch.targets), b * length);
    responseMask.set(row(batch.responseMask), b * length);
  }
  return { ...batch, length, inputs, targets, responseMask };
}
