// PPO's clip classes (src/core/clipClass.ts): every class on hand cases, the closed band, A = 0, NaN
// refused; clipFraction against core's ppoPolicyLoss and against the tensor loss the trainer runs
// (its clipfrac and its gradient: a token is `clipped` exactly where the gradient is zero).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ClipClass, classifyClip, clipFraction, ppoPolicyLoss, Random } from '../../src/core';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { tf, type Tensor } from '../../src/trainer/engine/tfjs/tfRuntime';
import { ppoPolicyLossTensor } from '../../src/trainer/engine/tfjs/losses';

const { inside, outsideKept, clipped } = ClipClass;

before(async () => {
  await selectBackend('wasm');
});

/** The next float64 above (or below) x, for ratios one rounding step past the band. */
function nextFloat(x: number, direction: 1 | -1): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(direction)); // x > 0: bits grow with the value
  return view.getFloat64(0);
}

describe('classifyClip', () => {
  test('the gradient is removed exactly when A > 0 and r > 1 + ε, or A < 0 and r < 1 − ε', () => {
    assert.equal(classifyClip(1.5, 1, 0.2), clipped);
    assert.equal(classifyClip(0.5, -1, 0.2), clipped);
    assert.equal(classifyClip(0.5, 1, 0.2), outsideKept, 'below the band, pushed up: kept');
    assert.equal(classifyClip(1.5, -1, 0.2), outsideKept, 'above the band, pushed down: kept');
    assert.equal(classifyClip(1.1, -3, 0.2), inside);
    assert.equal(classifyClip(0.9, 3, 0.2), inside);
  });

  test('the band is closed: r exactly 1 ± ε is inside, one float step past it is outside', () => {
    const epsilon = 0.25; // 1.25 and 0.75 are exact binary fractions
    for (const advantage of [2, -2]) {
      assert.equal(classifyClip(1.25, advantage, epsilon), inside);
      assert.equal(classifyClip(0.75, advantage, epsilon), inside);
    }
    assert.equal(classifyClip(nextFloat(1.25, 1), 2, epsilon), clipped);
    assert.equal(classifyClip(nextFloat(1.25, 1), -2, epsilon), outsideKept);
    assert.equal(classifyClip(nextFloat(0.75, -1), -2, epsilon), clipped);
    assert.equal(classifyClip(nextFloat(0.75, -1), 2, epsilon), outsideKept);
    // ε = 0.2 is not a binary fraction: the band's ends are whatever 1 ± 0.2 rounds to, on both sides.
    assert.equal(classifyClip(1 + 0.2, 1, 0.2), inside);
    assert.equal(classifyClip(1 - 0.2, -1, 0.2), inside);
  });

  test('A = 0 is never clipped: inside the band it is inside, outside it the (zero) gradient is not removed', () => {
    assert.equal(classifyClip(1, 0, 0.2), inside);
    assert.equal(classifyClip(3, 0, 0.2), outsideKept);
    assert.equal(classifyClip(0.1, 0, 0.2), outsideKept);
    assert.equal(classifyClip(3, -0, 0.2), outsideKept);
  });

  test('ε = 0 makes every moved token outside the band; an overflowed ratio (Infinity) is classified', () => {
    assert.equal(classifyClip(1, 5, 0), inside);
    assert.equal(classifyClip(1.001, 5, 0), clipped);
    assert.equal(classifyClip(0.999, 5, 0), outsideKept);
    assert.equal(classifyClip(Infinity, 1, 0.2), clipped);
    assert.equal(classifyClip(Infinity, -1, 0.2), outsideKept);
    assert.equal(classifyClip(0, -1, 0.2), clipped, 'a ratio that underflowed to 0');
  });

  test('a NaN ratio or advantage, or a bad ε, is refused with a message that names it', () => {
    assert.throws(() => classifyClip(Number.NaN, 1, 0.2), /classifyClip: the ratio is NaN/);
    assert.throws(() => classifyClip(1, Number.NaN, 0.2), /classifyClip: the advantage is NaN/);
    assert.throws(() => classifyClip(1, 1, Number.NaN), /cliprange \(ε\) must be a finite number ≥ 0, got NaN/);
    assert.throws(() => classifyClip(1, 1, -0.1), /cliprange \(ε\) must be a finite number ≥ 0, got -0.1/);
  });
});

