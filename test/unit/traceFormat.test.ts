import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  Field,
  Float64,
  Int64,
  List,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  makeData,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
  type Vector,
} from 'apache-arrow';
import {
  decodeTrace,
  decodeTraceTable,
  encodeTrace,
  traceColumns,
  TraceFormatError,
  type DpoTraceRow,
  type PpoTraceRow,
  type RewardTraceRow,
} from '../../src/shared/traceFormat';
import { writeTrace } from '../../src/trainer/run/traceWriter';
import { fixtureRows } from '../webview/dashboardFixture';

/** A PPO row whose per-token values differ per column, token and epoch, none exactly a float32. */
function ppoRow(sample: number, tokens: string[], epochs = 3, step = 7): PpoTraceRow {
  const perToken = (column: number) => tokens.map((_, t) => (sample + 1) * 0.1 + column / 3 + t * 1e-3);
  return {
    step,
    sample,
    prompt: `prompt ${sample}`,
    response: tokens.join(''),
    score: 0.1 * sample - 1 / 3,
    oracle_score: sample % 2 === 0 ? null : sample / 7,
    tokens,
    token_ids: tokens.map((_, t) => 50_000 + sample * 100 + t),
    logprob: perToken(0).map((x) => -x),
    ref_logprob: perToken(1).map((x) => -x),
    kl: perToken(2),
    value: perToken(3),
    reward: perToken(4),
    advantage: perToken(5).map((x) => x - 1),
    return: perToken(6),
    entropy: perToken(7),
    ratio: Array.from({ length: epochs }, (_, epoch) => tokens.map((_, t) => 1 + (epoch - 1) * 0.07 + t * 1e-4)),
    clip_class: Array.from({ length: epochs }, (_, epoch) => tokens.map((_, t) => (t + epoch) % 3)),
  };
}

/** What a row reads back as: every float32 column rounded as Float32Array rounds it. */
function float32Rounded<Row extends object>(row: Row, floatColumns: readonly (keyof Row)[]): Row {
  const round = (value: unknown): unknown =>
    typeof value === 'number' ? Math.fround(value) : Array.isArray(value) ? value.map(round) : value;
  const copy = { ...row };
  for (const column of floatColumns) copy[column] = round(copy[column]) as Row[keyof Row];
  return copy;
}

const ppoFloats: (keyof PpoTraceRow)[] = [
  'score',
  'oracle_score',
  'logprob',
  'ref_logprob',
  'kl',
  'value',
  'reward',
  'advantage',
  'return',
  'entropy',
  'ratio',
];

const unicodeTokens = ['Caf', 'é', ' 日本', '語', ' 👋🏽', ' e\u0301', '\u200b', 'ﬁ'];
const whitespaceTokens = [' ', '\n', '\n\n', '\t', '\r\n', '  indented', ''];

test('PPO rows round-trip: unicode and whitespace tokens, an empty response, null oracle scores, three epochs', () => {
  const rows = [ppoRow(0, unicodeTokens), ppoRow(1, whitespaceTokens), ppoRow(2, []), ppoRow(3, ['only'])];
  assert.deepEqual(rows[2].ratio, [[], [], []]); // an empty response still has one (empty) list per epoch
  const decoded = decodeTrace(encodeTrace('ppo', rows));
  assert.equal(decoded.kind, 'ppo');
  assert.deepEqual(
    decoded.rows,
    rows.map((row) => float32Rounded(row, ppoFloats)),
  );
  assert.deepEqual(decoded.rows[0].tokens, unicodeTokens);
  assert.deepEqual(decoded.rows[1].tokens, whitespaceTokens);
  assert.deepEqual([decoded.rows[0].oracle_score, decoded.rows[1].oracle_score], [null, Math.fround(1 / 7)]);
  assert.deepEqual(decoded.rows[0].clip_class?.slice(2), [[2, 0, 1, 2, 0, 1, 2, 0]]);
});

test('float32 columns keep exactly Math.fround of the input, including -0, NaN and ±Infinity', () => {
  const row = ppoRow(1, ['a', 'b', 'c', 'd', 'e', 'f'], 1);
  row.kl = [0.1, -0, NaN, Infinity, -Infinity, 3.4e39]; // 3.4e39 overflows float32 to Infinity
  row.score = Math.PI;
  const [decoded] = decodeTrace(encodeTrace('ppo', [row])).rows as PpoTraceRow[];
  assert.deepEqual(decoded.kl, [Math.fround(0.1), -0, NaN, Infinity, -Infinity, Infinity]);
  assert.ok(Object.is(decoded.kl[1], -0));
  assert.equal(decoded.score, Math.fround(Math.PI));
  assert.notEqual(decoded.score, Math.PI);
});

