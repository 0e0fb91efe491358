/**
 * Sampling on onnxruntime-node, the twin of src/trainer/sampling/sampler.ts: the same left padding
 * (positions counted from each prompt's first real token, padding masked out of attention), the same
 * warpers and seeded draws (`sampleToken`), so with the same weights and seed it gives the same
 * tokens as the tfjs sampler. With a KV-cache graph each new token is one length-1 forward over the
 * cached keys and values; a graph without one (some users' exports) reruns the whole sequence.
 */
import { Random } from '../../core/random';
import {
  Continuations,
  leftPadPrompts,
  newTokenBudget,
  type SampledSequence,
  type SamplingOptions,
} from '../sampling/sampler';
import type { OnnxCausalLm, PastKeyValues } from './onnxCausalLm';

/** Continues each prompt (token ids, BOS included) with up to `maxNewTokens` tokens. */
export async function generateOnnx(
  model: OnnxCausalLm,
  prompts: readonly (readonly number[])[],
  options: SamplingOptions,
): Promise<SampledSequence[]> {
  const batch = prompts.length;
  // Rows of every token so far (left-padded), their key mask and positions.
  const { promptLength, ids: rows, keyMask, positions, nextPosition } = leftPadPrompts(prompts, options.padTokenId);
  const budget = newTokenBudget(promptLength, options.maxNewTokens, model.info.maxPositions);
  const vocab = model.info.vocabSize;
  const continuations = new Continuations(batch, keyMask, options, new Random(options.seed));
  // Logits of each row's last position: [B, V]
  const lastLogits = (logits: Float32Array, length: number) => {
    if (length === 1) return logits; // a cached step's logits are [B, 1, V]: already each row's last position
    const out = new Float32Array(batch * vocab);
    for (let b = 0; b < batch; b++)
      out.set(logits.subarray((b * length + length - 1) * vocab, (b * length + length) * vocab), b * vocab);
    return out;
  };

  let past: PastKeyValues | undefined;
  let out = await model.forward({
    batch,
    length: promptLength,
    ids: rows.flat(),
    attentionMask: keyMask.flat(),
    positions: positions.flat(),
  });
  past = out.present;
  let logits = lastLogits(out.logits, promptLength);
  for (let i = 0; i < budget; i++) {
    const next = continuations.draw(logits, vocab);
    if (continuations.allFinished || i === budget - 1) break;
    const stepPositions = nextPosition.map((p) => p + i);
    if (past) {
      out = await model.forward({
        batch,
        length: 1,
        ids: next,
        attentionMask: keyMask.flat(),
        positions: stepPositions,
        past,
      });
      past = out.present;
      logits = lastLogits(out.logits, 1);
    } else {
      next.forEach((token, b) => {
        rows[b].push(token);
        positions[b].push(stepPositions[b]);
      });
      const length = rows[0].length;
      out = await model.forward({
        batch,
        length,
        ids: rows.flat(),
        attentionMask: keyMask.flat(),
        positions: positions.flat(),
      });
      logits = lastLogits(out.logits, length);
    }
  }
  return continuations.sequences;
}
