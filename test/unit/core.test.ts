// The pure RLHF math of src/core/: each function on small cases computed by hand (the arithmetic
// is in the comments), its edge cases, a few properties, and the built dist/core.js bundle.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import {
  Random,
  bradleyTerryLoss,
  dpoLoss,
  gae,
  klEstimators,
  klPerToken,
  logSigmoid,
  maskedMean,
  maskedVar,
  maskedWhiten,
  mean,
  ppoPolicyLoss,
  ppoValueLoss,
  rankingToPairs,
  sigmoid,
  softplus,
  std,
  sum,
} from '../../src/core';
import type * as CoreApi from '../../src/core';

const LN2 = Math.log(2);

function close(actual: number, expected: number, tolerance = 1e-12, message = ''): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${message} expected ${expected}, got ${actual}`);
}

function closeMatrix(actual: number[][], expected: number[][], tolerance = 1e-12): void {
  assert.equal(actual.length, expected.length, 'rows');
  actual.forEach((row, b) => {
    assert.equal(row.length, expected[b].length, `row ${b} length`);
    row.forEach((value, t) => close(value, expected[b][t], tolerance, `[${b}][${t}]`));
  });
}

function randomMatrix(random: Random, rows: number, cols: number, scale = 1): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => (random.next() * 2 - 1) * scale));
}

describe('mean, std and the logistic helpers', () => {
  test('mean and population std of [1, 2, 3, 4] are 2.5 and √1.25', () => {
    // deviations −1.5, −0.5, 0.5, 1.5; squares 2.25 + 0.25 + 0.25 + 2.25 = 5; 5/4 = 1.25
    close(mean([1, 2, 3, 4]), 2.5);
    close(std(new Float32Array([1, 2, 3, 4])), Math.sqrt(1.25));
    assert.ok(Number.isNaN(mean([])));
  });

  test('sum adds left to right from 0; the empty sum is 0 (while the empty mean is NaN)', () => {
    assert.equal(sum([1, 2, 3, 4]), 10);
    assert.equal(sum(new Float32Array([0.5, 0.25])), 0.75);
    assert.equal(sum([]), 0);
    // 0.1 + 0.2 + 0.3 in this order is 0.6000000000000001; the order is part of the contract (metrics stay bit-equal)
    assert.equal(sum([0.1, 0.2, 0.3]), 0.1 + 0.2 + 0.3);
    assert.equal(mean([0.1, 0.2, 0.3]), (0.1 + 0.2 + 0.3) / 3);
  });

  test('softplus, logSigmoid and sigmoid stay finite and exact at the extremes', () => {
    close(softplus(0), LN2);
    close(logSigmoid(0), -LN2);
    close(sigmoid(0), 0.5);
    close(softplus(1000), 1000); // log(1 + e^1000) would overflow naively
    close(logSigmoid(-1000), -1000);
    close(sigmoid(-1000), 0);
    close(sigmoid(1000), 1);
  });
});

describe('maskedMean / maskedVar / maskedWhiten (TRL masked_mean, masked_var, masked_whiten)', () => {
  // Counted entries 1, 2, 4 (mask picks [0][0], [0][1], [1][0]).
  const x = [
    [1, 2, 3],
    [4, 5, 6],
  ];
  const mask = [
    [1, 1, 0],
    [1, 0, 0],
  ];

  test('maskedMean averages only counted entries, over the whole batch', () => {
    // (1 + 2 + 4) / 3 = 7/3
    close(maskedMean(x, mask), 7 / 3);
  });

  test('maskedMean accepts Float32Array rows and a Uint8Array mask, and ignores NaN padding', () => {
    close(
      maskedMean(
        [new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6])],
        [new Uint8Array([1, 1, 0]), new Uint8Array([1, 0, 0])],
      ),
      7 / 3,
    );
    close(maskedMean([[1, Number.NaN, Infinity]], [[1, 0, 0]]), 1);
  });

  test('maskedMean with no counted entry is NaN (0/0, as TRL), including all-masked rows', () => {
    assert.ok(Number.isNaN(maskedMean([[1, 2], [3]], [[0, 0], [0]])));
    // an all-masked row among counted ones simply does not count
    close(
      maskedMean(
        [
          [9, 9],
          [3, 5],
        ],
        [
          [0, 0],
          [1, 1],
        ],
      ),
      4,
    );
  });

  test('maskedVar is Bessel-corrected by default', () => {
    // μ = 7/3; deviations −4/3, −1/3, 5/3; squares 16/9 + 1/9 + 25/9 = 42/9
    // biased σ² = (42/9)/3 = 14/9; unbiased = 14/9 · 3/(3 − 1) = 7/3
    close(maskedVar(x, mask, false), 14 / 9);
    close(maskedVar(x, mask), 7 / 3);
  });

  test('maskedVar throws a clear error when the mask sums to 0 (TRL raises), NaN when not unbiased', () => {
    assert.throws(() => maskedVar([[1, 2]], [[0, 0]]), /mask sums to zero.*larger minibatch/);
    assert.ok(Number.isNaN(maskedVar([[1, 2]], [[0, 0]], false)));
  });

  test('maskedVar with one counted entry is NaN when unbiased (0 · 1/0, as TRL) and 0 when not', () => {
    assert.ok(Number.isNaN(maskedVar([[5, 2]], [[1, 0]])));
    close(maskedVar([[5, 2]], [[1, 0]], false), 0);
    assert.ok(maskedWhiten([[5, 2]], [[1, 0]])[0].every(Number.isNaN));
  });

  test('maskedWhiten on a hand case; masked-out entries get the same affine map (as TRL returns them)', () => {
    // μ = 7/3, σ² = 7/3 (above); w = (x − 7/3)/√(7/3 + 1e-8)
    // 1 → −0.87287156, 2 → −0.21821789, 4 → 1.09108945, padding 100 → 63.93784170
    const whitened = maskedWhiten([[1, 2, 4, 100]], [[1, 1, 1, 0]]);
    closeMatrix(whitened, [[-0.8728715590735305, -0.21821788976838272, 1.091089448841913, 63.937841702136105]], 1e-9);
    // shiftMean = false adds μ back
    const kept = maskedWhiten([[1, 2, 4, 100]], [[1, 1, 1, 0]], false);
    closeMatrix(kept, [whitened[0].map((w) => w + 7 / 3)], 1e-12);
  });

  test('maskedWhiten of constant values is 0 (zero variance: rsqrt(0 + 1e-8) = 1e4 keeps it finite)', () => {
    // counted entries all 5: (5 − 5)·1e4 = 0; the padding 6 becomes (6 − 5)·1e4 = 1e4
    closeMatrix(
      maskedWhiten(
        [
          [5, 5, 6],
          [5, 5, 5],
        ],
        [
          [1, 1, 0],
          [1, 1, 1],
        ],
      ),
      [
        [0, 0, 1e4],
        [0, 0, 0],
      ],
      1e-6,
    );
  });

  test('property: whitened counted values have masked mean ≈ 0 and unbiased masked variance ≈ 1', () => {
    const random = new Random(7);
    for (let trial = 0; trial < 20; trial++) {
      const values = randomMatrix(random, 4, 9, 10).map((row) => row.map((v) => v + 3));
      const m = values.map((row) => row.map((_, t) => (t < 2 + random.int(8) ? 1 : 0)));
      const w = maskedWhiten(values, m);
      close(maskedMean(w, m), 0, 1e-9, 'mean');
      close(maskedVar(w, m), 1, 1e-6, 'var');
      // shiftMean = false keeps the original mean
      close(maskedMean(maskedWhiten(values, m, false), m), maskedMean(values, m), 1e-9, 'shifted mean');
    }
  });

  test('shape mismatches name the argument', () => {
    assert.throws(() => maskedMean([[1, 2]], [[1]]), /mask\[0\] has 1 entries but x\[0\] has 2/);
    assert.throws(() => maskedMean([[1], [2]], [[1]]), /mask has 1 rows but x has 2/);
    assert.throws(() => maskedMean([1, 2] as never, [[1, 1]]), /x\[0\] must be a row of numbers/);
  });
});

describe('klPerToken (Schulman k1, k2, k3 and abs; TRL kl_estimator / _kl_penalty)', () => {
  const logp = [[-1, -2]];
  const ref = [[-1.5, -1]];

  test('each estimator on a hand case', () => {
    // logp − ref = 0.5, −1; log r = ref − logp = −0.5, 1
    closeMatrix(klPerToken(logp, ref, 'k1'), [[0.5, -1]]);
    closeMatrix(klPerToken(logp, ref, 'k2'), [[0.125, 0.5]]); // ½·0.25, ½·1
    // k3 = (e^logr − 1) − logr: e^−0.5 − 1 + 0.5 = 0.10653066; e − 1 − 1 = 0.71828183
    closeMatrix(klPerToken(logp, ref, 'k3'), [[0.10653065971263342, 0.7182818284590451]]);
    closeMatrix(klPerToken(logp, ref, 'abs'), [[0.5, 1]]);
  });

  test('equal log-probs give 0 for every estimator; k2, k3 and abs are never negative', () => {
    for (const estimator of ['k1', 'k2', 'k3', 'abs'] as const) {
      closeMatrix(klPerToken([[-3, -0.1]], [new Float32Array([-3, -0.1])], estimator), [[0, 0]], 1e-7);
    }
    const random = new Random(3);
    const a = randomMatrix(random, 3, 5, 4);
    const b = randomMatrix(random, 3, 5, 4);
    for (const estimator of ['k2', 'k3', 'abs'] as const) {
      assert.ok(
        klPerToken(a, b, estimator)
          .flat()
          .every((v) => v >= 0),
        estimator,
      );
    }
  });

  test('k3 keeps its digits for tiny differences (≈ logr²/2, not rounded to 0)', () => {
    // log r = 1e-6: k3 = logr²/2 + O(logr³) = 5e-13
    const [[k3]] = klPerToken([[0]], [[1e-6]], 'k3');
    close(k3 / 5e-13, 1, 1e-5);
  });

  test('klEstimators names the four estimators, the list the config schema and the CLI accept', () => {
    assert.deepEqual([...klEstimators], ['k1', 'k2', 'k3', 'abs']);
    for (const estimator of klEstimators) assert.equal(klPerToken(logp, ref, estimator)[0].length, 2, estimator);
  });

  test('an unknown estimator is rejected with the valid names', () => {
    assert.throws(() => klPerToken(logp, ref, 'kl' as never), /unknown estimator "kl"; use 'k1', 'k2', 'k3' or 'abs'/);
  });
});

describe('gae (GAE recurrence, TRL "6. compute advantages and returns")', () => {
  test('a three-token hand case', () => {
    // γ = 0.9, λ = 0.8, γλ = 0.72; r = [1, 0, 2], V = [0.5, 1, 1.5]
    // t=2: δ = 2 + 0.9·0 − 1.5 = 0.5;   A = 0.5
    // t=1: δ = 0 + 0.9·1.5 − 1 = 0.35;  A = 0.35 + 0.72·0.5 = 0.71
    // t=0: δ = 1 + 0.9·1 − 0.5 = 1.4;   A = 1.4 + 0.72·0.71 = 1.9112
    // returns = A + V = [2.4112, 1.71, 2]
    const { advantages, returns } = gae([[1, 0, 2]], [[0.5, 1, 1.5]], [[1, 1, 1]], 0.9, 0.8);
    closeMatrix(advantages, [[1.9112, 0.71, 0.5]]);
    closeMatrix(returns, [[2.4112, 1.71, 2]]);
  });

  test('padding after the last token is zeroed first and changes nothing (NaN there included)', () => {
    const { advantages, returns } = gae(
      [
        [1, 0, 2, 99],
        [1, 0, 2, Number.NaN],
      ],
      [[0.5, 1, 1.5, 7], new Float32Array([0.5, 1, 1.5, 7])],
      [
        [1, 1, 1, 0],
        [1, 1, 1, 0],
      ],
      0.9,
      0.8,
    );
    // masked token: δ = 0 + 0.9·0 − 0 = 0, A = 0, return 0
    closeMatrix(advantages, [
      [1.9112, 0.71, 0.5, 0],
      [1.9112, 0.71, 0.5, 0],
    ]);
    closeMatrix(returns, [
      [2.4112, 1.71, 2, 0],
      [2.4112, 1.71, 2, 0],
    ]);
  });

  test('an all-masked row gives zeros; rows of different lengths are independent', () => {
    const { advantages, returns } = gae([[5, 5], [1]], [[2, 2], [0.25]], [[0, 0], [1]], 1, 1);
    closeMatrix(advantages, [[0, 0], [0.75]]); // 1 + 0 − 0.25
    closeMatrix(returns, [[0, 0], [1]]);
  });

  test('property: with γ = λ = 1, advantages are reward-to-go minus values and returns are reward-to-go', () => {
    const random = new Random(11);
    const rewards = randomMatrix(random, 3, 8);
    const values = randomMatrix(random, 3, 8);
    const mask = rewards.map((row) => row.map(() => 1));
    const { advantages, returns } = gae(rewards, values, mask, 1, 1);
    rewards.forEach((row, b) => {
      row.forEach((_, t) => {
        const rewardToGo = row.slice(t).reduce((s, r) => s + r, 0);
        close(advantages[b][t], rewardToGo - values[b][t], 1e-12);
        close(returns[b][t], rewardToGo, 1e-12);
      });
    });
  });

  test('property: with λ = 0, advantages are the one-step TD errors δ_t', () => {
    const { advantages } = gae([[1, 0, 2]], [[0.5, 1, 1.5]], [[1, 1, 1]], 0.9, 0);
    closeMatrix(advantages, [[1.4, 0.35, 0.5]]); // the δ_t of the hand case
  });

  test('bad γ or λ is rejected', () => {
    assert.throws(() => gae([[1]], [[1]], [[1]], Number.NaN, 0.95), /gamma must be a finite number ≥ 0/);
    assert.throws(() => gae([[1]], [[1]], [[1]], 1, -1), /lam must be a finite number ≥ 0/);
  });
});

describe('ppoPolicyLoss (clipped surrogate, TRL pg_losses / pg_losses2)', () => {
  // ε = 0.2; four counted tokens and one padding token that must not count.
  // a) ρ = 1.5, A = 1:  pg1 = −1.5, pg2 = −1·1.2 = −1.2, max −1.2, clipped
  // b) ρ = 0.5, A = 1:  pg1 = −0.5, pg2 = −1·0.8 = −0.8, max −0.5, not clipped
  // c) ρ = 0.5, A = −2: pg1 = 1.0,  pg2 = 2·0.8 = 1.6,   max 1.6,  clipped
  // d) ρ = 1,   A = 3:  pg1 = −3,   pg2 = −3,            max −3,   not clipped
  // loss = (−1.2 − 0.5 + 1.6 − 3)/4 = −0.775; clipFrac = 2/4
  // approxKl = ½(ln²1.5 + 2·ln²0.5 + 0)/4 = 0.14066350
  const newLogprobs = [[Math.log(1.5), Math.log(0.5), Math.log(0.5), 0, 50]];
  const oldLogprobs = [[0, 0, 0, 0, 0]];
  const advantages = [[1, 1, -2, 3, 100]];
  const mask = [[1, 1, 1, 1, 0]];

  test('a hand case with every branch of the clip, padding ignored', () => {
    const result = ppoPolicyLoss(newLogprobs, oldLogprobs, advantages, mask, 0.2);
    close(result.loss, -0.775, 1e-12);
    close(result.clipFrac, 0.5);
    close(result.approxKl, 0.14066349771619602, 1e-12);
  });

  test('a ratio exactly at 1 + ε or 1 − ε is not counted as clipped', () => {
    const up = Math.exp(0.1); // in [1, 2), so (up − 1) + 1 === up exactly
    const down = Math.exp(-0.1); // in (0.5, 1), so 1 − (1 − down) === down exactly
    const atUpper = ppoPolicyLoss([[0.1]], [[0]], [[1]], [[1]], up - 1);
    assert.equal(atUpper.clipFrac, 0);
    close(atUpper.loss, -up);
    const atLower = ppoPolicyLoss([[-0.1]], [[0]], [[-1]], [[1]], 1 - down);
    assert.equal(atLower.clipFrac, 0);
    close(atLower.loss, down);
    // just past the boundary it is clipped
    assert.equal(ppoPolicyLoss([[0.1]], [[0]], [[1]], [[1]], up - 1 - 1e-9).clipFrac, 1);
  });

  test('ε = 0 clips every moved token whose advantage would pull it further', () => {
    // ρ = e^0.1 > 1 with A = 1: pg1 = −ρ < pg2 = −1 → clipped, loss = −1
    const result = ppoPolicyLoss([[0.1]], [[0]], [[1]], [[1]], 0);
    assert.equal(result.clipFrac, 1);
    close(result.loss, -1);
  });

  test('property: at ρ = 1 the loss is −mean(A), nothing is clipped and approxKl is 0', () => {
    const random = new Random(5);
    const adv = randomMatrix(random, 2, 6);
    const logp = randomMatrix(random, 2, 6);
    const m = [
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
    ];
    const result = ppoPolicyLoss(logp, logp, adv, m, 0.2);
    close(result.loss, -maskedMean(adv, m), 1e-12);
    assert.equal(result.clipFrac, 0);
    assert.equal(result.approxKl, 0);
  });

  test('all tokens masked gives NaN (no counted token, as TRL masked_mean); bad ε is rejected', () => {
    const result = ppoPolicyLoss([[0.3]], [[0]], [[1]], [[0]], 0.2);
    assert.ok(Number.isNaN(result.loss) && Number.isNaN(result.clipFrac) && Number.isNaN(result.approxKl));
    assert.throws(() => ppoPolicyLoss([[0]], [[0]], [[1]], [[1]], -0.1), /cliprange must be a finite number ≥ 0/);
  });
});

describe('ppoValueLoss (clipped value loss, TRL vf_losses1 / vf_losses2)', () => {
  test('a hand case', () => {
    // ε_v = 0.2, R = 1, V_old = 0.5
    // a) V = 1.0: V_c = 0.5 + 0.2 = 0.7; (V−R)² = 0,    (V_c−R)² = 0.09, max 0.09, clipped
    // b) V = 0.6: V_c = 0.6;             (V−R)² = 0.16, (V_c−R)² = 0.16, max 0.16, tie: not clipped
    // c) V = 0.0: V_c = 0.5 − 0.2 = 0.3; (V−R)² = 1,    (V_c−R)² = 0.49, max 1,    not clipped
    // loss = ½·(0.09 + 0.16 + 1)/3 = 0.20833333; clipFrac = 1/3
    const result = ppoValueLoss([[1.0, 0.6, 0.0, 42]], [[0.5, 0.5, 0.5, 0]], [[1, 1, 1, 0]], [[1, 1, 1, 0]], 0.2);
    close(result.loss, (0.5 * (0.09 + 0.16 + 1)) / 3, 1e-12);
    close(result.clipFrac, 1 / 3);
  });

  test('new values within ε_v of the old ones are never clipped: the loss is ½·MSE', () => {
    // V − V_old = ±0.1 < 0.2 → V_c = V; loss = ½·((0.6−1)² + (0.4−0)²)/2 = ½·0.16 = 0.08
    const result = ppoValueLoss([[0.6, 0.4]], [[0.5, 0.5]], [[1, 0]], [[1, 1]], 0.2);
    close(result.loss, 0.08, 1e-12);
    assert.equal(result.clipFrac, 0);
  });
});

describe('bradleyTerryLoss (TRL RewardTrainer: −logσ(r_c − r_r))', () => {
  test('a hand case', () => {
    // pair 1: softplus(−(2 − 1)) = log(1 + e^−1) = 0.31326169; pair 2: softplus(0) = log 2
    // mean = (0.31326169 + 0.69314718)/2 = 0.50320443
    close(bradleyTerryLoss([2, 0], new Float32Array([1, 0])), 0.5032044340390841, 1e-12);
  });

  test('stable for huge gaps, and the margin shifts the gap', () => {
    close(bradleyTerryLoss([1000], [0]), 0);
    close(bradleyTerryLoss([0], [1000]), 1000);
    close(bradleyTerryLoss([2], [1], [1]), LN2); // −logσ(2 − 1 − 1) = log 2
  });

  test('mismatched or empty inputs are rejected', () => {
    assert.throws(() => bradleyTerryLoss([1, 2], [1]), /rejectedScores has 1 entries but chosenScores has 2/);
    assert.throws(() => bradleyTerryLoss([], []), /no pairs/);
  });
});

describe('dpoLoss (TRL DPOTrainer.dpo_loss: sigmoid, hinge, ipo)', () => {
  // β = 0.1; π_c = −10, π_r = −12, ref_c = −11, ref_r = −11
  // logits = (π_c − π_r) − (ref_c − ref_r) = 2 − 0 = 2; β·logits = 0.2
  // chosen log-ratio = 1, rejected = −1 → rewards 0.1 and −0.1
  const args = [[-10], [-12], [-11], [-11]] as const;

  test('sigmoid, with and without label smoothing', () => {
    // −logσ(0.2) = softplus(−0.2) = log(1 + e^−0.2) = 0.59813887
    const plain = dpoLoss(...args, { beta: 0.1, lossType: 'sigmoid' });
    close(plain.losses[0], 0.5981388693815918, 1e-12);
    close(plain.chosenRewards[0], 0.1, 1e-12);
    close(plain.rejectedRewards[0], -0.1, 1e-12);
    // ε = 0.1: 0.9·softplus(−0.2) + 0.1·softplus(0.2) = 0.9·0.59813887 + 0.1·0.79813887 = 0.61813887
    close(
      dpoLoss(...args, { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0.1 }).losses[0],
      0.6181388693815918,
      1e-12,
    );
  });

  test('hinge: relu(1 − β·logits)', () => {
    close(dpoLoss(...args, { beta: 0.1, lossType: 'hinge' }).losses[0], 0.8, 1e-12); // 1 − 0.2
    assert.equal(dpoLoss(...args, { beta: 1, lossType: 'hinge' }).losses[0], 0); // 1 − 2 < 0
  });

  test('ipo: (logits − 1/(2β))², on the inputs as given or normalised per token', () => {
    // as given: (2 − 1/0.2)² = (2 − 5)² = 9
    close(dpoLoss(...args, { beta: 0.1, lossType: 'ipo' }).losses[0], 9, 1e-12);
    // per token (TRL): n_c = 4, n_r = 2 → h = 1/4 − (−1)/2 = 0.75; (0.75 − 5)² = 18.0625
    const normalised = dpoLoss(...args, { beta: 0.1, lossType: 'ipo', chosenLengths: [4], rejectedLengths: [2] });
    close(normalised.losses[0], 18.0625, 1e-12);
    close(normalised.chosenRewards[0], 0.1, 1e-12); // rewards stay unnormalised
    // a zero length is clamped to 1, as TRL's clamp(min=1)
    close(
      dpoLoss(...args, { beta: 0.1, lossType: 'ipo', chosenLengths: [0], rejectedLengths: [1] }).losses[0],
      9,
      1e-12,
    );
  });

  test('property: at logits = 0 the sigmoid loss is log 2 for any β and label smoothing', () => {
    for (const beta of [0.01, 0.1, 1, 10]) {
      for (const labelSmoothing of [0, 0.2, 0.5]) {
        const { losses } = dpoLoss([-3, -7], [-4, -2], [-5, 1], [-6, 6], { beta, lossType: 'sigmoid', labelSmoothing });
        losses.forEach((loss) => close(loss, LN2, 1e-12));
      }
    }
  });

  test('bad options are rejected', () => {
    assert.throws(() => dpoLoss(...args, { beta: 0, lossType: 'sigmoid' }), /beta must be a finite number > 0/);
    assert.throws(
      () => dpoLoss(...args, { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0.7 }),
      /labelSmoothing .* \[0, 0\.5\]/,
    );
    assert.throws(() => dpoLoss(...args, { beta: 0.1, lossType: 'kto' as never }), /unknown lossType "kto"/);
    assert.throws(
      () => dpoLoss(...args, { beta: 0.1, lossType: 'ipo', chosenLengths: [3] }),
      /both chosenLengths and rejectedLengths/,
    );
    assert.throws(
      () => dpoLoss([-1, -2], [-1], [-1], [-1], { beta: 0.1, lossType: 'sigmoid' }),
      /policyRejected has 1 entries but policyChosen has 2/,
    );
  });
});

describe('rankingToPairs', () => {
  test('groups best first give every cross-group pair, ties skipped, in reading order', () => {
    assert.deepEqual(rankingToPairs([[2], [0, 3], [1]]), [
      [2, 0],
      [2, 3],
      [2, 1],
      [0, 1],
      [3, 1],
    ]);
  });

  test('a full order of K gives K·(K−1)/2 pairs; one tied group or one item gives none', () => {
    assert.equal(rankingToPairs([[3], [1], [0], [2]]).length, 6);
    assert.deepEqual(rankingToPairs([[0, 1, 2]]), []);
    assert.deepEqual(rankingToPairs([[0]]), []);
    assert.deepEqual(rankingToPairs([]), []);
  });

  test('invalid rankings are rejected with what to fix', () => {
    assert.throws(() => rankingToPairs([[0], [1, 0]]), /completion 0 appears twice \(groups 0 and 1\)/);
    assert.throws(() => rankingToPairs([[0], [-1]]), /group 1 holds -1; completion indices are non-negative integers/);
    assert.throws(() => rankingToPairs([[1.5]]), /non-negative integers/);
    assert.throws(() => rankingToPairs([[0], []]), /group 1 must be a non-empty array/);
    assert.throws(() => rankingToPairs({} as never), /ranking must be an array of groups/);
  });
});

describe('the built bundle dist/core.js (run `npm run build` first)', () => {
  const dist = path.join(__dirname, '..', '..', 'dist');

  test('dist/core.js loads with require and its functions work', () => {
    const bundle = path.join(dist, 'core.js');
    assert.ok(existsSync(bundle), `${bundle} is missing: run \`npm run build\` first`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const core = require(bundle) as typeof CoreApi;
    const { advantages, returns } = core.gae([[1, 0, 2]], [[0.5, 1, 1.5]], [[1, 1, 1]], 0.9, 0.8);
    closeMatrix(advantages, [[1.9112, 0.71, 0.5]]);
    closeMatrix(returns, [[2.4112, 1.71, 2]]);
    close(core.maskedMean([[1, 2, 3]], [[1, 1, 0]]), 1.5);
    assert.deepEqual(core.rankingToPairs([[1], [0]]), [[1, 0]]);
    close(core.dpoLoss([0], [0], [0], [0], { beta: 0.1, lossType: 'sigmoid' }).losses[0], LN2);
    assert.equal(new core.Random(1).next(), new Random(1).next());
  });

  test('dist/core.d.ts re-exports the declarations', () => {
    const declarations = path.join(dist, 'core.d.ts');
    assert.ok(existsSync(declarations), `${declarations} is missing: run \`npm run build\` first`);
    assert.match(readFileSync(declarations, 'utf8'), /export \* from '\.\/core-types\/index';/);
    const index = readFileSync(path.join(dist, 'core-types', 'index.d.ts'), 'utf8');
    assert.match(index, /gae/);
    assert.match(readFileSync(path.join(dist, 'core-types', 'gae.d.ts'), 'utf8'), /export declare function gae\(/);
  });
});
