/**
 * The byte level of a GPT-2 style tokenizer: text is split into words with GPT-2's regex, each word
 * becomes its UTF-8 bytes, and each byte is written as one printable stand-in character so that
 * token strings in `tokenizer.json` never hold raw control bytes or spaces.
 * Follows openai/gpt-2 `src/encoder.py` (`bytes_to_unicode`, the split pattern) and Hugging Face
 * tokenizers' `pre_tokenizers/byte_level.rs`, which uses the same table and pattern.
 */

/**
 * Whitespace as Oniguruma's `\s` defines it, the regex engine Hugging Face tokenizers (Rust) runs
 * the pattern below with: JavaScript's `\s` differs by including U+FEFF (BOM) and missing U+0085
 * (NEL). Checked against tokenizers 0.23's ByteLevel pre-tokenizer over every code point: what
 * still differs are ~4,700 recently assigned letters, which Node's Unicode 17 tables know and
 * tokenizers' older Oniguruma tables do not.
 */
const SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/**
 * GPT-2's pre-tokenizer pattern (Hugging Face's ByteLevel with `use_regex: true`),
 * `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`: English contractions,
 * letter runs, digit runs and punctuation runs each with at most one leading space, then
 * whitespace. `\s+(?!\S)` leaves the last space of a run to start the next word, which is why
 * " world" and not "world" is the common token. Every code point matches some alternative, so the
 * matches cover the whole text.
 */
const GPT2_SPLIT_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${SPACE}\\p{L}\\p{N}]+|[${SPACE}]+(?![^${SPACE}])|[${SPACE}]+`,
  'gu',
);

/** Splits text into the pre-tokens ("words") that BPE merges never cross. */
export function splitWords(text: string): string[] {
  return text.match(GPT2_SPLIT_PATTERN) ?? [];
}

/**
 * `bytes_to_unicode`: bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
 * themselves; the other 68 (controls, space, NBSP, soft hyphen) map to U+0100 onwards in byte order.
 * So the space byte is 'Ġ' (U+0120) and newline is 'Ċ' (U+010A), as in every GPT-2 vocabulary.
 */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** The inverse of {@link BYTE_TO_CHAR}. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

function buildByteToChar(): string[] {
  const isPrintable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars.push(String.fromCharCode(isPrintable(b) ? b : next++));
  return chars;
}

/** Writes bytes as their byte-level characters: the spelling of tokens in `tokenizer.json`. */
export function bytesToByteLevel(bytes: Iterable<number>): string {
  let out = '';
  for (const b of bytes) out += BYTE_TO_CHAR[b];
  return out;
}

/** Reads a byte-level token string back into bytes; throws on a character outside the 256. */
export function byteLevelToBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const byte = CHAR_TO_BYTE.get(text[i]);
    if (byte === undefined) {
      throw new Error(
        `Token ${JSON.stringify(text)} has ${JSON.stringify(text[i])}, which is not a byte-level character: ` +
          `is this a GPT-2 style (ByteLevel) tokenizer?`,
      );
    }
    bytes[i] = byte;
  }
  return bytes;
}

const encoder = new TextEncoder();
// Non-fatal: invalid sequences (a token split mid-character) become U+FFFD, as Hugging Face's
// decoders do. ignoreBOM: a leading U+FEFF is text the user wrote and must round-trip.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 bytes of a string; a lone surrogate becomes EF BF BD (U+FFFD), as in every UTF-8 encoder. */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, replacing each maximal invalid subsequence with U+FFFD (WHATWG, like Rust's `from_utf8_lossy`). */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
