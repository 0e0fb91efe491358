// The dashboard's pure analysis, on hand-made cases: PPO clip classification and its summaries,
// the diverging colour scale, TensorBoard smoothing and namespace grouping, and the warnings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ppoPolicyLoss } from '../../src/core';
import { tokenTextAt } from '../../src/shared/packedTrace';
import { classifyClip, clippedTokenCounts, summariseClipping } from '../../webview/dashboard/clipAnalysis';
import { alphaOf, colourOf, divergingScale, maxAlpha } from '../../webview/dashboard/colorScale';
import { groupMetrics, smooth } from '../../webview/dashboard/metricSeries';
import { detectWarnings } from '../../webview/dashboard/warnings';
import { fixtureMetrics, fixtureRows, packThroughArrow } from '../webview/dashboardFixture';

test('a token’s gradient is removed exactly when A > 0 and r > 1 + ε, or A < 0 and r < 1 − ε', () => {
  assert.equal(classifyClip(1.5, 1, 0.2), 'removed-above');
  assert.equal(classifyClip(0.5, -1, 0.2), 'removed-below');
  assert.equal(classifyClip(0.5, 1, 0.2), 'outside-kept');
  assert.equal(classifyClip(1.5, -1, 0.2), 'outside-kept');
  assert.equal(classifyClip(1.2, 1, 0.2), 'inside', 'the band is closed');
  assert.equal(classifyClip(1.1, -3, 0.2), 'inside');
  assert.equal(classifyClip(Number.NaN, 1, 0.2), 'none');
});

test('the classification agrees with the clipped fraction of core’s PPO loss (TRL’s pg_clipfrac)', () => {
  const ratios = [1.5, 0.5, 0.6, 1.1, 1.3, 0.7, 1.25, 0.95];
  const advantages = [1.2, -0.8, 0.5, 0.3, 0.4, -0.3, 0.2, -1];
  const newLogp = [ratios.map((r) => Math.log(r))];
  const oldLogp = [ratios.map(() => 0)];
  const { clipFrac } = ppoPolicyLoss(newLogp, oldLogp, [advantages], [ratios.map(() => 1)], 0.2);
  const removed = ratios.filter((r, i) =>
    ['removed-above', 'removed-below'].includes(classifyClip(r, advantages[i], 0.2)),
  ).length;
  assert.ok(Math.abs(clipFrac - removed / ratios.length) < 1e-9, `${clipFrac} vs ${removed}/${ratios.length}`);
});

test('clip summaries count per epoch, per position and per token string', () => {
  const trace = packThroughArrow(1, fixtureRows(1));
  assert.deepEqual([...clippedTokenCounts(trace, 0.2)], [2, 0, 1, 2]);
  const summary = summariseClipping(trace, 0.2, (t) => tokenTextAt(trace, t));
  assert.deepEqual(
    summary.epochs.map((e) => [e.tokens, e.removedAbove, e.removedBelow, e.outsideKept]),
    [
      [15, 0, 0, 0],
      [15, 3, 2, 1],
    ],
  );
  assert.ok(Math.abs(summary.epochs[1].removedFraction - 5 / 15) < 1e-12);
  assert.deepEqual([...summary.tokensAtPosition], [4, 4, 3, 3, 1]);
  assert.deepEqual(
    [...summary.removedByPosition[1]].map((v) => Math.round(v * 1000) / 1000),
    [0.25, 0.5, 0.333, 0.333, 0],
  );
  assert.deepEqual(summary.byToken.map((entry) => entry.text).sort(), [' bad', ' film', ' great', ' really', 'ok']);
});

test('the diverging scale is symmetric around its centre, transparent there, strongest at the range', () => {
  const colours = { negative: { r: 0, g: 0, b: 255 }, positive: { r: 255, g: 128, b: 0 } };
  const scale = divergingScale([-1, 0.5, 2, Number.NaN], 0, colours);
  assert.equal(scale.range, 2);
  assert.equal(colourOf(scale, 0), 'transparent');
  assert.equal(colourOf(scale, 2), `rgba(255, 128, 0, ${maxAlpha})`);
  assert.equal(colourOf(scale, -2), `rgba(0, 0, 255, ${maxAlpha})`);
  assert.equal(colourOf(scale, -1), `rgba(0, 0, 255, ${maxAlpha / 2})`);
  assert.equal(alphaOf(scale, 5), maxAlpha, 'beyond the range saturates');
  const ratio = divergingScale([0.7, 1.1, 1.2], 1, colours);
  assert.ok(Math.abs(ratio.range - 0.3) < 1e-12, 'the ratio scale is centred at 1');
  assert.equal(colourOf(ratio, 1), 'transparent');
});

test('smoothing is TensorBoard’s debiased EMA; metrics group by TRL namespace', () => {
  assert.deepEqual(
    smooth([1, 1, 1], 0.9).map((v) => Math.round(v * 1e9) / 1e9),
    [1, 1, 1],
    'debiasing keeps a constant constant',
  );
  const s = smooth([0, 10], 0.5);
  assert.equal(s[0], 0);
  assert.ok(Math.abs(s[1] - (0.5 * 10) / (1 - 0.25)) < 1e-12);
  assert.deepEqual(smooth([1, 2], 0), [1, 2]);
  const groups = groupMetrics([
    [
      {
        step: 1,
        time: 5,
        episode: 8,
        'objective/kl': 1,
        'policy/clipfrac_avg': 0.1,
        'oracle/score': 0.2,
        lr: 1,
        'time/rollout': 3,
      },
    ],
  ]);
  assert.deepEqual(
    [...groups],
    [
      ['objective', ['objective/kl']],
      ['oracle', ['oracle/score']],
      ['policy', ['policy/clipfrac_avg']],
      ['other', ['lr']],
    ],
  );
});

test('warnings fire on rising KL, collapsing entropy, runaway length and reward up with oracle down — and not on a calm run', () => {
  const fired = detectWarnings(fixtureMetrics())
    .map((w) => w.kind)
    .sort();
  assert.deepEqual(fired, ['entropy-collapse', 'kl-rising', 'length-runaway', 'reward-hacking']);
  const calm = Array.from({ length: 30 }, (_, i) => ({
    step: i + 1,
    'objective/kl': 0.5 + 0.05 * Math.sin(i),
    'objective/entropy': 40 + Math.cos(i),
    'objective/scores': 0.01 * i,
    'oracle/score': 0.01 * i,
    response_length: 12 + (i % 3),
  }));
  assert.deepEqual(detectWarnings(calm), []);
  assert.deepEqual(detectWarnings(fixtureMetrics(4)), [], 'too few steps to judge');
});
