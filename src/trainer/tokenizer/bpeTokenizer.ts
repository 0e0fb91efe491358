/**
 * GPT-2 style byte-level BPE tokenizer: GPT-2's regex split, UTF-8 bytes, merges applied in rank
 * order (lowest rank first, leftmost first on ties), exactly as Hugging Face tokenizers' BPE model
 * does, so the `tokenizer.json` it saves gives the same ids in transformers / transformers.js.
 * Special tokens are added only through `encode`'s options, never recognised in text, so text from
 * a user or a model cannot inject an `<|eos|>`.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurable } from '../../shared/durableWrite';
import { checkTokenizerConfig, parseJsonText } from '../../shared/runFiles';
import { BYTE_TO_CHAR, byteLevelToBytes, splitWords, utf8Decode, utf8Encode } from './byteLevel';
import type { Tokenizer } from './tokenizer';

/** The special tokens, ids 0, 1, 2 in a trained vocabulary. */
export const SPECIAL_TOKENS = { pad: '<|pad|>', bos: '<|bos|>', eos: '<|eos|>' } as const;

/** A trained BPE: what `trainBpe` returns and `tokenizer.json`'s model section holds. */
export interface BpeModel {
  /** Token text by id: specials as their names, other tokens spelled in byte-level characters (byteLevel.ts). */
  readonly vocab: readonly string[];
  /**
   * Merge rules, highest priority first, as [left id, right id]; the result is the token spelled vocab[left] +
   * vocab[right].
   */
  readonly merges: readonly (readonly [number, number])[];
}

/** Settings shared by the pre-tokenizer, post-processor and decoder entries of our tokenizer.json. */
const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } as const;

/** The Hugging Face `tokenizer.json` we write (tokenizers' serialization format "1.0"). */
export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: {
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }[];
  normalizer: null;
  pre_tokenizer: typeof BYTE_LEVEL;
  post_processor: typeof BYTE_LEVEL;
  decoder: typeof BYTE_LEVEL;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: false;
    byte_fallback: false;
    ignore_merges: false;
    vocab: Record<string, number>;
    /** Pairs, the format tokenizers writes since 0.20; the older "left right" strings are read too. */
    merges: [string, string][];
  };
}

// Merge lookup key for a pair of ids, as in bpeTrainer.ts.
const KEY_BASE = 2 ** 21;
// Words are cached once encoded; long ones are rare and would only bloat the cache.
const CACHE_MAX_ENTRIES = 50_000;
const CACHE_MAX_WORD_LENGTH = 256;

export class BpeTokenizer implements Tokenizer {
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  private readonly vocab: readonly string[];
  private readonly merges: readonly (readonly [number, number])[];
  /** UTF-8 bytes of each token; a special's are its name's, which is how Hugging Face decodes one inline. */
  private readonly tokenBytes: readonly Uint8Array[];
  private readonly byteIds = new Int32Array(256);
  private readonly rankOf = new Map<number, number>();
  private readonly mergedId: number[] = [];
  /**
   * Whether every rule that uses merge `rank`'s token ranks after it, so all its occurrences may merge in one pass (see
   * applyMerges).
   */
  private readonly allAtOnce: readonly boolean[];
  private readonly cache = new Map<string, readonly number[]>();

  constructor(model: BpeModel) {
    this.vocab = [...model.vocab];
    this.merges = model.merges.map(([left, right]) => [left, right] as const);
    const idOf = new Map<string, number>();
    this.vocab.forEach((token, id) => {
      if (idOf.has(token))
        throw new Error(
          `Token ${JSON.stringify(token)} appears twice in the vocabulary (ids ${idOf.get(token)} and ${id}).`,
        );
      idOf.set(token, id);
    });
    const specialId = (name: string): number => {
      const id = idOf.get(name);
      if (id === undefined)
        throw new Error(
          `The vocabulary has no ${name} token; BpeTokenizer needs ${Object.values(SPECIAL_TOKENS).join(', ')}.`,
        );
      return id;
    };
    this.padId = specialId(SPECIAL_TOKENS.pad);
    this.bosId = specialId(SPECIAL_TOKENS.bos);
    this.eosId = specialId(SPECIAL_TOKENS.eos);
    this.tokenBytes = this.vocab.map((token, id) => (this.isSpecial(id) ? utf8Encode(token) : byteLevelToBytes(token)));
    BYTE_TO_CHAR.forEach((char, byte) => {
      const id = idOf.get(char);
      if (id === undefined)
        throw new Error(
          `The vocabulary lacks the token for byte ${byte} (${JSON.stringify(char)}), so some text could not ` +
            `be encoded.`,
        );
      this.byteIds[byte] = id;
    });
    const firstUse = new Map<number, number>(); // token id -> rank of the first rule with it on either side
    this.merges.forEach(([left, right], rank) => {
      const inRange =
        Number.isInteger(left) &&
        Number.isInteger(right) &&
        left >= 0 &&
        right >= 0 &&
        left < this.vocab.length &&
        right < this.vocab.length;
      const id = inRange ? idOf.get(this.vocab[left] + this.vocab[right]) : undefined;
      if (id === undefined || this.isSpecial(left) || this.isSpecial(right)) {
        throw new Error(
          `Merge ${rank} (${left}, ${right}) does not join two ordinary tokens into a token of the vocabulary.`,
        );
      }
      const key = left * KEY_BASE + right;
      if (this.rankOf.has(key)) throw new Error(`Merge ${rank} repeats merge ${this.rankOf.get(key)}.`);
      this.rankOf.set(key, rank);
      this.mergedId.push(id);
      if (!firstUse.has(left)) firstUse.set(left, rank);
      if (!firstUse.has(right)) firstUse.set(right, rank);
    });
    this.allAtOnce = this.mergedId.map((id, rank) => (firstUse.get(id) ?? Infinity) > rank);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Token ids of `text`; `<|bos|>` / `<|eos|>` only when asked for, never from text that spells them. */
  encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
    const ids: number[] = [];
    if (options.bos) ids.push(this.bosId);
    for (const word of splitWords(text)) {
      for (const id of this.encodeWord(word)) ids.push(id);
    }
    if (options.eos) ids.push(this.eosId);
    return ids;
  }

