// The verl and RL Logging Board importers (src/shared/importers/verl.ts, rlLoggingBoard.ts), against fixture folders
// written by real Python the way each writer writes them:
// - verl: `RayPPOTrainer._dump_generations` (volcengine/verl, verl/trainer/ppo/ray_trainer.py): per sample
//   `json.dumps({"input", "output", "gts", "score", "step", **reward_extra_infos}, ensure_ascii=False)`, lines
//   joined by "\n" plus a final "\n", into `<rollout_data_dir>/<global_step>.jsonl` (mode "w").
// - RL Logging Board: `RLLoggingBoardLogger.log` (a verl fork's verl/utils/rl_logging_board_utils.py, DeepEyes):
//   per sample `json.dumps(cur_sample, ensure_ascii=False) + "\n"` appended to `rollout_data_rank<r>.jsonl`; the
//   fields the board reads (`load_log_file`, OpenRLHF/OpenRLHF, openrlhf/utils/rl_logging_board/rl_logging_board.py).
import { boardRun, pythonFixture, verlRun } from '../fixtures/engineRuns';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  decodeRlLoggingBoard,
  listRlLoggingBoardFiles,
  readRlLoggingBoard,
} from '../../src/shared/importers/rlLoggingBoard';
import { detectRunFormat } from '../../src/shared/importers/runFormat';
import { decodeVerlJsonl, listVerlSteps, readVerlStep } from '../../src/shared/importers/verl';

test('verl: a rollout dump becomes PPO rows with text, score and extra infos, nothing per token', async () => {
  const out = path.join(pythonFixture(verlRun), 'rollouts');
  assert.equal(await detectRunFormat(out), 'verl');
  assert.deepEqual(await listVerlSteps(out), [1, 2]);
  const { table, problems } = await readVerlStep(out, 2);
  assert.deepEqual(problems, []);
  assert.equal(table.kind, 'ppo');
  assert.equal(table.version, 'verl-jsonl');
  assert.equal(table.numRows, 3);
  assert.deepEqual(table.columns, [
    'step',
    'sample',
    'prompt',
    'response',
    'score',
    'ground_truth',
    'acc',
    'reward_extra_reward',
  ]);
  const first = table.row(0) as unknown as Record<string, unknown>;
  assert.equal(first.step, 2);
  assert.equal(first.sample, 0);
  assert.equal(first.prompt, 'user: 2+2?');
  assert.equal(first.response, '4');
  assert.equal(first.score, 1);
  assert.equal(first.ground_truth, '4');
  assert.equal(first.acc, true);
  assert.equal(first.reward_extra_reward, 1);
  // Not logged by verl: absent, never 0.
  for (const key of ['tokens', 'token_ids', 'logprob', 'ref_logprob', 'kl', 'value', 'reward', 'advantage'])
    assert.deepEqual(first[key], [], key);
  assert.equal(first.clip_class, null);
  const second = table.row(1);
  assert.ok(Number.isNaN(second.score));
  const third = table.row(2) as unknown as Record<string, unknown>;
  assert.equal(third.response, '一 二');
  assert.deepEqual(third.ground_truth, { answer: '1 2' });
});

test('verl: a malformed line is reported as file:line and skipped; a missing step names its file', async () => {
  const out = path.join(pythonFixture(verlRun), 'rollouts');
  const file = path.join(out, '1.jsonl');
  const text = [
    '{"input": "a", "output": 7, "score": 1.0, "step": 1}',
    '{"input": "a", "output": "b", "score": 1.0, "step": 2}',
    'not json',
    '{"input": "p", "output": "r", "score": "high", "step": 1}',
    '{"input": "p", "output": "r", "score": -Infinity, "step": 1}',
  ].join('\n');
  const { table, problems } = decodeVerlJsonl(file, text + '\n', 1);
  assert.equal(problems.length, 4);
  assert.equal(problems[0], `${file}:1: field "output" must be a string (the decoded text), not number; line skipped`);
  assert.equal(problems[1], `${file}:2: field "step" is 2 in the file of step 1; line skipped`);
  assert.ok(problems[2].startsWith(`${file}:3: not valid JSON`));
  assert.ok(problems[3].startsWith(`${file}:4: field "score" must be a number`));
  assert.equal(table.numRows, 1);
  assert.equal(table.row(0).sample, 4);
  // Python's -Infinity is read, then carried as the lens's JSONL carries any non-finite number: NaN.
  assert.ok(Number.isNaN(table.row(0).score));

  rmSync(path.join(out, '2.jsonl'));
  await assert.rejects(readVerlStep(out, 2), (error: Error) => {
    assert.ok(error.message.startsWith(`${path.join(out, '2.jsonl')}: verl rollout dump of step 2 is missing`));
    return true;
  });
});

