/**
 * `run.json`, the head of a run directory (`.rlhf/runs/<run-id>/run.json`), and the summary of it
 * that lists show. Field names are snake_case because pandas, polars and DuckDB users read the same
 * file. Pure: parsing takes text, so webviews and tests use it without file access.
 */
import { isRecord } from './isRecord';
import { objectProblems, parseJsonText, runJsonProblems, runStatusValues } from './runFiles';

export const runStatuses = runStatusValues;
export type RunStatus = (typeof runStatuses)[number];

/** What every run.json has; trainers add more fields (config, engine, backend, versions, seed, error). */
export interface RunJson {
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  /** ISO 8601. */
  readonly started_at: string;
  readonly ended_at?: string;
  readonly engine?: string;
  readonly backend?: string;
  readonly stage?: string;
  readonly error?: string;
}

export interface RunSummary {
  /** The run directory's name. */
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt?: string;
  /** The training engine (`onnxruntime`, `tfjs`); absent in runs written before engines could be chosen. */
  readonly engine?: string;
  readonly backend?: string;
  /** The GPU adapter the backend ran on (`backend_adapter`), when it ran on one. */
  readonly backendAdapter?: string;
  readonly error?: string;
}

/** A run.json that could not be read, named so the user can fix it. */
export interface RunReadProblem {
  readonly file: string;
  readonly message: string;
}

export type RunJsonParse =
  { readonly ok: true; readonly run: RunSummary } | { readonly ok: false; readonly message: string };

/**
 * Parses run.json text with the validator the trainer's resume uses (runFiles.ts); `dirName` is the
 * folder the file is in, used when the file has no `name`. The message names the field.
 */
export function parseRunJson(text: string, dirName: string): RunJsonParse {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    try {
      parseJsonText(text, 'run.json');
    } catch (error) {
      // parseJsonText's message starts with "run.json:line:column: "; the caller names the file.
      return { ok: false, message: (error as Error).message.replace(/^run\.json:/, 'line ') };
    }
  }
  if (!isRecord(value)) return { ok: false, message: objectProblems(value).join('; ') };
  const record = value.name === undefined ? { ...value, name: dirName } : value;
  const problems = runJsonProblems(record);
  if (problems.length > 0) return { ok: false, message: problems.slice(0, 5).join('; ') };
  const optionalString = (key: string): string | undefined =>
    typeof record[key] === 'string' ? (record[key] as string) : undefined;
  return {
    ok: true,
    run: {
      id: dirName,
      name: record.name as string,
      status: record.status as RunStatus,
      startedAt: record.started_at as string,
      endedAt: optionalString('ended_at'),
      engine: optionalString('engine'),
      backend: optionalString('backend'),
      backendAdapter: optionalString('backend_adapter'),
      error: optionalString('error'),
    },
  };
}

/** Newest first, then by name, so the list reads the same on every machine. */
export function compareRunsNewestFirst(a: RunSummary, b: RunSummary): number {
  return Date.parse(b.startedAt) - Date.parse(a.startedAt) || a.name.localeCompare(b.name);
}
