// The Rollouts tab's row model without a browser: each sample's numbers, and which rows the sort,
// search and filter show in what order — on the fixture run's step (scores 0.9, −0.7, 0.1, −0.2;
// oracle 0.8, −0.6, none, 0.3; lengths 4, 2, 4, 5; clipped 2, 0, 1, 2).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { packPpoTrace, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { decodeTraceTable } from '../../src/shared/traceFormat';
import { traceClipClasses } from '../../webview/dashboard/clipAnalysis';
import {
  sampleStats,
  sampleValue,
  visibleSamples,
  type RowQuery,
  type SampleStats,
} from '../../webview/dashboard/visibleSamples';
import { fixtureRows, fixtureRun, packThroughArrow } from '../webview/dashboardFixture';

const allRows: RowQuery = {
  sortKey: 'sample',
  descending: false,
  search: '',
  filterKey: 'score',
  min: -Infinity,
  max: Infinity,
};

function fixtureStep(): { trace: PackedPpoTrace; stats: SampleStats } {
  const trace = packThroughArrow(1, fixtureRows(1));
  return { trace, stats: sampleStats(trace, traceClipClasses(trace, fixtureRun.cliprange)) };
}

/** The fixture's step 3 as trace format 1 wrote it (no clip_class), with no ε in the run's header. */
function stepWithoutClipClasses(): { trace: PackedPpoTrace; stats: SampleStats } {
  const bytes = readFileSync(path.join(__dirname, '..', 'fixtures', 'traces', 'ppo-v1-step-3.arrow'));
  const table = decodeTraceTable(bytes);
  if (table.kind !== 'ppo') throw new Error('expected a PPO trace');
  const trace = packPpoTrace(3, table.numRows, (i) => table.row(i));
  return { trace, stats: sampleStats(trace, traceClipClasses(trace, undefined)) };
}

const order = (trace: PackedPpoTrace, stats: SampleStats, change: Partial<RowQuery>) =>
  visibleSamples(trace, stats, { ...allRows, ...change }).map((s) => trace.sample[s]);

test('sampleStats sums each response’s KL, counts its tokens and its clipped tokens', () => {
  const { trace, stats } = fixtureStep();
  assert.deepEqual([...stats.length], [4, 2, 4, 5]);
  assert.deepEqual([...stats.clipped], [2, 0, 1, 2], 'a token clipped at some epoch counts once');
  // The fixture's KL is a ramp 0.1·(i + 1 − n/2) over n tokens: it sums to 0.05·n (float32 terms).
  [0.2, 0.1, 0.2, 0.25].forEach((expected, s) => assert.ok(Math.abs(stats.kl[s] - expected) < 1e-6, `sample ${s}`));
  assert.ok(Number.isNaN(stats.oracle[2]), 'sample 2 has no oracle score');
  assert.equal(stats.searchText[2], 'this product is\u0000 fine \nok', 'prompt and response, lower case');
  assert.deepEqual(
    (['sample', 'score', 'length', 'clipped'] as const).map((field) => sampleValue(stats, trace, field, 3)),
    [3, Math.fround(-0.2), 5, 2],
  );
});

test('rows sort by a field in either order, NaN last, ties by sample', () => {
  const { trace, stats } = fixtureStep();
  assert.deepEqual(order(trace, stats, {}), [0, 1, 2, 3]);
  assert.deepEqual(order(trace, stats, { sortKey: 'sample', descending: true }), [3, 2, 1, 0]);
  assert.deepEqual(order(trace, stats, { sortKey: 'score', descending: true }), [0, 2, 3, 1]);
  assert.deepEqual(order(trace, stats, { sortKey: 'clipped', descending: true }), [0, 3, 2, 1]);
  assert.deepEqual(order(trace, stats, { sortKey: 'oracle', descending: true }), [0, 3, 1, 2], 'no oracle: last');
  assert.deepEqual(order(trace, stats, { sortKey: 'oracle' }), [1, 3, 0, 2], 'no oracle: last either way');
  assert.deepEqual(order(trace, stats, { sortKey: 'length' }), [1, 0, 2, 3], 'lengths 2, 4, 4, 5');
  assert.deepEqual(order(trace, stats, { sortKey: 'length', descending: true }), [3, 0, 2, 1], 'ties ascending');
});

test('rows filter by a range of a field and by text in prompt or response', () => {
  const { trace, stats } = fixtureStep();
  assert.deepEqual(order(trace, stats, { search: '  PRODUCT ' }), [2, 3], 'trimmed, case-insensitive');
  assert.deepEqual(order(trace, stats, { search: 'dull' }), [1], 'text of the response');
  assert.deepEqual(order(trace, stats, { search: 'is awful' }), [], 'not across prompt and response');
  assert.deepEqual(order(trace, stats, { filterKey: 'score', min: 0 }), [0, 2]);
  assert.deepEqual(order(trace, stats, { filterKey: 'score', max: -0.2 }), [1, 3], 'bounds included');
  assert.deepEqual(order(trace, stats, { filterKey: 'length', min: 4, max: 4 }), [0, 2], 'bounds included');
  assert.deepEqual(order(trace, stats, { filterKey: 'oracle' }), [0, 1, 2, 3], 'no bound: NaN stays');
  assert.deepEqual(order(trace, stats, { filterKey: 'oracle', min: -1 }), [0, 1, 3], 'a bound drops NaN');
  assert.deepEqual(order(trace, stats, { search: 'film', filterKey: 'clipped', min: 1, sortKey: 'kl' }), [0]);
});

test('without clip classes the clipped count is unknown, and filtering by it shows nothing', () => {
  const { trace, stats } = stepWithoutClipClasses();
  assert.ok([...stats.clipped].every(Number.isNaN));
  assert.deepEqual(order(trace, stats, { sortKey: 'clipped', descending: true }), [0, 1, 2, 3], 'all NaN: by sample');
  assert.deepEqual(order(trace, stats, { filterKey: 'clipped', min: 0 }), []);
});