test('RL Logging Board: rank files are merged by step into per-token PPO rows', async () => {
  const out = pythonFixture(boardRun);
  assert.equal(await detectRunFormat(out), 'rl-logging-board');
  assert.deepEqual(
    (await listRlLoggingBoardFiles(out)).map((file) => path.basename(file)),
    ['rollout_data_rank0.jsonl', 'rollout_data_rank1.jsonl'],
  );
  const { steps, tables, problems } = await readRlLoggingBoard(out);
  assert.deepEqual(problems, []);
  assert.deepEqual(steps, [1, 2]);
  const table = tables.get(1)!;
  assert.equal(table.kind, 'ppo');
  assert.equal(table.version, 'rl-logging-board-jsonl');
  assert.equal(table.numRows, 2);
  assert.deepEqual(table.columns, [
    'step',
    'sample',
    'prompt',
    'response',
    'score',
    'tokens',
    'logprob',
    'ref_logprob',
    'value',
    'reward',
    'rank',
    'ground_truth',
    'ref_response',
    'ref_reward',
  ]);
  const first = table.row(0) as unknown as Record<string, unknown>;
  assert.equal(first.step, 1);
  assert.equal(first.sample, 0);
  assert.equal(first.rank, 0);
  assert.equal(first.prompt, 'Q1');
  assert.equal(first.response, 'A b');
  assert.equal(first.score, 1);
  assert.deepEqual(first.tokens, ['A', ' b']);
  assert.deepEqual(first.logprob, [-0.5, -0.25]);
  assert.deepEqual(first.ref_logprob, [-0.75, -0.25]);
  assert.deepEqual(first.reward, [0, 1]);
  assert.equal(first.ground_truth, 'A');
  // Not in the format (kl: the board derives its own, k3, from the log-probs): absent, never 0.
  for (const key of ['kl', 'value', 'advantage', 'return', 'entropy', 'ratio']) assert.deepEqual(first[key], [], key);
  const second = table.row(1) as unknown as Record<string, unknown>;
  assert.equal(second.sample, 1);
  assert.equal(second.rank, 1);
  // Tokens beyond the log-probs (padding) are cut off, as the board does.
  assert.deepEqual(second.tokens, ['c']);
  assert.deepEqual(second.value, [0.25]);
  assert.equal(second.ref_response, 'd');
  assert.equal(second.ref_reward, 0.25);
  const later = tables.get(2)!.row(0);
  assert.equal(later.sample, 0);
  assert.ok(Number.isNaN((later.logprob as number[])[0]));
});

test('RL Logging Board: a malformed line is reported as file:line and skipped, the rest kept', () => {
  const file = '/logs/rollout_data_rank3.jsonl';
  const text = [
    '{"step": "4", "prompt": "p", "response": "r", "reward": 1.0, "logprobs": [-1.0], "ref_logprobs": [-1.5]}',
    '{"step": 4.5, "prompt": "p", "response": "r", "reward": 1.0}',
    '{"step": 4, "prompt": "p", "response": "r", "reward": 1.0, "logprobs": [-1.0], "ref_logprobs": [-1.5, -2.0]}',
    '{"step": 4, "prompt": "p", "response": "r", "reward": 1.0, "logprobs": [-1.0, -2.0], "response_tokens": ["x"]}',
    '{"step": 4, "prompt": ["p"], "response": "r"}',
    '{"step": 4, "prompt": "p", "response": "r", "reward": "good"}',
    '[1, 2]',
    '{"step": 4',
  ].join('\n');
  const { steps, tables, problems } = decodeRlLoggingBoard([{ file, text }]);
  assert.deepEqual(problems, [
    `${file}:2: field "step" must be a whole number ≥ 0, not 4.5; line skipped`,
    `${file}:3: field "ref_logprobs" has 2 entries but "logprobs" has 1 (one per response token); line skipped`,
    `${file}:4: field "response_tokens" has 1 entries but "logprobs" has 2; line skipped`,
    `${file}:5: field "prompt" must be a string; line skipped`,
    `${file}:6: field "reward" must be a number, not "good"; line skipped`,
    `${file}:7: expected a JSON object (one sample per line); line skipped`,
    problems[6],
  ]);
  assert.ok(problems[6].startsWith(`${file}:8: not valid JSON`));
  assert.deepEqual(steps, [4]);
  const row = tables.get(4)!.row(0) as unknown as Record<string, unknown>;
  assert.equal(row.rank, 3);
  assert.deepEqual(row.logprob, [-1]);
  assert.deepEqual(row.ref_logprob, [-1.5]);
});

test('detectRunFormat: a verl dump dir is verl; other JSONL is no run', async () => {
  const folder = mkdtempSync(path.join(tmpdir(), 'rlhf-import-'));
  writeFileSync(path.join(folder, 'notes.jsonl'), '{"text": "hello"}\n');
  assert.equal(await detectRunFormat(folder), undefined);
  writeFileSync(path.join(folder, 'eval.jsonl'), '{"step": 1, "prompt": "p", "response": "r", "reward": 0}\n');
  assert.equal(await detectRunFormat(folder), 'rl-logging-board');
  writeFileSync(path.join(folder, '3.jsonl'), '{"input": "p", "output": "r", "score": 0, "step": 3}\n');
  assert.equal(await detectRunFormat(folder), 'verl');
});
