/**
 * Sampling from a GPT with a KV cache: the prompts run through the model once, then each new token
 * costs one length-1 forward that reuses the cached keys and values. Prompts of different lengths
 * are left-padded, with positions counted from each prompt's first real token and padding masked
 * out of attention, so a batch gives the same tokens as sampling each prompt alone.
 *
 * The next token is drawn in JavaScript from the last position's logits (temperature, then top-k,
 * then top-p / nucleus, as Hugging Face's logits warpers apply them) with a seeded generator, so
 * sampling is reproducible on every backend.
 */
import { Random } from '../../core/random';
import { tf, type Tensor } from '../engine/tfjs/tfRuntime';
import type { Gpt, KvCache } from '../engine/tfjs/gpt';

export interface SamplingOptions {
  /** 0 means greedy. */
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 keeps all. */
  readonly top_k: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 keeps all. */
  readonly top_p: number;
  readonly max_new_tokens: number;
  readonly seed: number;
  /** Stop a sequence after this token (it is kept in the output). */
  readonly eos_token_id?: number;
  readonly pad_token_id: number;
}

export interface SampledSequence {
  /** The new tokens, EOS included when it was sampled. */
  readonly tokens: number[];
  /** log p of each new token under the sampling distribution's model (before warping). */
  readonly logprobs: number[];
  readonly finishedByEos: boolean;
}

/** Turns logits into the warped distribution and draws one token; returns the token and its unwarped log-probability. */
export function sampleToken(
  logits: Float32Array,
  options: Pick<SamplingOptions, 'temperature' | 'top_k' | 'top_p'>,
  random: Random,
): { token: number; logprob: number } {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  let logSumExp = 0;
  for (let i = 0; i < n; i++) logSumExp += Math.exp(logits[i] - max);
  const logZ = max + Math.log(logSumExp);
  const logprobOf = (token: number) => logits[token] - logZ;

  if (options.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return { token: best, logprob: logprobOf(best) };
  }
  // Candidates sorted by logit, descending; top-k then top-p cut the tail.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  const k = options.top_k > 0 ? Math.min(options.top_k, n) : n;
  const scaled = order.slice(0, k).map((i) => Math.exp((logits[i] - max) / options.temperature));
  const total = scaled.reduce((a, b) => a + b, 0);
  let keep = scaled.length;
  if (options.top_p < 1) {
    let cumulative = 0;
    for (let i = 0; i < scaled.length; i++) {
      cumulative += scaled[i] / total;
      if (cumulative >= options.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = scaled.slice(0, keep);
  const keptTotal = kept.reduce((a, b) => a + b, 0);
  let draw = random.next() * keptTotal;
  for (let i = 0; i < kept.length; i++) {
    draw -= kept[i];
    if (draw <= 0) return { token: order[i], logprob: logprobOf(order[i]) };
  }
  return { token: order[kept.length - 1], logprob: logprobOf(order[kept.length - 1]) };
}

/** Continues each prompt (token ids, BOS included) with up to `max_new_tokens` tokens. */
export async function generate(
  model: Gpt,
  prompts: readonly (readonly number[])[],
  options: SamplingOptions,
): Promise<SampledSequence[]> {
  const batch = prompts.length;
  const promptLength = Math.max(...prompts.map((p) => p.length));
  const budget = Math.min(options.max_new_tokens, model.config.block_size - promptLength);
  if (budget <= 0)
    throw new Error(`prompts of ${promptLength} tokens leave no room in the context of ${model.config.block_size}`);
  const random = new Random(options.seed);
  const vocab = model.config.vocab_size;

  // Left-pad: [pad … pad, prompt]; key mask 1 on real tokens; positions count real tokens only.
  const ids = new Int32Array(batch * promptLength).fill(options.pad_token_id);
  const keyMask: number[][] = [];
  const positions = new Int32Array(batch * promptLength);
  const nextPosition: number[] = [];
  prompts.forEach((prompt, b) => {
    const offset = promptLength - prompt.length;
    keyMask.push(Array.from({ length: promptLength }, (_, t) => (t >= offset ? 1 : 0)));
    for (let t = 0; t < promptLength; t++) {
      if (t >= offset) ids[b * promptLength + t] = prompt[t - offset];
      positions[b * promptLength + t] = Math.max(0, t - offset);
    }
    nextPosition.push(prompt.length);
  });

  const results: SampledSequence[] = prompts.map(() => ({ tokens: [], logprobs: [], finishedByEos: false }));
  const finished = new Array<boolean>(batch).fill(false);
  let cache: KvCache = { layers: [], length: 0 };
  let step = forwardKeeping(() => {
    const out = model.forward(tf.tensor2d(ids, [batch, promptLength], 'int32'), {
      positions: tf.tensor2d(positions, [batch, promptLength], 'int32'),
      keyMask: tf.tensor2d(keyMask),
      cache,
    });
    return {
      logits: tf.slice(out.logits, [0, promptLength - 1, 0], [batch, 1, vocab]).reshape([batch, vocab]),
      cache: out.cache as KvCache,
    };
  });
  cache = step.cache;

  try {
    for (let i = 0; i < budget; i++) {
      const logits = (await step.logits.data()) as Float32Array;
      step.logits.dispose();
      const next = new Int32Array(batch);
      for (let b = 0; b < batch; b++) {
        if (finished[b]) {
          next[b] = options.pad_token_id;
          keyMask[b].push(0);
          continue;
        }
        const { token, logprob } = sampleToken(logits.subarray(b * vocab, (b + 1) * vocab), options, random);
        next[b] = token;
        results[b].tokens.push(token);
        results[b].logprobs.push(logprob);
        keyMask[b].push(1);
        if (token === options.eos_token_id) {
          finished[b] = true;
          (results[b] as { finishedByEos: boolean }).finishedByEos = true;
        }
      }
      if (finished.every(Boolean) || i === budget - 1) break;
      const previous = cache;
      step = forwardKeeping(() => {
        const out = model.forward(tf.tensor2d(next, [batch, 1], 'int32'), {
          positions: tf.tensor2d(
            nextPosition.map((p) => p + i),
            [batch, 1],
            'int32',
          ),
          keyMask: tf.tensor2d(keyMask),
          cache: previous,
        });
        return { logits: out.logits.reshape([batch, vocab]), cache: out.cache as KvCache };
      });
      disposeCache(previous);
      cache = step.cache;
    }
  } finally {
    disposeCache(cache);
  }
  return results;
}

/** tf.tidy for a step that returns logits and a KV cache (tidy's types take no nested interfaces). */
function forwardKeeping(step: () => { logits: Tensor; cache: KvCache }): { logits: Tensor; cache: KvCache } {
  let length = 0;
  const [logits, ...kv] = tf.tidy(() => {
    const out = step();
    length = out.cache.length;
    return [out.logits, ...out.cache.layers.flatMap((layer) => [layer.k, layer.v])];
  });
  const layers: { k: Tensor; v: Tensor }[] = [];
  for (let i = 0; i < kv.length; i += 2) layers.push({ k: kv[i], v: kv[i + 1] });
  return { logits, cache: { layers, length } };
}

function disposeCache(cache: KvCache): void {
  for (const layer of cache.layers) tf.dispose([layer.k, layer.v] as Tensor[]);
}
