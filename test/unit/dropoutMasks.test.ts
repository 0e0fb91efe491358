/**
 * The engine-neutral dropout masks (src/trainer/model/dropoutMasks.ts): inverted dropout's multipliers
 * drawn from core/random.ts, one mask per site in forward order, reproducible from the seed, different
 * per site and per forward, none at rate 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random, scrambleSeed } from '../../src/core/random';
import {
  drawDropoutMasks,
  drawLoraDropoutMasks,
  dropoutMultipliers,
  dropoutSiteShapes,
  modelDropoutSiteCount,
} from '../../src/trainer/model/dropoutMasks';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { seeds } from '../../src/trainer/seeds';

const config: GptConfig = { vocab_size: 40, block_size: 64, n_layer: 2, n_head: 4, n_embd: 32, dropout: 0.3 };
const shape = { batchSize: 8, length: 64 };
/** A binomial count's allowed distance from its mean, in standard deviations (two-sided ≈ 6·10⁻⁷). */
const BINOMIAL_SIGMAS = 5;

const countKept = (mask: Float32Array) => mask.reduce((n, m) => n + Number(m !== 0), 0);

/** |observed − expected| ≤ 5σ for a Binomial(n, q) count. */
function assertBinomial(count: number, n: number, q: number, what: string) {
  const bound = BINOMIAL_SIGMAS * Math.sqrt(n * q * (1 - q));
  assert.ok(Math.abs(count - n * q) <= bound, `${what}: ${count} of ${n}, expected ${n * q} ± ${bound.toFixed(0)}`);
}

test('dropout multipliers keep a fraction 1 − p, scaled by 1/(1 − p), and drop the rest to 0', () => {
  const size = 200_000;
  for (const rate of [0.1, 0.3, 0.5]) {
    const mask = dropoutMultipliers(size, rate, new Random(17));
    const kept = Math.fround(1 / (1 - rate));
    assert.ok(
      mask.every((m) => m === 0 || m === kept),
      `rate ${rate}: only 0 and ${kept}`,
    );
    assertBinomial(countKept(mask), size, 1 - rate, `rate ${rate} kept`);
  }
  assert.ok(dropoutMultipliers(1000, 0, new Random(1)).every((m) => m === 1));
  assert.throws(() => dropoutMultipliers(10, 1, new Random(1)), /\[0, 1\)/);
});

test('a forward’s masks have its dropout sites’ shapes, in forward order', () => {
  const masks = drawDropoutMasks(config, shape, 5);
  const hidden = [8, 64, 32];
  const attention = [8, 4, 64, 64];
  const expected = [hidden, attention, hidden, hidden, attention, hidden, hidden];
  assert.deepEqual(dropoutSiteShapes(config, shape), expected);
  assert.deepEqual(
    masks.map((mask) => mask.shape),
    expected,
  );
  masks.forEach((mask, site) =>
    assert.equal(
      mask.data.length,
      expected[site].reduce((a, d) => a * d, 1),
    ),
  );
  const all = masks.reduce((n, mask) => n + mask.data.length, 0);
  assertBinomial(
    masks.reduce((n, mask) => n + countKept(mask.data), 0),
    all,
    1 - config.dropout,
    'kept over the forward',
  );
});

test('the same seed draws the same masks; another site or forward seed draws independent ones', () => {
  const first = drawDropoutMasks(config, shape, 41);
  assert.deepEqual(drawDropoutMasks(config, shape, 41), first);
  const keep = 1 - config.dropout;
  // Two independent masks agree (both kept or both dropped) at a rate q² + (1 − q)²; equal or shifted
  // copies, or correlated streams, would not.
  const agreementRate = keep * keep + (1 - keep) * (1 - keep);
  const assertIndependent = (a: Float32Array, b: Float32Array, what: string) => {
    assert.notDeepEqual(a, b, what);
    const agreeing = a.reduce((n, m, i) => n + Number((m === 0) === (b[i] === 0)), 0);
    assertBinomial(agreeing, a.length, agreementRate, `${what} agreement`);
  };
  assertIndependent(first[0].data, first[2].data, 'sites 0 and 2');
  assertIndependent(first[2].data, first[3].data, 'sites 2 and 3');
  assertIndependent(first[1].data, first[4].data, 'sites 1 and 4');
  const next = drawDropoutMasks(config, shape, 42);
  first.forEach((mask, site) => assertIndependent(mask.data, next[site].data, `forward seeds 41 and 42, site ${site}`));
});

test('no masks are drawn at dropout 0', () => {
  assert.deepEqual(drawDropoutMasks({ ...config, dropout: 0 }, shape, 41), []);
});

test('mask seeds: distinct per (forward, call), exact for forward seeds beyond 2⁵³ / 1000', () => {
  const maskSeeds = new Set<number>();
  for (let forward = 0; forward < 200; forward++)
    for (let call = 0; call < 13; call++) maskSeeds.add(seeds.dropoutMask(forward, call));
  assert.equal(maskSeeds.size, 200 * 13);
  // A large run seed's forward seed (seed · 7919 + step) is exact in a double; ·1000 would not be.
  const large = seeds.sftDropout(2 ** 31 - 1, 12);
  assert.notEqual(seeds.dropoutMask(large, 0), seeds.dropoutMask(large, 1));
  assert.notEqual(seeds.dropoutMask(large, 0), seeds.dropoutMask(large + 1, 0));
});

test('scrambleSeed is a bijection on 32-bit seeds that spreads neighbours apart', () => {
  const images = new Set<number>();
  for (let seed = 0; seed < 1 << 16; seed++) images.add(scrambleSeed(seed));
  assert.equal(images.size, 1 << 16);
  assert.equal(scrambleSeed(2 ** 32 + 7), scrambleSeed(7));
  for (const value of images) assert.ok(Number.isInteger(value) && value >= 0 && value < 2 ** 32);
  // Neighbouring seeds differ in about half their 32 bits.
  let differingBits = 0;
  for (let seed = 0; seed < 1000; seed++) {
    let x = (scrambleSeed(seed) ^ scrambleSeed(seed + 1)) >>> 0;
    for (; x !== 0; x &= x - 1) differingBits++;
  }
  assertBinomial(differingBits, 1000 * 32, 0.5, 'differing bits of neighbours');
});

test("LoRA's dropout sites follow the model's own: one per target in target order", () => {
  const targets = [
    { module: 'transformer.h.0.attn.c_attn', inFeatures: 32 },
    { module: 'transformer.h.1.attn.c_attn', inFeatures: 32 },
  ];
  const small = { batchSize: 2, length: 5 };
  const gptSites = dropoutSiteShapes(config, small).length;
  assert.equal(modelDropoutSiteCount(config, small), gptSites);
  assert.equal(modelDropoutSiteCount({ ...config, dropout: 0 }, small), 0);
  for (const [model, first] of [
    [config, gptSites],
    [{ ...config, dropout: 0 }, 0],
  ] as const) {
    const masks = drawLoraDropoutMasks(model, targets, 0.25, small, 41);
    assert.deepEqual(
      [...masks.keys()],
      targets.map((target) => target.module),
    );
    targets.forEach((target, i) => {
      const size = small.batchSize * small.length * target.inFeatures;
      const expected = dropoutMultipliers(size, 0.25, new Random(seeds.dropoutMask(41, first + i)));
      const mask = masks.get(target.module);
      assert.deepEqual(mask?.shape, [small.batchSize, small.length, target.inFeatures]);
      assert.deepEqual(mask?.data, expected, `site ${first + i}`);
    });
  }
  assert.equal(drawLoraDropoutMasks(config, targets, 0, small, 41).size, 0);
});