test('DPO rows round-trip, with an empty rejected completion and null oracle scores', () => {
  const rows: DpoTraceRow[] = [
    {
      step: 2,
      sample: 0,
      prompt: 'Review: ',
      chosen: ' great 👍',
      rejected: '',
      chosen_tokens: [' great', ' 👍'],
      rejected_tokens: [],
      chosen_logratios: [0.1, -0.2],
      rejected_logratios: [],
      chosen_reward: 0.01,
      rejected_reward: 0,
      loss: Math.LN2,
      chosen_oracle_score: 0.9,
      rejected_oracle_score: null,
    },
    {
      step: 2,
      sample: 1,
      prompt: 'Q\n',
      chosen: 'yes\n',
      rejected: 'no',
      chosen_tokens: ['yes', '\n'],
      rejected_tokens: ['no'],
      chosen_logratios: [1 / 3, 2 / 3],
      rejected_logratios: [-1 / 3],
      chosen_reward: 0.1,
      rejected_reward: -1 / 30,
      loss: 0.6,
      chosen_oracle_score: null,
      rejected_oracle_score: null,
    },
  ];
  const decoded = decodeTrace(encodeTrace('dpo', rows));
  assert.equal(decoded.kind, 'dpo');
  const floats: (keyof DpoTraceRow)[] = [
    'chosen_logratios',
    'rejected_logratios',
    'chosen_reward',
    'rejected_reward',
    'loss',
    'chosen_oracle_score',
    'rejected_oracle_score',
  ];
  assert.deepEqual(
    decoded.rows,
    rows.map((row) => float32Rounded(row, floats)),
  );
});

test('reward-model rows round-trip, with booleans and null oracle scores', () => {
  const rows: RewardTraceRow[] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((sample) => ({
    step: 11,
    sample,
    prompt: `p${sample}`,
    chosen: 'good ✓',
    rejected: 'bad ✗',
    chosen_score: sample / 3,
    rejected_score: 1 / 3,
    margin: sample / 3 - 1 / 3,
    correct: sample > 1,
    chosen_oracle_score: sample === 4 ? null : sample,
    rejected_oracle_score: sample % 3 === 0 ? null : -sample,
  }));
  const decoded = decodeTrace(encodeTrace('reward', rows));
  assert.equal(decoded.kind, 'reward');
  const floats: (keyof RewardTraceRow)[] = [
    'chosen_score',
    'rejected_score',
    'margin',
    'chosen_oracle_score',
    'rejected_oracle_score',
  ];
  assert.deepEqual(
    decoded.rows,
    rows.map((row) => float32Rounded(row, floats)),
  );
  assert.deepEqual(
    decoded.rows.map((row) => row.correct),
    [false, false, true, true, true, true, true, true, true],
  ); // nine rows: the bitmap spans two bytes
});

test('a step with no rows is a valid file of its kind', () => {
  assert.deepEqual(decodeTrace(encodeTrace('dpo', [])), { kind: 'dpo', rows: [] });
  assert.deepEqual(decodeTraceTable(encodeTrace('reward', [])).columns, traceColumns('reward'));
});

test('files are the Arrow IPC file format: "ARROW1" magic at the start and after the footer', () => {
  const bytes = encodeTrace('ppo', [ppoRow(0, ['a'])]);
  const ascii = (part: Uint8Array) => String.fromCharCode(...part);
  assert.equal(ascii(bytes.subarray(0, 8)), 'ARROW1\0\0'); // magic, padded to 8
  assert.equal(ascii(bytes.subarray(bytes.length - 6)), 'ARROW1');
});

