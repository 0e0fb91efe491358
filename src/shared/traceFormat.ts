/**
 * Per-step trace files, `traces/step-<n>.arrow` (DESIGN.md, "The run directory: the contract"): one
 * row per sampled response (PPO), preference pair (DPO) or scored pair (reward model), in the Apache
 * Arrow IPC *file* format (https://arrow.apache.org/docs/format/Columnar.html#ipc-file-format), so
 * `pyarrow.ipc.open_file`, `polars.read_ipc`, `pandas.read_feather` and DuckDB open them as they are.
 *
 * Pure: no `fs`, no Node built-ins, so the dashboard webview reads traces with the same code.
 *
 * The schema metadata says what a file holds: `rlhf_lens.trace_kind` ('ppo' | 'dpo' | 'reward') and
 * `rlhf_lens.trace_version` ('2'). Columns are written in the fixed order of the tables below. Readers
 * tolerate extra columns (returned as they are) and other writers' widths (int64, float64, large_string,
 * large_list), because the contract is "add columns freely; never rename or drop one" — within a version.
 *
 * Versions: 2 replaced PPO's `clip` (the ratio's side of the band: −1 below, 0 inside, +1 above) with
 * `clip_class` (what clipping did to the gradient, src/core/clipClass.ts), because "clip" also meant
 * "gradient removed" in `policy/clipfrac_avg` and the dashboard. Version-1 files still read: their
 * `clip_class` is null (the reader derives it from ratio, advantage and the run's ε, and says so) and
 * their `clip` comes back as an extra column.
 *
 * Tokens are stored as text, so a token that is half of a multi-byte character (byte-level BPE) reads
 * back as whatever text the tokenizer decoded it to; `token_ids` is the exact record.
 */
import { clipClassMeanings, clipClassValues } from '../core';
import {
  Bool,
  DataType,
  Field,
  Float32,
  Int8,
  Int32,
  List,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  isArrowVector,
  makeData,
  tableFromIPC,
  tableToIPC,
  type Data,
  type Vector,
} from 'apache-arrow';

/** One PPO rollout sample. Per-token lists have one entry per response token, aligned with `tokens`. */
export interface PpoTraceRow {
  /** The optimizer step whose rollout this is. */
  step: number;
  /** Index of the sample within the step's batch. */
  sample: number;
  prompt: string;
  response: string;
  /** The reward model's score of the whole response. */
  score: number;
  /** The task's ground-truth score, for tasks that have one (`null` otherwise). */
  oracle_score: number | null;
  /** Decoded text of each response token. */
  tokens: string[];
  token_ids: number[];
  /** log π(token) under the policy that sampled it. */
  logprob: number[];
  /** log π_ref(token) under the frozen reference. */
  ref_logprob: number[];
  /** Per-token KL estimate between policy and reference. */
  kl: number[];
  /** Value head's estimate V(s_t). */
  value: number[];
  /** −β·KL per token, plus the score at the last token. */
  reward: number[];
  advantage: number[];
  return: number[];
  entropy: number[];
  /** π_θ / π_old per token, one list per PPO epoch. */
  ratio: number[][];
  /**
   * Per PPO epoch and token, what ratio clipping did (`ClipClass` of src/core, from the stored ratio and
   * advantage and the stage's ε): 0 inside the band, 1 outside with the gradient kept, 2 clipped — gradient
   * removed. `policy/clipfrac_avg` is the fraction of 2s.
   */
  clip_class: number[][];
}

/** A PPO row as read: `clip_class` is null in a version-1 file, which has `clip` (an extra column) instead. */
export type PpoTraceRowAsRead = Omit<PpoTraceRow, 'clip_class'> & { clip_class: number[][] | null };

/** One DPO preference pair. */
export interface DpoTraceRow {
  step: number;
  sample: number;
  prompt: string;
  chosen: string;
  rejected: string;
  chosen_tokens: string[];
  rejected_tokens: string[];
  /** Per chosen token: log π(token) − log π_ref(token). */
  chosen_logratios: number[];
  /** Per rejected token: log π(token) − log π_ref(token). */
  rejected_logratios: number[];
  /** Implicit reward β·Σ chosen_logratios. */
  chosen_reward: number;
  /** Implicit reward β·Σ rejected_logratios. */
  rejected_reward: number;
  loss: number;
  chosen_oracle_score: number | null;
  rejected_oracle_score: number | null;
}

