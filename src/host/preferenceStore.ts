/**
 * One preference dataset, `.rlhf/preferences/<dataset>.jsonl`, as the Rank view writes it: each
 * judgment is appended as one whole line and fsynced before `append` resolves, so once the view is
 * told "saved" a crash or window reload cannot lose it. Undo appends a retraction line; nothing is
 * ever rewritten in place. A line left torn by a crash is kept apart (a newline first) so it cannot
 * swallow the next judgment; readers report it as a bad line and keep the rest. Free of `vscode`.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { appendLineDurable } from '../shared/durableWrite';
import { readPreferenceFile, type PreferenceFileRead } from '../shared/preferenceFile';
import type { Judgment, Retraction } from '../shared/preferences';

/** Dataset names become file names: letters, digits, `.`, `_`, `-`. */
export function validDatasetName(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name))
    return 'Use letters, digits, ".", "_" and "-" (up to 100), starting with a letter or digit.';
  return undefined;
}

export function preferenceFileOf(workspaceRoot: string, dataset: string): string {
  const problem = validDatasetName(dataset);
  if (problem) throw new Error(`Dataset name "${dataset}": ${problem}`);
  return path.join(workspaceRoot, '.rlhf', 'preferences', `${dataset}.jsonl`);
}

export function newJudgmentId(): string {
  return randomUUID();
}

export class PreferenceStore {
  /** Appends run one after another: two lines never interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string) {}

  get dataset(): string {
    return path.basename(this.file, '.jsonl');
  }

  /** Appends the judgment and flushes it to disk; resolves only when it is durable. */
  append(judgment: Judgment): Promise<void> {
    return this.enqueue(() => this.appendLine(JSON.stringify(judgment)));
  }

  /** Appends a retraction of `id` (readers drop that judgment). */
  retract(id: string): Promise<Retraction> {
    const retraction: Retraction = { retracts: id, time: new Date().toISOString() };
    return this.enqueue(async () => {
      await this.appendLine(JSON.stringify(retraction));
      return retraction;
    });
  }

  /** The live judgments (retractions applied) and the lines that could not be read. */
  async read(): Promise<PreferenceFileRead> {
    await this.queue.catch(() => undefined);
    if (!existsSync(this.file)) return { judgments: [], problems: [], retracted: 0 };
    return readPreferenceFile(this.file);
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.catch(() => undefined).then(work);
    this.queue = next;
    return next;
  }

  private async appendLine(line: string): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    // One whole line (a torn last line gets a newline first), fsynced with its folder: durable before
    // the caller moves on. A failed append is cut back off, so the file is as it was.
    appendLineDurable(this.file, line, { sync: true });
  }
}
