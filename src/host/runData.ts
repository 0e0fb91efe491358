/**
 * Reads what the dashboard shows from a run directory (DESIGN.md, "The run directory"): run.json's
 * header, metrics.jsonl incrementally (only the bytes appended since the last read, whole lines
 * only), the steps with traces, and one step's trace (Arrow, decoded with apache-arrow, or the Python
 * package's JSONL; merged across rank shards) packed for the webview. No `vscode`: unit tests and the
 * benchmark use it as it is.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { DashboardRunInfo, MetricPoint, PromptHistoryEntry, RunSetting } from '../shared/dashboardMessages';
import { engineLabels } from './external/engines';
import { packPpoTrace, tokenFields, type PackedPpoTrace } from '../shared/packedTrace';
import { isRecord } from '../shared/isRecord';
import { FieldChecker } from '../shared/runFiles';
import { parseRunJson } from '../shared/runSummary';
import type { DecodedTraceRow, TraceKind, TraceTable } from '../shared/traceFormat';
import { decodeJsonlTrace } from '../shared/traceJsonl';

const gunzipAsync = promisify(gunzip);

/** run.json as the dashboard needs it; throws an Error naming the file when it cannot be read. */
export async function readRunInfo(runDir: string): Promise<DashboardRunInfo> {
  const file = path.join(runDir, 'run.json');
  const text = await fs.readFile(file, 'utf8');
  const parsed = parseRunJson(text, path.basename(runDir));
  if (!parsed.ok) throw new Error(`${file}: ${parsed.message}`);
  // parseRunJson validated the header fields (stage, step, max_steps, stage_index are of their types).
  const json = JSON.parse(text) as Record<string, unknown>;
  const numberOf = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
  return {
    id: parsed.run.id,
    name: parsed.run.name,
    status: parsed.run.status,
    runDir,
    stage: typeof json.stage === 'string' ? json.stage : undefined,
    step: numberOf(json.step),
    maxSteps: numberOf(json.max_steps),
    ...stageSettings(json),
    error: parsed.run.error,
    // A run the Python package's RunWriter wrote: its traces have only the fields its caller logged.
    ...(json.engine === 'external' ? { engine: engineLabels['rlhf-lens'] } : {}),
  };
}

/**
 * The stage settings the dashboard needs from run.json's resolved config (`config.stages[stage_index]`,
 * TRL's names), each validated: ε from the stage that writes PPO traces (the current stage if it is PPO,
 * else the latest PPO stage before it), `max_new_tokens` from the current stage.
 */
export function stageSettings(json: Record<string, unknown>): Pick<DashboardRunInfo, 'cliprange' | 'maxNewTokens'> {
  const missing = (why: string) => ({ missing: why });
  const stages = isRecord(json.config) ? json.config.stages : undefined;
  if (!Array.isArray(stages)) {
    const why = missing('run.json has no config.stages (a run from another trainer?)');
    return { cliprange: why, maxNewTokens: why };
  }
  // Without stage_index only a one-stage config says which stage is current.
  const stageIndex = typeof json.stage_index === 'number' ? json.stage_index : stages.length === 1 ? 0 : undefined;
  if (stageIndex === undefined || stageIndex >= stages.length) {
    const why = missing(
      stageIndex === undefined
        ? `run.json has no stage_index to pick one of its ${stages.length} config stages`
        : `run.json's stage_index ${stageIndex} is beyond its ${stages.length} config stages`,
    );
    return { cliprange: why, maxNewTokens: why };
  }
  const setting = (index: number, key: string, read: (fields: FieldChecker) => number | undefined) => {
    const stage: unknown = stages[index];
    const prefix = `config.stages[${index}].`;
    if (!isRecord(stage)) return missing(`run.json's ${prefix.slice(0, -1)} is not an object`);
    const fields = new FieldChecker(stage, prefix);
    const value = read(fields);
    return value === undefined
      ? missing(`run.json's ${fields.problems.join('; ')}`)
      : ({ value, source: `run.json ${prefix}${key}` } satisfies RunSetting<number>);
  };
  let ppoIndex = stageIndex;
  while (ppoIndex >= 0 && !(isRecord(stages[ppoIndex]) && stages[ppoIndex].type === 'ppo')) ppoIndex--;
  return {
    cliprange:
      ppoIndex < 0
        ? missing(`run.json's config has no PPO stage up to the current one (stage_index ${stageIndex})`)
        : setting(ppoIndex, 'cliprange', (fields) => fields.number('cliprange', { min: 0 })),
    maxNewTokens: setting(stageIndex, 'max_new_tokens', (fields) => fields.wholeNumber('max_new_tokens', { min: 1 })),
  };
}

