/**
 * Rollout prompts for the RL stages: openings of demo reviews (the embedded task), or a user's JSONL
 * of {"prompt"} lines. Held-out prompts for evaluation come from a disjoint set.
 */
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { PromptsConfig } from '../../shared/runConfig';
import { demoPrompts, heldOutPrompts } from './reviews';

export interface PromptSet {
  readonly train: string[];
  /** Held out from training, for evaluation. */
  readonly heldOut: string[];
  /** True when the oracle applies (the demo task). */
  readonly hasOracle: boolean;
  readonly messages: string[];
}

export async function loadPrompts(config: PromptsConfig, configDir: string, count: number, heldOutCount: number, seed: number): Promise<PromptSet> {
  if (config.source === 'demo') {
    return { train: demoPrompts(count, seed), heldOut: heldOutPrompts(heldOutCount), hasOracle: true, messages: [] };
  }
  const file = path.resolve(configDir, config.path);
  const prompts: string[] = [];
  const messages: string[] = [];
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    try {
      const value = JSON.parse(text) as { prompt?: unknown };
      if (typeof value.prompt !== 'string' || value.prompt.length === 0) throw new Error('field "prompt" must be a non-empty string');
      prompts.push(value.prompt);
    } catch (error) {
      messages.push(`${file}:${line}: ${(error as Error).message}`);
    }
  }
  if (prompts.length < 2) throw new Error(`${file}: needs at least 2 usable {"prompt": "..."} lines, found ${prompts.length}.`);
  // The last tenth (at least one) is held out for evaluation.
  const split = Math.max(1, Math.floor(prompts.length / 10));
  return { train: prompts.slice(0, prompts.length - split), heldOut: prompts.slice(prompts.length - split).slice(0, heldOutCount), hasOracle: false, messages };
}
