/**
 * A Hugging Face model folder's tokenizer (hf/hfTokenizer.ts, @huggingface/tokenizers) as the stages' Tokenizer.
 * Which ids play which part, as transformers decides them:
 *   padId: tokenizer_config.json's `pad_token`, else the EOS token (what TRL does for models without one);
 *   bosId: the token the tokenizer itself puts first when it adds special tokens (Llama's `<|begin_of_text|>`),
 *          none when it adds none (Qwen2, GPT-2's tokenizer): prompts then start with their first text token;
 *   eosId: tokenizer_config.json's `eos_token`, else the first of config.json's `eos_token_id`s.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { writeFileDurable } from '../../shared/durableWrite';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../shared/userError';
import type { HfSpecialTokenIds } from '../hf/hfArchitecture';
import { loadHfTokenizer, tokenizerConfigFile, type HfTokenizer } from '../hf/hfTokenizer';
import type { Tokenizer } from './tokenizer';

/** The tokenizer files transformers' save_pretrained writes (the ones a folder has are copied as they are). */
export const hfTokenizerFiles = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
] as const;

/** A text the first-token probe encodes: any text that is not empty. */
const probeText = 'a';

export class HfTokenizerAdapter implements Tokenizer {
  readonly padId: number;
  readonly bosId: number | undefined;
  readonly eosId: number;
  readonly vocabSize: number;
  private readonly specialCache = new Map<number, boolean>();

  /** `modelTokenIds`: config.json's ids, the fallback for an EOS the tokenizer does not name. */
  constructor(
    readonly hf: HfTokenizer,
    modelTokenIds?: HfSpecialTokenIds,
  ) {
    const configFile = join(hf.folder, tokenizerConfigFile);
    this.vocabSize = Math.max(...hf.tokenizer.get_vocab(true).values()) + 1;
    const idOf = (key: 'eos_token' | 'pad_token' | 'bos_token'): number | undefined => {
      const text = hf.specialTokens[key];
      if (text === undefined) return undefined;
      const id = hf.tokenId(text);
      if (id === undefined)
        throw new UserError(`names ${JSON.stringify(text)}, which is not in the vocabulary`, {
          file: configFile,
          field: key,
        });
      return id;
    };
    const eosId = idOf('eos_token') ?? modelTokenIds?.eos[0];
    if (eosId === undefined)
      throw new UserError('is missing, and config.json has no eos_token_id', {
        file: configFile,
        field: 'eos_token',
        hint: 'a model needs an end-of-sequence token to end its responses',
      });
    this.eosId = eosId;
    this.padId = idOf('pad_token') ?? eosId;
    const withSpecials = hf.encode(probeText, { addSpecialTokens: true });
    const plain = hf.encode(probeText, { addSpecialTokens: false });
    this.bosId = withSpecials.length > plain.length && withSpecials[0] !== plain[0] ? withSpecials[0] : undefined;
  }

  static async load(folder: string, modelTokenIds?: HfSpecialTokenIds): Promise<HfTokenizerAdapter> {
    return new HfTokenizerAdapter(await loadHfTokenizer(folder), modelTokenIds);
  }

  encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
    const ids = this.hf.encode(text, { addSpecialTokens: false });
    if (options.bos && this.bosId !== undefined) ids.unshift(this.bosId);
    if (options.eos) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.hf.decode(ids, options);
  }

  tokenText(id: number): string {
    return this.isSpecial(id) ? (this.hf.tokenizer.id_to_token(id) ?? '') : this.hf.decode([id]);
  }

  /** A token the library drops when decoding with skip_special_tokens (added tokens marked special), or pad/eos. */
  isSpecial(id: number): boolean {
    let special = this.specialCache.get(id);
    if (special === undefined) {
      special =
        id === this.padId ||
        id === this.eosId ||
        id === this.bosId ||
        (this.hf.decode([id], { skipSpecialTokens: true }) === '' && this.hf.decode([id]) !== '');
      this.specialCache.set(id, special);
    }
    return special;
  }

  /** Copies the folder's tokenizer files as they were (chat template included): the model's own tokenizer. */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const name of hfTokenizerFiles) {
      const source = join(this.hf.folder, name);
      if (existsSync(source)) writeFileDurable(join(dir, name), await readFile(source));
    }
  }
}