test('the schema holds kind and version in its metadata, and the columns in the documented order and types', () => {
  const table = tableFromIPC(encodeTrace('ppo', [ppoRow(0, ['a', 'b'])]));
  assert.deepEqual(Object.fromEntries(table.schema.metadata), {
    'rlhf_lens.trace_kind': 'ppo',
    'rlhf_lens.trace_version': '2',
  });
  assert.deepEqual(
    table.schema.fields.map((field) => `${field.name}: ${String(field.type)}${field.nullable ? '?' : ''}`),
    [
      'step: Int32',
      'sample: Int32',
      'prompt: Utf8',
      'response: Utf8',
      'score: Float32',
      'oracle_score: Float32?',
      'tokens: List<Utf8>',
      'token_ids: List<Int32>',
      'logprob: List<Float32>',
      'ref_logprob: List<Float32>',
      'kl: List<Float32>',
      'value: List<Float32>',
      'reward: List<Float32>',
      'advantage: List<Float32>',
      'return: List<Float32>',
      'entropy: List<Float32>',
      'ratio: List<List<Float32>>',
      'clip_class: List<List<Int8>>',
    ],
  );
  // The file explains its clip classes to a reader without our code (pyarrow: schema.field(...).metadata).
  const description = table.schema.fields.at(-1)?.metadata.get('rlhf_lens.description') ?? '';
  for (const meaning of ['0 = inside the band', '1 = outside the band, gradient kept', '2 = clipped, gradient removed'])
    assert.ok(description.includes(meaning), `"${meaning}" in "${description}"`);
  for (const kind of ['dpo', 'reward'] as const) {
    const schema = tableFromIPC(encodeTrace(kind, [])).schema;
    assert.equal(schema.metadata.get('rlhf_lens.trace_kind'), kind);
    assert.deepEqual(
      schema.fields.map((field) => field.name),
      traceColumns(kind),
    );
  }
  assert.deepEqual(traceColumns('reward'), [
    'step',
    'sample',
    'prompt',
    'chosen',
    'rejected',
    'chosen_score',
    'rejected_score',
    'margin',
    'correct',
    'chosen_oracle_score',
    'rejected_oracle_score',
  ]);
});

test('a per-token list of the wrong length is refused, naming the sample and the column', () => {
  const good = [ppoRow(0, ['a', 'b', 'c']), ppoRow(1, ['a', 'b', 'c'])];
  const refuses = (rows: PpoTraceRow[], message: RegExp) =>
    assert.throws(
      () => encodeTrace('ppo', rows),
      (error: Error) => error instanceof TraceFormatError && message.test(error.message),
    );
  refuses(
    [good[0], { ...good[1], sample: 5, kl: [0.1, 0.2] }],
    /row 1 \(sample 5\), column "kl": has 2 entries but "tokens" has 3/,
  );
  refuses([{ ...good[0], token_ids: [1, 2, 3, 4] }], /sample 0\), column "token_ids"/);
  refuses(
    [
      {
        ...good[0],
        ratio: [
          [1, 1, 1],
          [1, 1],
        ],
      },
    ],
    /sample 0\), column "ratio": epoch 1 has 2 entries/,
  );
  refuses(
    [
      {
        ...good[0],
        clip_class: [
          [0, 0, 0],
          [0, 0, 0],
        ],
      },
    ],
    /column "clip_class": has 2 epochs but "ratio" has 3/,
  );
  refuses(
    [
      {
        ...good[0],
        clip_class: [
          [0, 0, 0],
          [0, -1, 0],
          [0, 0, 0],
        ],
      },
    ],
    /column "clip_class": epoch 1 entry 1 is -1; expected 0, 1, 2/,
  );
  refuses([{ ...good[0], sample: 1.5 }], /column "sample": expected a 32-bit integer/);
  const dpo: DpoTraceRow = {
    step: 0,
    sample: 9,
    prompt: '',
    chosen: 'a',
    rejected: 'b',
    chosen_tokens: ['a'],
    rejected_tokens: ['b'],
    chosen_logratios: [0],
    rejected_logratios: [0, 0],
    chosen_reward: 0,
    rejected_reward: 0,
    loss: 0,
    chosen_oracle_score: null,
    rejected_oracle_score: null,
  };
  assert.throws(
    () => encodeTrace('dpo', [dpo]),
    /sample 9\), column "rejected_logratios": has 2 entries but "rejected_tokens" has 1/,
  );
});

/** Re-encodes a trace with columns replaced or appended, as another writer (pyarrow, polars) might. */
function withColumns(bytes: Uint8Array, columns: Record<string, Vector>): Uint8Array {
  const base = tableFromIPC(bytes);
  const names = [
    ...base.schema.fields.map((field) => field.name),
    ...Object.keys(columns).filter((name) => base.schema.fields.every((field) => field.name !== name)),
  ];
  const children = names.map((name) => columns[name]?.data[0] ?? base.getChild(name)!.data[0]);
  const fields = names.map((name, i) => new Field(name, children[i].type, true));
  const schema = new Schema(fields, base.schema.metadata);
  const batch = new RecordBatch(
    schema,
    makeData({ type: new Struct(fields), length: base.numRows, nullCount: 0, children }),
  );
  return tableToIPC(new Table(schema, batch), 'file');
}