/** One reward-model training pair. */
export interface RewardTraceRow {
  step: number;
  sample: number;
  prompt: string;
  chosen: string;
  rejected: string;
  chosen_score: number;
  rejected_score: number;
  /** chosen_score − rejected_score. */
  margin: number;
  /** Whether the model ranked the pair as labelled (margin > 0). */
  correct: boolean;
  chosen_oracle_score: number | null;
  rejected_oracle_score: number | null;
}

/** The row type of each trace kind. */
export interface TraceRows {
  ppo: PpoTraceRow;
  dpo: DpoTraceRow;
  reward: RewardTraceRow;
}

export type TraceKind = keyof TraceRows;

/** The row type of each trace kind as read, from any readable version. */
export interface TraceRowsAsRead {
  ppo: PpoTraceRowAsRead;
  dpo: DpoTraceRow;
  reward: RewardTraceRow;
}

/** A decoded row: the kind's columns plus any extra columns the file has, under their own names. */
export type DecodedTraceRow<K extends TraceKind> = TraceRowsAsRead[K] & { readonly [extraColumn: string]: unknown };

export type DecodedTrace = { [K in TraceKind]: { kind: K; rows: DecodedTraceRow<K>[] } }[TraceKind];

/** A decoded file that materialises one row at a time (a step may hold 1,024 samples × 256 tokens). */
export type TraceTable = {
  [K in TraceKind]: {
    kind: K;
    /**
     * The file's `rlhf_lens.trace_version` (one of `readableTraceVersions`); `jsonl-1` for a JSONL trace
     * (traceJsonl.ts); versions joined by `+` for a step merged from rank shards of several.
     */
    version: string;
    numRows: number;
    /** Column names in file order, extra columns included. */
    columns: string[];
    /** Row `index` as plain values; throws a RangeError outside 0 … numRows − 1. */
    row(index: number): DecodedTraceRow<K>;
  };
}[TraceKind];

/** A trace that cannot be written, or a file that is not a trace. */
export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';
}

export const traceKindKey = 'rlhf_lens.trace_kind';
export const traceVersionKey = 'rlhf_lens.trace_version';
/** The version this writer writes. */
export const traceVersion = '2';
/** The versions this reader reads (see the file comment for what changed). */
export const readableTraceVersions: readonly string[] = ['1', traceVersion];

type ColumnType =
  | 'int32'
  | 'float32'
  | 'float32?'
  | 'bool'
  | 'utf8'
  | 'list<utf8>'
  | 'list<int32>'
  | 'list<float32>'
  | 'list<list<float32>>'
  | 'list<list<int8>>';

/** The column types a row field of type T may have, so the tables below cannot disagree with the row types. */
type ColumnTypeFor<T> = [T] extends [number]
  ? 'int32' | 'float32'
  : [T] extends [number | null]
    ? 'float32?'
    : [T] extends [boolean]
      ? 'bool'
      : [T] extends [string]
        ? 'utf8'
        : [T] extends [string[]]
          ? 'list<utf8>'
          : [T] extends [number[]]
            ? 'list<int32>' | 'list<float32>'
            : [T] extends [number[][]]
              ? 'list<list<float32>>' | 'list<list<int8>>'
              : never;

interface ColumnSpec {
  readonly type: ColumnType;
  /** A list column (or, for list<list>, each inner list) must have as many entries as this column. */
  readonly alignedWith?: string;
  /** A list<list> column must have as many inner lists (epochs) as this column. */
  readonly epochsOf?: string;
  /** Allowed values, for enum-like integer lists. */
  readonly values?: readonly number[];
  /** What the values mean, stored in the Arrow field's metadata so a file explains itself. */
  readonly description?: string;
}

type Columns<Row> = {
  readonly [K in keyof Row]-?: ColumnSpec & {
    readonly type: ColumnTypeFor<Row[K]>;
    readonly alignedWith?: keyof Row & string;
  };
};