describe('clipFraction', () => {
  test('counts clipped tokens over counted ones; padding is not classified, even when it is NaN', () => {
    const ratios = [
      [1.5, 0.5, 0.5, 1, Number.NaN],
      [0.7, 1.3],
    ];
    const advantages = [
      [1, 1, -2, 3, Number.NaN],
      [-1, -1],
    ];
    const mask = [
      [1, 1, 1, 1, 0],
      [1, 1],
    ];
    // clipped: (1.5, +1), (0.5, −2), (0.7, −1); counted: 6
    assert.equal(clipFraction(ratios, advantages, mask, 0.2), 3 / 6);
    assert.equal(clipFraction([[1.5, 1.5]], [[1, -1]], [[2, 1]], 0.2), 2 / 3, 'mask entries weight tokens');
    assert.ok(Number.isNaN(clipFraction([[1.5]], [[1]], [[0]], 0.2)), 'no counted token: NaN, as masked_mean');
    assert.throws(() => clipFraction([[1]], [[1, 2]], [[1]], 0.2), /advantages\[0\] has 2 entries/);
    assert.throws(() => clipFraction([[Number.NaN]], [[1]], [[1]], 0.2), /the ratio is NaN/);
  });

  test('equals the clipFrac of core’s ppoPolicyLoss (TRL’s pg_losses2 > pg_losses) on random batches', () => {
    const random = new Random(14);
    for (let trial = 0; trial < 20; trial++) {
      const epsilon = [0.1, 0.2, 0.3][trial % 3];
      const rows = Array.from({ length: 6 }, (_, b) => 3 + ((b + trial) % 7));
      const newLogprobs = rows.map((n) => Array.from({ length: n }, () => -1 + 0.3 * random.normal()));
      const oldLogprobs = rows.map((n) => Array.from({ length: n }, () => -1 + 0.3 * random.normal()));
      const advantages = rows.map((n) => Array.from({ length: n }, (_, t) => (t % 5 === 4 ? 0 : random.normal())));
      const mask = rows.map((n, b) => Array.from({ length: n }, (_, t) => (t < n - (b % 3) ? 1 : 0)));
      const ratios = newLogprobs.map((row, b) => row.map((logp, t) => Math.exp(logp - oldLogprobs[b][t])));
      const fraction = clipFraction(ratios, advantages, mask, epsilon);
      assert.equal(fraction, ppoPolicyLoss(newLogprobs, oldLogprobs, advantages, mask, epsilon).clipFrac);
      assert.ok(fraction > 0 && fraction < 1, `trial ${trial} clips some tokens and not others (${fraction})`);
    }
  });
});

describe('the tensor loss the trainer runs', () => {
  /** A float32 batch whose ratios cluster around both ends of the band, with A = 0 and padding mixed in. */
  function batch(random: Random, epsilon: number, rows: number, width: number) {
    const size = rows * width;
    const oldLogprobs = Float32Array.from({ length: size }, () => -2 + 0.5 * random.normal());
    const logRatio = Float32Array.from({ length: size }, (_, i) => {
      const end = i % 3 === 0 ? 1 + epsilon : i % 3 === 1 ? 1 - epsilon : 1;
      return Math.log(end + 0.02 * random.normal());
    });
    const newLogprobs = Float32Array.from(oldLogprobs, (old, i) => old + logRatio[i]);
    const advantages = Float32Array.from({ length: size }, (_, i) => (i % 11 === 5 ? 0 : random.normal()));
    const mask = Float32Array.from({ length: size }, (_, i) =>
      i % width < width - (Math.floor(i / width) % 4) ? 1 : 0,
    );
    return { oldLogprobs, newLogprobs, advantages, mask };
  }
  const rowsOf = (flat: Float32Array, width: number) =>
    Array.from({ length: flat.length / width }, (_, b) => flat.subarray(b * width, (b + 1) * width));

  test('clipFraction of the loss’s own ratios equals its clipfrac (float32, as logged) on random batches', () => {
    const random = new Random(2026);
    const rows = 16;
    const width = 24;
    for (let trial = 0; trial < 12; trial++) {
      const epsilon = [0.2, 0.1, 0.3][trial % 3];
      const data = batch(random, epsilon, rows, width);
      const { clipFrac, ratio } = tf.tidy(() => {
        const t = (values: Float32Array) => tf.tensor2d(values, [rows, width]);
        const loss = ppoPolicyLossTensor(
          t(data.newLogprobs),
          t(data.oldLogprobs),
          t(data.advantages),
          t(data.mask),
          epsilon,
        );
        return { clipFrac: loss.clipFrac.dataSync()[0], ratio: loss.ratio.dataSync() as Float32Array };
      });
      const fraction = clipFraction(
        rowsOf(ratio, width),
        rowsOf(data.advantages, width),
        rowsOf(data.mask, width),
        epsilon,
      );
      assert.equal(Math.fround(fraction), clipFrac, `trial ${trial}, ε = ${epsilon}`);
      assert.ok(fraction > 0.1 && fraction < 0.5, `trial ${trial} exercises both ends of the band (${fraction})`);
    }
  });

  test('a counted token with A ≠ 0 has a zero policy gradient exactly when it is classified `clipped`', () => {
    const random = new Random(7);
    const rows = 8;
    const width = 20;
    const epsilon = 0.2;
    const data = batch(random, epsilon, rows, width);
    const { gradient, ratio } = tf.tidy(() => {
      const t = (values: Float32Array) => tf.tensor2d(values, [rows, width]);
      const oldLogprobs = t(data.oldLogprobs);
      const advantages = t(data.advantages);
      const mask = t(data.mask);
      const lossOf = (newLogprobs: Tensor) =>
        ppoPolicyLossTensor(newLogprobs, oldLogprobs, advantages, mask, epsilon).loss;
      const newLogprobs = t(data.newLogprobs);
      return {
        gradient: tf.grad(lossOf)(newLogprobs).dataSync() as Float32Array,
        ratio: ppoPolicyLossTensor(
          newLogprobs,
          oldLogprobs,
          advantages,
          mask,
          epsilon,
        ).ratio.dataSync() as Float32Array,
      };
    });
    const seen = new Set<ClipClass>();
    for (let i = 0; i < ratio.length; i++) {
      if (data.mask[i] === 0 || data.advantages[i] === 0) continue;
      const cls = classifyClip(ratio[i], data.advantages[i], epsilon);
      seen.add(cls);
      assert.equal(gradient[i] === 0, cls === clipped, `token ${i}: r ${ratio[i]}, A ${data.advantages[i]}`);
    }
    assert.deepEqual([...seen].sort(), [inside, outsideKept, clipped]);
  });
});
