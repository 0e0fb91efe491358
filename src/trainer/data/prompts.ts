/**
 * Rollout prompts for the RL stages: openings of demo reviews (the embedded task), or a user's JSONL
 * of {"prompt"} lines. Held-out prompts for evaluation come from a disjoint set.
 */
import * as path from 'node:path';
import { readJsonlLines } from '../../shared/jsonlLines';
import type { PromptsConfig } from '../../shared/runConfig';
import { defaultMaxLineBytes, listedProblems } from './jsonlDataset';
import { demoPrompts, heldOutPrompts } from './reviews';

export interface PromptSet {
  readonly train: string[];
  /** Held out from training, for evaluation. */
  readonly heldOut: string[];
  /** True when the oracle applies (the demo task). */
  readonly hasOracle: boolean;
  readonly messages: string[];
}

export async function loadPrompts(
  config: PromptsConfig,
  configDir: string,
  count: number,
  heldOutCount: number,
  seed: number,
): Promise<PromptSet> {
  if (config.source === 'demo') {
    return { train: demoPrompts(count, seed), heldOut: heldOutPrompts(heldOutCount), hasOracle: true, messages: [] };
  }
  const file = path.resolve(configDir, config.path);
  const prompts: string[] = [];
  const messages: string[] = [];
  try {
    for await (const read of readJsonlLines(file, { maxLineBytes: defaultMaxLineBytes })) {
      if ('problem' in read) {
        messages.push(`${file}:${read.line}: ${read.problem}`);
        continue;
      }
      if (read.text.trim() === '') continue;
      try {
        const value = JSON.parse(read.text) as { prompt?: unknown } | null;
        if (typeof value?.prompt !== 'string' || value.prompt.length === 0)
          throw new Error('field "prompt" must be a non-empty string');
        prompts.push(value.prompt);
      } catch (error) {
        messages.push(`${file}:${read.line}: ${(error as Error).message}`);
      }
    }
  } catch (error) {
    throw new Error(`cannot read prompts ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (prompts.length < 2) {
    const shown = messages.slice(0, listedProblems).map((message) => `  ${message}`);
    const more = messages.length > listedProblems ? [`  … and ${messages.length - listedProblems} more`] : [];
    throw new Error(
      [
        `${file}: needs at least 2 usable {"prompt": "..."} lines, found ${prompts.length}.` +
          `${shown.length ? ' The first problems:' : ''}`,
        ...shown,
        ...more,
      ].join('\n'),
    );
  }
  // The last tenth (at least one) is held out for evaluation.
  const split = Math.max(1, Math.floor(prompts.length / 10));
  return {
    train: prompts.slice(0, prompts.length - split),
    heldOut: prompts.slice(prompts.length - split).slice(0, heldOutCount),
    hasOracle: false,
    messages,
  };
}
