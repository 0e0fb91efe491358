/**
 * The sampling flags `rlhf-lens sample` and `rlhf-lens inspect` share: the config's names, dashed
 * (`--top-k` for `top_k`), parsed into the sampler's camelCase options.
 */
import { numberOption } from '../cli';
import type { SamplingOptions } from './sampler';

/** parseCommandArgs specs of the flags; only the default length differs between the commands. */
export function samplingFlags(defaultMaxNewTokens: number) {
  return {
    temperature: { type: 'string', default: '1' },
    'top-k': { type: 'string', default: '0' },
    'top-p': { type: 'string', default: '1' },
    'max-new-tokens': { type: 'string', default: String(defaultMaxNewTokens) },
    seed: { type: 'string', default: '0' },
  } as const;
}

type SamplingFlagValues = { readonly [flag in keyof ReturnType<typeof samplingFlags>]?: string };

/** The flags' values, checked in the order the usage lists them (each names its flag when wrong). */
export function parseSamplingFlags(values: SamplingFlagValues): {
  sampling: Omit<SamplingOptions, 'seed' | 'eosTokenId' | 'padTokenId'>;
  seed: number;
} {
  const sampling = {
    temperature: numberOption('temperature', values.temperature),
    topK: numberOption('top-k', values['top-k'], 'non-negative integer'),
    topP: numberOption('top-p', values['top-p']),
    maxNewTokens: numberOption('max-new-tokens', values['max-new-tokens'], 'positive integer'),
  };
  return { sampling, seed: numberOption('seed', values.seed, 'non-negative integer') };
}
