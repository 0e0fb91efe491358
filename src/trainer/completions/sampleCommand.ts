/**
 * `rlhf-lens sample <checkpoint-dir>`: prints completions of prompts from a checkpoint or a Hugging Face model folder
 * (any architecture the engines build), sampled on the tfjs engine with the KV cache.
 */
import * as path from 'node:path';
import { backendNames } from '../../shared/backendNames';
import { quote, UserError } from '../../shared/userError';
import { readModelSource } from '../checkpoint/modelLoading';
import type { EngineModel } from '../engine/engine';
import { asUserError, numberOption, parseCommandArgs } from '../cli';
import { generateReviews } from '../data/reviews';
import { selectBackend, type BackendRequest } from '../engine/tfjs/backend';
import { createTrainingEngine } from '../engineFactory';
import { parseSamplingFlags, samplingFlags } from '../sampling/samplingFlags';
import { sampleDemoPromptsSeed } from '../seeds';
import { encodePrompt } from '../data/chatTokens';

/** Tokens per completion when --max-new-tokens is not given. */
const defaultMaxNewTokens = 48;

export const sampleUsage = [
  'Usage: rlhf-lens sample <checkpoint-dir> [--prompt TEXT]... ' +
    '[--num-samples N] [--temperature T] [--top-k K] [--top-p P]',
  `                        [--max-new-tokens N] [--seed S] [--backend auto|${backendNames.join('|')}]`,
].join('\n');

export async function sampleFromCheckpoint(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    {
      prompt: { type: 'string', multiple: true },
      'num-samples': { type: 'string', default: '4' },
      ...samplingFlags(defaultMaxNewTokens),
      backend: { type: 'string', default: 'auto' },
    },
    sampleUsage,
    { min: 1, max: 1 },
  );
  // Every option is checked before the backend starts or the checkpoint is read.
  const count = numberOption('num-samples', values['num-samples'], 'positive integer');
  const { sampling, seed } = parseSamplingFlags(values);
  const options = { ...sampling, seed };
  if (options.temperature < 0)
    throw new UserError(`must be ≥ 0, got ${options.temperature}`, {
      field: '--temperature',
      hint: "use 0 for greedy sampling, 1 for the model's own distribution",
    });
  if (options.topP <= 0 || options.topP > 1)
    throw new UserError(`must be in (0, 1], got ${options.topP}`, {
      field: '--top-p',
      hint: 'use 1 to keep every token',
    });
  const backend = values.backend as string;
  if (backend !== 'auto' && !(backendNames as readonly string[]).includes(backend))
    throw new UserError(`must be auto or one of ${backendNames.join(', ')}, got ${quote(backend)}`, {
      field: '--backend',
      hint: 'leave it out to use the best available',
    });

  const checkpointDir = path.resolve(positionals[0]);
  const engine = createTrainingEngine(await selectBackend(backend as BackendRequest));
  const hint =
    "give a checkpoint folder written by rlhf-lens (a run's checkpoints/step-<n>) or a Hugging Face model folder " +
    '(gpt2, llama, qwen2, mistral), with config.json, model.safetensors and tokenizer.json';
  let model: EngineModel;
  let checkpoint: Awaited<ReturnType<typeof readModelSource>>;
  try {
    checkpoint = await readModelSource(checkpointDir, { seed });
    model = engine.createModel(checkpoint.config.model, { heads: [], weights: checkpoint.weights, seed });
  } catch (error) {
    throw asUserError(error, { file: checkpointDir, hint });
  }
  const tokenizer = checkpoint.tokenizer;
  // Without --prompt, openings of demo reviews (the embedded task) show what the model learned.
  const prompts = values.prompt ?? generateReviews(count, sampleDemoPromptsSeed).map((review) => review.prompt);
  try {
    const sequences = await model.generate(
      prompts.map((prompt) => encodePrompt(tokenizer, prompt)),
      { ...options, eosTokenId: tokenizer.eosId, padTokenId: tokenizer.padId },
    );
    sequences.forEach((sequence, i) =>
      process.stdout.write(`${prompts[i]}${tokenizer.decode(sequence.tokens, { skipSpecialTokens: true })}\n`),
    );
  } finally {
    model.dispose();
  }
  return 0;
}
