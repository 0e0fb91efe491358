// JSONL traces written by the real Python package (python/, RunWriter) read by the host like Arrow ones:
// steps listed across .arrow/.jsonl/.jsonl.gz and rank shards, rows equal to what was written, shards merged in
// rank order with colliding samples renumbered, a malformed line skipped with its file:line, a field the writer
// did not log absent (never 0), and the folder watcher reacting to the new names.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { listTraceSteps, parseTraceFileName, TraceCache, traceFilesOf } from '../../src/host/runData';
import { RunFolderWatcher, type RunFolderChange } from '../../src/host/runFolderWatcher';
import { noTokenId, tokenTextAt } from '../../src/shared/packedTrace';
import { encodeTrace } from '../../src/shared/traceFormat';
import { decodeJsonlTrace } from '../../src/shared/traceJsonl';
import { fixtureRows } from '../webview/dashboardFixture';

const pythonDir = path.join(import.meta.dirname, '..', '..', 'python');

/** Runs `body` (Python, with `run_dir` and `RunWriter` in scope) against a fresh temp folder; returns the folder. */
function writeWithPython(body: string): string {
  return writeWithPythonInto(mkdtempSync(path.join(tmpdir(), 'rlhf-jsonl-')), body);
}

function writeWithPythonInto(dir: string, body: string): string {
  const script = [
    'import sys, warnings',
    `sys.path.insert(0, ${JSON.stringify(pythonDir)})`,
    'warnings.simplefilter("ignore")',
    'from rlhf_lens import RunWriter',
    `run_dir = ${JSON.stringify(dir)}`,
    body,
  ].join('\n');
  execFileSync('/usr/bin/python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return dir;
}

/** Two samples with every field, as Python literals and as the numbers the lens should read back. */
const fullSamples = `[
  {"prompt": "The film was", "response": " great fun", "token_ids": [7, 8], "tokens": [" great", " fun"],
   "score": 0.75, "oracle_score": 1.0, "logprob": [-0.5, -1.25], "ref_logprob": [-0.75, -1.0], "kl": [0.25, -0.25],
   "value": [0.1, 0.2], "reward": [-0.025, 0.775], "advantage": [0.5, -0.5], "return": [0.6, 0.7],
   "entropy": [2.0, 1.5], "ratio": [[1.0, 1.0], [1.25, 0.5]], "clip_class": [[0, 0], [1, 2]]},
  {"prompt": "I think", "response": " so", "token_ids": [9], "tokens": [" so"], "score": -0.5,
   "logprob": [-0.125], "ref_logprob": [-0.25], "kl": [0.125], "value": [0.0], "reward": [-0.5],
   "advantage": [1.0], "return": [-0.5], "entropy": [0.5], "ratio": [[1.0], [0.75]], "clip_class": [[0], [0]]}
]`;

test('a run written by RunWriter lists its steps and decodes to the rows written, plain and gzip', async () => {
  const dir = writeWithPython(`
with RunWriter(run_dir, name="jsonl", max_steps=3) as run:
    run.log_step_tokens(1, ${fullSamples})
    run.log_step_tokens(3, ${fullSamples}, compress=True)
`);
  writeFileSync(path.join(dir, 'traces', 'step-2.arrow'), encodeTrace('ppo', fixtureRows(2)));
  writeFileSync(path.join(dir, 'traces', '.step-4.jsonl.x1.tmp'), '{"step": 4');
  assert.deepEqual(await listTraceSteps(dir), [1, 2, 3], 'JSONL, gzip and Arrow steps together, no temporaries');
  assert.deepEqual(
    (await traceFilesOf(dir, 3)).map((file) => path.basename(file.file)),
    ['step-3.jsonl.gz'],
  );
  const cache = new TraceCache();
  for (const step of [1, 3]) {
    const table = await cache.table(dir, step);
    assert.ok(table.kind === 'ppo');
    assert.equal(table.numRows, 2);
    const row = table.row(0);
    assert.equal(row.step, step);
    assert.equal(row.sample, 0);
    assert.equal(row.prompt, 'The film was');
    assert.equal(row.response, ' great fun');
    assert.deepEqual(row.tokens, [' great', ' fun']);
    assert.deepEqual(row.token_ids, [7, 8]);
    assert.equal(row.score, 0.75);
    assert.equal(row.oracle_score, 1);
    assert.deepEqual(row.logprob, [-0.5, -1.25]);
    assert.deepEqual(row.ref_logprob, [-0.75, -1.0]);
    assert.deepEqual(row.kl, [0.25, -0.25]);
    assert.deepEqual(row.value, [0.1, 0.2]);
    assert.deepEqual(row.reward, [-0.025, 0.775]);
    assert.deepEqual(row.advantage, [0.5, -0.5]);
    assert.deepEqual(row.return, [0.6, 0.7]);
    assert.deepEqual(row.entropy, [2.0, 1.5]);
    assert.deepEqual(row.ratio, [
      [1.0, 1.0],
      [1.25, 0.5],
    ]);
    assert.deepEqual(row.clip_class, [
      [0, 0],
      [1, 2],
    ]);
    const second = table.row(1);
    assert.equal(second.sample, 1);
    assert.equal(second.oracle_score, null, 'an oracle score not logged is null');
    assert.deepEqual(second.ratio, [[1.0], [0.75]]);
  }
  const packed = await cache.packed(dir, 3);
  assert.equal(packed.numSamples, 2);
  assert.equal(packed.numTokens, 3);
  assert.equal(packed.numEpochs, 2);
  assert.equal(tokenTextAt(packed, 1), ' fun');
  assert.deepEqual([...packed.tokenIds], [7, 8, 9]);
  assert.equal(packed.ratio[packed.numTokens + 1], 0.5, "epoch 2's ratio of token 2");
  assert.deepEqual([...packed.clipClass!], [0, 0, 0, 1, 2, 0]);
  assert.ok(Math.abs(packed.values.kl[1] - -0.25) < 1e-7);
  assert.ok(Number.isNaN(packed.oracleScore[1]));
  assert.equal((await cache.table(dir, 2)).version, '2', 'the Arrow step next to them still reads as Arrow');
  assert.deepEqual(cache.problems, []);
  await assert.rejects(cache.table(dir, 4), (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, 'ENOENT');
    assert.match(error.message, /no trace of step 4/);
    return true;
  });
});

