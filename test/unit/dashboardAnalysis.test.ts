// The dashboard's pure analysis, on hand-made cases: PPO clip classification and its summaries,
// the diverging colour scale, TensorBoard smoothing and namespace grouping, and the warnings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ClipClass, classifyClip, ppoPolicyLoss } from '../../src/core';
import { packPpoTrace, tokenTextAt, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { decodeTraceTable } from '../../src/shared/traceFormat';
import {
  bandText,
  clipCellAt,
  clipClassesOrigin,
  clippedTokenCounts,
  isClipped,
  summariseClipping,
  traceClipClasses,
} from '../../webview/dashboard/clipAnalysis';
import { alphaOf, colourOf, divergingScale, maxAlpha } from '../../webview/dashboard/colorScale';
import { groupMetrics, smooth } from '../../webview/dashboard/metricSeries';
import { detectWarnings } from '../../webview/dashboard/warnings';
import { fixtureMetrics, fixtureRows, packThroughArrow } from '../webview/dashboardFixture';

/** The fixture's step 3 as the host packs it from the trace format 1 file (clip column, no clip_class). */
function versionOneTrace(): PackedPpoTrace {
  const bytes = readFileSync(path.join(__dirname, '..', 'fixtures', 'traces', 'ppo-v1-step-3.arrow'));
  const table = decodeTraceTable(bytes);
  if (table.kind !== 'ppo') throw new Error('expected a PPO trace');
  return packPpoTrace(3, table.numRows, (i) => table.row(i));
}

const fixtureCliprange = { value: 0.2, source: 'run.json config.stages[2].cliprange' };

test('the dashboard draws core’s clip classes, with the band’s side for clipped tokens', () => {
  const trace = packThroughArrow(1, fixtureRows(1));
  const classes = traceClipClasses(trace, fixtureCliprange);
  assert.equal(classes.origin, 'recorded', 'a version-2 trace brings its own classes');
  const cells = [0, 1, 2, 3].map((t) => clipCellAt(trace, classes, 1, t));
  assert.deepEqual(cells, ['clipped-above', 'clipped-below', 'outside-kept', 'inside']);
  assert.deepEqual(
    [0, 1, 2, 3].map((t) => clipCellAt(trace, classes, 0, t)),
    ['inside', 'inside', 'inside', 'inside'],
  );
  // The cells say what core says of the same stored numbers.
  for (let t = 0; t < trace.numTokens; t++) {
    const core = classifyClip(trace.ratio[trace.numTokens + t], trace.values.advantage[t], 0.2);
    assert.equal(isClipped(clipCellAt(trace, classes, 1, t)), core === ClipClass.clipped, `token ${t}`);
  }
});

test('an epoch’s clip fraction agrees with the clipped fraction of core’s PPO loss (TRL’s pg_clipfrac)', () => {
  const trace = packThroughArrow(1, fixtureRows(1));
  const ratios = Array.from(trace.ratio.subarray(trace.numTokens, 2 * trace.numTokens));
  const advantages = Array.from(trace.values.advantage);
  const { clipFrac } = ppoPolicyLoss(
    [ratios.map((r) => Math.log(r))],
    [ratios.map(() => 0)],
    [advantages],
    [ratios.map(() => 1)],
    0.2,
  );
  const summary = summariseClipping(trace, traceClipClasses(trace, fixtureCliprange), (t) => tokenTextAt(trace, t));
  assert.ok(summary);
  assert.ok(Math.abs(summary.epochs[1].clippedFraction - clipFrac) < 1e-12, `${clipFrac}`);
});

test('clip summaries count per epoch, per position and per token string', () => {
  const trace = packThroughArrow(1, fixtureRows(1));
  const classes = traceClipClasses(trace, fixtureCliprange);
  assert.deepEqual([...clippedTokenCounts(trace, classes)], [2, 0, 1, 2]);
  const summary = summariseClipping(trace, classes, (t) => tokenTextAt(trace, t));
  assert.ok(summary);
  assert.deepEqual(
    summary.epochs.map((e) => [e.tokens, e.clippedAbove, e.clippedBelow, e.outsideKept]),
    [
      [15, 0, 0, 0],
      [15, 3, 2, 1],
    ],
  );
  assert.ok(Math.abs(summary.epochs[1].clippedFraction - 5 / 15) < 1e-12);
  assert.deepEqual([...summary.tokensAtPosition], [4, 4, 3, 3, 1]);
  assert.deepEqual(
    [...summary.clippedByPosition[1]].map((v) => Math.round(v * 1000) / 1000),
    [0.25, 0.5, 0.333, 0.333, 0],
  );
  assert.deepEqual(summary.byToken.map((entry) => entry.text).sort(), [' bad', ' film', ' great', ' really', 'ok']);
});

test('a trace format 1 file gets the same classes, derived from ratio, advantage and the header’s ε', () => {
  const old = versionOneTrace();
  const current = packThroughArrow(3, fixtureRows(3));
  assert.equal(old.clipClass, null);
  const derived = traceClipClasses(old, fixtureCliprange);
  assert.equal(derived.origin, 'derived');
  assert.deepEqual(derived, {
    origin: 'derived',
    classes: current.clipClass,
    cliprange: 0.2,
    source: 'run.json config.stages[2].cliprange',
  });
  assert.match(clipClassesOrigin(derived), /^derived from ratio, advantage and ε = 0\.2 \(run\.json config/);
  const text = (t: number) => tokenTextAt(old, t);
  assert.deepEqual(
    summariseClipping(old, derived, text),
    summariseClipping(current, traceClipClasses(current, fixtureCliprange), text),
  );
  // A narrower band classifies more tokens as outside: the derivation uses the header's ε, not 0.2.
  const narrow = traceClipClasses(old, { value: 0.05, source: 'test' });
  assert.ok(narrow.origin === 'derived' && narrow.classes.filter((c) => c !== ClipClass.inside).length > 6);
});

test('without ε in the header, a trace format 1 file’s classes are unknown, and say why', () => {
  const old = versionOneTrace();
  const unknown = traceClipClasses(old, { missing: 'run.json has no config.stages (a run from another trainer?)' });
  assert.equal(unknown.origin, 'unknown');
  assert.match(
    clipClassesOrigin(unknown),
    /before the clip_class column .* has no cliprange \(run\.json has no config/,
  );
  assert.ok([...clippedTokenCounts(old, unknown)].every(Number.isNaN));
  assert.equal(
    summariseClipping(old, unknown, (t) => tokenTextAt(old, t)),
    undefined,
  );
  assert.equal(clipCellAt(old, unknown, 1, 0), 'unknown');
  assert.equal(traceClipClasses(old, undefined).origin, 'unknown', 'nor before the header arrives');
  const untrained = packPpoTrace(1, 1, () => ({ ...fixtureRows(1)[1], ratio: [], clip_class: null }));
  assert.deepEqual([...clippedTokenCounts(untrained, traceClipClasses(untrained, { missing: 'x' }))], [0], 'no epoch');
  // A version-2 trace needs no ε for its classes, only for the band's numbers.
  const current = packThroughArrow(3, fixtureRows(3));
  assert.equal(traceClipClasses(current, { missing: 'x' }).origin, 'recorded');
  assert.equal(bandText({ missing: 'x' }), 'ε unknown (x)');
  assert.equal(bandText(fixtureCliprange), 'band [0.8, 1.2] (ε = 0.2)');
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

test(
  'warnings fire on rising KL, collapsing entropy, ' +
    'runaway length and reward up with oracle down — and not on a calm run',
  () => {
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
  },
);
