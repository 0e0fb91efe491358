/**
 * DPO's data: the preference pairs of a judgments file split by judgment, tokenized to fit the context,
 * batched as chosen rows then rejected rows, and their summed (and per-token) response log-probabilities
 * under a model — the reference's read once before training (TRL's `precompute_ref_log_probs`).
 */
import { formatPreferenceProblem, readPreferenceFile } from '../../shared/preferenceFile';
import { judgmentPairs, type Judgment, type PreferencePair } from '../../shared/preferences';
import { batchIndices, splitExamples } from '../data/batching';
import { buildSequenceBatch, padTo, responseValues, tokenBatchOf, type SequenceBatch } from '../data/sequences';
import type { EngineModel } from '../engine/engine';
import type { StageContext } from '../stageContext';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';

/** Pairs (2 × this many sequences) per forward when only reading log-probabilities. */
const readBatchPairs = 32;

export interface TokenizedPair extends PreferencePair {
  /** BOS and the prompt's tokens. */
  readonly promptIds: readonly number[];
  /** The completion's tokens and EOS, cut to fit the context. */
  readonly chosenIds: readonly number[];
  readonly rejectedIds: readonly number[];
}

/** A preference file's judgments, split by judgment (held-out judgments give the eval pairs). */
export interface DpoPairs {
  readonly judgments: { readonly train: Judgment[]; readonly evaluation: Judgment[] };
  readonly trainPairs: PreferencePair[];
  readonly evalPairs: PreferencePair[];
  /** For the log line: how many judgments, retracted ones and malformed lines the file had. */
  readonly counts: { readonly judgments: number; readonly retracted: number; readonly problems: number };
}

/** Reads every pair of every judgment in `file`, held out by judgment; refuses a file with no pairs to train on. */
export async function readDpoPairs(
  file: string,
  evalFraction: number,
  seed: number,
  log: StageContext['log'],
): Promise<DpoPairs> {
  const read = await readPreferenceFile(file);
  for (const problem of read.problems) log('warn', formatPreferenceProblem(problem));
  const split = splitExamples<Judgment>(read.judgments, evalFraction, seed);
  const trainPairs = split.train.flatMap(judgmentPairs);
  const evalPairs = split.evaluation.flatMap(judgmentPairs);
  if (trainPairs.length + evalPairs.length === 0) {
    throw new Error(
      `${file}: no preference pairs (${read.judgments.length} judgments, ${read.problems.length} malformed lines). ` +
        'Each line must be a judgment {"prompt", "completions", "ranking"} ranking at least two completions ' +
        'apart, or a TRL pair {"prompt", "chosen", "rejected"}.',
    );
  }
  if (trainPairs.length === 0)
    throw new Error(
      `${file}: all ${evalPairs.length} pairs were held out for eval; lower eval_fraction or add judgments.`,
    );
  return {
    judgments: split,
    trainPairs,
    evalPairs,
    counts: { judgments: read.judgments.length, retracted: read.retracted, problems: read.problems.length },
  };
}

/**
 * [BOS, prompt…] and completion + [EOS], cut so prompt + response fits block_size positions (the prompt
 * kept; a prompt too long keeps its end, TRL's keep_end).
 */
export function tokenizePair(tokenizer: Tokenizer, pair: PreferencePair, blockSize: number): TokenizedPair {
  const maxTokens = blockSize + 1; // the last token is a target only
  let promptIds = encodePrompt(tokenizer, pair.prompt);
  if (promptIds.length > maxTokens - 1) promptIds = promptIds.slice(promptIds.length - (maxTokens - 1));
  const fit = (completion: string) =>
    [...tokenizer.encode(completion), tokenizer.eosId].slice(0, maxTokens - promptIds.length);
  return { ...pair, promptIds, chosenIds: fit(pair.chosen), rejectedIds: fit(pair.rejected) };
}

/**
 * Chosen rows then rejected rows, [2B, block_size]. Always padded to the full context so every forward
 * has one shape: the model caches its attention mask per shape, and a fixed shape keeps that cache
 * (and the engine's memory) constant from the first step.
 */
export function pairBatch(pairs: readonly TokenizedPair[], padId: number, blockSize: number): SequenceBatch {
  const items = [
    ...pairs.map((pair) => ({ prompt: pair.promptIds, response: pair.chosenIds })),
    ...pairs.map((pair) => ({ prompt: pair.promptIds, response: pair.rejectedIds })),
  ];
  return padTo(buildSequenceBatch(items, padId), blockSize, padId);
}

/** Summed (and per-token) response log-probabilities of a set of pairs under one model. */
export interface PairLogps {
  /** Σ log π over each response's tokens. */
  readonly chosen: Float64Array;
  readonly rejected: Float64Array;
  /** Per response token (eval pairs only, for the trace). */
  readonly chosenTokens?: number[][];
  readonly rejectedTokens?: number[][];
}

/** Reads summed (and optionally per-token) response log-probabilities of pairs, in batches, without gradients. */
export async function readPairLogps(
  model: EngineModel,
  pairs: readonly TokenizedPair[],
  padId: number,
  perToken: boolean,
): Promise<PairLogps> {
  const chosen = new Float64Array(pairs.length);
  const rejected = new Float64Array(pairs.length);
  const chosenTokens: number[][] = [];
  const rejectedTokens: number[][] = [];
  for (let start = 0; start < pairs.length; start += readBatchPairs) {
    const slice = pairs.slice(start, start + readBatchPairs);
    const batch = pairBatch(slice, padId, model.config.block_size);
    const evaluation = await model.evaluate(tokenBatchOf(batch), { maskedLogprobs: true });
    const sums = evaluation.logprobSums as Float32Array; // [2B]: chosen then rejected
    slice.forEach((_, i) => {
      chosen[start + i] = sums[i];
      rejected[start + i] = sums[slice.length + i];
    });
    if (perToken) {
      const rows = responseValues(evaluation.maskedLogprobs as Float32Array, batch);
      chosenTokens.push(...rows.slice(0, slice.length));
      rejectedTokens.push(...rows.slice(slice.length));
    }
  }
  return perToken ? { chosen, rejected, chosenTokens, rejectedTokens } : { chosen, rejected };
}

/** The reference's summed log-probabilities of the training pairs, by training index. */
export interface TrainReference {
  readonly chosen: Float64Array;
  readonly rejected: Float64Array;
  /** How many distinct training pairs were read (the rest are NaN: no step uses them). */
  readonly pairsRead: number;
}

/**
 * The reference's log-probabilities of the training pairs the run will use (max_steps may stop it short
 * of an epoch), once: they never change.
 */
export async function readTrainReference(
  reference: EngineModel,
  train: readonly TokenizedPair[],
  schedule: { readonly totalSteps: number; readonly batchSize: number; readonly seed: number },
  padId: number,
): Promise<TrainReference> {
  const { totalSteps, batchSize, seed } = schedule;
  const stepIndices = Array.from({ length: totalSteps }, (_, step) =>
    batchIndices(step, batchSize, train.length, seed),
  );
  const used = [...new Set(stepIndices.flat())].sort((a, b) => a - b);
  const usedRef = await readPairLogps(
    reference,
    used.map((i) => train[i]),
    padId,
    false,
  );
  const chosen = new Float64Array(train.length).fill(Number.NaN);
  const rejected = new Float64Array(train.length).fill(Number.NaN);
  used.forEach((index, k) => {
    chosen[index] = usedRef.chosen[k];
    rejected[index] = usedRef.rejected[k];
  });
  return { chosen, rejected, pairsRead: used.length };
}
