/**
 * Where the Rank view's sets come from: a JSONL file of `{prompt, completions[]}`, the responses of
 * one step in a run's traces, or completions sampled now from a checkpoint (in a warm trainer
 * process). Each source hands out sets one at a time; the checkpoint source samples the next set
 * while the user ranks the current one. Free of `vscode`.
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { DecodedTraceRow } from '../shared/traceFormat';
import { decodeJsonlTrace } from '../shared/traceJsonl';
import { parseTraceFileName } from './runData';
import { readJsonlLines } from '../shared/jsonlLines';
import * as path from 'node:path';
import { Random } from '../core';
import {
  makeRankSet,
  maxCompletions,
  minCompletions,
  setKey,
  type RankSet,
  type RankSetSource,
} from '../shared/rankSet';
import type { CheckpointSampler } from './checkpointSampler';

/** What a source was made from; stored so a reloaded window picks the same source up again. */
export type RankSourceSpec =
  | { readonly kind: 'jsonl'; readonly file: string }
  | { readonly kind: 'trace'; readonly file: string }
  | ({ readonly kind: 'checkpoint'; readonly checkpoint: string } & SamplingSpec)
  /** A transformers.js-style folder (config.json, tokenizer.json, onnx/model.onnx), sampled on onnxruntime-node. */
  | ({ readonly kind: 'onnx'; readonly folder: string } & SamplingSpec);

export interface SamplingSpec {
  readonly prompts: readonly string[];
  readonly k: number;
  readonly temperature: number;
  readonly maxNewTokens: number;
  readonly topP: number;
  /** false: always write maxNewTokens tokens (benchmarks). */
  readonly stopAtEos?: boolean;
}

export interface RankSource {
  readonly label: string;
  /** The next set, or undefined when the source has no more. */
  next(): Promise<RankSet | undefined>;
  /** Sets left, when known. */
  readonly remaining: number | undefined;
  dispose(): void;
}

export interface CompletionSetLine {
  readonly prompt: string;
  readonly completions: readonly string[];
}

/** Thrown for a source file that cannot be used at all; the message names the file (and line). */
export class RankSourceError extends Error {}

/**
 * Reads `{prompt, completions[]}` lines (strict UTF-8, line by line); bad lines are reported as
 * file:line: field … and skipped.
 */