test('extra columns in a file are kept: returned under their names, in file order', () => {
  const rows = [ppoRow(0, ['a', 'b']), ppoRow(1, [])];
  const bytes = withColumns(encodeTrace('ppo', rows), {
    note: vectorFromArray(['first', null], new Utf8()),
    token_surprise: vectorFromArray([[1.5, 2.5], []], new List(new Field('item', new Float64(), true))),
  });
  const decoded = decodeTrace(bytes);
  assert.deepEqual(Object.keys(decoded.rows[0]), [...traceColumns('ppo'), 'note', 'token_surprise']);
  assert.deepEqual(
    decoded.rows.map((row) => [row.note, row.token_surprise]),
    [
      ['first', [1.5, 2.5]],
      [null, []],
    ],
  );
  assert.deepEqual(
    decoded.rows.map((row) => ({ ...row, note: undefined, token_surprise: undefined })),
    rows.map((row) => ({ ...float32Rounded(row, ppoFloats), note: undefined, token_surprise: undefined })),
  );
});

test('columns another writer made wider (int64, float64) read as plain numbers', () => {
  const rows: RewardTraceRow[] = [
    {
      step: 3,
      sample: 0,
      prompt: 'p',
      chosen: 'a',
      rejected: 'b',
      chosen_score: 0.1,
      rejected_score: 0.2,
      margin: -0.1,
      correct: false,
      chosen_oracle_score: null,
      rejected_oracle_score: 1,
    },
  ];
  const bytes = withColumns(encodeTrace('reward', rows), {
    step: vectorFromArray([3n], new Int64()),
    chosen_score: vectorFromArray([0.1], new Float64()),
  });
  const [row] = decodeTrace(bytes).rows as RewardTraceRow[];
  assert.equal(row.step, 3);
  assert.equal(row.chosen_score, 0.1); // float64 in the file, so not rounded to float32
});

test('files that are not traces are refused with a message that says what is wrong', () => {
  assert.throws(
    () => decodeTrace(new TextEncoder().encode('{"step": 1}')),
    (error: Error) => error instanceof TraceFormatError && /Not an Arrow IPC trace file/.test(error.message),
  );
  const plainArrow = tableToIPC(new Table({ step: vectorFromArray([1]) }), 'file');
  assert.throws(() => decodeTrace(plainArrow), /"rlhf_lens.trace_kind" is missing/);
  const bytes = encodeTrace('reward', []);
  assert.throws(
    () => decodeTrace(withColumns(bytes, { margin: vectorFromArray([] as string[], new Utf8()) })),
    /column "margin" is Utf8; expected a number/,
  );
  const table = tableFromIPC(bytes);
  const noMargin = new Schema(
    table.schema.fields.filter((field) => field.name !== 'margin'),
    table.schema.metadata,
  );
  assert.throws(() => decodeTrace(tableToIPC(new Table(noMargin), 'file')), /has no column "margin"/);
});

const versionOneFile = path.join(__dirname, '..', 'fixtures', 'traces', 'ppo-v1-step-3.arrow');

test('a version-1 PPO trace (`clip`, before `clip_class`) still reads: clip_class null, clip kept', async () => {
  const bytes = await readFile(versionOneFile);
  const table = decodeTraceTable(bytes);
  assert.deepEqual([table.kind, table.version, table.numRows], ['ppo', '1', 4]);
  assert.deepEqual(table.columns.slice(-2), ['ratio', 'clip']);
  const written = fixtureRows(3); // what the version-1 writer was given (test/fixtures/traces/README.md)
  const { rows } = decodeTrace(bytes);
  rows.forEach((row, s) => {
    assert.equal(row.clip_class, null, 'version 1 has no clip class: readers derive it and say so');
    // The old column: the ratio's side of the band [0.8, 1.2], as the version-1 writer computed it.
    const side = written[s].ratio.map((epoch) => epoch.map((r) => (r < 0.8 ? -1 : r > 1.2 ? 1 : 0)));
    assert.deepEqual(row.clip, side);
    assert.deepEqual(
      { ...row, clip: undefined },
      { ...float32Rounded(written[s], ppoFloats), clip_class: null, clip: undefined },
    );
  });
  assert.ok(
    rows.some((row) => (row.clip as number[][]).flat().includes(-1)) &&
      rows.some((row) => (row.clip as number[][]).flat().includes(1)),
    'the fixture has ratios on both sides of the band',
  );
});