/**
 * Follows metrics.jsonl as a trainer appends to it. Each `read()` returns the complete lines added
 * since the last one; a line still being written waits for its newline. A file that shrank or was
 * replaced (a run restarted in place) is read again from the start with `reset: true`.
 */
export class MetricsTail {
  private offset = 0;
  private partial = '';
  /** Lines that were not JSON objects of numbers, as `file:line: reason` (kept for the log). */
  readonly problems: string[] = [];
  private lineNumber = 0;

  constructor(readonly file: string) {}

  async read(): Promise<{ reset: boolean; points: MetricPoint[] }> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        const reset = this.offset > 0;
        this.offset = 0;
        this.partial = '';
        return { reset, points: [] };
      }
      throw error;
    }
    try {
      const { size } = await handle.stat();
      let reset = false;
      if (size < this.offset) {
        reset = true;
        this.offset = 0;
        this.partial = '';
        this.lineNumber = 0;
      }
      if (size === this.offset) return { reset, points: [] };
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      // Whole lines only: a UTF-8 character split at the end stays in `partial` with its line.
      const text = this.partial + buffer.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      const points: MetricPoint[] = [];
      for (const line of lines) {
        this.lineNumber++;
        if (line.trim() === '') continue;
        const point = parseMetricLine(line);
        if (typeof point === 'string') this.problems.push(`${this.file}:${this.lineNumber}: ${point}`);
        else points.push(point);
      }
      return { reset, points };
    } finally {
      await handle.close();
    }
  }
}

