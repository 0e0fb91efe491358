/**
 * Conversational examples rendered with a model's chat template, as TRL's `apply_chat_template`
 * (trl/data_utils.py) renders them before tokenizing:
 *
 *   {"messages": [m…]}                                  the whole conversation, one text (language modelling)
 *   {"prompt": [m…], "completion": [m…]}                prompt = render(prompt, add_generation_prompt),
 *                                                       completion = render(prompt + completion) − that prompt
 *   {"prompt": [m…], "chosen": [m…], "rejected": [m…]}  the same for each answer
 *   {"chosen": [m…], "rejected": [m…]}                  implicit prompt: the turns both share (TRL's extract_prompt)
 *
 * "−" is TRL's: the prompt becomes the longest common prefix of the two renderings (a template may render the
 * generation prompt differently from the start of an assistant turn), and the completion is what follows it. A
 * prompt whose last turn is the assistant's is continued rather than followed by a generation prompt
 * (transformers' `continue_final_message`). A `messages` conversation trains on every token, as TRL's SFT does by
 * default; prompt/completion trains on the completion.
 *
 * With `"chat_template": true`, plain strings are turns too: a string prompt is one user turn and a string
 * completion (chosen, rejected) one assistant turn, so a file of plain prompts reaches a chat model as it expects.
 * {"text"} lines stay as they are (nothing says whose turn they are).
 */
import { quote, UserError } from '../../shared/userError';
import type { ChatMessage, FormatChatOptions } from '../hf/chatTemplate';

/** What formatting needs of a tokenizer (an HfTokenizer has it all). */
export interface ChatFormatter {
  readonly folder: string;
  readonly chatTemplateNames: readonly string[];
  formatChat(messages: readonly ChatMessage[], options: FormatChatOptions): string;
}

/** Where a line came from, for errors. */
export interface LinePlace {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
}

export interface ChatFormatOptions {
  /** The dataset's `chat_template`: conversational lines need it; plain prompts become turns with it. */
  readonly chatTemplate: boolean;
}

/** A prompt/completion pair as text; a language-modelling example has no prompt. */
export interface FormattedExample {
  readonly prompt?: string;
  readonly completion: string;
  /**
   * True when the text came from the chat template, which writes the special tokens the model expects (BOS
   * included): tokenize it without adding special tokens, as TRL does for conversational data.
   */
  readonly chatFormatted: boolean;
}

export interface FormattedPreference {
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  readonly chatFormatted: boolean;
}

export type Turns = string | readonly ChatMessage[];

const messageShape = '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]';

/** TRL's is_conversational: a list whose first element is an object with a role. */
export function isConversational(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0 && typeof value[0] === 'object' && value[0] !== null;
}

/** A list of {role, content} messages, or a UserError naming file, line and the message's field. */
export function parseMessages(value: unknown, field: string, place: LinePlace): ChatMessage[] {
  const problem = (at: string, what: string) =>
    new UserError(what, { file: place.file, line: place.line, field: at, hint: `expected ${messageShape}` });
  if (!Array.isArray(value)) throw problem(field, `must be a list of messages, got ${quote(value)}`);
  if (value.length === 0) throw problem(field, 'is an empty list of messages');
  return value.map((message: unknown, index) => {
    const at = `${field}[${index}]`;
    if (typeof message !== 'object' || message === null || Array.isArray(message))
      throw problem(at, `must be a {"role", "content"} object, got ${quote(message)}`);
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || role.trim() === '')
      throw problem(`${at}.role`, `must be a role such as "user" or "assistant", got ${quote(role)}`);
    if (typeof content !== 'string') throw problem(`${at}.content`, `must be a string, got ${quote(content)}`);
    return { role, content };
  });
}

/** A field that is either text or a list of messages (validated), as TRL's formats allow. */
export function parseTurns(value: unknown, field: string, place: LinePlace): Turns {
  if (typeof value === 'string') return value;
  return parseMessages(value, field, place);
}

/**
 * An SFT example as text. `messages` (a whole conversation) is a language-modelling example; prompt and
 * completion are either both text or rendered with the template.
 */
export function formatExample(
  example: { messages: readonly ChatMessage[] } | { prompt: Turns; completion: Turns },
  tokenizer: ChatFormatter | undefined,
  options: ChatFormatOptions & { place: LinePlace },
): FormattedExample {
  if ('messages' in example) {
    const chat = requireChat(tokenizer, options, 'messages');
    return { completion: chat.formatChat(example.messages, { addGenerationPrompt: false }), chatFormatted: true };
  }
  const plain = typeof example.prompt === 'string' && typeof example.completion === 'string';
  if (plain && !options.chatTemplate)
    return { prompt: example.prompt as string, completion: example.completion as string, chatFormatted: false };
  const chat = requireChat(tokenizer, options, typeof example.prompt === 'string' ? 'completion' : 'prompt');
  const prompt = asTurns(example.prompt, 'user');
  const [formattedPrompt, completion] = promptAndAnswer(chat, prompt, asTurns(example.completion, 'assistant'));
  return { prompt: formattedPrompt, completion, chatFormatted: true };
}

/** A rollout prompt as text: rendered with the generation prompt (or continuing an assistant's last turn). */
export function formatPrompt(
  prompt: Turns,
  tokenizer: ChatFormatter | undefined,
  options: ChatFormatOptions & { place: LinePlace },
): string {
  if (typeof prompt === 'string' && !options.chatTemplate) return prompt;
  return renderPrompt(requireChat(tokenizer, options, 'prompt'), asTurns(prompt, 'user'));
}

