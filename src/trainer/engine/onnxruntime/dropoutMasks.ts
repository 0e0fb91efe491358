/**
 * Dropout masks for the ONNX training graphs, drawn exactly as the tfjs engine draws them, so both
 * engines drop the same units for the same seed. tfjs's `tf.dropout(x, rate, undefined, seed)` is
 *   x · floor(u + keep) / keep,   u ~ U[0, 1) from seedrandom's Alea seeded with String(seed),
 * every step in float32; the seed of the k-th dropout of a forward is `seeds.dropoutMask(seed, k)`, and
 * gpt.ts drops out, in this order: the embeddings, then per layer the attention probabilities, the
 * attention's output projection and the MLP's output.
 */
import type { GptConfig } from '../../model/gptConfig';
import { seeds } from '../../seeds';
import type { BatchShape } from './gptGraph';

const TWO_TO_MINUS_32 = 2.3283064365386963e-10;
const TWO_TO_32 = 0x100000000;

/** Baagøe's Mash, as seedrandom's alea.js has it (its state carries over between calls). */
function mash(): (data: string) => number {
  let n = 0xefc8249d;
  return (data) => {
    for (let i = 0; i < data.length; i++) {
      n += data.charCodeAt(i);
      let h = 0.02519603282416938 * n;
      n = h >>> 0;
      h -= n;
      h *= n;
      n = h >>> 0;
      h -= n;
      n += h * TWO_TO_32;
    }
    return (n >>> 0) * TWO_TO_MINUS_32;
  };
}

/** seedrandom's Alea generator: uniform numbers in [0, 1), the stream tfjs's randomUniform reads. */
export function alea(seed: string): () => number {
  const hash = mash();
  let [s0, s1, s2] = [hash(' '), hash(' '), hash(' ')];
  let c = 1;
  s0 -= hash(seed);
  if (s0 < 0) s0 += 1;
  s1 -= hash(seed);
  if (s1 < 0) s1 += 1;
  s2 -= hash(seed);
  if (s2 < 0) s2 += 1;
  return () => {
    const t = 2091639 * s0 + c * TWO_TO_MINUS_32;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    return s2;
  };
}

/** tf.dropout's multiplier: floor(u + keep) / keep in float32, 0 or 1/keep per element. */
export function dropoutMultiplier(size: number, rate: number, seed: number): Float32Array {
  const keep = Math.fround(1 - rate);
  const random = alea(String(seed));
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.fround(Math.floor(Math.fround(Math.fround(random()) + keep)) / keep);
  return out;
}

/** The shapes of a forward's dropout sites, in gpt.ts's order. */
export function dropoutSiteShapes(config: GptConfig, shape: BatchShape): number[][] {
  const { batchSize: b, length: t } = shape;
  const hidden = [b, t, config.n_embd];
  const sites = [hidden];
  for (let l = 0; l < config.n_layer; l++) sites.push([b, config.n_head, t, t], hidden, hidden);
  return sites;
}

export const dropoutMaskInput = (site: number) => `dropout_mask.${site}`;

/** The masks of one forward whose dropout seed is `forwardSeed`, by graph input name. */
export function dropoutMasks(
  config: GptConfig,
  shape: BatchShape,
  forwardSeed: number,
): Map<string, { shape: number[]; data: Float32Array }> {
  const masks = new Map<string, { shape: number[]; data: Float32Array }>();
  dropoutSiteShapes(config, shape).forEach((siteShape, site) => {
    const size = siteShape.reduce((a, d) => a * d, 1);
    const data = dropoutMultiplier(size, config.dropout, seeds.dropoutMask(forwardSeed, site));
    masks.set(dropoutMaskInput(site), { shape: siteShape, data });
  });
  return masks;
}
