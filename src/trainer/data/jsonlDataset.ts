/**
 * Reads a user's text dataset: JSON Lines, one example per line, in either of TRL's two shapes:
 *
 *   {"text": "the whole example"}                                   language modelling
 *   {"prompt": "review of the blender:", "completion": " it works"}  prompt–completion
 *
 * A file may mix the two; each example keeps its kind, and the loop that uses them decides (SFT can
 * train on both; PPO needs prompts). Other fields (ids, labels) are ignored. A line with both "text"
 * and "prompt"/"completion" is refused rather than guessed at. An empty "prompt" is allowed
 * (unconditional generation); an empty "text" or "completion" is not, since there is nothing to learn.
 *
 * Bad lines become problems naming file, line and field, and every good line around them is kept
 * (DESIGN.md, "Trust and safety"). A line that is not UTF-8 is reported (`file:line: not UTF-8 …`)
 * and skipped, never read with U+FFFD in it. Blank lines are skipped and counted. A UTF-8 BOM and CRLF
 * line endings are tolerated. The file is streamed line by line (shared/jsonlLines.ts), never read whole.
 */
import { readJsonlLines } from '../../shared/jsonlLines';
import { UserError } from '../../shared/userError';
import type { ChatMessage } from '../hf/chatTemplate';
import { isConversational, parseMessages, parseTurns, type Turns } from './chatExamples';

export type TextExample =
  | { kind: 'text'; text: string; line: number }
  | { kind: 'prompt_completion'; prompt: string; completion: string; line: number }
  /** TRL's conversational shapes (chatExamples.ts renders them with the model's chat template). */
  | { kind: 'messages'; messages: ChatMessage[]; line: number }
  | { kind: 'chat_prompt_completion'; prompt: Turns; completion: Turns; line: number };

export interface DatasetProblem {
  file: string;
  /** 1-based. */
  line: number;
  field?: string;
  message: string;
}

export interface TextDatasetRead {
  examples: TextExample[];
  problems: DatasetProblem[];
  /** `lines = examples + skipped + blank`. */
  counts: { lines: number; examples: number; skipped: number; blank: number };
}

export interface ReadTextDatasetOptions {
  /**
   * Longer lines are refused: a model with a context of a few hundred tokens cannot use them, and one huge line is
   * usually a file that is not JSONL.
   */
  maxLineBytes?: number;
}

export const defaultMaxLineBytes = 1024 * 1024;

/** Resolves with whatever could be read; rejects only if the file itself cannot be opened or read. */
export async function readTextDataset(file: string, options: ReadTextDatasetOptions = {}): Promise<TextDatasetRead> {
  const maxLineBytes = options.maxLineBytes ?? defaultMaxLineBytes;
  const examples: TextExample[] = [];
  const problems: DatasetProblem[] = [];
  const counts = { lines: 0, examples: 0, skipped: 0, blank: 0 };

  try {
    for await (const read of readJsonlLines(file, { maxLineBytes })) {
      counts.lines++;
      if ('problem' in read) {
        problems.push({ file, line: read.line, message: read.problem });
        counts.skipped++;
        continue;
      }
      if (read.text.trim() === '') {
        counts.blank++;
        continue;
      }
      const parsed = parseLine(read.text, { file, line: read.line });
      if ('message' in parsed) {
        problems.push({ file, line: read.line, ...parsed });
        counts.skipped++;
      } else {
        examples.push({ ...parsed, line: read.line });
        counts.examples++;
      }
    }
  } catch (error) {
    throw new Error(`cannot read dataset ${file}: ${(error as Error).message}`, { cause: error });
  }
  return { examples, problems, counts };
}

/** `data.jsonl:17: field "completion" must be a string, got number` */
export function formatDatasetProblem(problem: DatasetProblem): string {
  return `${problem.file}:${problem.line}: ${problem.message}`;
}

/** How many problems an error about a file with no usable line lists. */
export const listedProblems = 10;

/**
 * The error for a dataset with no usable example: what was read, then the first ten problems
 * (file:line: why), so the user sees why every line was refused, not just how many were.
 */
