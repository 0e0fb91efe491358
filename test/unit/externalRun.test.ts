// External runs (src/host/external/): folders written by Debian's Python the way each engine writes them
// (test/fixtures/engineRuns.ts), read as the dashboard reads them, and followed live while a step or line is added.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { externalFolders, resolveRunFolder } from '../../src/host/external/externalFolders';
import { ExternalRunSource } from '../../src/host/external/externalRun';
import { ExternalPanelFeed } from '../../src/host/external/externalPanelFeed';
import type { ToDashboardMessage } from '../../src/shared/protocol';
import type { ExternalRunChange } from '../../src/host/external/externalWatcher';
import {
  appendBoardLine,
  appendNemoRlStep,
  appendTrlStep,
  appendVerlStep,
  writeBoardRun,
  writeNemoRlRun,
  writeTrlRun,
  writeVerlRun,
} from '../fixtures/engineRuns';
import { appendTrlGrpoStep, writeTrlGrpoRun } from '../fixtures/trlGrpoRun';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { responseText } from '../../src/shared/packedTrace';

/** The watcher's next change, or a failure after `timeoutMs`. */
function nextChange(source: ExternalRunSource, act: () => void, timeoutMs = 5000): Promise<ExternalRunChange> {
  const watcher = source.watch(20, 200);
  return new Promise<ExternalRunChange>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no change reported')), timeoutMs);
    watcher.onDidChange((change) => {
      clearTimeout(timer);
      resolve(change);
    });
    // The first scan records the folder as it is; the act comes after it.
    void watcher.settled().then(() => setTimeout(act, 50));
  }).finally(() => watcher.dispose());
}

test('NeMo-RL: header, steps and packed rows with the absent fields listed and explained', async () => {
  const folder = writeNemoRlRun();
  const source = await ExternalRunSource.open(folder);
  assert.equal(source.format, 'nemo-rl');
  const info = await source.runInfo();
  assert.equal(info.name, path.basename(folder));
  assert.equal(info.engine, 'NeMo-RL');
  assert.equal(info.cliprange.value, undefined);
  assert.match((info.cliprange as { missing: string }).missing, /NeMo-RL does not record/);
  const kl = info.notLogged?.find((entry) => entry.field === 'kl');
  assert.ok(kl && /RunWriter/.test(kl.how));
  assert.deepEqual(await source.listSteps(), [1, 2]);
  const trace = await source.packed(2);
  assert.equal(trace.numSamples, 3);
  assert.equal(trace.numTokens, 2 + 3 + 4);
  for (const field of ['kl', 'value', 'ref_logprob', 'tokens', 'ratio', 'clip_class'] as const)
    assert.ok(trace.absent.includes(field), field);
  assert.ok(!trace.absent.includes('logprob') && !trace.absent.includes('advantage'));
  assert.ok(Number.isNaN(trace.values.kl[0]), 'an absent field is NaN, not 0');
  assert.equal(trace.values.logprob[0], -0.5);
  assert.equal(trace.tokenText.slice(0, 3), '#21', 'ids stand in for the text the dump lacks');
  assert.deepEqual(source.problems, []);
});

test('verl: text-only rows, every per-token field absent; a malformed line is a file:line problem', async () => {
  const folder = writeVerlRun();
  appendFileSync(path.join(folder, '2.jsonl'), '{"input": 3, "step": 2}\n');
  const source = await ExternalRunSource.open(folder);
  assert.equal(source.engine, 'verl');
  assert.deepEqual(await source.listSteps(), [1, 2]);
  const trace = await source.packed(2);
  assert.equal(trace.numSamples, 3);
  assert.equal(trace.numTokens, 0);
  // Without tokens, the responses are kept as text: the dashboard's rows show them.
  assert.deepEqual(
    [0, 1, 2].map((s) => responseText(trace, s)),
    ['4', 'hi', '一 二'],
  );
  for (const field of ['tokens', 'token_ids', 'logprob', 'kl', 'advantage', 'entropy'] as const)
    assert.ok(trace.absent.includes(field), field);
  assert.deepEqual(source.problems, [
    `${path.join(folder, '2.jsonl')}:4: field "input" must be a string (the decoded text), not number; line skipped`,
  ]);
  const info = await source.runInfo();
  assert.ok(info.notLogged?.some((entry) => entry.field === 'entropy' && /verl adapter/.test(entry.how)));
  assert.ok(info.notLogged?.some((entry) => entry.field === 'metrics'));
});

