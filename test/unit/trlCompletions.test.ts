// The TRL completions importer (src/shared/importers/trlCompletions.ts) against parquet files written the way
// GRPOTrainer.log writes them (`pd.DataFrame(...).to_parquet`), by a maintained writer in pyarrow's schema
// (test/fixtures/trlCompletionsFixture.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import {
  decodeTrlCompletionsParquet,
  listTrlCompletionSteps,
  readTrlCompletionsStep,
  trlCompletionsFile,
  trlNotLogged,
  trlRewardNames,
} from '../../src/shared/importers/trlCompletions';
import { detectRunFormat } from '../../src/shared/importers/runFormat';
import { UserError } from '../../src/shared/userError';
import {
  trlCompletionsParquet,
  writeTrlCompletions,
  type TrlCompletionsTable,
} from '../fixtures/trlCompletionsFixture';

/** Two prompts × two generations, two reward functions (one returned None once), one log_extra column. */
const stepTable = (step: number): TrlCompletionsTable => ({
  step,
  prompt: [
    'user\nWhat is 2+2?\nassistant\n',
    'user\nWhat is 2+2?\nassistant\n',
    'user\n数一数\nassistant\n',
    'user\n数一数\nassistant\n',
  ],
  completion: ['4', 'five', '一 二', ''],
  rewards: { accuracy_reward: [1, 0, 1, Number.NaN], format_reward: [0.5, 0.5, 0, Number.NaN] },
  extra: { pred: ['4', '5', '1 2', null] },
  advantage: [0.7, -0.7, 0.7, 0],
});

const outputDir = () => mkdtempSync(path.join(tmpdir(), 'rlhf-trl-'));