export async function readCompletionSets(file: string): Promise<{ sets: CompletionSetLine[]; problems: string[] }> {
  const sets: CompletionSetLine[] = [];
  const problems: string[] = [];
  for await (const entry of readJsonlLines(file)) {
    const where = `${file}:${entry.line}`;
    if ('problem' in entry) {
      problems.push(`${where}: ${entry.problem}`);
      continue;
    }
    if (entry.text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(entry.text);
    } catch (error) {
      problems.push(`${where}: not valid JSON (${(error as Error).message})`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${where}: expected a JSON object {"prompt", "completions"}`);
      continue;
    }
    const record = value as Record<string, unknown>;
    const completions = record.completions;
    if (typeof record.prompt !== 'string') problems.push(`${where}: field "prompt" must be a string`);
    else if (!Array.isArray(completions) || !completions.every((item) => typeof item === 'string'))
      problems.push(`${where}: field "completions" must be a list of strings`);
    else if (completions.length < minCompletions || completions.length > maxCompletions)
      problems.push(
        `${where}: field "completions" has ${completions.length}; rank ${minCompletions} to ${maxCompletions} ` +
          `at a time`,
      );
    else sets.push({ prompt: record.prompt, completions: completions as string[] });
  }
  return { sets, problems };
}

/** Prompt and response of each row of a step's trace, and the lines skipped (a JSONL trace's `file:line: …`). */
async function traceRows(
  bytes: Uint8Array,
  file: string,
): Promise<
  | { kind: 'ppo'; rows: { prompt: string; response: string; step: number }[]; problems: string[] }
  | { kind: 'pairs'; rows: { prompt: string; chosen: string; rejected: string; step: number }[]; problems: string[] }
> {
  const parsed = parseTraceFileName(path.basename(file));
  if (parsed && parsed.format !== 'arrow') {
    const text = (parsed.format === 'jsonl.gz' ? gunzipSync(bytes) : Buffer.from(bytes)).toString('utf8');
    const { table, problems } = decodeJsonlTrace([{ file, text }], parsed.step);
    // decodeJsonlTrace reads PPO rows only.
    const rows = Array.from({ length: table.numRows }, (_, i) => table.row(i) as DecodedTraceRow<'ppo'>);
    return { kind: 'ppo', rows, problems };
  }
  // apache-arrow loads when a trace is ranked, not at activation.
  const { decodeTrace } = await import('../shared/traceFormat');
  const trace = decodeTrace(bytes);
  return trace.kind === 'ppo'
    ? { kind: 'ppo', rows: trace.rows, problems: [] }
    : { kind: 'pairs', rows: trace.rows, problems: [] };
}

/**
 * Sets from a PPO step's trace (`step-<n>.arrow`, or the Python package's `.jsonl` / `.jsonl.gz`, by `file`'s
 * name): responses grouped by prompt (up to 8 per set); DPO and reward traces give their pairs.
 */
export async function traceCompletionSets(
  bytes: Uint8Array,
  file = 'step.arrow',
): Promise<{ sets: CompletionSetLine[]; step: number | undefined; skippedSingles: number; problems: string[] }> {
  const trace = await traceRows(bytes, file);
  const step = trace.rows[0]?.step;
  if (trace.kind !== 'ppo')
    return {
      sets: trace.rows.map((row) => ({ prompt: row.prompt, completions: [row.chosen, row.rejected] })),
      step,
      skippedSingles: 0,
      problems: trace.problems,
    };
  const byPrompt = new Map<string, string[]>();
  for (const row of trace.rows) byPrompt.set(row.prompt, [...(byPrompt.get(row.prompt) ?? []), row.response]);
  const sets: CompletionSetLine[] = [];
  let skippedSingles = 0;
  for (const [prompt, responses] of byPrompt) {
    for (let start = 0; start < responses.length; start += maxCompletions) {
      const chunk = responses.slice(start, start + maxCompletions);
      if (chunk.length >= minCompletions) sets.push({ prompt, completions: chunk });
      else skippedSingles += chunk.length;
    }
  }
  return { sets, step, skippedSingles, problems: trace.problems };
}

/** A fixed list of sets, minus those already judged (or skipped) in the dataset. */
class ListSource implements RankSource {
  private index = 0;
  constructor(
    readonly label: string,
    private readonly sets: readonly CompletionSetLine[],
    private readonly source: Omit<RankSetSource, 'label'>,
    private readonly done: ReadonlySet<string>,
    private readonly random: Random,
  ) {}

  get remaining(): number {
    return this.sets.slice(this.index).filter((set) => !this.done.has(setKey(set.prompt, set.completions))).length;
  }

  async next(): Promise<RankSet | undefined> {
    while (this.index < this.sets.length) {
      const set = this.sets[this.index++];
      if (this.done.has(setKey(set.prompt, set.completions))) continue;
      return makeRankSet(
        `set-${Date.now().toString(36)}-${this.index}`,
        set.prompt,
        set.completions,
        { ...this.source, label: this.label },
        this.random,
      );
    }
    return undefined;
  }

  dispose(): void {}
}

/** Samples K completions per prompt, prompts in turn, one set ahead of the one on screen. */
class CheckpointSource implements RankSource {
  readonly remaining = undefined;
  private counter = 0;
  private ahead: Promise<RankSet> | undefined;

  constructor(
    readonly label: string,
    /** `model`: a checkpoint folder or an ONNX folder; the serving trainer tells them apart. */
    private readonly spec: SamplingSpec & { readonly model: string },
    private readonly sampler: CheckpointSampler,
    private readonly source: Omit<RankSetSource, 'label'>,
    private readonly random: Random,
  ) {}

  async next(): Promise<RankSet> {
    const current = this.ahead ?? this.sampleOne();
    this.ahead = undefined;
    try {
      return await current;
    } finally {
      // Prefetch: the next set samples while this one is ranked.
      this.ahead = this.sampleOne();
      this.ahead.catch(() => undefined);
    }
  }

  private async sampleOne(): Promise<RankSet> {
    const n = this.counter++;
    const prompt = this.spec.prompts[n % this.spec.prompts.length];
    const result = await this.sampler.sample({
      checkpoint: this.spec.model,
      prompt,
      numSamples: this.spec.k,
      temperature: this.spec.temperature,
      topP: this.spec.topP,
      maxNewTokens: this.spec.maxNewTokens,
      seed: this.random.int(2 ** 31),
      stopAtEos: this.spec.stopAtEos,
    });
    return makeRankSet(
      `sample-${Date.now().toString(36)}-${n}`,
      prompt,
      result.completions,
      { ...this.source, label: this.label },
      this.random,
    );
  }

  dispose(): void {
    this.ahead = undefined;
  }
}

/** Run id and step from a path under `.rlhf/runs/<run>/{checkpoints,traces}/step-<n>…`. */
export function runAndStepOf(file: string): { run?: string; step?: number } {
  const parts = path.resolve(file).split(path.sep);
  const runs = parts.lastIndexOf('runs');
  const run = runs >= 0 && parts[runs - 1] === '.rlhf' ? parts[runs + 1] : undefined;
  const step = /step-(\d+)/.exec(path.basename(file));
  return { run, step: step ? Number(step[1]) : undefined };
}

export async function openRankSource(
  spec: RankSourceSpec,
  done: ReadonlySet<string>,
  sampler: () => CheckpointSampler,
  random = new Random(Date.now() >>> 0),
): Promise<{ source: RankSource; problems: string[] }> {
  switch (spec.kind) {
    case 'jsonl': {
      let read: Awaited<ReturnType<typeof readCompletionSets>>;
      try {
        read = await readCompletionSets(spec.file);
      } catch (error) {
        throw new RankSourceError(`Cannot read ${spec.file}: ${(error as Error).message}`);
      }
      const { sets, problems } = read;
      if (sets.length === 0)
        throw new RankSourceError(
          `${spec.file} has no usable {"prompt", "completions"} line${problems.length ? `; ${problems[0]}` : ''}.`,
        );
      return {
        source: new ListSource(path.basename(spec.file), sets, { kind: 'jsonl', model: spec.file }, done, random),
        problems,
      };
    }
    case 'trace': {
      let parsed: Awaited<ReturnType<typeof traceCompletionSets>>;
      try {
        parsed = await traceCompletionSets(new Uint8Array(await readFile(spec.file)), spec.file);
      } catch (error) {
        throw new RankSourceError(`${spec.file}: ${(error as Error).message}`);
      }
      const { run, step } = runAndStepOf(spec.file);
      if (parsed.sets.length === 0)
        throw new RankSourceError(
          `${spec.file}: no prompt has two or more responses in this step, so there is nothing to rank side by side.`,
        );
      const problems = [
        ...parsed.problems,
        ...(parsed.skippedSingles > 0
          ? [`${spec.file}: ${parsed.skippedSingles} response(s) whose prompt had no second response were left out`]
          : []),
      ];
      return {
        source: new ListSource(
          `run ${run ?? '?'} · trace step ${parsed.step ?? step ?? '?'}`,
          parsed.sets,
          { kind: 'trace', run, step: parsed.step ?? step },
          done,
          random,
        ),
        problems,
      };
    }
    case 'checkpoint': {
      const { run, step } = runAndStepOf(spec.checkpoint);
      const label =
        `${run ? `run ${run} · ` : ''}${path.basename(spec.checkpoint)} · T ${spec.temperature} · ` +
        `${spec.maxNewTokens} tokens`;
      return {
        source: new CheckpointSource(
          label,
          { ...spec, model: spec.checkpoint },
          sampler(),
          { kind: 'checkpoint', run, step, model: spec.checkpoint },
          random,
        ),
        problems: [],
      };
    }
    case 'onnx': {
      const label = `ONNX ${path.basename(spec.folder)} · T ${spec.temperature} · ${spec.maxNewTokens} tokens`;
      return {
        source: new CheckpointSource(
          label,
          { ...spec, model: spec.folder },
          sampler(),
          { kind: 'onnx', model: spec.folder },
          random,
        ),
        problems: [],
      };
    }
    default: {
      const unknown: never = spec;
      throw new RankSourceError(`unknown source ${JSON.stringify(unknown)}`);
    }
  }
}