// Key order is column order in the file: never reorder, rename or drop; append new columns at the end.
const ppoColumns: Columns<PpoTraceRow> = {
  step: { type: 'int32' },
  sample: { type: 'int32' },
  prompt: { type: 'utf8' },
  response: { type: 'utf8' },
  score: { type: 'float32' },
  oracle_score: { type: 'float32?' },
  tokens: { type: 'list<utf8>' },
  token_ids: { type: 'list<int32>', alignedWith: 'tokens' },
  logprob: { type: 'list<float32>', alignedWith: 'tokens' },
  ref_logprob: { type: 'list<float32>', alignedWith: 'tokens' },
  kl: { type: 'list<float32>', alignedWith: 'tokens' },
  value: { type: 'list<float32>', alignedWith: 'tokens' },
  reward: { type: 'list<float32>', alignedWith: 'tokens' },
  advantage: { type: 'list<float32>', alignedWith: 'tokens' },
  return: { type: 'list<float32>', alignedWith: 'tokens' },
  entropy: { type: 'list<float32>', alignedWith: 'tokens' },
  ratio: { type: 'list<list<float32>>', alignedWith: 'tokens' },
  clip_class: {
    type: 'list<list<int8>>',
    alignedWith: 'tokens',
    epochsOf: 'ratio',
    values: clipClassValues,
    description:
      "PPO ratio clipping per epoch and token (RLHF Lens's classifyClip of ratio, advantage and the stage's " +
      `cliprange ε): ${clipClassValues.map((value) => `${value} = ${clipClassMeanings[value]}`).join('; ')}. ` +
      'policy/clipfrac_avg is the fraction of 2s.',
  },
};

/** Version 1's PPO columns: `clip` where version 2 has `clip_class`. Read, never written. */
const ppoColumnsV1: Readonly<Record<string, ColumnSpec>> = Object.fromEntries([
  ...Object.entries(ppoColumns).filter(([name]) => name !== 'clip_class'),
  ['clip', { type: 'list<list<int8>>', alignedWith: 'tokens', epochsOf: 'ratio', values: [-1, 0, 1] }],
]);

const dpoColumns: Columns<DpoTraceRow> = {
  step: { type: 'int32' },
  sample: { type: 'int32' },
  prompt: { type: 'utf8' },
  chosen: { type: 'utf8' },
  rejected: { type: 'utf8' },
  chosen_tokens: { type: 'list<utf8>' },
  rejected_tokens: { type: 'list<utf8>' },
  chosen_logratios: { type: 'list<float32>', alignedWith: 'chosen_tokens' },
  rejected_logratios: { type: 'list<float32>', alignedWith: 'rejected_tokens' },
  chosen_reward: { type: 'float32' },
  rejected_reward: { type: 'float32' },
  loss: { type: 'float32' },
  chosen_oracle_score: { type: 'float32?' },
  rejected_oracle_score: { type: 'float32?' },
};

const rewardColumns: Columns<RewardTraceRow> = {
  step: { type: 'int32' },
  sample: { type: 'int32' },
  prompt: { type: 'utf8' },
  chosen: { type: 'utf8' },
  rejected: { type: 'utf8' },
  chosen_score: { type: 'float32' },
  rejected_score: { type: 'float32' },
  margin: { type: 'float32' },
  correct: { type: 'bool' },
  chosen_oracle_score: { type: 'float32?' },
  rejected_oracle_score: { type: 'float32?' },
};

const columnsOf: { readonly [K in TraceKind]: Readonly<Record<string, ColumnSpec>> } = {
  ppo: ppoColumns,
  dpo: dpoColumns,
  reward: rewardColumns,
};

export const traceKinds: readonly TraceKind[] = ['ppo', 'dpo', 'reward'];

export function isTraceKind(value: unknown): value is TraceKind {
  return typeof value === 'string' && (traceKinds as readonly string[]).includes(value);
}

/** The kind's column names, in file order. */
export function traceColumns(kind: TraceKind): string[] {
  return Object.keys(columnsOf[kind]);
}

