// The rollout half of PPO's metrics (src/trainer/ppo/ppoMetrics.ts) on a hand-computed batch of two
// rollouts: the TRL names, the batch means of per-sequence sums, and raw scores only when given.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rolloutMetrics } from '../../src/trainer/ppo/ppoMetrics';

const rollout = {
  items: [
    { prompt: [0, 5], response: [7, 8, 2] },
    { prompt: [0], response: [9] },
  ],
  logprobs: [[-1, -0.5, -0.25], [-2]],
  endedWithEos: [true, false],
};
const advantages = {
  kl: [[0.1, 0.2, 0.3], [0.4]],
  nonScoreReward: [[-0.01, -0.02, -0.03], [-0.04]],
};

test('rollout metrics: batch means of per-sequence sums, under TRL names, in one order', () => {
  const metrics = rolloutMetrics({ rollout, advantages, scores: [1, 3], klCoef: 0.1 });
  // KL sums 0.6 and 0.4 → 0.5; entropy −Σlogp 1.75 and 2 → 1.875; non-score sums −0.06, −0.04 → −0.05
  assert.deepEqual(Object.keys(metrics), [
    'objective/kl',
    'objective/entropy',
    'objective/non_score_reward',
    'objective/rlhf_reward',
    'objective/scores',
    'objective/kl_coef',
    'val/num_eos_tokens',
    'response_length',
  ]);
  assert.ok(Math.abs(metrics['objective/kl'] - 0.5) < 1e-12);
  assert.equal(metrics['objective/entropy'], 1.875);
  assert.ok(Math.abs(metrics['objective/non_score_reward'] + 0.05) < 1e-12);
  assert.ok(Math.abs(metrics['objective/rlhf_reward'] - 1.95) < 1e-12);
  assert.equal(metrics['objective/scores'], 2);
  assert.equal(metrics['objective/kl_coef'], 0.1);
  assert.equal(metrics['val/num_eos_tokens'], 1);
  assert.equal(metrics.response_length, 2);
});

test('raw scores appear only when the scores were scaled from them', () => {
  const metrics = rolloutMetrics({ rollout, advantages, scores: [0.5, -0.5], rawScores: [4, 6], klCoef: 0 });
  assert.equal(metrics['objective/scores'], 0);
  assert.equal(metrics['objective/raw_scores'], 5);
  assert.ok(!('objective/raw_scores' in rolloutMetrics({ rollout, advantages, scores: [4, 6], klCoef: 0 })));
});
