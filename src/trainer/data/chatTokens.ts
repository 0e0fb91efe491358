/**
 * Token ids of texts that may have come from a model's chat template. A template writes the special tokens the
 * model expects itself (BOS included, when the model uses one), so such text is tokenized without adding any, as
 * TRL tokenizes conversational data (`add_special_tokens=False`); plain text gets BOS in front.
 *
 * Which texts a template wrote: the stages that render them know (chatExamples.ts marks its results). Texts that
 * pass through a file first (a judgments file, a prompt list) are recognised by their start: plain text never
 * starts with a special token (our BPE never reads one from text; a Hugging Face tokenizer reads one only where the
 * text spells it, as a template does), while every chat template starts its rendering with one
 * (`<|im_start|>`, `<|begin_of_text|>`, `<s>`).
 */
import { HfTokenizerAdapter, type Tokenizer } from '../tokenizer';
import type { ChatFormatter } from './chatExamples';

/** The run's chat-template renderer: the model folder's Hugging Face tokenizer; none for our BPE. */
export function chatFormatterOf(tokenizer: Tokenizer): ChatFormatter | undefined {
  return tokenizer instanceof HfTokenizerAdapter ? tokenizer.hf : undefined;
}

/** True when `ids` start with a special token, as a chat template's rendering does. */
export function startsWithSpecialToken(tokenizer: Tokenizer, ids: readonly number[]): boolean {
  return ids.length > 0 && tokenizer.isSpecial(ids[0]);
}

/**
 * A prompt's ids as generation and scoring start from them: BOS + text for plain text; the text alone when a chat
 * template wrote it (`chatFormatted`, or recognised by its leading special token when not said).
 */
export function encodePrompt(tokenizer: Tokenizer, text: string, chatFormatted?: boolean): number[] {
  const ids = tokenizer.encode(text);
  if (chatFormatted ?? startsWithSpecialToken(tokenizer, ids)) return ids;
  return tokenizer.bosId === undefined ? ids : [tokenizer.bosId, ...ids];
}