// Arrow types. List items are named "item", as pyarrow and polars name them.
function arrowType(type: ColumnType): DataType {
  const list = (item: DataType) => new List(new Field('item', item, false));
  switch (type) {
    case 'int32':
      return new Int32();
    case 'float32':
    case 'float32?':
      return new Float32();
    case 'bool':
      return new Bool();
    case 'utf8':
      return new Utf8();
    case 'list<utf8>':
      return list(new Utf8());
    case 'list<int32>':
      return list(new Int32());
    case 'list<float32>':
      return list(new Float32());
    case 'list<list<float32>>':
      return list(list(new Float32()));
    case 'list<list<int8>>':
      return list(list(new Int8()));
  }
}

/** Arrow field metadata key of a column's description. */
export const columnDescriptionKey = 'rlhf_lens.description';

/** The Arrow schema of a kind's files, kind and version in its metadata. */
export function traceSchema(kind: TraceKind): Schema {
  const fields = Object.entries(columnsOf[kind]).map(
    ([name, spec]) =>
      new Field(
        name,
        arrowType(spec.type),
        spec.type === 'float32?',
        spec.description === undefined ? undefined : new Map([[columnDescriptionKey, spec.description]]),
      ),
  );
  return new Schema(
    fields,
    new Map([
      [traceKindKey, kind],
      [traceVersionKey, traceVersion],
    ]),
  );
}

// ---------------------------------------------------------------------------------------------------
// Encoding

type AnyRow = Readonly<Record<string, unknown>>;

/** Encodes rows as an Arrow IPC file (with footer). Refuses rows whose per-token lists disagree in length. */
export function encodeTrace<K extends TraceKind>(kind: K, rows: readonly TraceRows[K][]): Uint8Array {
  if (!isTraceKind(kind))
    throw new TraceFormatError(`Unknown trace kind ${JSON.stringify(kind)}; use one of ${traceKinds.join(', ')}.`);
  const specs = columnsOf[kind];
  const anyRows = rows as readonly unknown[] as readonly AnyRow[];
  anyRows.forEach((row, index) => checkRow(specs, row, index));
  const schema = traceSchema(kind);
  const children = schema.fields.map((field) => columnData(anyRows, field.name, specs[field.name].type));
  const struct = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
  return tableToIPC(new Table(schema, new RecordBatch(schema, struct)), 'file');
}

/** "row 3 (sample 17)", for error messages. */
function rowName(row: AnyRow, index: number): string {
  return typeof row.sample === 'number' ? `row ${index} (sample ${row.sample})` : `row ${index}`;
}

