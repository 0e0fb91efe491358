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
 * (DESIGN.md, "Trust and safety"). Blank lines are skipped and counted. A UTF-8 BOM and CRLF line
 * endings are tolerated. The file is streamed line by line, never read whole.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export type TextExample =
  | { kind: 'text'; text: string; line: number }
  | { kind: 'prompt_completion'; prompt: string; completion: string; line: number };

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
  /** Longer lines are refused: a model with a context of a few hundred tokens cannot use them, and one huge line is usually a file that is not JSONL. */
  maxLineBytes?: number;
}

export const defaultMaxLineBytes = 1024 * 1024;

/** Resolves with whatever could be read; rejects only if the file itself cannot be opened or read. */
export async function readTextDataset(file: string, options: ReadTextDatasetOptions = {}): Promise<TextDatasetRead> {
  const maxLineBytes = options.maxLineBytes ?? defaultMaxLineBytes;
  const examples: TextExample[] = [];
  const problems: DatasetProblem[] = [];
  const counts = { lines: 0, examples: 0, skipped: 0, blank: 0 };

  const input = createReadStream(file, { encoding: 'utf8' });
  // crlfDelay: a \r\n split across two chunks still ends one line, not two.
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const raw of lines) {
      counts.lines++;
      const text = counts.lines === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
      if (text.trim() === '') {
        counts.blank++;
        continue;
      }
      const parsed = parseLine(text, maxLineBytes);
      if ('message' in parsed) {
        problems.push({ file, line: counts.lines, ...parsed });
        counts.skipped++;
      } else {
        examples.push({ ...parsed, line: counts.lines });
        counts.examples++;
      }
    }
  } catch (error) {
    throw new Error(`cannot read dataset ${file}: ${(error as Error).message}`, { cause: error });
  } finally {
    lines.close();
    input.destroy();
  }
  return { examples, problems, counts };
}

/** `data.jsonl:17: field "completion" must be a string, got number` */
export function formatDatasetProblem(problem: DatasetProblem): string {
  return `${problem.file}:${problem.line}: ${problem.message}`;
}

type ParsedLine =
  | { kind: 'text'; text: string }
  | { kind: 'prompt_completion'; prompt: string; completion: string }
  | { field?: string; message: string };

const shapes = '{"text": "..."} or {"prompt": "...", "completion": "..."}';

function parseLine(line: string, maxLineBytes: number): ParsedLine {
  // UTF-16 length is a lower bound on UTF-8 bytes: only measure bytes when it could matter.
  if (line.length * 3 > maxLineBytes) {
    const bytes = Buffer.byteLength(line, 'utf8');
    if (bytes > maxLineBytes) return { message: `line is ${bytes} bytes, over the limit of ${maxLineBytes}; split the example or raise the limit` };
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { message: `invalid JSON (${(error as Error).message}); each line must be one JSON object such as ${shapes}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { message: `expected a JSON object such as ${shapes}, got ${typeName(value)}` };
  }
  const record = value as Record<string, unknown>;
  const hasText = Object.hasOwn(record, 'text');
  const hasPrompt = Object.hasOwn(record, 'prompt');
  const hasCompletion = Object.hasOwn(record, 'completion');

  if (hasText && (hasPrompt || hasCompletion)) {
    return { field: 'text', message: `has both "text" and "${hasPrompt ? 'prompt' : 'completion'}"; keep "text" for a plain example or "prompt" and "completion" for a pair` };
  }
  if (hasText) {
    const problem = stringField(record, 'text', false);
    return problem ?? { kind: 'text', text: record.text as string };
  }
  if (hasPrompt || hasCompletion) {
    const missing = hasPrompt ? 'completion' : 'prompt';
    if (!hasPrompt || !hasCompletion) return { field: missing, message: `field "${missing}" is missing; a pair needs both "prompt" and "completion" (or use {"text": "..."})` };
    const problem = stringField(record, 'prompt', true) ?? stringField(record, 'completion', false);
    return problem ?? { kind: 'prompt_completion', prompt: record.prompt as string, completion: record.completion as string };
  }
  const keys = Object.keys(record);
  return { message: `no "text" or "prompt"/"completion" field (found ${keys.length === 0 ? 'an empty object' : keys.map((key) => `"${key}"`).join(', ')}); expected ${shapes}` };
}

function stringField(record: Record<string, unknown>, field: string, mayBeEmpty: boolean): { field: string; message: string } | undefined {
  const value = record[field];
  if (typeof value !== 'string') return { field, message: `field "${field}" must be a string, got ${typeName(value)}` };
  if (!mayBeEmpty && value.trim() === '') return { field, message: `field "${field}" is empty; remove the line or give it text` };
  return undefined;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}
