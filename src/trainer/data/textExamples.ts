/**
 * Text examples from a stage's dataset (SFT's data, PPO-ptx's language-modelling batches), tokenized
 * and batched. A text example trains on every token; a prompt/completion example trains on the
 * completion (and EOS) only when `completion_only_loss`. Which examples form a step's batch is
 * data/batching.ts's business.
 */
import * as path from 'node:path';
import type { DatasetConfig } from '../../shared/runConfig';
import { generateReviews } from './reviews';
import { formatDatasetProblem, noUsableExamplesMessage, readTextDataset } from './jsonlDataset';
import type { Tokenizer } from '../tokenizer';
import { formatExample, requireChatTemplate, type ChatFormatter } from './chatExamples';

export interface SftExample {
  /** Absent for plain text. */
  readonly prompt?: string;
  readonly completion: string;
  /** Rendered by the chat template, which wrote the special tokens itself (tokenize without adding BOS/EOS). */
  readonly chatFormatted?: boolean;
}

export interface TokenizedExample {
  /** BOS, prompt, completion, EOS (a chat template's rendering as it is). */
  readonly ids: readonly number[];
  /** Index in `ids` of the first token whose prediction is trained on. */
  readonly lossStart: number;
}

export interface SftBatch {
  readonly batchSize: number;
  readonly length: number;
  /** int32 [B, T] */
  readonly inputs: Int32Array;
  /** int32 [B, T]: inputs shifted by one. */
  readonly targets: Int32Array;
  /** float32 [B, T]: 1 where a target is trained on. */
  readonly mask: Float32Array;
  /** Non-pad input tokens, for tokens/s. */
  readonly tokens: number;
}

export interface LoadedExamples {
  readonly examples: SftExample[];
  readonly messages: string[];
}

/**
 * Reads or generates the examples of a dataset; paths are relative to the config file's folder. `chat` is the
 * run's Hugging Face tokenizer, which renders conversational lines (and, with `"chat_template": true`, plain
 * prompt/completion pairs as a user and an assistant turn): see chatExamples.ts.
 */
export async function loadSftExamples(
  dataset: DatasetConfig,
  configDir: string,
  seed: number,
  chat?: ChatFormatter,
): Promise<LoadedExamples> {
  if (dataset.source === 'demo') {
    const reviews = generateReviews(dataset.num_examples, seed);
    return {
      examples: reviews.map((review) => ({ prompt: review.prompt, completion: review.completion })),
      messages: [`generated ${reviews.length} demo reviews (seed ${seed})`],
    };
  }
  const file = path.resolve(configDir, dataset.path);
  const read = await readTextDataset(file);
  const messages = read.problems.map(formatDatasetProblem);
  messages.push(
    `${file}: ${read.counts.examples} examples kept, ${read.counts.skipped} malformed lines skipped, ` +
      `${read.counts.blank} blank lines, of ${read.counts.lines} lines`,
  );
  if (read.examples.length === 0) throw new Error(noUsableExamplesMessage(file, read));
  const chatTemplate = dataset.chat_template ?? false;
  if (chatTemplate && chat !== undefined) requireChatTemplate(chat);
  return {
    examples: read.examples.map((example): SftExample => {
      const place = { file, line: example.line };
      switch (example.kind) {
        case 'text':
          return { completion: example.text };
        case 'prompt_completion':
          if (!chatTemplate) return { prompt: example.prompt, completion: example.completion };
          return formatExample(example, chat, { chatTemplate, place });
        case 'messages':
          return formatExample({ messages: example.messages }, chat, { chatTemplate, place });
        default:
          return formatExample(example, chat, { chatTemplate, place });
      }
    }),
    messages,
  };
}

export function tokenizeExample(
  tokenizer: Tokenizer,
  example: SftExample,
  completionOnly: boolean,
  maxTokens: number,
): TokenizedExample {
  const promptIds = example.prompt === undefined ? [] : tokenizer.encode(example.prompt);
  const completionIds = tokenizer.encode(example.completion);
  // A model without BOS (Qwen2) starts with the prompt's first token. A chat template wrote its own special
  // tokens (BOS and the end of each turn): nothing is added, as TRL tokenizes conversational examples.
  const bos = tokenizer.bosId === undefined || example.chatFormatted ? [] : [tokenizer.bosId];
  const eos = example.chatFormatted ? [] : [tokenizer.eosId];
  const ids = [...bos, ...promptIds, ...completionIds, ...eos].slice(0, maxTokens);
  // Target t predicts ids[t + 1]; training on completions means targets from the first completion token.
  const lossStart = completionOnly && example.prompt !== undefined ? bos.length + promptIds.length : 1;
  return { ids, lossStart: Math.min(lossStart, ids.length) };
}

/** Right-padded batch of `length` positions (block_size); sequences are at most length + 1 tokens. */
export function makeBatch(examples: readonly TokenizedExample[], length: number, padId: number): SftBatch {
  const batchSize = examples.length;
  const inputs = new Int32Array(batchSize * length).fill(padId);
  const targets = new Int32Array(batchSize * length).fill(padId);
  const mask = new Float32Array(batchSize * length);
  let tokens = 0;
  examples.forEach((example, b) => {
    const n = Math.min(example.ids.length - 1, length);
    for (let t = 0; t < n; t++) {
      inputs[b * length + t] = example.ids[t];
      targets[b * length + t] = example.ids[t + 1];
      if (t + 1 >= example.lossStart) mask[b * length + t] = 1;
    }
    tokens += n;
  });
  return { batchSize, length, inputs, targets, mask, tokens };
}
