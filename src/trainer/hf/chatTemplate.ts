/**
 * Chat templates of a Hugging Face tokenizer, rendered with @huggingface/jinja as transformers'
 * `apply_chat_template` renders them: the template sees `messages`, `add_generation_prompt`, the special tokens
 * (`bos_token`, `eos_token`, `unk_token`, `pad_token`, …) and `raise_exception` / `strftime_now` (the Jinja
 * library provides those two). A folder's template is `chat_template.jinja` (transformers ≥ 4.50 saves it there)
 * or tokenizer_config.json's `chat_template`: a string, or a list of `{name, template}` where "default" is used
 * unless another is named.
 */
import { Template } from '@huggingface/jinja';
import { quote, UserError } from '../../shared/userError';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface FormatChatOptions {
  /** End with the header of an assistant turn, so generation writes the reply (transformers' flag). */
  addGenerationPrompt: boolean;
  /** Which named template, when the folder has several; "default" otherwise. */
  template?: string;
}

export const defaultTemplateName = 'default';

/** The folder's templates by name (a single template is "default"), with the file each came from. */
export interface ChatTemplates {
  readonly file: string;
  readonly byName: ReadonlyMap<string, string>;
}

/** tokenizer_config.json's `chat_template` value (or chat_template.jinja's text) → templates, none when absent. */
export function parseChatTemplates(value: unknown, file: string): ChatTemplates {
  if (value === undefined || value === null) return { file, byName: new Map() };
  const field = 'chat_template';
  if (typeof value === 'string') return { file, byName: new Map([[defaultTemplateName, value]]) };
  if (!Array.isArray(value))
    throw new UserError(`must be a template string or a list of {name, template}, got ${quote(value)}`, {
      file,
      field,
    });
  const byName = new Map<string, string>();
  value.forEach((entry: unknown, index) => {
    const { name, template } = (entry ?? {}) as { name?: unknown; template?: unknown };
    if (typeof name !== 'string' || typeof template !== 'string')
      throw new UserError(`must be {"name": string, "template": string}, got ${quote(entry)}`, {
        file,
        field: `${field}[${index}]`,
      });
    byName.set(name, template);
  });
  return { file, byName };
}

/**
 * Renders `messages` with the chosen template; `specialTokens` are the variables named after them. A template
 * that does not parse or fails to render is a UserError naming its file and the Jinja message.
 */
export function renderChat(
  templates: ChatTemplates,
  messages: readonly ChatMessage[],
  specialTokens: Readonly<Record<string, string>>,
  options: FormatChatOptions,
  compiled: Map<string, Template>,
): string {
  const { file } = templates;
  const isJinjaFile = file.endsWith('.jinja');
  if (templates.byName.size === 0)
    throw new UserError('has no chat_template: the tokenizer has no chat template', {
      file,
      hint: 'format prompts as plain text, or add a chat_template to the model folder',
    });
  const name = options.template ?? defaultTemplateName;
  const source = templates.byName.get(name);
  if (source === undefined)
    throw new UserError(`has no template named ${quote(name)}`, {
      file,
      field: isJinjaFile ? undefined : 'chat_template',
      hint: `templates: ${[...templates.byName.keys()].join(', ')}`,
    });
  const field = isJinjaFile
    ? undefined
    : name === defaultTemplateName
      ? 'chat_template'
      : `chat_template ${quote(name)}`;
  let template = compiled.get(name);
  if (template === undefined) {
    try {
      template = new Template(source);
    } catch (error) {
      throw new UserError(`does not parse: ${(error as Error).message}`, { file, field });
    }
    compiled.set(name, template);
  }
  try {
    return template.render({
      ...specialTokens,
      messages: messages.map((message) => ({ ...message })),
      add_generation_prompt: options.addGenerationPrompt,
      tools: null,
      documents: null,
    });
  } catch (error) {
    throw new UserError(`failed to render: ${(error as Error).message}`, { file, field });
  }
}