function checkRow(specs: Readonly<Record<string, ColumnSpec>>, row: AnyRow, index: number): void {
  const fail = (column: string, problem: string) => {
    throw new TraceFormatError(`Trace ${rowName(row, index)}, column "${column}": ${problem}`);
  };
  const listOf = (column: string): ArrayLike<unknown> => {
    const value = row[column];
    if (!isArrayLike(value)) fail(column, `expected a list, got ${describe(value)}.`);
    return value as ArrayLike<unknown>;
  };
  for (const [column, spec] of Object.entries(specs)) {
    const value = row[column];
    switch (spec.type) {
      case 'int32':
        if (typeof value !== 'number' || !Number.isInteger(value) || value !== (value | 0))
          fail(column, `expected a 32-bit integer, got ${describe(value)}.`);
        break;
      case 'float32':
        if (typeof value !== 'number') fail(column, `expected a number, got ${describe(value)}.`);
        break;
      case 'float32?':
        if (typeof value !== 'number' && value !== null)
          fail(column, `expected a number or null, got ${describe(value)}.`);
        break;
      case 'bool':
        if (typeof value !== 'boolean') fail(column, `expected true or false, got ${describe(value)}.`);
        break;
      case 'utf8':
        if (typeof value !== 'string') fail(column, `expected a string, got ${describe(value)}.`);
        break;
      case 'list<utf8>':
        if (!Array.prototype.every.call(listOf(column), (item) => typeof item === 'string'))
          fail(column, 'expected a list of strings.');
        break;
      case 'list<int32>':
      case 'list<float32>':
      case 'list<list<float32>>':
      case 'list<list<int8>>': {
        const list = listOf(column);
        const expected = spec.alignedWith === undefined ? undefined : listOf(spec.alignedWith).length;
        const perToken = `every per-token list must have one entry per token of "${spec.alignedWith}"`;
        const checkInner = (inner: ArrayLike<unknown>, where: string) => {
          if (expected !== undefined && inner.length !== expected)
            fail(column, `${where}has ${inner.length} entries but "${spec.alignedWith}" has ${expected}; ${perToken}.`);
          for (let i = 0; i < inner.length; i++) {
            const item = inner[i];
            const integer = spec.type === 'list<int32>' || spec.type === 'list<list<int8>>';
            if (
              typeof item !== 'number' ||
              (integer && item !== (item | 0)) ||
              (spec.values !== undefined && !spec.values.includes(item))
            ) {
              const allowed =
                spec.values !== undefined ? spec.values.join(', ') : integer ? 'a 32-bit integer' : 'a number';
              fail(column, `${where}entry ${i} is ${describe(item)}; expected ${allowed}.`);
            }
          }
        };
        if (spec.type === 'list<int32>' || spec.type === 'list<float32>') {
          checkInner(list, '');
        } else {
          if (spec.epochsOf !== undefined && list.length !== listOf(spec.epochsOf).length) {
            fail(
              column,
              `has ${list.length} epochs but "${spec.epochsOf}" has ${listOf(spec.epochsOf).length}; both ` +
                `hold one list per PPO epoch.`,
            );
          }
          for (let epoch = 0; epoch < list.length; epoch++) {
            const inner = list[epoch];
            if (!isArrayLike(inner)) fail(column, `epoch ${epoch} is ${describe(inner)}; expected a list.`);
            checkInner(inner as ArrayLike<unknown>, `epoch ${epoch} `);
          }
        }
        break;
      }
    }
  }
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (isArrayLike(value)) return `a list of ${value.length}`;
  return typeof value === 'string'
    ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
    : String(value);
}

// Column builders on flat typed arrays: one pass to size, one to fill (Arrow's own builders are several
// times slower on a 1,024 × 256 × 4-epoch step).

function columnData(rows: readonly AnyRow[], column: string, type: ColumnType): Data {
  const cells = rows.map((row) => row[column]);
  const length = rows.length;
  switch (type) {
    case 'int32':
      return makeData({ type: new Int32(), length, nullCount: 0, data: Int32Array.from(cells as number[]) });
    case 'float32':
      return makeData({ type: new Float32(), length, nullCount: 0, data: Float32Array.from(cells as number[]) });
    case 'float32?': {
      const validity = bitmap(cells.map((cell) => cell !== null));
      const nullCount = cells.filter((cell) => cell === null).length;
      const data = Float32Array.from(cells as (number | null)[], (cell) => cell ?? 0);
      return makeData({
        type: new Float32(),
        length,
        nullCount,
        nullBitmap: nullCount > 0 ? validity : undefined,
        data,
      });
    }
    case 'bool':
      return makeData({ type: new Bool(), length, nullCount: 0, data: bitmap(cells as boolean[]) });
    case 'utf8':
      return utf8Data(cells as string[]);
    case 'list<utf8>': {
      const lists = cells as ArrayLike<string>[];
      return listData(offsetsOf(lists), utf8Data(lists.flatMap((list) => Array.from(list))));
    }
    case 'list<int32>':
      return numberListData(cells as ArrayLike<number>[], 'int32');
    case 'list<float32>':
      return numberListData(cells as ArrayLike<number>[], 'float32');
    case 'list<list<float32>>':
    case 'list<list<int8>>': {
      const outer = cells as ArrayLike<ArrayLike<number>>[];
      const inner = outer.flatMap((epochs) => Array.from(epochs));
      return listData(offsetsOf(outer), numberListData(inner, type === 'list<list<int8>>' ? 'int8' : 'float32'));
    }
  }
}

function offsetsOf(lists: readonly ArrayLike<unknown>[]): Int32Array {
  const offsets = new Int32Array(lists.length + 1);
  for (let i = 0; i < lists.length; i++) offsets[i + 1] = offsets[i] + lists[i].length;
  return offsets;
}

