/**
 * Rollout prompts for the RL stages: openings of demo reviews (the embedded task), or a user's JSONL
 * of {"prompt"} lines. Held-out prompts for evaluation come from a disjoint set.
 */
import * as path from 'node:path';
import { readJsonlLines } from '../../shared/jsonlLines';
import type { PromptsConfig } from '../../shared/runConfig';
import { defaultMaxLineBytes, listedProblems } from './jsonlDataset';
import { demoPrompts, heldOutPrompts } from './reviews';
import { formatPrompt, isConversational, parseMessages, requireChatTemplate, type ChatFormatter } from './chatExamples';

export interface PromptSet {
  readonly train: string[];
  /** Held out from training, for evaluation. */
  readonly heldOut: string[];
  /** True when the oracle applies (the demo task). */
  readonly hasOracle: boolean;
  /** Rendered with the chat template, which wrote the special tokens: encode without adding BOS (chatTokens.ts). */
  readonly chatFormatted: boolean;
  readonly messages: string[];
}

/**
 * `chat` is the run's Hugging Face tokenizer: with `"chat_template": true` each prompt (text as one user turn, or a
 * list of messages) is rendered with its chat template and the generation prompt (chatExamples.ts).
 */
export async function loadPrompts(
  config: PromptsConfig,
  configDir: string,
  count: number,
  heldOutCount: number,
  seed: number,
  chat?: ChatFormatter,
): Promise<PromptSet> {
  if (config.source === 'demo') {
    return {
      train: demoPrompts(count, seed),
      heldOut: heldOutPrompts(heldOutCount),
      hasOracle: true,
      chatFormatted: false,
      messages: [],
    };
  }
  const file = path.resolve(configDir, config.path);
  const chatTemplate = config.chat_template ?? false;
  if (chatTemplate && chat !== undefined) requireChatTemplate(chat);
  const prompts: string[] = [];
  const messages: string[] = [];
  try {
    for await (const read of readJsonlLines(file, { maxLineBytes: defaultMaxLineBytes })) {
      if ('problem' in read) {
        messages.push(`${file}:${read.line}: ${read.problem}`);
        continue;
      }
      if (read.text.trim() === '') continue;
      let value: { prompt?: unknown } | null;
      try {
        value = JSON.parse(read.text) as { prompt?: unknown } | null;
      } catch (error) {
        messages.push(`${file}:${read.line}: ${(error as Error).message}`);
        continue;
      }
      const place = { file, line: read.line };
      if (isConversational(value?.prompt)) {
        let turns;
        try {
          turns = parseMessages(value?.prompt, 'prompt', place);
        } catch (error) {
          messages.push((error as Error).message);
          continue;
        }
        // No template to render with is an error of the whole file, not of one line.
        prompts.push(formatPrompt(turns, chat, { chatTemplate, place }));
      } else if (typeof value?.prompt !== 'string' || value.prompt.length === 0) {
        messages.push(`${file}:${read.line}: field "prompt" must be a non-empty string or a list of messages`);
      } else prompts.push(formatPrompt(value.prompt, chat, { chatTemplate, place }));
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
    chatFormatted: chatTemplate,
    messages,
  };
}