test('RL Logging Board: rank files merged by step; per-token log-probs present, kl absent', async () => {
  const folder = writeBoardRun();
  const source = await ExternalRunSource.open(folder);
  assert.equal(source.engine, 'RL Logging Board');
  assert.deepEqual(await source.listSteps(), [1, 2]);
  const trace = await source.packed(1);
  assert.equal(trace.numSamples, 2);
  assert.deepEqual(trace.prompts, ['Q1', 'Q2']);
  assert.ok(trace.absent.includes('kl') && trace.absent.includes('advantage'));
  assert.ok(!trace.absent.includes('logprob') && !trace.absent.includes('tokens'));
  await assert.rejects(source.readStep(9), /no line of step 9/);
});

test('TRL: log_history metrics from checkpoints; a folder without completions says how to get rollouts', async () => {
  const folder = writeTrlRun();
  const source = await ExternalRunSource.open(folder);
  assert.equal(source.engine, 'TRL');
  const points = await source.readMetrics();
  assert.equal(points.filter((point) => 'reward' in point).length, 4);
  assert.deepEqual(await source.listSteps(), []);
  const info = await source.runInfo();
  assert.match(info.notLogged?.find((entry) => entry.field === 'rollouts')?.how ?? '', /log_completions=True/);
  assert.equal(info.step, 4);
  assert.equal(info.maxSteps, 4);
});

test('TRL GRPO before a checkpoint: TensorBoard scalars, completions parquet, per-token fields explained', async () => {
  const source = await ExternalRunSource.open(writeTrlGrpoRun([1, 2]));
  assert.equal(source.engine, 'TRL');
  const points = await source.readMetrics();
  assert.deepEqual(
    points.map((point) => [point.step, point.reward, point['rewards/accuracy_reward/mean']]),
    [
      [1, Math.fround(0.875), Math.fround(0.375)],
      [2, Math.fround(1), Math.fround(0.5)],
    ],
  );
  assert.deepEqual(await source.listSteps(), [1, 2]);
  const trace = await source.packed(2);
  assert.equal(trace.numSamples, 4);
  // The score is the sum of the two reward functions' columns (named from rewards/<name>/mean).
  assert.deepEqual([...trace.score], [2, 1, 1, 0]);
  assert.deepEqual(
    [0, 1, 2, 3].map((s) => responseText(trace, s)),
    ['5 (step 2)', 'six', '7', 'nine is prime'],
  );
  for (const field of ['tokens', 'logprob', 'kl', 'ratio', 'clip_class', 'entropy'] as const)
    assert.ok(trace.absent.includes(field), field);
  const info = await source.runInfo();
  assert.equal(info.stage, 'grpo');
  assert.ok(!info.notLogged?.some((entry) => entry.field === 'rollouts' || entry.field === 'metrics'));
  assert.match(info.notLogged?.find((entry) => entry.field === 'kl')?.how ?? '', /RLHFLensGRPOMixin/);
  assert.deepEqual(source.problems, []);
});

test('a folder of no engine: the error lists each engine`s files; a run.json folder is a native run', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'rlhf-external-'));
  writeFileSync(path.join(empty, 'notes.txt'), 'hello\n');
  await assert.rejects(ExternalRunSource.open(empty), (error: Error) => {
    for (const needle of [
      'trainer_state.json',
      'train_data_step<N>.jsonl',
      '<global_step>.jsonl',
      '"prompt"',
      'run.json',
    ])
      assert.ok(error.message.includes(needle), needle);
    return true;
  });
  writeFileSync(path.join(empty, 'run.json'), '{}');
  await assert.rejects(ExternalRunSource.open(empty), /opens as an rlhf-lens run/);
});

test('live: a new NeMo-RL step file, a verl dump, a board line and a TRL checkpoint are reported', async () => {
  const nemo = await ExternalRunSource.open(writeNemoRlRun());
  const nemoChange = await nextChange(nemo, () => appendNemoRlStep(nemo.folder, 3));
  assert.deepEqual(nemoChange, { metrics: false, steps: [3] });
  assert.deepEqual(await nemo.listSteps(), [1, 2, 3]);
  assert.equal((await nemo.packed(3)).numSamples, 1);

  const verl = await ExternalRunSource.open(writeVerlRun());
  assert.deepEqual(await nextChange(verl, () => appendVerlStep(verl.folder, 5)), { metrics: false, steps: [5] });
  assert.deepEqual(await verl.listSteps(), [1, 2, 5]);

  const board = await ExternalRunSource.open(writeBoardRun());
  assert.equal((await board.packed(2)).numSamples, 1);
  assert.deepEqual(await nextChange(board, () => appendBoardLine(board.folder, 1, 2)), {
    metrics: false,
    steps: 'all',
  });
  assert.equal((await board.packed(2)).numSamples, 2, 'the appended line joins its step');

  const trl = await ExternalRunSource.open(writeTrlRun());
  const before = (await trl.readMetrics()).length;
  const trlChange = await nextChange(trl, () => appendTrlStep(trl.folder, 5));
  assert.equal(trlChange.metrics, true);
  assert.equal((await trl.readMetrics()).length, before + 1);

  // A GRPO run between checkpoints: its event file grows and a completions file appears.
  const grpo = await ExternalRunSource.open(writeTrlGrpoRun([1, 2]));
  assert.equal((await grpo.readMetrics()).length, 2);
  const grpoChange = await nextChange(grpo, () => appendTrlGrpoStep(grpo.folder, 3));
  assert.ok(grpoChange.metrics || (Array.isArray(grpoChange.steps) && grpoChange.steps.includes(3)));
  assert.deepEqual(
    (await grpo.readMetrics()).map((point) => point.step),
    [1, 2, 3],
  );
  assert.deepEqual(await grpo.listSteps(), [1, 2, 3]);
});

