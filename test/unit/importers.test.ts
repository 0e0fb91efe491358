// Importers of other engines' runs (src/shared/importers/), against fixture folders written by real Python the way
// each engine writes them:
// - TRL / transformers: `TrainerState.save_to_json` (huggingface/transformers, src/transformers/trainer_callback.py):
//   `json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"` into `checkpoint-<n>/trainer_state.json`;
//   each `log_history` entry is `{**logs, "step": self.state.global_step}` (`Trainer.log`, trainer.py).
// - NeMo-RL: `Logger.log_batched_dict_as_jsonl` (NVIDIA-NeMo/RL, nemo_rl/utils/logger.py): per sample, a batch of
//   one (`make_microbatch_iterator(1)`, tensors `.tolist()`-ed), `json.dumps({**sample, "idx": i}, default=str)`;
//   the fields of `grpo_train`'s `train_data_step{N}.jsonl` and `validate`'s `val_data_step{N}.jsonl`
//   (nemo_rl/algorithms/grpo.py).
import { nemoRun, pythonFixture, trlRun } from '../fixtures/engineRuns';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeNemoRlJsonl, listNemoRlSteps, readNemoRlStep } from '../../src/shared/importers/nemoRl';
import { parsePythonJson } from '../../src/shared/importers/pythonJson';
import { detectRunFormat } from '../../src/shared/importers/runFormat';
import { decodeTrainerState, readTrlMetrics } from '../../src/shared/importers/trlTrainerState';

test('TRL: the newest checkpoint`s log_history becomes metrics points under TRL`s names', async () => {
  const out = pythonFixture(trlRun);
  assert.equal(await detectRunFormat(out), 'trl');
  const metrics = await readTrlMetrics(out);
  assert.equal(metrics.file, path.join(out, 'checkpoint-4', 'trainer_state.json'));
  assert.deepEqual(metrics.problems, []);
  assert.equal(metrics.globalStep, 4);
  assert.equal(metrics.maxSteps, 4);
  assert.equal(metrics.points.length, 6);
  assert.deepEqual(
    metrics.points.map((point) => point.step),
    [1, 2, 3, 4, 4, 4],
  );
  assert.deepEqual(metrics.points[1], {
    loss: 0.2,
    grad_norm: 1.5,
    learning_rate: 1e-6,
    reward: 0.5,
    kl: 0.02,
    'completions/mean_length': 12,
    'clip_ratio/region_mean': 0,
    epoch: 0.5,
    step: 2,
  });
  // Python wrote the bare token NaN: read as NaN, not a parse error.
  assert.ok(Number.isNaN(metrics.points[2].grad_norm));
  assert.equal(metrics.points[4].eval_loss, 0.5);
  assert.equal(metrics.points[5].train_runtime, 12.5);
});

test('TRL: a root trainer_state.json saved after the last checkpoint wins; a bad entry is skipped', async () => {
  const out = pythonFixture(`${trlRun}
state.global_step = 5
state.log_history.append({"loss": 1.0})
state.log_history.append("not a dict")
log({"loss": 0.05})
state.save_to_json(os.path.join(out, "trainer_state.json"))
`);
  const metrics = await readTrlMetrics(out);
  assert.equal(metrics.file, path.join(out, 'trainer_state.json'));
  const text = readFileSync(metrics.file, 'utf8').split('\n');
  const lineOf = (needle: string) => text.findIndex((line) => line.includes(needle)) + 1;
  const missingStep = lineOf('"loss": 1.0') - 1;
  assert.equal(text[missingStep - 1], '    {');
  assert.deepEqual(metrics.problems, [
    `${metrics.file}:${missingStep}: log_history[6]: field "step" must be a whole number ≥ 0, not undefined; ` +
      'entry skipped',
    `${metrics.file}:${lineOf('"not a dict"')}: log_history[7]: expected a JSON object; entry skipped`,
  ]);
  assert.deepEqual(metrics.points.at(-1), { loss: 0.05, step: 5 });
  assert.equal(metrics.points.length, 7);
});

test('TRL: a folder without trainer_state.json, or a file that is not one, is an error naming it', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'rlhf-import-'));
  await assert.rejects(readTrlMetrics(empty), (error: Error) => {
    assert.match(error.message, new RegExp(`^${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no trainer_state.json`));
    return true;
  });
  assert.throws(
    () => decodeTrainerState('{"log_history": 3}', 'x/trainer_state.json'),
    /x\/trainer_state.json: field "log_history" must be a list/,
  );
  // Not save_to_json's layout: the entry is named by its index only.
  assert.deepEqual(decodeTrainerState('{"log_history": [{"loss": 1}]}', 'z.json').problems, [
    'z.json: log_history[0]: field "step" must be a whole number ≥ 0, not undefined; entry skipped',
  ]);
  assert.throws(() => decodeTrainerState('[1]', 'y.json'), /^UserError: y.json: expected a JSON object/);
  assert.equal(await detectRunFormat(empty), undefined);
});

test('parsePythonJson reads NaN and ±Infinity outside strings and leaves strings alone', () => {
  assert.deepEqual(parsePythonJson('{"a": [NaN, Infinity, -Infinity, 1], "b": "NaN \\" Infinity"}'), {
    a: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1],
    b: 'NaN " Infinity',
  });
  assert.throws(() => parsePythonJson('{"a": nan}'), SyntaxError);
});

/**
 * grpo_train's log_data for a batch of 3 (prompt of 3 tokens, responses of 2–3 tokens, padding 0 to 7), then
 * Logger.log_batched_dict_as_jsonl; and validate's val_log_data.
 */