test('a version-1 PPO trace needs its clip column; an unknown version is refused, naming readable ones', async () => {
  const versionOne = tableFromIPC(await readFile(versionOneFile));
  const withoutClip = versionOne.select(
    versionOne.schema.fields.map((field) => field.name).filter((n) => n !== 'clip'),
  );
  assert.throws(
    () => decodeTrace(tableToIPC(withoutClip, 'file')),
    /The ppo trace has no column "clip"; every version-1 ppo trace has step, .*, ratio, clip\./,
  );
  const future = tableFromIPC(encodeTrace('ppo', [ppoRow(0, ['a'])]));
  future.schema.metadata.set('rlhf_lens.trace_version', '3');
  assert.throws(
    () => decodeTrace(tableToIPC(future, 'file')),
    /Trace format version "3" is not supported \(this reader reads "1" and "2"\)/,
  );
});

test('decodeTraceTable gives the same rows as decodeTrace, one at a time', () => {
  const bytes = encodeTrace('ppo', [ppoRow(0, unicodeTokens), ppoRow(1, []), ppoRow(2, whitespaceTokens)]);
  const table = decodeTraceTable(bytes);
  const { rows } = decodeTrace(bytes);
  assert.equal(table.kind, 'ppo');
  assert.equal(table.numRows, 3);
  assert.deepEqual(table.columns, traceColumns('ppo'));
  assert.deepEqual([table.row(2), table.row(0), table.row(1)], [rows[2], rows[0], rows[1]]);
  assert.throws(() => table.row(3), RangeError);
  assert.throws(() => table.row(-1), RangeError);
});

test(
  'writeTrace writes traces/step-7.arrow atomically, ' + 'leaving no temporary file, and refuses rows of another step',
  async () => {
    const runDir = await mkdtemp(path.join(tmpdir(), 'rlhf-trace-'));
    const rows = [ppoRow(0, ['x']), ppoRow(1, ['y', 'z'])];
    const file = writeTrace(runDir, 7, 'ppo', rows);
    assert.equal(file, path.join(runDir, 'traces', 'step-7.arrow'));
    assert.deepEqual(await readdir(path.join(runDir, 'traces')), ['step-7.arrow']);
    assert.deepEqual(
      decodeTrace(await readFile(file)).rows,
      rows.map((row) => float32Rounded(row, ppoFloats)),
    );
    writeTrace(runDir, 7, 'ppo', rows.slice(0, 1)); // rewriting a step replaces its file
    assert.equal(decodeTrace(await readFile(file)).rows.length, 1);
    assert.throws(
      () => writeTrace(runDir, 8, 'ppo', rows),
      /row 0 \(sample 0\) has step 7 but is being written to the file of step 8/,
    );
    assert.deepEqual(await readdir(path.join(runDir, 'traces')), ['step-7.arrow']);
  },
);

test('a dashboard-sized PPO step (1,024 rows × 256 tokens × 4 epochs) encodes and decodes well under a second', (t) => {
  const tokens = Array.from({ length: 256 }, (_, i) => ` tok${i}`);
  const rows = Array.from({ length: 1024 }, (_, sample) => ppoRow(sample, tokens, 4));
  const started = performance.now();
  const bytes = encodeTrace('ppo', rows);
  const encoded = performance.now();
  const decoded = decodeTrace(bytes);
  const finished = performance.now();
  const table = decodeTraceTable(bytes);
  const one = table.row(1023);
  const rowRead = performance.now();
  t.diagnostic(
    `${(bytes.length / 2 ** 20).toFixed(1)} MiB; encode ${(encoded - started).toFixed(0)} ms, decode ` +
      `${(finished - encoded).toFixed(0)} ms, ` +
      `decodeTraceTable + one row ${(rowRead - finished).toFixed(1)} ms`,
  );
  assert.equal(decoded.rows.length, 1024);
  assert.deepEqual(one, decoded.rows[1023]);
  assert.ok(finished - started < 5000, 'a generous bound: it takes ~0.3 s on a laptop-class CPU');
});
