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
import type { SampledSequence, SamplingOptions } from '../engine/engine';
import type { SamplableModel } from '../engine/tfjs/causalLm';
import type { KvCache } from '../engine/tfjs/gpt';

// The sampling settings and results are the engine seam's (every engine samples to that contract).
export type { SampledSequence, SamplingOptions } from '../engine/engine';

/** Whether the options warp the distribution beyond temperature (top-k or top-p on). */
function truncates(options: Pick<SamplingOptions, 'topK' | 'topP'>, vocab: number): boolean {
  return (options.topK > 0 && options.topK < vocab) || options.topP < 1;
}

/**
 * Scratch for the unnormalised weights exp((zᵢ − max z) / T) of one draw. Sampling is synchronous and single-threaded,
 * so one buffer, grown to the largest vocabulary seen, serves every call without allocating per token.
 */
let weightScratch = new Float64Array(0);

function scratchWeights(vocab: number): Float64Array {
  if (weightScratch.length < vocab) weightScratch = new Float64Array(vocab);
  return weightScratch;
}

/**
 * Turns logits into the warped distribution and draws one token; returns the token and its unwarped log-probability,
 * log softmax(z)ᵢ = zᵢ − (max z + log Σⱼ exp(zⱼ − max z)) (shifted by the max so no exp overflows).
 *
 * With top-k and top-p off this is one pass for the max, one for the weights wᵢ = exp((zᵢ − max z) / T) and their
 * total W, one uniform u from `random`, and a scan for the first i with w₀ + … + wᵢ > u·W: P(i) = wᵢ / W =
 * softmax(z / T)ᵢ, with no sort of the vocabulary. Top-k / top-p sort the candidates first.
 */
export function sampleToken(
  logits: Float32Array,
  options: Pick<SamplingOptions, 'temperature' | 'topK' | 'topP'>,
  random: Random,
): { token: number; logprob: number } {
  const n = logits.length;
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < n; i++) {
    if (logits[i] > max) {
      max = logits[i];
      argmax = i;
    }
  }
  if (options.temperature <= 0) return { token: argmax, logprob: logits[argmax] - logNormaliser(logits, max) };
  if (truncates(options, n)) return sampleTruncated(logits, max, options, random);

  const inverseTemperature = 1 / options.temperature;
  const weights = scratchWeights(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const weight = Math.exp((logits[i] - max) * inverseTemperature);
    weights[i] = weight;
    total += weight;
  }
  // At T = 1 the weights are exp(zᵢ − max z) already, so their total gives the normaliser without a second pass.
  const logZ = options.temperature === 1 ? max + Math.log(total) : logNormaliser(logits, max);
  const draw = random.next() * total;
  let cumulative = 0;
  let lastDrawable = argmax;
  for (let i = 0; i < n; i++) {
    if (weights[i] === 0) continue;
    cumulative += weights[i];
    lastDrawable = i;
    if (draw < cumulative) return { token: i, logprob: logits[i] - logZ };
  }
  // Unreachable in exact arithmetic (u < 1); kept so rounding can never return a token of weight 0.
  return { token: lastDrawable, logprob: logits[lastDrawable] - logZ };
}

/** log Σᵢ exp(zᵢ), as max z + log Σᵢ exp(zᵢ − max z). */
function logNormaliser(logits: Float32Array, max: number): number {
  let sumExp = 0;
  for (let i = 0; i < logits.length; i++) sumExp += Math.exp(logits[i] - max);
  return max + Math.log(sumExp);
}

/** Top-k then top-p (Hugging Face's order, after the temperature): candidates sorted by logit, the tail cut. */
function sampleTruncated(
  logits: Float32Array,
  max: number,
  options: Pick<SamplingOptions, 'temperature' | 'topK' | 'topP'>,
  random: Random,
): { token: number; logprob: number } {
  const n = logits.length;
  const logZ = logNormaliser(logits, max);
  const logprobOf = (token: number) => logits[token] - logZ;
  // Candidates by logit, descending (ties: lower index first, as a stable sort leaves them); top-k then top-p cut
  // the tail. Top-k selects its k first, so only those are sorted.
  const k = options.topK > 0 ? Math.min(options.topK, n) : n;
  const order = k < n ? topIndices(logits, k) : Array.from({ length: n }, (_, i) => i).sort(byLogitDescending(logits));
  const scaled = order.map((i) => Math.exp((logits[i] - max) / options.temperature));
  const total = scaled.reduce((a, b) => a + b, 0);
  let keep = scaled.length;
  if (options.topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < scaled.length; i++) {
      cumulative += scaled[i] / total;
      if (cumulative >= options.topP) {
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

/** Descending logit, then ascending index: the order a stable sort by descending logit gives. */
function byLogitDescending(logits: Float32Array): (a: number, b: number) => number {
  return (a, b) => logits[b] - logits[a] || a - b;
}

/**
 * The k tokens first in `byLogitDescending` order, in that order: a min-heap of the k best so far (its root the
 * last of them), O(n log k), then a sort of those k — the same list as sorting all n and keeping k.
 */
function topIndices(logits: Float32Array, k: number): number[] {
  const ranksAfter = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const heap: number[] = [];
  const siftDown = (start: number) => {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let last = i;
      if (left < heap.length && ranksAfter(heap[left], heap[last])) last = left;
      if (right < heap.length && ranksAfter(heap[right], heap[last])) last = right;
      if (last === i) return;
      [heap[i], heap[last]] = [heap[last], heap[i]];
      i = last;
    }
  };
  for (let token = 0; token < logits.length; token++) {
    if (heap.length < k) {
      heap.push(token);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!ranksAfter(heap[i], heap[parent])) break;
        [heap[i], heap[parent]] = [heap[parent], heap[i]];
        i = parent;
      }
    } else if (ranksAfter(heap[0], token)) {
      heap[0] = token;
      siftDown(0);
    }
  }
  return heap.sort(byLogitDescending(logits));
}