test('NeMo-RL: a train dump becomes PPO rows over the response span, with what NeMo-RL logs', async () => {
  const out = pythonFixture(nemoRun);
  assert.equal(await detectRunFormat(out), 'nemo-rl');
  assert.deepEqual(await listNemoRlSteps(out), [1, 2]);
  assert.deepEqual(await listNemoRlSteps(out, 'val'), [2]);
  const { table, problems } = await readNemoRlStep(out, 2);
  assert.deepEqual(problems, []);
  assert.equal(table.kind, 'ppo');
  assert.equal(table.version, 'nemo-rl-jsonl');
  assert.equal(table.numRows, 3);
  assert.deepEqual(table.columns, [
    'step',
    'sample',
    'prompt',
    'response',
    'score',
    'token_ids',
    'logprob',
    'advantage',
    'sample_loss_mask',
    'prompt_length',
    'loss_mask',
    'prev_logprob',
  ]);
  const first = table.row(0);
  assert.equal(first.step, 2);
  assert.equal(first.sample, 0);
  assert.equal(first.prompt, 'What is 2+2?');
  assert.equal(first.response, '4');
  assert.equal(first.score, 1);
  assert.deepEqual(first.token_ids, [21, 22]);
  assert.deepEqual(first.logprob, [-0.5, -0.25]);
  assert.deepEqual(first.advantage, [1, 1]);
  assert.deepEqual(first.prev_logprob, [-0.5, -0.3]);
  assert.deepEqual(first.loss_mask, [1, 1]);
  assert.equal(first.prompt_length, 3);
  // Not logged by NeMo-RL: absent, never 0.
  assert.deepEqual(first.tokens, []);
  assert.deepEqual(first.ref_logprob, []);
  assert.deepEqual(first.kl, []);
  assert.deepEqual(first.value, []);
  assert.deepEqual(first.entropy, []);
  assert.deepEqual(first.ratio, []);
  assert.equal(first.clip_class, null);
  assert.equal(first.oracle_score, null);
  // Python's NaN logprob read as NaN; a masked-out token inside the span keeps its place with loss_mask 0.
  const second = table.row(1);
  assert.ok(Number.isNaN(second.logprob[1]));
  const third = table.row(2);
  assert.deepEqual(third.token_ids, [41, 42, 43, 44]);
  assert.deepEqual(third.loss_mask, [1, 0, 1, 1]);
});

test('NeMo-RL: a val dump has text and reward only; roles say which message is the response', async () => {
  const out = pythonFixture(nemoRun);
  const { table, problems } = await readNemoRlStep(out, 2, 'val');
  assert.deepEqual(problems, []);
  assert.equal(table.numRows, 1);
  const row = table.row(0);
  assert.equal(row.prompt, 'What is 3+3?');
  assert.equal(row.response, '6');
  assert.equal(row.score, 1);
  assert.deepEqual(row.token_ids, []);
  assert.deepEqual(row.logprob, []);
});

test('NeMo-RL: a malformed line is reported as file:line and skipped; a missing step names its file', async () => {
  const out = pythonFixture(nemoRun);
  const file = path.join(out, 'train_data_step1.jsonl');
  const lines = [
    '{"content": [["a", "b"]], "rewards": ["high"], "idx": 0}',
    'not json',
    '{"content": [["a", "b"]], "rewards": [0.5], "input_lengths": [3], "token_ids": [[1, 2, 3]], ' +
      '"token_loss_mask": [[0, 1]], "idx": 2}',
    '{"content": [["p", "r"]], "rewards": [0.5], "input_lengths": [3], "token_ids": [[1, 2, 3]], ' +
      '"token_loss_mask": [[0, 1, 1]], "generation_logprobs": [[0, -1, -2]], "idx": 3}',
  ];
  writeFileSync(file, lines.join('\n') + '\n');
  const { table, problems } = decodeNemoRlJsonl(file, lines.join('\n') + '\n', 1);
  assert.equal(problems.length, 3);
  assert.ok(problems[0].startsWith(`${file}:1: field "rewards"`));
  assert.ok(problems[1].startsWith(`${file}:2: not valid JSON`));
  assert.equal(problems[2], `${file}:3: field "token_loss_mask" has 2 entries but "input_lengths" is 3; line skipped`);
  assert.equal(table.numRows, 1);
  assert.deepEqual(table.row(0).logprob, [-1, -2]);
  assert.equal(table.row(0).sample, 3);

  rmSync(path.join(out, 'train_data_step2.jsonl'));
  await assert.rejects(readNemoRlStep(out, 2), (error: Error) => {
    assert.ok(
      error.message.startsWith(`${path.join(out, 'train_data_step2.jsonl')}: NeMo-RL train dump of step 2 is missing`),
    );
    return true;
  });
});

test('detectRunFormat: run.json is the lens`s own; a checkpoint-only TRL folder is TRL', async () => {
  const lens = mkdtempSync(path.join(tmpdir(), 'rlhf-import-'));
  writeFileSync(path.join(lens, 'run.json'), '{}\n');
  writeFileSync(path.join(lens, 'train_data_step1.jsonl'), '');
  assert.equal(await detectRunFormat(lens), 'rlhf-lens');
  const trl = mkdtempSync(path.join(tmpdir(), 'rlhf-import-'));
  mkdirSync(path.join(trl, 'checkpoint-10'));
  assert.equal(await detectRunFormat(trl), undefined);
  writeFileSync(path.join(trl, 'checkpoint-10', 'trainer_state.json'), '{}\n');
  assert.equal(await detectRunFormat(trl), 'trl');
  assert.equal(await detectRunFormat(path.join(trl, 'missing')), undefined);
});
