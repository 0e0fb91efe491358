/**
 * Full-sequence passes on onnxruntime-node, the twins of the tfjs engine's passes (engine/tfjs/tfjsEngine.ts):
 * per-position log-probabilities of the next token (at the sampling temperature), entropies and
 * scalar heads over a right-padded SequenceBatch, and a reward model's score of each sequence read at
 * its last token or summed over its tokens, as Gpt.score pools it. test/unit/onnxRollout.test.ts checks each against
 * tfjs.
 */
import { rewardInputs, type PromptResponse, type SequenceBatch } from '../data/sequences';
import type { OnnxCausalLm } from './onnxCausalLm';

export interface SequenceStats {
  /** [B, T]: log p(target) at the temperature. */
  readonly logprobs: Float32Array;
  /** [B, T]: entropy of the tempered next-token distribution (zeros when not asked for). */
  readonly entropy: Float32Array;
  /** [B, T] per scalar output of the model ('values', 'scores'). */
  readonly scalars: Record<string, Float32Array>;
}

/**
 * log-softmax of `logits / temperature` per position, then the target's log-probability and the
 * entropy −Σ p log p. One exp per logit: with z = logits/T, m = max z, e_v = exp(z_v − m), S = Σ e_v,
 * log Z = m + log S and H = −Σ p_v (z_v − log Z) = log Z − Σ e_v z_v / S. This JavaScript loop is a
 * third of a rollout's scoring time at vocab 300 (onnxruntime-node runs on the main thread too), so it
 * reads each row twice, not four times, and only at the positions `needed` marks (a rollout reads the response's;
 * the others stay 0). Without `withEntropy` (the reference) the entropy stays 0.
 */
export function logprobsAndEntropy(
  logits: Float32Array,
  targets: ArrayLike<number>,
  vocab: number,
  temperature: number,
  withEntropy = true,
  needed?: Float32Array,
): { logprobs: Float32Array; entropy: Float32Array } {
  const positions = targets.length;
  const logprobs = new Float32Array(positions);
  const entropy = new Float32Array(positions);
  const scale = temperature > 0 ? 1 / temperature : 1;
  for (let i = 0; i < positions; i++) {
    if (needed !== undefined && needed[i] === 0) continue;
    const offset = i * vocab;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) {
      const z = logits[offset + v] * scale;
      if (z > max) max = z;
    }
    let sum = 0;
    let weighted = 0;
    for (let v = 0; v < vocab; v++) {
      const z = logits[offset + v] * scale;
      const e = Math.exp(z - max);
      sum += e;
      weighted += e * z;
    }
    const logZ = max + Math.log(sum);
    logprobs[i] = logits[offset + targets[i]] * scale - logZ;
    if (withEntropy) entropy[i] = logZ - weighted / sum;
  }
  return { logprobs, entropy };
}

/**
 * Log-probabilities, entropies and scalar heads of a batch of prompt + response sequences, at its response positions
 * (`batch.responseMask`; elsewhere 0, as `responseValues` never reads them).
 */
export async function sequenceStatsOnnx(
  model: OnnxCausalLm,
  batch: SequenceBatch,
  temperature: number,
  withEntropy = true,
): Promise<SequenceStats> {
  const out = await model.forward({ batch: batch.batchSize, length: batch.length, ids: batch.inputs });
  const vocab = model.info.vocabSize;
  return {
    ...logprobsAndEntropy(out.logits, batch.targets, vocab, temperature, withEntropy, batch.responseMask),
    scalars: out.scalars,
  };
}

/** The reward model's score of each prompt + response, pooled as the model was trained: [B]. */
export async function rewardScoresOnnx(
  model: OnnxCausalLm,
  items: readonly PromptResponse[],
  padId: number,
): Promise<number[]> {
  if (!model.info.scalarOutputs.includes('scores'))
    throw new Error('this ONNX model has no "scores" output: export a reward model (a checkpoint with a score head).');
  const input = rewardInputs(items, padId);
  const out = await model.forward({ batch: input.batchSize, length: input.length, ids: input.ids });
  const perPosition = out.scalars.scores; // [B, T] = w·h_t + b
  if (model.info.scorePooling === 'last') return input.lengths.map((n, b) => perPosition[b * input.length + n - 1]);
  // 'sum': Σ_{t<n} (w·h_t + b) − (n − 1)·b, the bias once (Gpt.score)
  return input.lengths.map((n, b) => {
    let total = 0;
    for (let t = 0; t < n; t++) total += perPosition[b * input.length + t];
    return total - (n - 1) * model.info.scoreBias;
  });
}