function listData(valueOffsets: Int32Array, child: Data): Data {
  const type = new List(new Field('item', child.type, false));
  return makeData({ type, length: valueOffsets.length - 1, nullCount: 0, valueOffsets, child });
}

/** List<Int32 | Float32 | Int8> from lists of numbers, through one flat typed array. */
function numberListData(lists: readonly ArrayLike<number>[], item: 'int32' | 'float32' | 'int8'): Data {
  const valueOffsets = offsetsOf(lists);
  const length = valueOffsets[lists.length];
  const fill = <A extends Int32Array | Float32Array | Int8Array>(values: A): A => {
    lists.forEach((list, i) => values.set(list, valueOffsets[i]));
    return values;
  };
  const nullCount = 0;
  const child =
    item === 'int32'
      ? makeData({ type: new Int32(), length, nullCount, data: fill(new Int32Array(length)) })
      : item === 'int8'
        ? makeData({ type: new Int8(), length, nullCount, data: fill(new Int8Array(length)) })
        : makeData({ type: new Float32(), length, nullCount, data: fill(new Float32Array(length)) });
  return listData(valueOffsets, child);
}

const utf8 = new TextEncoder();

function utf8Data(strings: readonly string[]): Data<Utf8> {
  const valueOffsets = new Int32Array(strings.length + 1);
  let capacity = 0;
  for (const text of strings) capacity += text.length * 3; // a UTF-16 code unit is at most 3 UTF-8 bytes
  const bytes = new Uint8Array(capacity);
  let end = 0;
  strings.forEach((text, i) => {
    end += utf8.encodeInto(text, bytes.subarray(end)).written;
    valueOffsets[i + 1] = end;
  });
  return makeData({ type: new Utf8(), length: strings.length, nullCount: 0, valueOffsets, data: bytes.slice(0, end) });
}

/** Arrow's bitmaps: bit i of byte i >> 3, least significant bit first. */
function bitmap(bits: readonly boolean[]): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => {
    if (bit) bytes[i >> 3] |= 1 << (i & 7);
  });
  return bytes;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

/** Decodes a whole trace file into plain rows (number[] / number[][] for lists). */
export function decodeTrace(bytes: Uint8Array): DecodedTrace {
  const table = decodeTraceTable(bytes);
  const rows: unknown[] = [];
  for (let i = 0; i < table.numRows; i++) rows.push(table.row(i));
  return { kind: table.kind, rows } as DecodedTrace;
}

/** What a known column's values look like, whatever Arrow width another writer chose. */
type Shape = 'number' | 'string' | 'bool' | { readonly list: Shape };

const shapes: Record<ColumnType, Shape> = {
  int32: 'number',
  float32: 'number',
  'float32?': 'number',
  bool: 'bool',
  utf8: 'string',
  'list<utf8>': { list: 'string' },
  'list<int32>': { list: 'number' },
  'list<float32>': { list: 'number' },
  'list<list<float32>>': { list: { list: 'number' } },
  'list<list<int8>>': { list: { list: 'number' } },
};

function hasShape(type: DataType, shape: Shape): boolean {
  if (shape === 'number') return DataType.isInt(type) || DataType.isFloat(type);
  if (shape === 'string') return DataType.isUtf8(type) || DataType.isLargeUtf8(type) || DataType.isUtf8View(type);
  if (shape === 'bool') return DataType.isBool(type);
  const listLike = DataType.isList(type) || DataType.isLargeList(type) || DataType.isFixedSizeList(type);
  return listLike && type.children.length === 1 && hasShape(type.children[0].type, shape.list);
}

function describeShape(shape: Shape): string {
  return typeof shape === 'string' ? shape : `list of ${describeShape(shape.list)}`;
}