  /** Text of `ids`. Bytes that are not valid UTF-8 (a character cut between tokens) become U+FFFD. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      this.checkId(id);
      if (options.skipSpecialTokens && this.isSpecial(id)) continue;
      parts.push(this.tokenBytes[id]);
      length += this.tokenBytes[id].length;
    }
    const bytes = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return utf8Decode(bytes);
  }

  /** One token's text for per-token views: its bytes decoded with replacement, or a special's name. */
  tokenText(id: number): string {
    this.checkId(id);
    return this.isSpecial(id) ? this.vocab[id] : utf8Decode(this.tokenBytes[id]);
  }

  isSpecial(id: number): boolean {
    return id === this.padId || id === this.bosId || id === this.eosId;
  }

  /** The model as plain data, e.g. to hand to another process. */
  toModel(): BpeModel {
    return { vocab: [...this.vocab], merges: this.merges.map(([left, right]) => [left, right] as const) };
  }

  /** Hugging Face `tokenizer.json`, loadable by tokenizers (Rust/Python), transformers and transformers.js. */
  toJSON(): TokenizerJson {
    const specials = [this.padId, this.bosId, this.eosId].sort((a, b) => a - b);
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: specials.map((id) => ({
        id,
        content: this.vocab[id],
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: { ...BYTE_LEVEL },
      post_processor: { ...BYTE_LEVEL },
      decoder: { ...BYTE_LEVEL },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab: Object.fromEntries(this.vocab.map((token, id) => [token, id])),
        merges: this.merges.map(([left, right]) => [this.vocab[left], this.vocab[right]]),
      },
    };
  }

  /** Reads a `tokenizer.json` of the kind {@link toJSON} writes; `source` names it in errors. */
  static fromJSON(json: unknown, source = 'tokenizer.json'): BpeTokenizer {
    const fail = (what: string): never => {
      throw new Error(
        `${source}: ${what}. BpeTokenizer reads GPT-2 style byte-level BPE files such as the ones it saves.`,
      );
    };
    const root = asRecord(json) ?? fail('not a JSON object');
    const model = asRecord(root.model) ?? fail('no "model" object');
    if (model.type !== undefined && model.type !== 'BPE')
      fail(`model.type is ${JSON.stringify(model.type)}, not "BPE"`);
    for (const field of ['pre_tokenizer', 'decoder'] as const) {
      const part = asRecord(root[field]);
      if (part?.type !== 'ByteLevel' || part.add_prefix_space === true || part.use_regex === false)
        fail(`${field} is not ByteLevel without a prefix space`);
    }
    if (root.normalizer !== null && root.normalizer !== undefined) fail('it has a normalizer');

    const vocabJson = asRecord(model.vocab) ?? fail('model.vocab is not an object');
    const vocab: string[] = [];
    const place = (token: string, id: unknown): void => {
      if (!Number.isInteger(id) || (id as number) < 0)
        fail(`token ${JSON.stringify(token)} has id ${JSON.stringify(id)}`);
      if (vocab[id as number] !== undefined && vocab[id as number] !== token)
        fail(`id ${String(id)} is used by two tokens`);
      vocab[id as number] = token;
    };
    for (const [token, id] of Object.entries(vocabJson)) place(token, id);
    for (const added of Array.isArray(root.added_tokens) ? root.added_tokens : []) {
      const token = asRecord(added);
      if (typeof token?.content === 'string') place(token.content, token.id);
    }
    for (let id = 0; id < vocab.length; id++) if (vocab[id] === undefined) fail(`no token has id ${id}`);

    const idOf = new Map(vocab.map((token, id) => [token, id]));
    const mergesJson = Array.isArray(model.merges) ? model.merges : fail('model.merges is not an array');
    const merges = mergesJson.map((merge: unknown, rank): [number, number] => {
      // Byte-level tokens never contain a space (it is 'Ġ'), so the legacy "left right" form splits unambiguously.
      const pair = typeof merge === 'string' ? merge.split(' ') : merge;
      const left = Array.isArray(pair) && pair.length === 2 ? idOf.get(pair[0]) : undefined;
      const right = Array.isArray(pair) && pair.length === 2 ? idOf.get(pair[1]) : undefined;
      return left !== undefined && right !== undefined
        ? [left, right]
        : fail(`merge ${rank} (${JSON.stringify(merge)}) is not a pair of vocabulary tokens`);
    });
    return new BpeTokenizer({ vocab, merges });
  }

  /**
   * Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `dir` (a
   * transformers-style model folder), each durably (whole or not at all). `modelMaxLength` is the policy's
   * context length.
   */
  async save(dir: string, options: { modelMaxLength?: number } = {}): Promise<void> {
    await mkdir(dir, { recursive: true });
    writeFileDurable(join(dir, 'tokenizer.json'), JSON.stringify(this.toJSON(), null, 2) + '\n');
    writeFileDurable(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify(this.transformersConfig(options.modelMaxLength ?? 1024), null, 2) + '\n',
    );
    const specialTokensMap = {
      bos_token: SPECIAL_TOKENS.bos,
      eos_token: SPECIAL_TOKENS.eos,
      pad_token: SPECIAL_TOKENS.pad,
    };
    writeFileDurable(join(dir, 'special_tokens_map.json'), JSON.stringify(specialTokensMap, null, 2) + '\n');
  }

  /** Reads the `tokenizer.json` that {@link save} wrote into `dir`. */
  static async load(dir: string): Promise<BpeTokenizer> {
    const path = join(dir, 'tokenizer.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new Error(
        `Could not read the tokenizer at ${path}: ` +
          `${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Save one there with ` +
          `BpeTokenizer.save.`,
      );
    }
    // A cut file names its line and column; a wrong structure names the field (fromJSON).
    const tokenizer = BpeTokenizer.fromJSON(parseJsonText(text, path), path);
    // tokenizer_config.json is not needed to encode, but a damaged one would break transformers.js readers of an
    // export.
    const configPath = join(dir, 'tokenizer_config.json');
    const configText = await readFile(configPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new Error(`Could not read ${configPath}: ${error.code ?? error.message}`);
    });
    if (configText !== undefined) checkTokenizerConfig(parseJsonText(configText, configPath), configPath);
    return tokenizer;
  }

  /**
   * transformers' `tokenizer_config.json`. clean_up_tokenization_spaces: false, or decode would
   * drop the space in " ." and not round-trip; split_special_tokens: true makes transformers treat
   * "<|eos|>" in text as plain text, as encode does (transformers.js ignores it and still matches it).
   */
  private transformersConfig(modelMaxLength: number): Record<string, unknown> {
    const added = this.toJSON().added_tokens;
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: SPECIAL_TOKENS.bos,
      eos_token: SPECIAL_TOKENS.eos,
      pad_token: SPECIAL_TOKENS.pad,
      model_max_length: modelMaxLength,
      clean_up_tokenization_spaces: false,
      split_special_tokens: true,
      added_tokens_decoder: Object.fromEntries(added.map(({ id, ...token }) => [String(id), token])),
    };
  }

  private encodeWord(word: string): readonly number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const ids = this.applyMerges(Array.from(utf8Encode(word), (byte) => this.byteIds[byte]));
    if (word.length <= CACHE_MAX_WORD_LENGTH) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  /**
   * Hugging Face's order: repeatedly merge the adjacent pair of lowest rank, leftmost first. When
   * every rule that uses the new token ranks later (always, unless the rule re-spells a token an
   * earlier rule made), all occurrences can merge in one left-to-right pass; otherwise a rule with
   * the new token may outrank the next occurrence, so only the leftmost merges before looking again.
   */
  private applyMerges(symbols: number[]): number[] {
    while (symbols.length > 1) {
      let best = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.rankOf.get(symbols[i] * KEY_BASE + symbols[i + 1]);
        if (rank !== undefined && rank < best) best = rank;
      }
      if (best === Infinity) break;
      const [left, right] = this.merges[best];
      const all = this.allAtOnce[best];
      let merged = false;
      let out = 0; // compacts in place: out <= i throughout
      for (let i = 0; i < symbols.length;) {
        if ((all || !merged) && i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          symbols[out++] = this.mergedId[best];
          i += 2;
          merged = true;
        } else {
          symbols[out++] = symbols[i++];
        }
      }
      symbols.length = out;
    }
    return symbols;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.length) {
      throw new RangeError(
        `Token id ${id} is outside this tokenizer's vocabulary (0..${this.vocab.length - 1}); was it made by ` +
          `another tokenizer?`,
      );
    }
  }
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
