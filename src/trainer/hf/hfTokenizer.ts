/**
 * The tokenizer of a Hugging Face model folder: tokenizer.json through @huggingface/tokenizers, with
 * tokenizer_config.json's special tokens, `add_bos_token` / `add_eos_token` and chat templates.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { isRecord } from '../../shared/isRecord';
import { quote, UserError, userErrorFromFileSystem } from '../../shared/userError';
import {
  parseChatTemplates,
  renderChat,
  type ChatMessage,
  type ChatTemplates,
  type FormatChatOptions,
} from './chatTemplate';

export const tokenizerFile = 'tokenizer.json';
export const tokenizerConfigFile = 'tokenizer_config.json';
/** Where transformers ≥ 4.50 saves a tokenizer's single chat template; it wins over tokenizer_config.json's. */
export const chatTemplateFile = 'chat_template.jinja';

/** The special-token attributes a template sees as variables (transformers' SPECIAL_TOKENS_ATTRIBUTES). */
const specialTokenKeys = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;
export type SpecialTokenKey = (typeof specialTokenKeys)[number];

export interface HfTokenizer {
  readonly folder: string;
  readonly tokenizer: Tokenizer;
  /** The special tokens tokenizer_config.json names (text, not ids); absent ones are left out. */
  readonly specialTokens: Readonly<Partial<Record<SpecialTokenKey, string>>>;
  /** tokenizer_config.json's flags; null when it does not say (tokenizer.json's post-processor decides then). */
  readonly addBosToken: boolean | null;
  readonly addEosToken: boolean | null;
  /** Names of the chat templates ("default" for a single one); [] when the folder has none. */
  readonly chatTemplateNames: readonly string[];
  /** Token ids; `addSpecialTokens` applies tokenizer.json's post-processor (a Llama tokenizer's BOS). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** The id of a token (a special token's text, say); undefined when the vocabulary lacks it. */
  tokenId(token: string): number | undefined;
  /** The conversation as the model was trained to see it (its chat template rendered). */
  formatChat(messages: readonly ChatMessage[], options: FormatChatOptions): string;
}

export async function loadHfTokenizer(folder: string): Promise<HfTokenizer> {
  const jsonFile = join(folder, tokenizerFile);
  const configFile = join(folder, tokenizerConfigFile);
  const json = await readJson(jsonFile, false);
  const config = (await readJson(configFile, true)) ?? {};
  if (!isRecord(config)) throw new UserError(`must be a JSON object, got ${quote(config)}`, { file: configFile });

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json as object, config);
  } catch (error) {
    throw new UserError(`is not a tokenizer the lens can load (${(error as Error).message})`, { file: jsonFile });
  }
  const specialTokens: Partial<Record<SpecialTokenKey, string>> = {};
  for (const key of specialTokenKeys) {
    const token = tokenText(config[key], configFile, key);
    if (token !== undefined) specialTokens[key] = token;
  }
  const templates = await chatTemplates(folder, config, configFile);
  const compiled = new Map<string, Template>();
  return {
    folder,
    tokenizer,
    specialTokens,
    addBosToken: flag(config, 'add_bos_token', configFile),
    addEosToken: flag(config, 'add_eos_token', configFile),
    chatTemplateNames: [...templates.byName.keys()],
    encode: (text, options = {}) =>
      tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids,
    decode: (ids, options = {}) =>
      tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false }),
    tokenId: (token) => tokenizer.token_to_id(token),
    formatChat: (messages, options) => renderChat(templates, messages, specialTokens, options, compiled),
  };
}

async function chatTemplates(
  folder: string,
  config: Record<string, unknown>,
  configFile: string,
): Promise<ChatTemplates> {
  const jinjaFile = join(folder, chatTemplateFile);
  const jinja = await readFile(jinjaFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw userErrorFromFileSystem(error) ?? error;
  });
  if (jinja !== undefined) return parseChatTemplates(jinja, jinjaFile);
  return parseChatTemplates(config.chat_template, configFile);
}

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken object with `content`. */
function tokenText(value: unknown, file: string, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isRecord(value) && typeof value.content === 'string') return value.content;
  throw new UserError(`must be a token string or {"content": string, …}, got ${quote(value)}`, { file, field });
}

function flag(config: Record<string, unknown>, key: string, file: string): boolean | null {
  const value = config[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'boolean')
    throw new UserError(`must be true or false, got ${quote(value)}`, { file, field: key });
  return value;
}

async function readJson(file: string, optional: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw userErrorFromFileSystem(error) ?? error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UserError(`is not valid JSON (${(error as Error).message})`, { file });
  }
}
