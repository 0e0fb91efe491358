/**
 * The reward stage's data: judgments tokenized into ranked prompts (every (winner, loser) pair of a
 * ranking), and scoring batches that hold each completion of some judgments once, with the rows each
 * pair compares (InstructGPT's K-completion trick: a completion is scored once however many pairs it is in).
 */
import { rankingToPairs } from '../../core';
import type { Judgment } from '../../shared/preferences';
import type { ScoreBatch } from '../engine/engine';
import type { StageContext } from '../stageContext';
import type { Task } from '../tasks/task';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';

/** Prompt-too-long warnings logged one by one before they are only counted. */
const maxSkipWarnings = 5;

/** A judgment ready to score: token ids of its prompt and completions, and its ranked pairs. */
export interface RankedPrompt {
  readonly id: string;
  readonly annotator: string;
  readonly prompt: string;
  readonly completions: readonly string[];
  /** [BOS, prompt…]. */
  readonly promptIds: readonly number[];
  /** [completion…, EOS], cut so that prompt + completion fits the context. */
  readonly completionIds: readonly (readonly number[])[];
  /** [winner, loser] indices into `completions`. */
  readonly pairs: readonly (readonly [number, number])[];
  /** The task oracle's score of prompt + completion. */
  readonly oracle: readonly number[];
}

/** Every completion of some judgments in one padded id matrix, and which rows each pair compares. */
export interface ScoringBatch {
  readonly rows: number;
  readonly ids: Int32Array;
  readonly lengths: number[];
  /** Per pair, the rows of its chosen and rejected completion. */
  readonly chosenRow: number[];
  readonly rejectedRow: number[];
  /** Per pair, where it came from. */
  readonly refs: { readonly judgment: RankedPrompt; readonly pair: readonly [number, number] }[];
}

/** The batch's rows as the engine scores them. */
export function scoreBatchOf(batch: ScoringBatch, width: number): ScoreBatch {
  return { batchSize: batch.rows, length: width, ids: batch.ids, lengths: batch.lengths };
}

/** Pairs in some judgments. */
export function pairCount(judgments: readonly RankedPrompt[]): number {
  return judgments.reduce((total, judgment) => total + judgment.pairs.length, 0);
}

/**
 * Rows are `[BOS, prompt…, completion…, EOS]`, right-padded to `width` (one width for the whole stage,
 * so the model's attention-bias cache holds one shape and the tensor count stays constant).
 */
export function buildScoringBatch(judgments: readonly RankedPrompt[], width: number, padId: number): ScoringBatch {
  const sequences: number[][] = [];
  const chosenRow: number[] = [];
  const rejectedRow: number[] = [];
  const refs: ScoringBatch['refs'] = [];
  for (const judgment of judgments) {
    const rowOf = new Map<number, number>();
    const row = (completion: number) => {
      let index = rowOf.get(completion);
      if (index === undefined) {
        index = sequences.push([...judgment.promptIds, ...judgment.completionIds[completion]]) - 1;
        rowOf.set(completion, index);
      }
      return index;
    };
    for (const pair of judgment.pairs) {
      chosenRow.push(row(pair[0]));
      rejectedRow.push(row(pair[1]));
      refs.push({ judgment, pair });
    }
  }
  const ids = new Int32Array(sequences.length * width).fill(padId);
  sequences.forEach((sequence, b) => ids.set(sequence, b * width));
  return {
    rows: sequences.length,
    ids,
    lengths: sequences.map((sequence) => sequence.length),
    chosenRow,
    rejectedRow,
    refs,
  };
}

/** Tokenizes judgments for the reward model; a judgment whose prompt alone fills the context is skipped. */
export function prepareJudgments(
  judgments: readonly Judgment[],
  tokenizer: Tokenizer,
  blockSize: number,
  task: Task,
  log: StageContext['log'],
): { prepared: RankedPrompt[]; truncated: number } {
  const prepared: RankedPrompt[] = [];
  let skipped = 0;
  let noPairs = 0;
  let truncated = 0;
  for (const judgment of judgments) {
    // Every (winner, loser) of the ranking, ties skipped (InstructGPT's K·(K−1)/2 comparisons); a text
    // ranked twice cannot beat itself.
    const pairs = rankingToPairs(judgment.ranking).filter(
      ([winner, loser]) => judgment.completions[winner] !== judgment.completions[loser],
    );
    if (pairs.length === 0) {
      noPairs++;
      continue;
    }
    const promptIds = encodePrompt(tokenizer, judgment.prompt);
    if (promptIds.length >= blockSize) {
      if (skipped++ < maxSkipWarnings)
        log(
          'warn',
          `judgment "${judgment.id}": its prompt alone is ${promptIds.length} tokens, which leaves no room ` +
            `for a completion in the model's context of ${blockSize}; its ${pairs.length} pairs are skipped.`,
        );
      continue;
    }
    const room = blockSize - promptIds.length;
    const completionIds = judgment.completions.map((completion) => {
      const ids = [...tokenizer.encode(completion), tokenizer.eosId];
      if (ids.length > room) truncated++;
      return ids.slice(0, room);
    });
    prepared.push({
      id: judgment.id,
      annotator: judgment.annotator,
      prompt: judgment.prompt,
      completions: judgment.completions,
      promptIds,
      completionIds,
      pairs,
      oracle: judgment.completions.map((completion) => task.score(judgment.prompt + completion)),
    });
  }
  if (skipped > maxSkipWarnings)
    log(
      'warn',
      `${skipped} judgments in all were skipped because their prompt alone fills the context of ${blockSize} tokens.`,
    );
  if (noPairs > 0) log('info', `${noPairs} judgments rank all their completions as tied and give no pair.`);
  return { prepared, truncated };
}