test('rank shards merge in rank order, renumbering samples that collide', async () => {
  const dir = writeWithPython(`
for rank in (0, 1, 2):
    run = RunWriter(run_dir, name="ranks", rank=rank, all_ranks=True)
    samples = [{"prompt": f"rank {rank} a", "kl": [rank]}, {"prompt": f"rank {rank} b", "kl": [rank, rank]}]
    run.log_step_tokens(5, samples, compress=(rank == 2))
`);
  const files = await traceFilesOf(dir, 5);
  assert.deepEqual(
    files.map((file) => [path.basename(file.file), file.rank]),
    [
      ['step-5.jsonl', 0],
      ['step-5.rank-1.jsonl', 1],
      ['step-5.rank-2.jsonl.gz', 2],
    ],
  );
  assert.deepEqual(await listTraceSteps(dir), [5]);
  const table = await new TraceCache().table(dir, 5);
  assert.ok(table.kind === 'ppo');
  const rows = Array.from({ length: table.numRows }, (_, i) => table.row(i));
  assert.deepEqual(
    rows.map((row) => [row.prompt, row.sample, row.rank]),
    [
      ['rank 0 a', 0, undefined],
      ['rank 0 b', 1, undefined],
      ['rank 1 a', 2, 1],
      ['rank 1 b', 3, 1],
      ['rank 2 a', 4, 2],
      ['rank 2 b', 5, 2],
    ],
  );
  assert.deepEqual(rows[5].kl, [2, 2]);
  assert.ok(table.columns.includes('rank'));
});

test('a step is read again when a shard arrives or the writer logs the step again', async () => {
  const dir = writeWithPython(`
RunWriter(run_dir, name="live", rank=0, all_ranks=True).log_step_tokens(1, [{"prompt": "first"}])
`);
  const cache = new TraceCache();
  const prompts = async () => {
    const table = await cache.table(dir, 1);
    return Array.from({ length: table.numRows }, (_, i) => table.row(i).prompt);
  };
  assert.deepEqual(await prompts(), ['first']);
  const again = await cache.table(dir, 1);
  assert.equal(again, await cache.table(dir, 1), 'unchanged files: the cached table');
  writeWithPythonInto(
    dir,
    'RunWriter(run_dir, name="live", rank=1, all_ranks=True).log_step_tokens(1, [{"prompt": "r1"}])',
  );
  assert.deepEqual(await prompts(), ['first', 'r1'], "rank 1's shard joins the step");
  writeWithPythonInto(
    dir,
    'RunWriter(run_dir, name="live", rank=0, all_ranks=True).log_step_tokens(1, [{"prompt": "redo"}], compress=True)',
  );
  assert.deepEqual(await prompts(), ['redo', 'r1'], 'the step logged again (now gzip) replaces the first file');
  assert.deepEqual(await listTraceSteps(dir), [1]);
});

test('a malformed line is skipped with its file:line, the others kept', async () => {
  const dir = writeWithPython(`
run = RunWriter(run_dir, name="bad")
run.log_step_tokens(2, [{"prompt": "a", "kl": [0.5]}, {"prompt": "b", "kl": [0.25]}])
`);
  const file = path.join(dir, 'traces', 'step-2.jsonl');
  appendFileSync(
    file,
    '{"step": 2, "sample": 2, "kl": [0.1, "x"]}\nnot json\n{"step": 2, "sample": 3, "prompt": "c"}\n',
  );
  appendFileSync(file, '{"step": 2, "sample": 4, "tokens": ["a", "b"], "kl": [1]}\n{"step": 7, "sample": 5}\n');
  const cache = new TraceCache();
  const table = await cache.table(dir, 2);
  assert.ok(table.kind === 'ppo');
  assert.deepEqual(
    Array.from({ length: table.numRows }, (_, i) => table.row(i).prompt),
    ['a', 'b', 'c'],
  );
  assert.equal(cache.problems.length, 4);
  assert.match(cache.problems[0], /step-2\.jsonl:3: field "kl" must be a list of numbers/);
  assert.match(cache.problems[1], /step-2\.jsonl:4: not valid JSON/);
  assert.match(cache.problems[2], /step-2\.jsonl:6: field "kl" has 1 entries but "tokens" has 2/);
  assert.match(cache.problems[3], /step-2\.jsonl:7: field "step" is 7 in the file of step 2/);
  // A gzip file that is not gzip names the file.
  writeFileSync(path.join(dir, 'traces', 'step-3.jsonl.gz'), 'plain text');
  await assert.rejects(cache.table(dir, 3), /step-3\.jsonl\.gz: not a gzip file/);
});

