/**
 * Completions from a transformers.js-style ONNX folder (a user's export or ours), for the Rank view's
 * sampler: the folder's tokenizer.json and config.json's special-token ids, sampled on
 * onnxruntime-node with the KV cache when the graph has one.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseJsonText, specialTokenIds } from '../../shared/runFiles';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';
import { loadFolderTokenizer } from './folderTokenizer';
import { OnnxCausalLm } from './onnxCausalLm';
import { generateOnnx } from './onnxSampler';
import type { SampledSequence, SamplingOptions } from '../sampling/sampler';

/** True for a folder with `onnx/model.onnx` and `config.json`. */
export function isOnnxFolder(dir: string): boolean {
  return existsSync(path.join(dir, 'onnx', 'model.onnx')) && existsSync(path.join(dir, 'config.json'));
}

export class OnnxCompletionSource {
  private constructor(
    readonly dir: string,
    readonly model: OnnxCausalLm,
    readonly tokenizer: Tokenizer,
    private readonly ids: { eos: number; pad: number },
  ) {}

  static async load(dir: string): Promise<OnnxCompletionSource> {
    const tokenizer = await loadFolderTokenizer(dir);
    const configFile = path.join(dir, 'config.json');
    const ids = specialTokenIds(
      parseJsonText(readFileSync(configFile, 'utf8'), configFile),
      configFile,
      { bos: tokenizer.bosId ?? tokenizer.eosId, eos: tokenizer.eosId, pad: tokenizer.padId },
      tokenizer.vocabSize,
    );
    const model = await OnnxCausalLm.fromFolder(dir);
    return new OnnxCompletionSource(dir, model, tokenizer, ids);
  }

  /** `count` completions of one prompt (BOS, when the model has one, + the prompt's tokens), sampled in one batch. */
  async complete(
    prompt: string,
    count: number,
    options: Omit<SamplingOptions, 'eosTokenId' | 'padTokenId'> & { stopAtEos?: boolean },
  ): Promise<{ sequences: SampledSequence[]; texts: string[] }> {
    const promptIds = encodePrompt(this.tokenizer, prompt);
    const room = this.model.info.maxPositions - promptIds.length;
    if (room < 1)
      throw new Error(
        `The prompt is ${promptIds.length} tokens; the model's context is ${this.model.info.maxPositions}. ` +
          `Shorten the prompt.`,
      );
    const sequences = await generateOnnx(
      this.model,
      Array.from({ length: count }, () => promptIds),
      {
        ...options,
        maxNewTokens: Math.min(options.maxNewTokens, room),
        eosTokenId: options.stopAtEos === false ? undefined : this.ids.eos,
        padTokenId: this.ids.pad,
      },
    );
    return {
      sequences,
      texts: sequences.map((sequence) => this.tokenizer.decode(sequence.tokens, { skipSpecialTokens: true })),
    };
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}
