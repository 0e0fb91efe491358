/**
 * datasets: malformed JSONL training data through `rlhf-lens train` (an SFT stage reading a file).
 * Every bad line must be reported as `<file>:<line>: …` naming the field when there is one, every
 * good line must be used (the count the trainer logs), and a file with no usable line must fail
 * with an error naming the file and listing the first ten reasons. No stack traces.
 */
import * as assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDir, escapeRegExp, Family, hasStackTrace, requireBuild, runCli, scratchDir, tail } from './harness';

const family = new Family('datasets');
const root = scratchDir('datasets');

before(requireBuild);
after(() => {
  console.log(
    family.report(
      `${family.ratio('reported')} lines reported with file:line:field, ${family.ratio('kept')} good lines ` +
        `kept, ${family.ratio('noStack')} without a stack trace`,
    ),
  );
  rmSync(root, { recursive: true, force: true });
});

/** One line of a dataset: its bytes, and for a bad line the field the report must name (or null when there is none). */
type Line = { bytes: Buffer; bad?: { field: string | null; mentions?: RegExp } };
const good = (n: number): Line => ({
  bytes: Buffer.from(
    n % 2 === 0
      ? JSON.stringify({ text: `a calm review number ${n}, it works well` })
      : JSON.stringify({ prompt: `review ${n}:`, completion: ` solid and quiet, number ${n}` }),
  ),
});
const bad = (text: string | Buffer, field: string | null, mentions?: RegExp): Line => ({
  bytes: typeof text === 'string' ? Buffer.from(text) : text,
  bad: { field, mentions },
});
const goods = (from: number, count: number) => Array.from({ length: count }, (_, i) => good(from + i));

interface DatasetCase {
  readonly name: string;
  readonly lines: Line[];
  readonly eol?: string;
  /** Bytes after the last line (default: the line ending). */
  readonly end?: string;
}

const latin1 = Buffer.concat([
  Buffer.from('{"text": "caf'),
  Buffer.from([0xe9]),
  Buffer.from(' au lait, a fine review"}'),
]);
const continuation = Buffer.concat([
  Buffer.from('{"prompt": "review:", "completion": " ok '),
  Buffer.from([0x80, 0xbf]),
  Buffer.from('"}'),
]);
const noGoodLines: Line[] = [
  bad('{"text": ', null),
  bad('{"prompt": "p"}', 'completion'),
  bad('{"text": 5}', 'text'),
  bad('[1, 2]', null),
  bad('null', null),
  bad('{"text": "a", "prompt": "b"}', 'text'),
  bad('{"text": "   "}', 'text'),
  bad('{"completion": "c"}', 'prompt'),
  bad('{"prompt": 1, "completion": "c"}', 'prompt'),
  bad('{"label": 1}', null),
  bad('"just a string"', null),
  bad('{"text": false}', 'text'),
];

const cases: DatasetCase[] = [
  { name: 'bad-json', lines: [...goods(0, 2), bad('{"text": "never closed', null), ...goods(2, 3)] },
  { name: 'missing-field', lines: [...goods(0, 3), bad('{"prompt": "review:"}', 'completion'), ...goods(3, 2)] },
  { name: 'wrong-type-text', lines: [good(0), bad('{"text": 5}', 'text'), ...goods(1, 4)] },
  {
    name: 'wrong-type-completion',
    lines: [...goods(0, 4), bad('{"prompt": "p", "completion": ["x"]}', 'completion'), good(4)],
  },
  { name: 'non-utf8-latin1-byte', lines: [...goods(0, 2), bad(latin1, null, /utf-?8/i), ...goods(2, 3)] },
  {
    name: 'non-utf8-stray-continuation-bytes',
    lines: [...goods(0, 3), bad(continuation, null, /utf-?8/i), ...goods(3, 2)],
  },
  {
    name: 'empty-and-blank-lines',
    lines: [
      good(0),
      { bytes: Buffer.from('') },
      good(1),
      { bytes: Buffer.from('   \t ') },
      ...goods(2, 3),
      { bytes: Buffer.from('') },
    ],
  },
  {
    name: 'line-of-10MB',
    lines: [
      ...goods(0, 2),
      bad(JSON.stringify({ text: 'x'.repeat(10 * 1024 * 1024) }), null, /byte|long|limit|size/i),
      ...goods(2, 3),
    ],
  },
  { name: 'crlf-line-endings', lines: goods(0, 6), eol: '\r\n' },
  { name: 'array-line', lines: [...goods(0, 3), bad('[1, 2, 3]', null), ...goods(3, 2)] },
  { name: 'null-line', lines: [bad('null', null), ...goods(0, 5)] },
  {
    name: 'text-and-prompt-together',
    lines: [...goods(0, 2), bad('{"text": "a", "prompt": "b", "completion": "c"}', 'text'), ...goods(2, 3)],
  },
  { name: 'empty-text', lines: [...goods(0, 3), bad('{"text": "  "}', 'text'), ...goods(3, 2)] },
  { name: 'torn-last-line', lines: [...goods(0, 5), bad('{"text": "cut in the mid', null)], end: '' },
  { name: 'nul-bytes-line', lines: [...goods(0, 2), bad(Buffer.from([0, 0, 0, 0]), null), ...goods(2, 3)] },
  { name: 'no-good-line', lines: noGoodLines },
  {
    name: 'only-blank-lines',
    lines: [{ bytes: Buffer.from('') }, { bytes: Buffer.from('  ') }, { bytes: Buffer.from('') }],
  },
];

