/**
 * What the run config's semantic checks report and share: a problem at a path of the document (an error
 * or a warning, with a quick fix where one value is the obvious repair), what checking file references
 * needs, and ConfigCheck, which collects one config's problems for every concern's check.
 */
import * as path from 'node:path';
import type { ConfigProblem } from './configSchema';
import type { ReadText } from './hfModelFolder';
import { clip, quote } from './userError';
import type { DatasetConfig, PromptsConfig, RunConfig } from './runConfig';

export type ProblemSeverity = 'error' | 'warning';

/** Set the value at `path` (a quick fix). */
export interface ConfigFix {
  readonly title: string;
  readonly path: readonly (string | number)[];
  readonly value: unknown;
}

export interface SemanticProblem extends ConfigProblem {
  /** Errors stop a run from starting; warnings do not. */
  readonly severity: ProblemSeverity;
  readonly fix?: ConfigFix;
}

/** What is at a path: datasets and preference files must be files, checkpoints folders. */
export type PathKind = 'file' | 'folder' | 'missing' | 'other';

/** What checking file references needs; without it those checks are skipped (pure callers). */
export interface CheckEnvironment {
  /** The folder of the config file: relative paths in the config are relative to it. */
  readonly configDir: string;
  /** What is at an absolute path (symbolic links followed); `other` for a device, socket or pipe. */
  readonly kind: (absolutePath: string) => PathKind;
  /**
   * A file's text, undefined when there is none: lets the checks look inside a model folder (config.json's
   * model_type, the tokenizer's chat template). Without it only the folder's existence is checked.
   */
  readonly readText?: ReadText;
}

export const kindWords: Record<Exclude<PathKind, 'missing'>, string> = {
  file: 'a file',
  folder: 'a folder',
  other: 'a device, pipe or socket',
};

export type Path = (string | number)[];

/** Whether the user wrote `key` in the raw object at `path` (defaults are filled in the checked config). */
export function written(raw: unknown, at: Path): boolean {
  let node = raw;
  for (const part of at) {
    if (typeof node !== 'object' || node === null) return false;
    node = (node as Record<string | number, unknown>)[part];
  }
  return node !== undefined;
}

/** The largest divisor of `n` that is at most `atMost` (at least 1). */
export function divisorAtMost(n: number, atMost: number): number {
  for (let d = Math.min(n, atMost); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** One config's check: what every concern reads (config, raw document, environment) and the problems found. */
export class ConfigCheck {
  readonly problems: SemanticProblem[] = [];
  /** Each stage's name: its "name", else its type. */
  readonly names: string[];

  constructor(
    readonly config: RunConfig,
    readonly raw: unknown,
    readonly environment: CheckEnvironment | undefined,
  ) {
    this.names = config.stages.map((stage) => stage.name ?? stage.type);
  }

  error(at: Path, message: string, fix?: ConfigFix): void {
    this.problems.push({ path: at, message, severity: 'error', fix });
  }

  warning(at: Path, message: string, fix?: ConfigFix): void {
    this.problems.push({ path: at, message, severity: 'warning', fix });
  }

  /** Whether the user wrote the value at `at` (defaults are filled in the checked config). */
  written(at: Path): boolean {
    return written(this.raw, at);
  }

  fileExists(at: Path, relative: string, what: string): void {
    const { environment } = this;
    if (!environment) return;
    const file = path.resolve(environment.configDir, relative);
    const kind = environment.kind(file);
    if (kind === 'missing') this.error(at, `${what} ${quote(relative)} does not exist (looked for ${clip(file)})`);
    // Caught here, before a run folder exists, rather than as EISDIR once the stage reads it.
    else if (kind !== 'file')
      this.error(
        at,
        `${what} ${quote(relative)} is ${kindWords[kind]}, not a file (${clip(file)}); name the file itself`,
      );
  }

  checkDataset(at: Path, dataset: DatasetConfig | PromptsConfig): void {
    if (dataset.source === 'jsonl') this.fileExists([...at, 'path'], dataset.path, 'the JSONL file');
  }

  checkResponseLength(at: Path, maxNewTokens: number): void {
    const { model } = this.config;
    if (maxNewTokens >= model.block_size) {
      const fitting = Math.max(1, Math.floor(model.block_size / 2));
      this.error(
        [...at, 'max_new_tokens'],
        `(${maxNewTokens}) leaves no room for the prompt in the model's context (block_size ${model.block_size})`,
        { title: `Set max_new_tokens to ${fitting}`, path: [...at, 'max_new_tokens'], value: fitting },
      );
    }
  }
}
