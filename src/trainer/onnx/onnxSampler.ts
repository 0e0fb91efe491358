/**
 * Sampling on onnxruntime-node, the twin of src/trainer/sampling/sampler.ts: the same left padding
 * (positions counted from each prompt's first real token, padding masked out of attention), the same
 * warpers and seeded draws (`sampleToken`), so with the same weights and seed it gives the same
 * tokens as the tfjs sampler. With a KV-cache graph each new token is one length-1 forward over the
 * cached keys and values; a graph without one (some users' exports) reruns the whole sequence.
 */
import { Random } from '../../core/random';
import { sampleToken, type SampledSequence, type SamplingOptions } from '../sampling/sampler';
import type { OnnxCausalLm, PastKeyValues } from './onnxCausalLm';

/** Continues each prompt (token ids, BOS included) with up to `max_new_tokens` tokens. */
export async function generateOnnx(
  model: OnnxCausalLm,
  prompts: readonly (readonly number[])[],
  options: SamplingOptions,
): Promise<SampledSequence[]> {
  const batch = prompts.length;
  const promptLength = Math.max(...prompts.map((p) => p.length));
  const budget = Math.min(options.max_new_tokens, model.info.maxPositions - promptLength);
  if (budget <= 0)
    throw new Error(`prompts of ${promptLength} tokens leave no room in the context of ${model.info.maxPositions}`);
  const random = new Random(options.seed);
  const vocab = model.info.vocabSize;

  // Rows of every token so far (left-padded), their key mask and positions.
  const rows: number[][] = [];
  const keyMask: number[][] = [];
  const positions: number[][] = [];
  for (const prompt of prompts) {
    const offset = promptLength - prompt.length;
    rows.push(
      Array.from({ length: promptLength }, (_, t) => (t >= offset ? prompt[t - offset] : options.pad_token_id)),
    );
    keyMask.push(Array.from({ length: promptLength }, (_, t) => (t >= offset ? 1 : 0)));
    positions.push(Array.from({ length: promptLength }, (_, t) => Math.max(0, t - offset)));
  }
  const nextPosition = prompts.map((prompt) => prompt.length);

  const results: SampledSequence[] = prompts.map(() => ({ tokens: [], logprobs: [], finishedByEos: false }));
  const finished = new Array<boolean>(batch).fill(false);
  // Logits of each row's last position: [B, V]
  const lastLogits = (logits: Float32Array, length: number) => {
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
    const next: number[] = [];
    for (let b = 0; b < batch; b++) {
      if (finished[b]) {
        next.push(options.pad_token_id);
        keyMask[b].push(0);
        continue;
      }
      const { token, logprob } = sampleToken(logits.subarray(b * vocab, (b + 1) * vocab), options, random);
      next.push(token);
      results[b].tokens.push(token);
      results[b].logprobs.push(logprob);
      keyMask[b].push(1);
      if (token === options.eos_token_id) {
        finished[b] = true;
        (results[b] as { finishedByEos: boolean }).finishedByEos = true;
      }
    }
    if (finished.every(Boolean) || i === budget - 1) break;
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
  return results;
}