/** A preference line (explicit or implicit prompt) as TRL's prompt/chosen/rejected text. */
export function formatPreference(
  example: { prompt?: Turns; chosen: Turns; rejected: Turns },
  tokenizer: ChatFormatter | undefined,
  options: ChatFormatOptions & { place: LinePlace },
): FormattedPreference {
  const { chosen, rejected } = example;
  const allText = [example.prompt ?? '', chosen, rejected].every((turns) => typeof turns === 'string');
  if (allText && !options.chatTemplate) {
    if (example.prompt === undefined)
      return { ...extractTextPrompt(chosen as string, rejected as string), chatFormatted: false };
    return {
      prompt: example.prompt as string,
      chosen: chosen as string,
      rejected: rejected as string,
      chatFormatted: false,
    };
  }
  const chat = requireChat(tokenizer, options, example.prompt === undefined ? 'chosen' : 'prompt');
  let prompt: readonly ChatMessage[];
  let chosenTurns = asTurns(chosen, 'assistant');
  let rejectedTurns = asTurns(rejected, 'assistant');
  if (example.prompt === undefined) {
    // TRL's extract_prompt: the turns both conversations share are the prompt.
    let shared = 0;
    while (
      shared < Math.min(chosenTurns.length, rejectedTurns.length) - 1 &&
      sameMessage(chosenTurns[shared], rejectedTurns[shared])
    )
      shared++;
    if (shared === 0)
      throw new UserError('and "rejected" share no opening turn, so there is no prompt', {
        ...options.place,
        field: 'chosen',
        hint: 'give a "prompt" field, or start both conversations with the same user turn',
      });
    prompt = chosenTurns.slice(0, shared);
    chosenTurns = chosenTurns.slice(shared);
    rejectedTurns = rejectedTurns.slice(shared);
  } else prompt = asTurns(example.prompt, 'user');
  // As TRL: the prompt shrinks to what each full rendering shares with it; chosen keeps the cut made for it.
  const [promptBeforeRejected, chosenText] = promptAndAnswer(chat, prompt, chosenTurns);
  const fullRejected = chat.formatChat([...prompt, ...rejectedTurns], { addGenerationPrompt: false });
  const promptText = commonPrefix(promptBeforeRejected, fullRejected);
  return {
    prompt: promptText,
    chosen: chosenText,
    rejected: fullRejected.slice(promptText.length),
    chatFormatted: true,
  };
}

/** The error for a model folder without a chat template, naming the file to add it to. */
export function requireChatTemplate(tokenizer: ChatFormatter): void {
  if (tokenizer.chatTemplateNames.length > 0) return;
  throw new UserError('has no "chat_template", and the dataset sets "chat_template": true', {
    file: `${tokenizer.folder}/tokenizer_config.json`,
    hint: 'use a model folder with a chat template (an instruct model), or set "chat_template": false',
  });
}

function requireChat(
  tokenizer: ChatFormatter | undefined,
  options: ChatFormatOptions & { place: LinePlace },
  field: string,
): ChatFormatter {
  if (!options.chatTemplate)
    throw new UserError("is a list of messages, which needs the model's chat template", {
      ...options.place,
      field,
      hint: 'set "chat_template": true on this dataset (with a "model": {"from": …} folder that has a template)',
    });
  if (tokenizer === undefined)
    throw new UserError('needs a chat template, and the run has no Hugging Face tokenizer', {
      ...options.place,
      field,
      hint: 'set "model": {"from": "<model folder>"}, or "chat_template": false',
    });
  requireChatTemplate(tokenizer);
  return tokenizer;
}

function asTurns(turns: Turns, role: 'user' | 'assistant'): readonly ChatMessage[] {
  return typeof turns === 'string' ? [{ role, content: turns }] : turns;
}

/** [prompt text, answer text] of TRL's explicit-prompt case. */
function promptAndAnswer(
  chat: ChatFormatter,
  prompt: readonly ChatMessage[],
  answer: readonly ChatMessage[],
): [string, string] {
  const full = chat.formatChat([...prompt, ...answer], { addGenerationPrompt: false });
  const promptText = commonPrefix(renderPrompt(chat, prompt), full);
  return [promptText, full.slice(promptText.length)];
}

/**
 * The prompt as generation starts from it: a user's last turn gets the generation prompt; an assistant's last turn
 * is continued (transformers' continue_final_message: the rendering cut right after that turn's stripped content).
 */
function renderPrompt(chat: ChatFormatter, prompt: readonly ChatMessage[]): string {
  const last = prompt[prompt.length - 1];
  if (last.role !== 'assistant') return chat.formatChat(prompt, { addGenerationPrompt: true });
  const rendered = chat.formatChat(prompt, { addGenerationPrompt: false });
  const content = last.content.trim();
  const end = rendered.lastIndexOf(content);
  if (end < 0)
    throw new UserError(`chat template does not render the final assistant message ${quote(content)}`, {
      file: chat.folder,
      hint: 'end the prompt with a user turn, or use a template that renders assistant turns',
    });
  return rendered.slice(0, end + content.length);
}

function commonPrefix(a: string, b: string): string {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return a.slice(0, n);
}

function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  return a.role === b.role && a.content === b.content;
}

/** TRL's extract_prompt for text: the common start (a space before the split goes with the answers). */
function extractTextPrompt(chosen: string, rejected: string): { prompt: string; chosen: string; rejected: string } {
  let split = commonPrefix(chosen, rejected).length;
  if (split > 0 && split < Math.min(chosen.length, rejected.length) && chosen[split - 1] === ' ') split--;
  return { prompt: chosen.slice(0, split), chosen: chosen.slice(split), rejected: rejected.slice(split) };
}