export function noUsableExamplesMessage(file: string, read: TextDatasetRead, expected = shapes): string {
  const { lines, skipped, blank } = read.counts;
  if (lines === blank)
    return (
      `${file}: no usable examples: the file is ${lines === 0 ? 'empty' : `${lines} blank lines`}. Each line ` +
      `must be ${expected}.`
    );
  const shown = read.problems.slice(0, listedProblems).map((problem) => `  ${formatDatasetProblem(problem)}`);
  const more = read.problems.length > listedProblems ? [`  … and ${read.problems.length - listedProblems} more`] : [];
  return [
    `${file}: no usable examples: all ${skipped} non-blank lines of ${lines} were refused. Each line must be ` +
      `${expected}. The first problems:`,
    ...shown,
    ...more,
  ].join('\n');
}

type ParsedLine =
  | { kind: 'text'; text: string }
  | { kind: 'prompt_completion'; prompt: string; completion: string }
  | { kind: 'messages'; messages: ChatMessage[] }
  | { kind: 'chat_prompt_completion'; prompt: Turns; completion: Turns }
  | { field?: string; message: string };

const shapes = '{"text": "..."}, {"prompt": "...", "completion": "..."} or {"messages": [{"role", "content"}, …]}';

function parseLine(line: string, place: { file: string; line: number }): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return {
      message: `invalid JSON (${(error as Error).message}); each line must be one JSON object such as ${shapes}`,
    };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { message: `expected a JSON object such as ${shapes}, got ${typeName(value)}` };
  }
  const record = value as Record<string, unknown>;
  const conversational = parseConversational(record, place);
  if (conversational !== undefined) return conversational;
  const hasText = Object.hasOwn(record, 'text');
  const hasPrompt = Object.hasOwn(record, 'prompt');
  const hasCompletion = Object.hasOwn(record, 'completion');

  if (hasText && (hasPrompt || hasCompletion)) {
    return {
      field: 'text',
      message:
        `has both "text" and "${hasPrompt ? 'prompt' : 'completion'}"; keep "text" for a plain example or ` +
        `"prompt" and "completion" for a pair`,
    };
  }
  if (hasText) {
    const problem = stringField(record, 'text', false);
    return problem ?? { kind: 'text', text: record.text as string };
  }
  if (hasPrompt || hasCompletion) {
    const missing = hasPrompt ? 'completion' : 'prompt';
    if (!hasPrompt || !hasCompletion)
      return {
        field: missing,
        message: `field "${missing}" is missing; a pair needs both "prompt" and "completion" (or use {"text": "..."})`,
      };
    const problem = stringField(record, 'prompt', true) ?? stringField(record, 'completion', false);
    return (
      problem ?? { kind: 'prompt_completion', prompt: record.prompt as string, completion: record.completion as string }
    );
  }
  const keys = Object.keys(record);
  return {
    message:
      `no "text" or "prompt"/"completion" field (found ` +
      `${keys.length === 0 ? 'an empty object' : keys.map((key) => `"${key}"`).join(', ')}); expected ${shapes}`,
  };
}

/** TRL's conversational lines: {"messages"}, or a prompt/completion pair where either is a list of messages. */
function parseConversational(
  record: Record<string, unknown>,
  place: { file: string; line: number },
): ParsedLine | undefined {
  const isChat = ['messages', 'prompt', 'completion'].some(
    (key) => Object.hasOwn(record, key) && (isConversational(record[key]) || Array.isArray(record[key])),
  );
  if (!isChat) return undefined;
  try {
    if (Object.hasOwn(record, 'messages')) {
      const other = ['text', 'prompt', 'completion'].find((key) => Object.hasOwn(record, key));
      if (other !== undefined)
        return { field: other, message: `has both "messages" and "${other}"; keep one conversation per line` };
      return { kind: 'messages', messages: parseMessages(record.messages, 'messages', place) };
    }
    const missing = ['prompt', 'completion'].find((key) => !Object.hasOwn(record, key));
    if (missing !== undefined)
      return { field: missing, message: `field "${missing}" is missing; a pair needs both "prompt" and "completion"` };
    return {
      kind: 'chat_prompt_completion',
      prompt: parseTurns(record.prompt, 'prompt', place),
      completion: parseTurns(record.completion, 'completion', place),
    };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return {
      field: error.field,
      message: `field "${error.field}" ${error.what}; ${error.hint ?? `expected ${shapes}`}`,
    };
  }
}

function stringField(
  record: Record<string, unknown>,
  field: string,
  mayBeEmpty: boolean,
): { field: string; message: string } | undefined {
  const value = record[field];
  if (typeof value !== 'string') return { field, message: `field "${field}" must be a string, got ${typeName(value)}` };
  if (!mayBeEmpty && value.trim() === '')
    return { field, message: `field "${field}" is empty; remove the line or give it text` };
  return undefined;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}
