/**
 * A preference file rendered with the policy's chat template (`"annotator": "file"`, `"chat_template": true`), as
 * TRL renders conversational preference data before tokenizing (chatExamples.ts formatPreference): each TRL pair
 * `{"prompt"?, "chosen", "rejected"}` (text, or lists of {role, content} messages) and each judgment
 * `{"prompt", "completions", "ranking", …}` (text) becomes the same line with the rendered texts. The reward model
 * and DPO then read the rendered file as any other; its texts start with the template's special tokens, so they are
 * tokenized without adding BOS (data/chatTokens.ts).
 *
 * Lines map one to one (blank lines, retractions and lines that do not parse are copied as they are), so a problem
 * the preference reader reports later names the same line number as in the user's file.
 */
import { writeFileDurable } from '../../shared/durableWrite';
import { readJsonlLines } from '../../shared/jsonlLines';
import { isRecord } from '../../shared/isRecord';
import {
  formatExample,
  formatPreference,
  parseTurns,
  requireChatTemplate,
  type ChatFormatter,
  type LinePlace,
} from '../data/chatExamples';

export interface RenderedPreferenceFile {
  /** Lines rendered with the template. */
  readonly rendered: number;
  /** Lines that could not be rendered, as file:line messages (copied as they were). */
  readonly problems: string[];
}

/** Renders `source` line by line into `target` with `chat`'s template. */
export async function renderPreferenceFile(
  source: string,
  target: string,
  chat: ChatFormatter,
): Promise<RenderedPreferenceFile> {
  requireChatTemplate(chat);
  const lines: string[] = [];
  const problems: string[] = [];
  let rendered = 0;
  for await (const read of readJsonlLines(source)) {
    if ('problem' in read) {
      problems.push(`${source}:${read.line}: ${read.problem}`);
      lines.push(''); // kept blank so the lines after it keep their numbers
      continue;
    }
    const place = { file: source, line: read.line };
    try {
      const line = renderLine(read.text, chat, place);
      if (line !== read.text) rendered++;
      lines.push(line);
    } catch (error) {
      problems.push((error as Error).message);
      lines.push(read.text);
    }
  }
  writeFileDurable(target, lines.map((line) => `${line}\n`).join(''));
  return { rendered, problems };
}

function renderLine(text: string, chat: ChatFormatter, place: LinePlace): string {
  if (text.trim() === '') return text;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text; // not JSON: the preference reader names the line
  }
  if (!isRecord(value) || 'retracts' in value) return text;
  const options = { chatTemplate: true, place };
  if ('chosen' in value || 'rejected' in value) {
    const pair = formatPreference(
      {
        ...(value.prompt !== undefined && { prompt: parseTurns(value.prompt, 'prompt', place) }),
        chosen: parseTurns(value.chosen, 'chosen', place),
        rejected: parseTurns(value.rejected, 'rejected', place),
      },
      chat,
      options,
    );
    return JSON.stringify({ ...value, prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected });
  }
  const { prompt, completions } = value;
  if (typeof prompt !== 'string' || !Array.isArray(completions) || !completions.every((c) => typeof c === 'string'))
    return text; // the preference reader names the field
  // Each completion is an assistant turn after the prompt's user turn; the prompt is rendered with the generation
  // prompt, which every common template writes as the opening of an assistant turn, so the cut is the same for all.
  const formatted = completions.map((completion: string) => formatExample({ prompt, completion }, chat, options));
  return JSON.stringify({
    ...value,
    prompt: formatted[0].prompt,
    completions: formatted.map((example) => example.completion),
  });
}