/** A metrics line as numbers only (non-numeric fields are dropped), or why it is not usable. */
export function parseMetricLine(line: string): MetricPoint | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return `not valid JSON (${(error as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  const record = value as Record<string, unknown>;
  if (typeof record.step !== 'number') return 'field "step" must be a number';
  const point: Record<string, number> = {};
  for (const [key, item] of Object.entries(record)) if (typeof item === 'number') point[key] = item;
  return point;
}

/**
 * A trace file's name: `step-<n>.arrow` (the lens's own trainer), `step-<n>.jsonl` or `step-<n>.jsonl.gz` (the
 * Python package's RunWriter, python/README.md), each optionally a rank's shard, `step-<n>.rank-<r>.<ext>`.
 */
export const traceFilePattern = /^step-(\d+)(?:\.rank-(\d+))?\.(arrow|jsonl|jsonl\.gz)$/;

export type TraceFileFormat = 'arrow' | 'jsonl' | 'jsonl.gz';

export interface TraceFileName {
  readonly step: number;
  /** 0 for an unsharded file. */
  readonly rank: number;
  readonly format: TraceFileFormat;
}

/** What a name in traces/ says, or undefined for anything else (temporaries, other files). */
export function parseTraceFileName(name: string): TraceFileName | undefined {
  const match = traceFilePattern.exec(name);
  if (!match) return undefined;
  return {
    step: Number(match[1]),
    rank: match[2] === undefined ? 0 : Number(match[2]),
    format: match[3] as TraceFileFormat,
  };
}

/** When one rank of a step has the same trace in two formats (a writer switching), the one read. */
const formatPreference: readonly TraceFileFormat[] = ['arrow', 'jsonl', 'jsonl.gz'];

async function traceNames(runDir: string): Promise<string[]> {
  try {
    return await fs.readdir(path.join(runDir, 'traces'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The steps that have a trace file (any format, any rank), ascending. */
export async function listTraceSteps(runDir: string): Promise<number[]> {
  const steps = new Set<number>();
  for (const name of await traceNames(runDir)) {
    const parsed = parseTraceFileName(name);
    if (parsed) steps.add(parsed.step);
  }
  return [...steps].sort((a, b) => a - b);
}

/** The step's unsharded Arrow trace path: the name errors about a step without files use. */
export const traceFileOf = (runDir: string, step: number) => path.join(runDir, 'traces', `step-${step}.arrow`);

/** A step's trace files, one per rank (rank 0 first), each in its preferred format. */
export async function traceFilesOf(
  runDir: string,
  step: number,
  names?: readonly string[],
): Promise<(TraceFileName & { file: string })[]> {
  const byRank = new Map<number, TraceFileName & { file: string }>();
  for (const name of names ?? (await traceNames(runDir))) {
    const parsed = parseTraceFileName(name);
    if (!parsed || parsed.step !== step) continue;
    const known = byRank.get(parsed.rank);
    if (known && formatPreference.indexOf(known.format) <= formatPreference.indexOf(parsed.format)) continue;
    byRank.set(parsed.rank, { ...parsed, file: path.join(runDir, 'traces', name) });
  }
  return [...byRank.values()].sort((a, b) => a.rank - b.rank);
}

/**
 * One table of several (a step's rank shards, in rank order): rows in order, a sample number an earlier table
 * already used renumbered to one past the largest so far. All must be of one kind.
 */
export function mergeTraceTables(tables: readonly TraceTable[], describe: (index: number) => string): TraceTable {
  if (tables.length === 1) return tables[0];
  const kind = tables[0].kind;
  const other = tables.findIndex((table) => table.kind !== kind);
  if (other >= 0)
    throw new Error(`${describe(other)} is a ${tables[other].kind} trace; ${describe(0)} is a ${kind} trace.`);
  const where: [table: number, row: number][] = [];
  const samples: number[] = [];
  const taken = new Set<number>();
  let largest = -1;
  tables.forEach((table, t) => {
    for (let i = 0; i < table.numRows; i++) {
      let sample = table.row(i).sample;
      if (taken.has(sample)) sample = largest + 1;
      taken.add(sample);
      largest = Math.max(largest, sample);
      where.push([t, i]);
      samples.push(sample);
    }
  });
  const columns = [...new Set(tables.flatMap((table) => table.columns))];
  const row = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= where.length)
      throw new RangeError(`Row ${index} is outside the trace's ${where.length} rows.`);
    const [t, i] = where[index];
    return { ...tables[t].row(i), sample: samples[index] };
  };
  const versions = [...new Set(tables.map((table) => table.version))];
  return { kind, version: versions.join('+'), numRows: where.length, columns, row } as TraceTable;
}

/**
 * Decodes one step's trace (Arrow or JSONL, merged across rank shards) and keeps the last few, so moving
 * between steps stays quick. Lines of a JSONL trace that could not be read are skipped and kept in `problems`.
 */
export class TraceCache {
  /** By step; `stamp` is the files' names, sizes and times when read (a shard added or a file rewritten differs). */
  private readonly tables = new Map<string, { stamp: string; table: Promise<TraceTable> }>();
  /** Skipped JSONL trace lines, as `file:line: reason` (taken by the panel for its log). */
  readonly problems: string[] = [];

  constructor(private readonly capacity = 6) {}

  /**
   * The step's trace, decoded again when its files changed since they were read (a writer replaces a step's
   * JSONL file when it logs the step again; ranks add their shards one by one). `names`: traces/'s listing,
   * when the caller has it (one listing for many steps).
   */
  async table(runDir: string, step: number, names?: readonly string[]): Promise<TraceTable> {
    const key = traceFileOf(runDir, step);
    const files = await traceFilesOf(runDir, step, names);
    const stats = await Promise.all(files.map((entry) => fs.stat(entry.file).catch(() => undefined)));
    const stamp = files.map((entry, i) => `${entry.file}:${stats[i]?.size}:${stats[i]?.mtimeMs}`).join('|');
    const cached = this.tables.get(key);
    if (cached?.stamp === stamp) {
      // Most recently used last.
      this.tables.delete(key);
      this.tables.set(key, cached);
      return cached.table;
    }
    const loading = this.load(runDir, step, files);
    const entry = { stamp, table: loading };
    loading.catch(() => {
      if (this.tables.get(key) === entry) this.tables.delete(key);
    });
    this.tables.delete(key);
    this.tables.set(key, entry);
    while (this.tables.size > this.capacity) this.tables.delete(this.tables.keys().next().value as string);
    return loading;
  }

