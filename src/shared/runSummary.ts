/**
 * `run.json`, the head of a run directory (`.rlhf/runs/<run-id>/run.json`), and the summary of it
 * that lists show. Field names are snake_case because pandas, polars and DuckDB users read the same
 * file. Pure: parsing takes text, so webviews and tests use it without file access.
 */

export const runStatuses = ['created', 'running', 'completed', 'failed', 'stopped'] as const;
export type RunStatus = (typeof runStatuses)[number];

/** What every run.json has; trainers add more fields (config, backend, versions, seed, error). */
export interface RunJson {
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  /** ISO 8601. */
  readonly started_at: string;
  readonly ended_at?: string;
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
  readonly backend?: string;
  readonly error?: string;
}

/** A run.json that could not be read, named so the user can fix it. */
export interface RunReadProblem {
  readonly file: string;
  readonly message: string;
}

export type RunJsonParse = { readonly ok: true; readonly run: RunSummary } | { readonly ok: false; readonly message: string };

/** Parses run.json text; `dirName` is the folder the file is in, used when the file has no `id`. */
export function parseRunJson(text: string, dirName: string): RunJsonParse {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `not valid JSON (${(error as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'expected a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const name = record.name ?? dirName;
  if (typeof name !== 'string' || name.length === 0) return { ok: false, message: 'field "name" must be a non-empty string' };
  const status = record.status;
  if (typeof status !== 'string' || !(runStatuses as readonly string[]).includes(status)) {
    return { ok: false, message: `field "status" must be one of ${runStatuses.join(', ')}` };
  }
  const startedAt = record.started_at;
  if (typeof startedAt !== 'string' || Number.isNaN(Date.parse(startedAt))) {
    return { ok: false, message: 'field "started_at" must be an ISO 8601 date string' };
  }
  const optionalString = (key: string): string | undefined =>
    typeof record[key] === 'string' ? (record[key] as string) : undefined;
  return {
    ok: true,
    run: {
      id: dirName,
      name,
      status: status as RunStatus,
      startedAt,
      endedAt: optionalString('ended_at'),
      backend: optionalString('backend'),
      error: optionalString('error'),
    },
  };
}

/** Newest first, then by name, so the list reads the same on every machine. */
export function compareRunsNewestFirst(a: RunSummary, b: RunSummary): number {
  return Date.parse(b.startedAt) - Date.parse(a.startedAt) || a.name.localeCompare(b.name);
}