/**
 * Prompts of different lengths as one left-padded block, `[pad … pad, prompt]`, as both samplers lay
 * them out: the key mask is 1 on real tokens, positions count real tokens only (each prompt starts at
 * 0), so a batch gives the same tokens as sampling each prompt alone.
 */
export interface LeftPaddedPrompts {
  /** The longest prompt's length: every row's. */
  readonly promptLength: number;
  /** `[batch][promptLength]` token ids. */
  readonly ids: number[][];
  /** `[batch][promptLength]`, then one more entry per sampled token (0 once the row has finished). */
  readonly keyMask: number[][];
  /** `[batch][promptLength]` position ids. */
  readonly positions: number[][];
  /** Each prompt's length: the position of its first new token. */
  readonly nextPosition: number[];
}

export function leftPadPrompts(prompts: readonly (readonly number[])[], padTokenId: number): LeftPaddedPrompts {
  const promptLength = Math.max(...prompts.map((p) => p.length));
  const layout: LeftPaddedPrompts = { promptLength, ids: [], keyMask: [], positions: [], nextPosition: [] };
  for (const prompt of prompts) {
    const offset = promptLength - prompt.length;
    layout.ids.push(Array.from({ length: promptLength }, (_, t) => (t >= offset ? prompt[t - offset] : padTokenId)));
    layout.keyMask.push(Array.from({ length: promptLength }, (_, t) => (t >= offset ? 1 : 0)));
    layout.positions.push(Array.from({ length: promptLength }, (_, t) => Math.max(0, t - offset)));
    layout.nextPosition.push(prompt.length);
  }
  return layout;
}

/** How many tokens to sample: `maxNewTokens`, or fewer where the context ends first. Throws when none fit. */
export function newTokenBudget(promptLength: number, maxNewTokens: number, contextLength: number): number {
  const budget = Math.min(maxNewTokens, contextLength - promptLength);
  if (budget <= 0)
    throw new Error(`prompts of ${promptLength} tokens leave no room in the context of ${contextLength}`);
  return budget;
}

/**
 * The sequences being sampled, one per prompt, and which of them have ended with EOS. Each draw adds
 * a column to the layout's `keyMask` (shared, not copied: the next forward reads it).
 */
export class Continuations {
  readonly sequences: { tokens: number[]; logprobs: number[]; finishedByEos: boolean }[];

  constructor(
    batch: number,
    private readonly keyMask: number[][],
    private readonly options: SamplingOptions,
    private readonly random: Random,
  ) {
    this.sequences = Array.from({ length: batch }, () => ({ tokens: [], logprobs: [], finishedByEos: false }));
  }

  /**
   * One decoding step: draws each unfinished row's next token from its logits (`[batch, vocab]`, the
   * rows in order, so the random stream is the same on every engine) and extends the key mask; a
   * finished row gets padding, masked out. Returns the tokens to feed to the next forward.
   */
  draw(logits: Float32Array, vocab: number): number[] {
    return this.sequences.map((sequence, b) => {
      if (sequence.finishedByEos) {
        this.keyMask[b].push(0);
        return this.options.padTokenId;
      }
      const { token, logprob } = sampleToken(logits.subarray(b * vocab, (b + 1) * vocab), this.options, this.random);
      sequence.tokens.push(token);
      sequence.logprobs.push(logprob);
      this.keyMask[b].push(1);
      if (token === this.options.eosTokenId) sequence.finishedByEos = true;
      return token;
    });
  }

  get allFinished(): boolean {
    return this.sequences.every((sequence) => sequence.finishedByEos);
  }
}

/** Continues each prompt (token ids, BOS included) with up to `maxNewTokens` tokens. */
export async function generate(
  model: SamplableModel,
  prompts: readonly (readonly number[])[],
  options: SamplingOptions,
): Promise<SampledSequence[]> {
  const batch = prompts.length;
  const layout = leftPadPrompts(prompts, options.padTokenId);
  const { promptLength, keyMask, nextPosition } = layout;
  const budget = newTokenBudget(promptLength, options.maxNewTokens, model.config.block_size);
  const vocab = model.config.vocab_size;
  const continuations = new Continuations(batch, keyMask, options, new Random(options.seed));

  let cache: KvCache = { layers: [], length: 0 };
  let step = forwardKeeping(() => {
    const out = model.forward(tf.tensor2d(layout.ids.flat(), [batch, promptLength], 'int32'), {
      positions: tf.tensor2d(layout.positions.flat(), [batch, promptLength], 'int32'),
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
      const next = continuations.draw(logits, vocab);
      if (continuations.allFinished || i === budget - 1) break;
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
  return continuations.sequences;
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
