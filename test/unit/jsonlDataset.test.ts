import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Random } from '../../src/core/random';
import { firstInvalidUtf8Byte } from '../../src/shared/jsonlLines';
import { formatDatasetProblem, readTextDataset } from '../../src/trainer/data/jsonlDataset';
import { loadPrompts } from '../../src/trainer/data/prompts';
import { loadSftExamples } from '../../src/trainer/data/textExamples';

async function datasetFile(content: string | Uint8Array, name = 'data.jsonl'): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'rlhf-dataset-')), name);
  await writeFile(file, content);
  return file;
}

test("reads text and prompt–completion lines, keeping each example's kind and line number", async () => {
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

test(
  'every malformed line yields its own problem with ' + 'file and line, and every good line around them is kept',
  async () => {
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
      read.examples.map((example) => [
        example.line,
        example.kind === 'text'
          ? example.text
          : example.kind === 'prompt_completion'
            ? example.completion
            : example.kind,
      ]),
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
    assert.match(
      byLine.get(2)!.message,
      /^invalid JSON \(.+\); each line must be one JSON object such as \{"text": "\.\.\."\}/,
    );
    assert.deepEqual(byLine.get(4), {
      file,
      line: 4,
      field: 'completion',
      message: 'field "completion" must be a string, got number',
    });
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
  },
);

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
  // {"text":"…"}: 9 + 600 × 2 + 2 = 1,211 bytes of UTF-8 in 611 characters
  const long = JSON.stringify({ text: 'é'.repeat(600) });
  const file = await datasetFile(`${long}\n{"text": "short"}\n`);
  const read = await readTextDataset(file, { maxLineBytes: 1000 });
  assert.equal(read.problems.length, 1);
  assert.equal(read.problems[0].line, 1);
  assert.match(
    read.problems[0].message,
    /^line is 1211 bytes, over the limit of 1000; split the example or raise the limit$/,
  );
  assert.deepEqual(read.examples, [{ kind: 'text', text: 'short', line: 2 }]);
});

test('an empty file has no examples and no problems; a missing file rejects naming the path', async () => {
  const empty = await datasetFile('');
  assert.deepEqual(await readTextDataset(empty), {
    examples: [],
    problems: [],
    counts: { lines: 0, examples: 0, skipped: 0, blank: 0 },
  });
  const missing = path.join(path.dirname(empty), 'absent.jsonl');
  await assert.rejects(
    readTextDataset(missing),
    (error: Error) => error.message.startsWith(`cannot read dataset ${missing}: `) && /ENOENT/.test(error.message),
  );
});

test('streams a large file line by line', async () => {
  const count = 20_000;
  const file = await datasetFile(
    Array.from({ length: count }, (_, i) =>
      JSON.stringify(i % 2 ? { text: `example ${i}` } : { prompt: `p${i}`, completion: ` c${i}` }),
    ).join('\n'),
  );
  const read = await readTextDataset(file);
  assert.equal(read.counts.examples, count);
  assert.deepEqual(read.examples[count - 1], { kind: 'text', text: `example ${count - 1}`, line: count });
});

const utf8 = (text: string) => new TextEncoder().encode(text);
const bytesOf = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((part) => (typeof part === 'string' ? [...utf8(part)] : part)));

test(
  'a line that is not UTF-8 is reported as file:line: not UTF-8 and skipped, ' +
    'never read with U+FFFD in it; the lines around it are kept',
  async () => {
    const file = await datasetFile(
      bytesOf(
        '{"text": "good one"}\n',
        '{"text": "caf',
        [0xe9],
        '"}\n', // 2: Latin-1 é
        '{"text": "cut ',
        [0xe2, 0x82],
        '"}\n', // 3: a three-byte character cut after two bytes
        '{"text": "overlong ',
        [0xc0, 0xaf],
        '"}\n', // 4: an overlong "/"
        '{"text": "surrogate ',
        [0xed, 0xa0, 0x80],
        '"}\n', // 5: a UTF-16 surrogate encoded as UTF-8
        '{"text": "a real \uFFFD replacement character and ✓"}\r\n', // 6: valid UTF-8 that happens to hold U+FFFD
      ),
    );
    const read = await readTextDataset(file);
    assert.deepEqual(read.examples, [
      { kind: 'text', text: 'good one', line: 1 },
      { kind: 'text', text: 'a real \uFFFD replacement character and ✓', line: 6 },
    ]);
    assert.deepEqual(read.counts, { lines: 6, examples: 2, skipped: 4, blank: 0 });
    assert.deepEqual(read.problems.map(formatDatasetProblem), [
      `${file}:2: not UTF-8 (byte 0xE9 at byte 14 of the line); save the file as UTF-8`,
      `${file}:3: not UTF-8 (byte 0xE2 at byte 15 of the line); save the file as UTF-8`,
      `${file}:4: not UTF-8 (byte 0xC0 at byte 20 of the line); save the file as UTF-8`,
      `${file}:5: not UTF-8 (byte 0xED at byte 21 of the line); save the file as UTF-8`,
    ]);
  },
);

test('a UTF-16 file is named as such on line 1', async () => {
  const text = '{"text": "hello"}\n{"text": "world"}\n';
  const utf16 = new Uint8Array([0xff, 0xfe, ...new Uint8Array(Buffer.from(text, 'utf16le'))]);
  const read = await readTextDataset(await datasetFile(utf16));
  assert.equal(read.examples.length, 0);
  assert.equal(read.problems[0].line, 1);
  assert.equal(read.problems[0].message, 'not UTF-8: the file starts with a UTF-16 byte-order mark; save it as UTF-8');
});

