/**
 * A whole Hugging Face model folder opened for a stage: its architecture (config.json), its weights (headers
 * checked, tensors read later) and its tokenizer, checked against each other where they meet (every token id must
 * have a row in the embedding).
 */
import { join } from 'node:path';
import { UserError } from '../../shared/userError';
import type { HfArchitecture } from './hfArchitecture';
import { configFileName, readHfConfig } from './hfConfig';
import { expectedHfTensors } from './hfTensorNames';
import { loadHfTokenizer, tokenizerFile, type HfTokenizer } from './hfTokenizer';
import { openHfWeights, type HfWeights } from './hfWeights';

export interface HfModelFolder {
  readonly folder: string;
  readonly architecture: HfArchitecture;
  readonly weights: HfWeights;
  readonly tokenizer: HfTokenizer;
}

export async function openHfModelFolder(folder: string): Promise<HfModelFolder> {
  const architecture = await readHfConfig(folder);
  const tokenizer = await loadHfTokenizer(folder);
  // Models often pad vocab_size past the tokenizer (Qwen2.5: 151936 rows for 151665 tokens); fewer rows than ids
  // would index past the embedding.
  const largestId = Math.max(...tokenizer.tokenizer.get_vocab(true).values());
  if (largestId >= architecture.vocabSize)
    throw new UserError(
      `${join(folder, tokenizerFile)} has token id ${largestId}, past the model's vocab_size ` +
        `(${architecture.vocabSize})`,
      { file: join(folder, configFileName), field: 'vocab_size', hint: 'the tokenizer belongs to another model' },
    );
  const weights = await openHfWeights(folder, architecture);
  return { folder, architecture, weights, tokenizer };
}

/** The number of parameters the architecture has (tied embeddings counted once). */
export function hfParameterCount(architecture: HfArchitecture): number {
  return expectedHfTensors(architecture).reduce(
    (total, spec) => total + spec.shape.reduce((product, size) => product * size, 1),
    0,
  );
}
