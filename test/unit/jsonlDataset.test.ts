import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { formatDatasetProblem, readTextDataset } from '../../src/trainer/data/jsonlDataset';

async function datasetFile(content: string | Uint8Array, name = 'data.jsonl'): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'rlhf-dataset-')), name);
  await writeFile(file, content);
  return file;
}

test('reads text and prompt–completion lines, keeping each example\'s kind and line number', async () => {
  const file = await datasetFile(
    [
      '{"text": "the blender is great."}',
      '{"prompt": "review of the hotel:", "completion": " the staff were friendly.", "id": 7}',
      '{"prompt": "", "completion": " an unconditional example"}',
    ].join('\n') + '\n',
  );
  const read = await readTextDataset(file);
  assert.deepEqual(read.examples, [
    { kind: 'text', text: 'the blender is great.', line: 1 },
    { kind: 'prompt_completion', prompt: 'review of the hotel:', completion: ' the staff were friendly.', line: 2 },
    { kind: 'prompt_completion', prompt: '', completion: ' an unconditional example', line: 3 },
  ]);
  assert.deepEqual(read.problems, []);
  assert.deepEqual(read.counts, { lines: 3, examples: 3, skipped: 0, blank: 0 });
});

test('every malformed line yields its own problem with file and line, and every good line around them is kept', async () => {
  const lines = [
    '{"text": "good one"}', // 1
    '{"text": "broken', // 2: invalid JSON
    '', // 3: blank
    '{"prompt": "p", "completion": 42}', // 4
    '["text", "an array"]', // 5
    '{"text": "good two"}', // 6
    '{"text": "   "}', // 7: empty text
    '{"prompt": "only a prompt"}', // 8
    '{"text": "a", "prompt": "b", "completion": "c"}', // 9
    '{"title": "x", "body": "y"}', // 10
    '   \t', // 11: blank
    '{"text": null}', // 12
    '"just a string"', // 13
    '{"prompt": "p", "completion": "good three"}', // 14
    '{"completion": "no prompt"}', // 15
  ];
  const file = await datasetFile(lines.join('\n'));
  const read = await readTextDataset(file);

  assert.deepEqual(
    read.examples.map((example) => [example.line, example.kind === 'text' ? example.text : example.completion]),
    [
      [1, 'good one'],
      [6, 'good two'],
      [14, 'good three'],
    ],
  );
  assert.deepEqual(read.counts, { lines: 15, examples: 3, skipped: 10, blank: 2 });
  assert.ok(read.problems.every((problem) => problem.file === file));
  const byLine = new Map(read.problems.map((problem) => [problem.line, problem]));
  assert.deepEqual([...byLine.keys()], [2, 4, 5, 7, 8, 9, 10, 12, 13, 15]);
  assert.match(byLine.get(2)!.message, /^invalid JSON \(.+\); each line must be one JSON object such as \{"text": "\.\.\."\}/);
  assert.deepEqual(byLine.get(4), { file, line: 4, field: 'completion', message: 'field "completion" must be a string, got number' });
  assert.equal(formatDatasetProblem(byLine.get(4)!), `${file}:4: field "completion" must be a string, got number`);
  assert.match(byLine.get(5)!.message, /expected a JSON object .*, got array/);
  assert.equal(byLine.get(7)!.field, 'text');
  assert.match(byLine.get(7)!.message, /field "text" is empty/);
  assert.equal(byLine.get(8)!.field, 'completion');
  assert.match(byLine.get(8)!.message, /field "completion" is missing; a pair needs both "prompt" and "completion"/);
  assert.match(byLine.get(9)!.message, /has both "text" and "prompt"/);
  assert.match(byLine.get(10)!.message, /no "text" or "prompt"\/"completion" field \(found "title", "body"\)/);
  assert.equal(byLine.get(12)!.message, 'field "text" must be a string, got null');
  assert.match(byLine.get(13)!.message, /got string$/);
  assert.equal(byLine.get(15)!.field, 'prompt');
});

test('a UTF-8 BOM on the first line and CRLF line endings are tolerated', async () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
  const body = new TextEncoder().encode('{"text": "first"}\r\n\r\n{"prompt": "ünï", "completion": " cödé ✓"}\r\n');
  const file = await datasetFile(new Uint8Array([...bom, ...body]));
  const read = await readTextDataset(file);
  assert.deepEqual(read.problems, []);
  assert.deepEqual(read.examples, [
    { kind: 'text', text: 'first', line: 1 },
    { kind: 'prompt_completion', prompt: 'ünï', completion: ' cödé ✓', line: 3 },
  ]);
  assert.deepEqual(read.counts, { lines: 3, examples: 2, skipped: 0, blank: 1 });
});

test('a line over the size limit is refused with its size, and the next line is still read', async () => {
  const long = JSON.stringify({ text: 'é'.repeat(600) }); // {"text":"…"}: 9 + 600 × 2 + 2 = 1,211 bytes of UTF-8 in 611 characters
  const file = await datasetFile(`${long}\n{"text": "short"}\n`);
  const read = await readTextDataset(file, { maxLineBytes: 1000 });
  assert.equal(read.problems.length, 1);
  assert.equal(read.problems[0].line, 1);
  assert.match(read.problems[0].message, /^line is 1211 bytes, over the limit of 1000; split the example or raise the limit$/);
  assert.deepEqual(read.examples, [{ kind: 'text', text: 'short', line: 2 }]);
});

test('an empty file has no examples and no problems; a missing file rejects naming the path', async () => {
  const empty = await datasetFile('');
  assert.deepEqual(await readTextDataset(empty), { examples: [], problems: [], counts: { lines: 0, examples: 0, skipped: 0, blank: 0 } });
  const missing = path.join(path.dirname(empty), 'absent.jsonl');
  await assert.rejects(readTextDataset(missing), (error: Error) => error.message.startsWith(`cannot read dataset ${missing}: `) && /ENOENT/.test(error.message));
});

test('streams a large file line by line', async () => {
  const count = 20_000;
  const file = await datasetFile(Array.from({ length: count }, (_, i) => JSON.stringify(i % 2 ? { text: `example ${i}` } : { prompt: `p${i}`, completion: ` c${i}` })).join('\n'));
  const read = await readTextDataset(file);
  assert.equal(read.counts.examples, count);
  assert.deepEqual(read.examples[count - 1], { kind: 'text', text: `example ${count - 1}`, line: count });
});