function configFor(dataset: string): string {
  const config = {
    name: 'ds',
    seed: 1,
    backend: 'wasm',
    model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
    tokenizer: { vocab_size: 260 },
    stages: [
      {
        type: 'sft',
        dataset: { source: 'jsonl', path: dataset },
        max_steps: 2,
        warmup_steps: 1,
        per_device_train_batch_size: 2,
      },
    ],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

for (const dataset of cases) {
  const badLines = dataset.lines.map((line, i) => ({ line, number: i + 1 })).filter(({ line }) => line.bad);
  const goodCount = dataset.lines.filter((line) => !line.bad && line.bytes.toString().trim() !== '').length;
  test(`dataset ${dataset.name}: ${badLines.length} bad lines reported, ${goodCount} good lines kept`, async () => {
    const caseDir = ensureDir(path.join(root, dataset.name));
    const file = `${dataset.name}.jsonl`;
    const eol = dataset.eol ?? '\n';
    const body = Buffer.concat(
      dataset.lines.flatMap((line, i) =>
        i < dataset.lines.length - 1 ? [line.bytes, Buffer.from(eol)] : [line.bytes, Buffer.from(dataset.end ?? eol)],
      ),
    );
    writeFileSync(path.join(caseDir, file), body);
    writeFileSync(path.join(caseDir, 'ds.rlhf.json'), configFor(file));
    const result = await runCli(['train', 'ds.rlhf.json', '--runs-dir', 'runs'], { cwd: caseDir, timeoutMs: 120_000 });
    const failures: string[] = [];
    const stderrLines = result.stderr.split('\n');
    const at = (line: number) => new RegExp(`(?:^|[\\s/'"(])${escapeRegExp(file)}:${line}:`);
    // A file with no usable line lists its first ten reasons; otherwise every bad line is reported.
    const mustReport = goodCount === 0 ? badLines.slice(0, 10) : badLines;
    let reported = true;
    for (const { line, number } of mustReport) {
      const report = stderrLines.find((text) => at(number).test(text));
      if (!report) {
        failures.push(`line ${number} not reported as ${file}:${number}:`);
        reported = false;
      } else if (line.bad?.field && !report.includes(line.bad.field)) {
        failures.push(
          `line ${number}: the report does not name the field "${line.bad.field}": ${report.slice(0, 200)}`,
        );
        reported = false;
      } else if (line.bad?.mentions && !line.bad.mentions.test(report)) {
        failures.push(`line ${number}: the report does not say ${line.bad.mentions}: ${report.slice(0, 200)}`);
        reported = false;
      }
    }
    const falseAlarms = dataset.lines
      .map((line, i) => ({ line, number: i + 1 }))
      .filter(({ line, number }) => !line.bad && stderrLines.some((text) => at(number).test(text)));
    for (const { number } of falseAlarms) failures.push(`good line ${number} was reported as bad`);
    let kept = true;
    if (goodCount > 0) {
      const logged = /(\d+) (?:usable )?examples? (?:kept|used)/.exec(result.stderr);
      if (result.code !== 0)
        failures.push(
          `exit ${result.code ?? result.signal} although ${goodCount} lines are good: ${tail(result.stderr, 2)}`,
        );
      if (!logged || Number(logged[1]) !== goodCount) {
        failures.push(
          `logged ${logged ? `${logged[1]} examples kept` : 'no count of examples kept'}, expected ${goodCount}`,
        );
        kept = false;
      }
    } else {
      if (result.code === 0) failures.push('exit 0 for a file with no usable line');
      if (!stderrLines.some((text) => text.startsWith('error: ') && text.includes(file)))
        failures.push(`no "error:" line naming ${file}: ${tail(result.stderr, 2)}`);
    }
    const stack = hasStackTrace(result.stderr);
    if (stack) failures.push('a stack trace was printed');
    if (result.stderrBytes > 64 * 1024) failures.push(`stderr is ${result.stderrBytes} bytes (a 10 MB line echoed?)`);
    family.record(
      dataset.name,
      {
        reported: reported && falseAlarms.length === 0,
        kept: kept && (goodCount === 0 ? result.code !== 0 : result.code === 0),
        noStack: !stack,
      },
      failures,
    );
    assert.deepEqual(failures, []);
  });
}
