/**
 * Token ids → the text each token stands for, with a run's Hugging Face `tokenizer.json`, so the heatmap shows the
 * tokens of runs that store only ids (NeMo-RL's `token_ids`; an RL Logging Board's `response_tokens` when they are
 * ids, read into `token_ids`).
 *
 * A token's text is its share of the decoded string: concatenating the texts of a sample's tokens gives
 * `tokenizer.decode(ids)` (special tokens kept, no clean-up of spaces). Decoding each id alone would not: a
 * byte-level BPE token (GPT-2, Llama-3, Qwen2.5) or a SentencePiece byte-fallback token (`<0xE6>`) can be part of
 * one UTF-8 character, and a SentencePiece `▁word` decodes alone without its space. So the texts come from
 * incremental decoding: the text of ids[s..i] minus the text of ids[s..c], where c is the end of the tokens already
 * given text and s a few tokens before it (the same start on both sides, so a decoder's treatment of the first token
 * cancels out). While that text ends in U+FFFD, the decoder's mark of an incomplete byte sequence, the token is
 * held: it gets '' and the character goes to the token that completes it (the last token of a sample always gets
 * what is left, U+FFFD included, as decode(ids) has it).
 */
import { readFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import type { TraceTable } from '../traceFormat';
import { UserError } from '../userError';
import type { ImportedStep } from './convertedLines';

/** A run's tokenizer, loaded: `file` is the tokenizer.json it came from (problems name it). */
export interface TokenTextDecoder {
  readonly file: string;
  readonly tokenizer: Tokenizer;
}

/** The texts of one sample's tokens (one per id, in order) and the ids the vocabulary does not have. */
export interface TokenTexts {
  readonly texts: string[];
  readonly unknownIds: number[];
}

/** The replacement character a decoder writes for bytes that are not (yet) a whole UTF-8 sequence. */
const incompleteMark = '\uFFFD';
/** A UTF-8 character is at most 4 bytes: a token held longer is not waiting for the rest of one. */
const maxHeldTokens = 4;
/** Tokens of context decoded before the first token still to be given text (≥ 1 keeps a `▁word`'s space). */
const contextTokens = 4;

const decodeOptions = { skip_special_tokens: false, clean_up_tokenization_spaces: false };

/** What an id the vocabulary lacks is shown as, so the sample's per-token lists stay aligned. */
export const unknownTokenText = (id: number) => `\u27e8unknown id ${id}\u27e9`;

/**
 * Loads `file` (a tokenizer.json) with @huggingface/tokenizers, and the tokenizer_config.json beside it when there
 * is one. A missing, unreadable or unsupported file is a UserError naming it.
 */
export async function loadTokenTextDecoder(file: string): Promise<TokenTextDecoder> {
  const parse = async (name: string, optional: boolean): Promise<object | undefined> => {
    let text: string;
    try {
      text = await readFile(name, 'utf8');
    } catch (error) {
      if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UserError(`cannot read the tokenizer (${(error as Error).message})`, { file: name });
    }
    try {
      return JSON.parse(text) as object;
    } catch (error) {
      throw new UserError(`not valid JSON (${(error as Error).message})`, { file: name });
    }
  };
  const json = await parse(file, false);
  const config = (await parse(path.join(path.dirname(file), 'tokenizer_config.json'), true)) ?? {};
  try {
    return { file, tokenizer: new Tokenizer(json as object, config) };
  } catch (error) {
    throw new UserError(`not a tokenizer.json the lens can load (${(error as Error).message})`, { file });
  }
}

/**
 * The tokenizer.json of a run: the one in `modelFolder` when a setting names one, else the run folder's own, its
 * `tokenizer/` subfolder's, or its newest `checkpoint-<n>/`'s (a transformers/TRL output_dir). Undefined when none
 * exists.
 */
export async function findTokenizerJson(runFolder: string, modelFolder?: string): Promise<string | undefined> {
  const checkpoints = (await readdir(runFolder).catch(() => [] as string[]))
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((match) => match[0]);
  const candidates = [
    ...(modelFolder ? [modelFolder] : []),
    runFolder,
    path.join(runFolder, 'tokenizer'),
    ...checkpoints.map((name) => path.join(runFolder, name)),
  ];
  for (const folder of candidates) {
    const file = path.join(folder, 'tokenizer.json');
    const names = await readdir(folder).catch(() => [] as string[]);
    if (names.includes('tokenizer.json')) return file;
  }
  return undefined;
}

/** The text of each id (see the file comment); an id the vocabulary lacks is `unknownTokenText(id)`. */
export function tokenTexts(decoder: TokenTextDecoder, ids: readonly number[]): TokenTexts {
  const { tokenizer } = decoder;
  const unknownIds: number[] = [];
  const known: number[] = [];
  const positions: number[] = [];
  ids.forEach((id, index) => {
    if (Number.isInteger(id) && id >= 0 && tokenizer.id_to_token(id) !== undefined) {
      known.push(id);
      positions.push(index);
    } else unknownIds.push(id);
  });
  const texts = ids.map((id) => unknownTokenText(id));
  const decode = (from: number, to: number) => tokenizer.decode(known.slice(from, to), decodeOptions);
  let start = 0;
  let done = 0;
  let doneText = '';
  for (let i = 0; i < known.length; i++) {
    const text = decode(start, i + 1);
    const isLast = i === known.length - 1;
    if (text.endsWith(incompleteMark) && !isLast && i + 1 - done < maxHeldTokens) {
      texts[positions[i]] = '';
      continue;
    }
    // A decoder that rewrites earlier text (none of Hugging Face's in this mode) falls back to the token alone.
    texts[positions[i]] = text.startsWith(doneText) ? text.slice(doneText.length) : decode(i, i + 1);
    done = i + 1;
    start = Math.max(0, done - contextTokens);
    doneText = decode(start, done);
  }
  return { texts, unknownIds };
}

/**
 * `step` with `tokens` filled from `token_ids` by `decoder`, when its table has token ids and no token texts (else
 * `step` as it is). An id the vocabulary lacks is a problem naming the tokenizer file, the sample and the id.
 */
export function fillTokenTexts(step: ImportedStep, decoder: TokenTextDecoder): ImportedStep {
  const { table } = step;
  if (table.kind !== 'ppo' || table.columns.includes('tokens') || !table.columns.includes('token_ids')) return step;
  const problems = [...step.problems];
  const texts: string[][] = [];
  for (let index = 0; index < table.numRows; index++) {
    const row = table.row(index);
    const result = tokenTexts(decoder, row.token_ids);
    texts.push(result.texts);
    for (const id of new Set(result.unknownIds))
      problems.push(
        `${decoder.file}: token id ${id} of sample ${row.sample} is not in the tokenizer's vocabulary; ` +
          `shown as ${unknownTokenText(id)}`,
      );
  }
  const at = table.columns.indexOf('token_ids');
  const filled: TraceTable = {
    ...table,
    columns: [...table.columns.slice(0, at), 'tokens', ...table.columns.slice(at)],
    row: (index: number) => ({ ...table.row(index), tokens: texts[index] }),
  };
  return { table: filled, problems };
}
