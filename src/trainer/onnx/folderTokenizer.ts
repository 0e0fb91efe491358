/**
 * The tokenizer of a model folder that is not a stage's checkpoint (an ONNX export, a user's transformers.js-style
 * folder), read as the model was trained with it:
 *   - our byte-level BPE for `rlhf-lens export`'s folders of a model trained with it (config.json has
 *     `rlhf_lens_heads` and a BOS id: the BPE puts BOS before every prompt);
 *   - otherwise the folder's Hugging Face tokenizer (@huggingface/tokenizers; GPT-2's, SmolLM2's, Llama's …), which
 *     adds BOS only where its post-processor does, as transformers does, with config.json's special-token ids.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../../shared/isRecord';
import { parseJsonText } from '../../shared/runFiles';
import type { HfSpecialTokenIds } from '../hf/hfArchitecture';
import { BpeTokenizer, HfTokenizerAdapter, type Tokenizer } from '../tokenizer';

/** Reads `dir`'s tokenizer.json as our BPE when it is one, else as the folder's Hugging Face tokenizer. */
export async function loadFolderTokenizer(dir: string): Promise<Tokenizer> {
  const config = readConfig(dir);
  if (config !== undefined && 'rlhf_lens_heads' in config && typeof config.bos_token_id === 'number') {
    try {
      return await BpeTokenizer.load(dir);
    } catch {
      // Not our BPE's file after all (a model folder's own tokenizer): the library reads any of them.
    }
  }
  return HfTokenizerAdapter.load(dir, config && configTokenIds(config));
}

function readConfig(dir: string): Record<string, unknown> | undefined {
  const file = path.join(dir, 'config.json');
  try {
    const config = parseJsonText(readFileSync(file, 'utf8'), file);
    return isRecord(config) ? config : undefined;
  } catch {
    return undefined; // the model loader names a missing or broken config.json
  }
}

/** config.json's special-token ids, the fallback for an EOS tokenizer_config.json does not name. */
function configTokenIds(config: Record<string, unknown>): HfSpecialTokenIds {
  const id = (value: unknown) => (typeof value === 'number' && Number.isInteger(value) ? value : undefined);
  const eos = Array.isArray(config.eos_token_id) ? config.eos_token_id : [config.eos_token_id];
  return {
    bos: id(config.bos_token_id) ?? null,
    eos: eos.map(id).filter((value): value is number => value !== undefined),
    pad: id(config.pad_token_id) ?? null,
  };
}
