/** `rlhf-lens sample <checkpoint-dir>`: prints completions of prompts from a checkpoint. */
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../checkpoint/checkpoint';
import { generateReviews } from '../data/reviews';
import { selectBackend } from '../engine/backend';
import { Gpt } from '../model/gpt';
import { generate } from './sampler';

export async function sampleFromCheckpoint(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      prompt: { type: 'string', multiple: true },
      'num-samples': { type: 'string', default: '4' },
      temperature: { type: 'string', default: '1' },
      'top-k': { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      'max-new-tokens': { type: 'string', default: '48' },
      seed: { type: 'string', default: '0' },
      backend: { type: 'string', default: 'auto' },
    },
  });
  if (positionals.length !== 1) {
    process.stderr.write('Usage: rlhf-lens sample <checkpoint-dir> [--prompt TEXT]... [--num-samples N] [--temperature T] [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S]\n');
    return 2;
  }
  const number = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got ${JSON.stringify(values[name])}`);
    return value;
  };
  await selectBackend(values.backend as 'auto');
  const checkpoint = await loadCheckpoint(positionals[0]);
  const model = Gpt.fromWeights(checkpoint.config, [], checkpoint.weights);
  const tokenizer = checkpoint.tokenizer;
  const count = number('num-samples');
  // Without --prompt, openings of demo reviews (the embedded task) show what the model learned.
  const prompts = values.prompt ?? generateReviews(count, 12345).map((review) => review.prompt);
  try {
    const sequences = await generate(
      model,
      prompts.map((prompt) => [tokenizer.bosId, ...tokenizer.encode(prompt)]),
      { temperature: number('temperature'), top_k: number('top-k'), top_p: number('top-p'), max_new_tokens: number('max-new-tokens'), seed: number('seed'), eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId },
    );
    sequences.forEach((sequence, i) => process.stdout.write(`${prompts[i]}${tokenizer.decode(sequence.tokens, { skipSpecialTokens: true })}\n`));
  } finally {
    model.dispose();
  }
  return 0;
}