test('rlhf.externalRuns entries: absolute, relative to the workspace folder, ~ expanded; each folder once', () => {
  const home = '/home/me';
  assert.deepEqual(resolveRunFolder('/data/run', '/ws', home), { folder: '/data/run' });
  assert.deepEqual(resolveRunFolder('logs/exp_001', '/ws', home), { folder: '/ws/logs/exp_001' });
  assert.deepEqual(resolveRunFolder('~/out', '/ws', home), { folder: '/home/me/out' });
  assert.deepEqual(resolveRunFolder('~', undefined, home), { folder: '/home/me' });
  assert.equal(resolveRunFolder('  ', '/ws', home), undefined);
  assert.match((resolveRunFolder('out', undefined, home) as { problem: string }).problem, /no workspace folder/);
  const { folders, problems } = externalFolders(['out', 3, '/ws/out/'], ['/ws/out', '/other'], '/ws', home);
  assert.deepEqual(folders, [
    { folder: '/ws/out', origin: 'setting' },
    { folder: '/other', origin: 'opened' },
  ]);
  assert.deepEqual(problems, ['rlhf.externalRuns: 3 is not a path (a string)']);
});

test('the dashboard feed sends header, metrics and steps, and the shown step again when its file grows', async () => {
  const board = await ExternalRunSource.open(writeBoardRun());
  const messages: ToDashboardMessage[] = [];
  const warnings: string[] = [];
  let notify: (() => void) | undefined;
  const feed = new ExternalPanelFeed(
    board,
    (message) => {
      messages.push(message);
      notify?.();
    },
    { warn: (message) => warnings.push(message), error: (message) => warnings.push(message) },
  );
  try {
    await feed.sendAll();
    assert.deepEqual(
      messages.map((message) => message.type),
      ['dashboard/run', 'dashboard/metrics', 'dashboard/steps'],
      'the header first, as for a native run',
    );
    const run = messages.find((message) => message.type === 'dashboard/run');
    assert.equal(run?.type === 'dashboard/run' && run.run.engine, 'RL Logging Board');
    const steps = messages.find((message) => message.type === 'dashboard/steps');
    assert.deepEqual(steps?.type === 'dashboard/steps' && steps.steps, [1, 2]);
    const metrics = messages.find((message) => message.type === 'dashboard/metrics');
    assert.deepEqual(metrics?.type === 'dashboard/metrics' && metrics.points, []);
    await feed.sendTrace(2);
    const traces = () =>
      messages.flatMap((message) => (message.type === 'dashboard/trace' ? [message.trace.numSamples] : []));
    assert.deepEqual(traces(), [1]);
    // Give the feed's watcher its first scan, then append as the engine does.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const resent = new Promise<void>((resolve) => {
      notify = () => traces().length === 2 && resolve();
    });
    appendBoardLine(board.folder, 0, 2);
    await resent;
    assert.deepEqual(traces(), [1, 2]);
    assert.deepEqual(warnings, []);
  } finally {
    feed.dispose();
  }
});

test('NeMo-RL ids get their texts from the run`s tokenizer.json (then tokens are no longer absent)', async () => {
  const folder = writeNemoRlRun();
  const withoutTokenizer = await (await ExternalRunSource.open(folder)).packed(2);
  assert.ok(withoutTokenizer.absent.includes('tokens'));
  // The tokenizer the run was trained with, saved in Hugging Face's format beside the dumps.
  const tokenizer = new BpeTokenizer(trainBpe(['add five and seven, then two. '.repeat(20)], { vocabSize: 300 }));
  await tokenizer.save(folder);
  const source = await ExternalRunSource.open(folder);
  const trace = await source.packed(2);
  assert.ok(!trace.absent.includes('tokens'));
  assert.ok(trace.absent.includes('kl'));
  const ids = [...trace.tokenIds.slice(0, trace.tokenStart[1])];
  assert.ok(ids.length > 0);
  assert.equal(trace.tokenText.slice(0, trace.tokenTextStart[trace.tokenStart[1]]), tokenizer.decode(ids));
  assert.deepEqual(source.problems, []);
});