/** Decodes a trace file's schema and columns, leaving rows in Arrow until `row(i)` asks for one. */
export function decodeTraceTable(bytes: Uint8Array): TraceTable {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new TraceFormatError(
      `Not an Arrow IPC trace file (${error instanceof Error ? error.message : String(error)}).`,
    );
  }
  const kind = table.schema.metadata.get(traceKindKey);
  if (!isTraceKind(kind)) {
    throw new TraceFormatError(
      `Not an RLHF Lens trace: the Arrow schema metadata "${traceKindKey}" is ` +
        `${kind === undefined ? 'missing' : JSON.stringify(kind)}; ` +
        `writers set it to one of ${traceKinds.join(', ')} (and "${traceVersionKey}" to "${traceVersion}").`,
    );
  }
  const version = table.schema.metadata.get(traceVersionKey);
  if (version === undefined || !readableTraceVersions.includes(version)) {
    throw new TraceFormatError(
      `Trace format version ${JSON.stringify(version ?? null)} is not supported (this reader reads ` +
        `${readableTraceVersions.map((v) => `"${v}"`).join(' and ')}); set "${traceVersionKey}" or update RLHF Lens.`,
    );
  }
  const specs = kind === 'ppo' && version === '1' ? ppoColumnsV1 : columnsOf[kind];
  for (const column of Object.keys(specs)) {
    if (table.schema.fields.every((field) => field.name !== column))
      throw new TraceFormatError(
        `The ${kind} trace has no column "${column}"; every version-${version} ${kind} trace has ` +
          `${Object.keys(specs).join(', ')}.`,
      );
  }
  const readers = table.schema.fields.map((field, columnIndex) => {
    const vector = table.getChildAt(columnIndex) as Vector;
    const spec = specs[field.name] as ColumnSpec | undefined;
    if (spec === undefined) return { name: field.name, read: (index: number) => toPlain(vector.get(index)) };
    const shape = shapes[spec.type];
    if (!hasShape(field.type, shape))
      throw new TraceFormatError(
        `The ${kind} trace's column "${field.name}" is ${String(field.type)}; expected a ` +
          `${describeShape(shape)} (${spec.type}).`,
      );
    return {
      name: field.name,
      read: (index: number) => {
        const value: unknown = vector.get(index);
        if (value === null && spec.type !== 'float32?')
          throw new TraceFormatError(
            `The ${kind} trace's row ${index} has no value in column "${field.name}", which cannot be null.`,
          );
        return plainOfShape(value, shape);
      },
    };
  });
  const numRows = table.numRows;
  const row = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= numRows)
      throw new RangeError(`Row ${index} is outside the trace's ${numRows} rows.`);
    const values: Record<string, unknown> = {};
    for (const { name, read } of readers) values[name] = read(index);
    if (specs === ppoColumnsV1) values.clip_class = null; // version 1 predates the column
    return values;
  };
  const columns = table.schema.fields.map((field) => field.name);
  return { kind, version, numRows, columns, row } as TraceTable;
}

function plainOfShape(value: unknown, shape: Shape): unknown {
  if (value === null || value === undefined) return null;
  if (shape === 'number') return Number(value); // int64 cells arrive as bigint
  if (typeof shape === 'string') return value;
  const vector = value as Vector;
  if (shape.list === 'number') {
    const values = vector.toArray() as ArrayLike<number | bigint>; // a typed-array view for primitive types
    const numbers = new Array<number>(values.length);
    // ~3× faster than Array.from on a typed array
    for (let i = 0; i < values.length; i++) numbers[i] = Number(values[i]);
    return numbers;
  }
  if (shape.list === 'string') return vector.toArray() as string[];
  const inner = shape.list;
  return Array.from(vector as Iterable<unknown>, (item) => plainOfShape(item, inner));
}

/** An extra column's value as plain JavaScript: vectors become arrays, struct and map rows objects. */
function toPlain(value: unknown): unknown {
  if (isArrowVector(value)) return Array.from(value.toArray() as ArrayLike<unknown>, toPlain);
  if (
    typeof value === 'object' &&
    value !== null &&
    !ArrayBuffer.isView(value) &&
    !(value instanceof Date) &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    const json = (value as { toJSON(): Record<string, unknown> }).toJSON();
    return Object.fromEntries(Object.entries(json).map(([key, item]) => [key, toPlain(item)]));
  }
  return value;
}