  private async load(
    runDir: string,
    step: number,
    files: readonly (TraceFileName & { file: string })[],
  ): Promise<TraceTable> {
    if (files.length === 0) {
      const error: NodeJS.ErrnoException = new Error(
        `ENOENT: no trace of step ${step} in ${path.join(runDir, 'traces')} (step-${step}.arrow, .jsonl or .jsonl.gz).`,
      );
      error.code = 'ENOENT'; // as a missing Arrow file was
      throw error;
    }
    const tables = await Promise.all(files.map((entry) => this.decodeFile(entry.file, entry.format, step)));
    return mergeTraceTables(tables, (index) => files[index].file);
  }

  private async decodeFile(file: string, format: TraceFileFormat, step: number): Promise<TraceTable> {
    const bytes = await fs.readFile(file);
    if (format === 'arrow') {
      // apache-arrow loads with the first Arrow trace read, not at activation (~75 ms to evaluate).
      const { decodeTraceTable } = await import('../shared/traceFormat');
      try {
        return decodeTraceTable(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } catch (error) {
        throw new Error(`${file}: ${(error as Error).message}`);
      }
    }
    let text: string;
    try {
      text = (format === 'jsonl.gz' ? await gunzipAsync(bytes) : bytes).toString('utf8');
    } catch (error) {
      throw new Error(`${file}: not a gzip file (${(error as Error).message})`);
    }
    const decoded = decodeJsonlTrace([{ file, text }], step);
    this.problems.push(...decoded.problems);
    return decoded.table;
  }

  /** A trace file was rewritten: forget it. */
  forget(runDir: string, step: number): void {
    this.tables.delete(traceFileOf(runDir, step)); // the key of every format and shard of the step
  }

  async kind(runDir: string, step: number): Promise<TraceKind> {
    return (await this.table(runDir, step)).kind;
  }

  /** The step's PPO trace, packed for the webview; throws for other kinds, naming the file. */
  async packed(runDir: string, step: number): Promise<PackedPpoTrace> {
    const table = await this.table(runDir, step);
    if (table.kind !== 'ppo')
      throw new Error(
        `Step ${step}'s trace in ${path.join(runDir, 'traces')} is a ${table.kind} trace; ` +
          'the heatmap shows PPO traces.',
      );
    return packPpoTrace(step, table.numRows, (index) => table.row(index), table.columns);
  }

  /** Every response to `prompt` in the given steps' PPO traces, in step order. */
  async promptHistory(runDir: string, steps: readonly number[], prompt: string): Promise<PromptHistoryEntry[]> {
    const entries: PromptHistoryEntry[] = [];
    const names = await traceNames(runDir);
    for (const step of steps) {
      let table: TraceTable;
      try {
        table = await this.table(runDir, step, names);
      } catch {
        continue; // an unreadable step is reported when it is opened, not here
      }
      entries.push(...promptEntries(step, table, prompt));
    }
    return entries;
  }
}

/** The responses to `prompt` in one step's trace table (none when it is not a PPO trace). */
export function promptEntries(step: number, table: TraceTable, prompt: string): PromptHistoryEntry[] {
  if (table.kind !== 'ppo') return [];
  const entries: PromptHistoryEntry[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const row: DecodedTraceRow<'ppo'> = table.row(i);
    if (row.prompt !== prompt) continue;
    entries.push({
      step,
      sample: row.sample,
      score: row.score,
      oracleScore: row.oracle_score,
      tokens: row.tokens,
      values: Object.fromEntries(
        tokenFields.map((field) => [field, row[field]]),
      ) as unknown as PromptHistoryEntry['values'],
    });
  }
  return entries;
}