test('TRL completions: the fixture has the schema and pandas metadata pyarrow writes', () => {
  const metadata = parquetMetadata(trlCompletionsParquet(stepTable(5)).buffer as ArrayBuffer);
  assert.deepEqual(
    metadata.schema.map((element) => [element.name, element.type, element.converted_type]),
    [
      ['schema', undefined, undefined],
      ['step', 'INT64', undefined],
      ['prompt', 'BYTE_ARRAY', 'UTF8'],
      ['completion', 'BYTE_ARRAY', 'UTF8'],
      ['accuracy_reward', 'DOUBLE', undefined],
      ['format_reward', 'DOUBLE', undefined],
      ['pred', 'BYTE_ARRAY', 'UTF8'],
      ['advantage', 'DOUBLE', undefined],
    ],
  );
  assert.ok(metadata.row_groups[0].columns.every((column) => column.meta_data?.codec === 'SNAPPY'));
  const pandas = metadata.key_value_metadata?.find((entry) => entry.key === 'pandas')?.value ?? '';
  assert.match(pandas, /^\{"index_columns": \[\{"kind": "range", "name": null, "start": 0, "stop": 4, "step": 1\}\]/);
  assert.match(pandas, /\{"name": "pred", "field_name": "pred", "pandas_type": "unicode", "numpy_type": "object"/);
});

test('TRL completions: steps listed from completions/, a table becomes PPO rows with rewards as columns', async () => {
  const dir = outputDir();
  writeTrlCompletions(dir, stepTable(5));
  writeTrlCompletions(dir, stepTable(10));
  writeFileSync(path.join(dir, 'completions', 'notes.txt'), 'not a table');
  assert.deepEqual(await listTrlCompletionSteps(dir), [5, 10]);
  assert.equal(path.basename(trlCompletionsFile(dir, 5)), 'completions_00005.parquet');

  const { table, problems } = await readTrlCompletionsStep(dir, 10);
  assert.deepEqual(problems, []);
  assert.equal(table.kind, 'ppo');
  assert.equal(table.version, 'trl-completions-parquet');
  assert.equal(table.numRows, 4);
  assert.deepEqual(table.columns, [
    'step',
    'sample',
    'prompt',
    'response',
    'score',
    'sample_advantage',
    'accuracy_reward',
    'format_reward',
    'pred',
  ]);
  const first = table.row(0) as unknown as Record<string, unknown>;
  assert.equal(first.step, 10);
  assert.equal(first.sample, 0);
  assert.equal(first.prompt, 'user\nWhat is 2+2?\nassistant\n');
  assert.equal(first.response, '4');
  assert.equal(first.score, 1.5);
  assert.equal(first.accuracy_reward, 1);
  assert.equal(first.format_reward, 0.5);
  assert.equal(first.sample_advantage, 0.7);
  assert.equal(first.pred, '4');
  // Not logged by TRL: absent, never 0.
  assert.deepEqual(first.tokens, []);
  assert.deepEqual(first.logprob, []);
  assert.deepEqual(first.kl, []);
  const third = table.row(2) as unknown as Record<string, unknown>;
  assert.equal(third.response, '一 二');
  assert.equal(third.score, 1);
  // Every reward function returned None: no score (NaN), the reward columns null.
  const last = table.row(3) as unknown as Record<string, unknown>;
  assert.ok(Number.isNaN(last.score));
  assert.equal(last.accuracy_reward, null);
  assert.equal(last.pred, null);
});

test('TRL completions: reward names from log_history tell a numeric log_extra column from a reward', async () => {
  const dir = outputDir();
  writeTrlCompletions(dir, {
    ...stepTable(3),
    rewards: { accuracy_reward: [1, 0, 1, 0] },
    extra: { length: [1, 4, 3, 0], reward: ['a', 'b', 'c', 'd'] },
  });
  const guessed = await readTrlCompletionsStep(dir, 3);
  // Without names, the number column right after the rewards is taken for one (documented).
  assert.equal((guessed.table.row(1) as unknown as Record<string, unknown>).score, 4);
  const names = trlRewardNames(['loss', 'reward', 'rewards/accuracy_reward/mean', 'rewards/accuracy_reward/std']);
  assert.deepEqual(names, ['accuracy_reward']);
  const { table, problems } = await readTrlCompletionsStep(dir, 3, { rewardNames: names });
  assert.deepEqual(problems, []);
  const second = table.row(1) as unknown as Record<string, unknown>;
  assert.equal(second.score, 0);
  assert.equal(second.length, 4);
  // An extra column named like a lens column keeps its data under trl_<name>.
  assert.equal(second.trl_reward, 'b');
  assert.deepEqual(second.reward, []);
});

test('TRL completions: a truncated file (pandas still writing) is a problem naming it, not a crash', async () => {
  const dir = outputDir();
  const file = writeTrlCompletions(dir, stepTable(7));
  const whole = readFileSync(file);
  writeFileSync(file, whole.subarray(0, Math.floor(whole.length / 2)));
  const { table, problems } = await readTrlCompletionsStep(dir, 7);
  assert.equal(table.numRows, 0);
  assert.equal(problems.length, 1);
  assert.ok(problems[0].startsWith(`${file}: not a readable parquet file (`), problems[0]);

  const garbage = await decodeTrlCompletionsParquet('x.parquet', new Uint8Array([1, 2, 3]), 7);
  assert.match(garbage.problems[0], /^x\.parquet: not a readable parquet file/);
  await assert.rejects(
    readTrlCompletionsStep(dir, 8),
    (error) => error instanceof UserError && /step 8/.test(error.message),
  );
});

test('TRL completions: rows of another step than the file name says are skipped and named', async () => {
  const bytes = trlCompletionsParquet(stepTable(4));
  const { table, problems } = await decodeTrlCompletionsParquet('c.parquet', bytes, 6);
  assert.equal(table.numRows, 0);
  assert.equal(problems.length, 4);
  assert.equal(problems[0], 'c.parquet: row 0: column "step" is 4 in the file of step 6; row skipped');
});

test('TRL completions: the "not logged" list names every per-token field and how to get it', () => {
  const fields = trlNotLogged.map((entry) => entry.field);
  for (const field of ['tokens', 'logprob', 'ref_logprob', 'kl', 'ratio', 'clip_class', 'entropy', 'value'])
    assert.ok(fields.includes(field), field);
  assert.ok(trlNotLogged.find((entry) => entry.field === 'kl')?.how.includes('RLHFLensGRPOMixin'));
});

test('TRL completions: an output_dir with only completions/ (before the first checkpoint) is a TRL run', async () => {
  const dir = outputDir();
  assert.equal(await detectRunFormat(dir), undefined);
  writeTrlCompletions(dir, stepTable(1));
  assert.equal(await detectRunFormat(dir), 'trl');
});