test('the UTF-8 check agrees with a fatal TextDecoder on random bytes, and points at the first bad byte', () => {
  const random = new Random(13);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const pieces = [
    [0x41],
    [0xc3, 0xa9],
    [0xe2, 0x9c, 0x93],
    [0xf0, 0x9f, 0x98, 0x80],
    [0xed, 0x9f, 0xbf],
    [0xf4, 0x8f, 0xbf, 0xbf],
  ];
  let invalid = 0;
  for (let trial = 0; trial < 3000; trial++) {
    // Mostly well-formed characters with a random byte now and then, so both outcomes are common.
    const bytes = new Uint8Array(
      Array.from({ length: 1 + random.int(8) }, () =>
        random.next() < 0.15 ? [random.int(256)] : pieces[random.int(pieces.length)],
      ).flat(),
    );
    const at = firstInvalidUtf8Byte(bytes);
    let decodes = true;
    try {
      decoder.decode(bytes);
    } catch {
      decodes = false;
    }
    assert.equal(at === -1, decodes, `bytes ${[...bytes].map((b) => b.toString(16))}`);
    if (at >= 0) {
      invalid++;
      assert.doesNotThrow(
        () => decoder.decode(bytes.subarray(0, at)),
        'everything before the reported byte is well-formed',
      );
    }
  }
  assert.ok(invalid > 500 && invalid < 2500, `${invalid} of 3000 random lines were invalid`);
});

test(
  'lone CR line ends split lines as readline does; ' +
    'an over-long line that spans read chunks is measured, not kept, and the next line is read',
  async () => {
    const long = JSON.stringify({ text: 'w'.repeat(300_000) }); // longer than one 64 KiB read chunk
    const file = await datasetFile(`{"text": "mac one"}\r{"text": "mac two"}\r\n${long}\r\n{"text": "after"}`);
    const read = await readTextDataset(file, { maxLineBytes: 100_000 });
    assert.deepEqual(
      read.examples.map((example) => [example.line, example.kind === 'text' && example.text]),
      [
        [1, 'mac one'],
        [2, 'mac two'],
        [4, 'after'],
      ],
    );
    assert.deepEqual(read.problems.map(formatDatasetProblem), [
      `${file}:3: line is ${long.length} bytes, over the limit of 100000; split the example or raise the limit`,
    ]);
  },
);

test('a dataset with no usable line fails with the first 10 reasons (file:line: why), not only a count', async () => {
  const bad = [
    '{"text": 1}',
    '{"prompt": "p"}',
    'not json',
    bytesOf('{"text": "', [0xff], '"}'),
    '{"text": ""}',
    '[]',
    '{"title": "x"}',
    '{"completion": "c"}',
    'null',
    '{"text": "a", "prompt": "b"}',
    '{"text": false}',
    '{"text": {}}',
  ];
  const file = await datasetFile(
    new Uint8Array(bad.flatMap((line) => [...(typeof line === 'string' ? utf8(line) : line), 0x0a])),
  );
  await assert.rejects(loadSftExamples({ source: 'jsonl', path: file }, path.dirname(file), 1), (error: Error) => {
    const lines = error.message.split('\n');
    assert.equal(
      lines[0],
      `${file}: no usable examples: all 12 non-blank lines of 12 were refused. Each line must be {"text": ` +
        `"..."}, {"prompt": "...", "completion": "..."} or {"messages": [{"role", "content"}, …]}. The first problems:`,
    );
    assert.equal(lines.length, 12);
    lines.slice(1, 11).forEach((line, i) => assert.ok(line.startsWith(`  ${file}:${i + 1}: `), line));
    assert.equal(lines[1], `  ${file}:1: field "text" must be a string, got number`);
    assert.equal(lines[4], `  ${file}:4: not UTF-8 (byte 0xFF at byte 11 of the line); save the file as UTF-8`);
    assert.equal(lines[11], '  … and 2 more');
    return true;
  });
  const blank = await datasetFile('\n  \n');
  await assert.rejects(loadSftExamples({ source: 'jsonl', path: blank }, path.dirname(blank), 1), (error: Error) =>
    error.message.startsWith(`${blank}: no usable examples: the file is 2 blank lines. Each line must be`),
  );
});

test(
  'RL prompts: a non-UTF-8 line is reported and skipped; ' + 'too few usable prompts fail with the first 10 reasons',
  async () => {
    const good = await datasetFile(
      bytesOf('{"prompt": "one"}\n{"prompt": "tw', [0xf8], '"}\n{"prompt": "three"}\n{"prompt": "four"}\n'),
      'prompts.jsonl',
    );
    const loaded = await loadPrompts({ source: 'jsonl', path: good }, path.dirname(good), 10, 1, 1);
    assert.deepEqual([...loaded.train, ...loaded.heldOut], ['one', 'three', 'four']);
    assert.deepEqual(loaded.messages, [
      `${good}:2: not UTF-8 (byte 0xF8 at byte 15 of the line); save the file as UTF-8`,
    ]);

    const bad = await datasetFile(
      Array.from({ length: 11 }, (_, i) => `{"prompt": ${i}}`).join('\n') + '\n{"prompt": "the only one"}',
      'prompts.jsonl',
    );
    await assert.rejects(loadPrompts({ source: 'jsonl', path: bad }, path.dirname(bad), 10, 1, 1), (error: Error) => {
      const lines = error.message.split('\n');
      assert.equal(lines[0], `${bad}: needs at least 2 usable {"prompt": "..."} lines, found 1. The first problems:`);
      assert.equal(lines[1], `  ${bad}:1: field "prompt" must be a non-empty string or a list of messages`);
      assert.equal(lines[10], `  ${bad}:10: field "prompt" must be a non-empty string or a list of messages`);
      assert.equal(lines[11], '  … and 1 more');
      return true;
    });
  },
);