test('a field the writer did not log is absent, not 0', async () => {
  const dir = writeWithPython(`
run = RunWriter(run_dir, name="partial")
run.log_step_tokens(1, [{"prompt": "p", "response": " x y", "tokens": [" x", " y"], "kl": [0.5, float("nan")]}])
`);
  const line = JSON.parse(readFileSync(path.join(dir, 'traces', 'step-1.jsonl'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(line.kl, [0.5, null], 'the writer wrote NaN as null');
  const cache = new TraceCache();
  const table = await cache.table(dir, 1);
  assert.ok(table.kind === 'ppo');
  for (const absent of ['value', 'advantage', 'ratio', 'clip_class', 'score', 'token_ids', 'logprob'])
    assert.ok(!table.columns.includes(absent), `${absent} is not a column`);
  assert.ok(table.columns.includes('kl'));
  const row = table.row(0);
  assert.deepEqual(row.value, []);
  assert.deepEqual(row.ratio, []);
  assert.equal(row.clip_class, null, 'no clip classes: the dashboard derives them, as for a version-1 trace');
  assert.ok(Number.isNaN(row.score), 'a score not logged is NaN, not 0');
  assert.equal(row.kl[0], 0.5);
  assert.ok(Number.isNaN(row.kl[1]), "the writer's null is NaN");
  const packed = await cache.packed(dir, 1);
  assert.equal(packed.numTokens, 2);
  assert.equal(packed.numEpochs, 0);
  assert.equal(packed.clipClass, null);
  assert.deepEqual([...packed.tokenIds], [noTokenId, noTokenId], 'ids not logged are noTokenId, not 0');
  for (const field of ['value', 'advantage', 'logprob'] as const)
    assert.ok([...packed.values[field]].every(Number.isNaN), `${field} packs as NaN (not logged), not 0`);
  assert.ok(Number.isNaN(packed.score[0]));
});

test('the decoder on its own: flat ratio lists are one epoch, duplicate samples in one file renumbered', () => {
  const text = [
    '{"step": 1, "sample": 0, "ratio": [1.0, 2.0], "clip_class": [0, 2]}',
    '{"step": 1, "sample": 0, "ratio": [[1.0], [null]]}',
    '{"step": 1, "sample": -1}',
    '',
  ].join('\n');
  const { table, problems } = decodeJsonlTrace([{ file: 'x.jsonl', text }], 1);
  assert.ok(table.kind === 'ppo');
  assert.equal(table.numRows, 2);
  assert.deepEqual(table.row(0).ratio, [[1, 2]]);
  assert.deepEqual(table.row(0).clip_class, [[0, 2]]);
  assert.equal(table.row(1).sample, 1);
  assert.ok(Number.isNaN(table.row(1).ratio[1][0]));
  assert.deepEqual(problems, ['x.jsonl:3: field "sample" must be a whole number ≥ 0, not -1; line skipped']);
  assert.throws(() => table.row(2), RangeError);
});

test('trace file names: every format and shard, nothing else', () => {
  assert.deepEqual(parseTraceFileName('step-12.jsonl.gz'), { step: 12, rank: 0, format: 'jsonl.gz' });
  assert.deepEqual(parseTraceFileName('step-3.rank-2.arrow'), { step: 3, rank: 2, format: 'arrow' });
  for (const name of ['step-3.json', '.step-3.jsonl.ab.tmp', 'step-3.arrow.tmp', 'step-x.jsonl', 'step-3.gz'])
    assert.equal(parseTraceFileName(name), undefined, name);
});

test('the folder watcher reports a new JSONL trace and a rank shard', async () => {
  const dir = writeWithPython('RunWriter(run_dir, name="watch").log_step_tokens(1, [{"prompt": "a"}])');
  const watcher = new RunFolderWatcher(dir, 20, 60_000);
  try {
    for (const name of ['step-2.jsonl.gz', 'step-2.rank-1.jsonl']) {
      const changed = new Promise<RunFolderChange>((resolve) => {
        const off = watcher.onDidChange((change) => {
          off();
          resolve(change);
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      writeFileSync(path.join(dir, 'traces', name), '');
      assert.equal(await changed, 'traces', name);
    }
  } finally {
    watcher.dispose();
  }
});
