/**
 * The tokenizer of a model folder that is not a stage's checkpoint (an ONNX export, a user's transformers.js-style
 * folder): our byte-level BPE when tokenizer.json is one this project wrote, otherwise the folder's Hugging Face
 * tokenizer (@huggingface/tokenizers; GPT-2's, SmolLM2's, Llama's …) with config.json's special-token ids.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../../shared/isRecord';
import { parseJsonText } from '../../shared/runFiles';
import type { HfSpecialTokenIds } from '../hf/hfArchitecture';
import { BpeTokenizer, HfTokenizerAdapter, type Tokenizer } from '../tokenizer';

/** Reads `dir`'s tokenizer.json as our BPE when it is one, else as the folder's Hugging Face tokenizer. */
export async function loadFolderTokenizer(dir: string): Promise<Tokenizer> {
  try {
    return await BpeTokenizer.load(dir);
  } catch {
    // Not our BPE's file (other special tokens, normalizers, a Unigram model …): the library reads any of them.
    return HfTokenizerAdapter.load(dir, configTokenIds(dir));
  }
}

/** config.json's special-token ids, the fallback for an EOS tokenizer_config.json does not name. */
function configTokenIds(dir: string): HfSpecialTokenIds | undefined {
  const file = path.join(dir, 'config.json');
  let config: unknown;
  try {
    config = parseJsonText(readFileSync(file, 'utf8'), file);
  } catch {
    return undefined; // the model loader names a missing or broken config.json
  }
  if (!isRecord(config)) return undefined;
  const id = (value: unknown) => (typeof value === 'number' && Number.isInteger(value) ? value : undefined);
  const eos = Array.isArray(config.eos_token_id) ? config.eos_token_id : [config.eos_token_id];
  return {
    bos: id(config.bos_token_id) ?? null,
    eos: eos.map(id).filter((value): value is number => value !== undefined),
    pad: id(config.pad_token_id) ?? null,
  };
}
