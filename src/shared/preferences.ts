/**
 * Preference judgments, one JSON object per line of `.rlhf/preferences/<dataset>.jsonl`:
 *   {"id", "prompt", "completions": [K strings], "ranking": [[best…], …, [worst…]], "annotator",
 *    "time", "source": {"run", "step", "model"}, "note"?, "confidence"?, "shown_order"?}
 * ranking holds indices into `completions`, best group first; completions in one group are tied.
 * A line {"retracts": "<id>", "time"} withdraws an earlier judgment (undo never rewrites the file).
 * TRL's pairwise lines {"prompt", "chosen", "rejected"} are read too, as a K = 2 judgment.
 * Pure: parsing takes text; the file reader is preferenceFile.ts.
 */
import { rankingToPairs } from '../core';

export interface JudgmentSource {
  readonly run?: string;
  readonly step?: number;
  readonly model?: string;
}

export interface Judgment {
  readonly id: string;
  readonly prompt: string;
  readonly completions: readonly string[];
  readonly ranking: readonly (readonly number[])[];
  readonly annotator: string;
  readonly time?: string;
  readonly source?: JudgmentSource;
  readonly note?: string;
  readonly confidence?: number;
  /** The order the completions were shown in (indices into `completions`). */
  readonly shown_order?: readonly number[];
}

export interface Retraction {
  readonly retracts: string;
  readonly time?: string;
}

export interface PreferencePair {
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  /** The judgment it came from. */
  readonly judgmentId: string;
}

export type PreferenceLine =
  | { readonly kind: 'judgment'; readonly judgment: Judgment }
  | { readonly kind: 'retraction'; readonly retraction: Retraction };

/** Parses one line; throws an Error whose message names the field, for the reader to prefix with file:line. */
export function parsePreferenceLine(text: string, lineNumber: number): PreferenceLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('expected a JSON object');
  const record = value as Record<string, unknown>;
  const string = (key: string, optional = false): string | undefined => {
    const field = record[key];
    if (field === undefined && optional) return undefined;
    if (typeof field !== 'string')
      throw new Error(`field "${key}" must be a string, got ${field === undefined ? 'nothing' : typeof field}`);
    return field;
  };
  if ('retracts' in record)
    return { kind: 'retraction', retraction: { retracts: string('retracts') as string, time: string('time', true) } };
  const prompt = string('prompt') as string;
  if ('chosen' in record || 'rejected' in record) {
    const chosen = string('chosen') as string;
    const rejected = string('rejected') as string;
    return {
      kind: 'judgment',
      judgment: {
        id: `line-${lineNumber}`,
        prompt,
        completions: [chosen, rejected],
        ranking: [[0], [1]],
        annotator: 'trl-pairwise',
      },
    };
  }
  const completions = record.completions;
  if (!Array.isArray(completions) || completions.length < 2 || !completions.every((item) => typeof item === 'string'))
    throw new Error('field "completions" must be a list of at least 2 strings');
  const ranking = record.ranking;
  if (
    !Array.isArray(ranking) ||
    !ranking.every((group) => Array.isArray(group) && group.every((index) => Number.isInteger(index)))
  )
    throw new Error(
      'field "ranking" must be a list of groups of completion indices, best first, e.g. [[2], [0, 3], [1]]',
    );
  const seen = new Set<number>();
  for (const index of (ranking as number[][]).flat()) {
    if (index < 0 || index >= completions.length)
      throw new Error(`field "ranking" names completion ${index}, but there are ${completions.length}`);
    if (seen.has(index)) throw new Error(`field "ranking" names completion ${index} twice`);
    seen.add(index);
  }
  const confidence = record.confidence;
  if (confidence !== undefined && (typeof confidence !== 'number' || confidence < 0 || confidence > 1))
    throw new Error('field "confidence" must be a number from 0 to 1');
  const source = record.source;
  return {
    kind: 'judgment',
    judgment: {
      id: string('id', true) ?? `line-${lineNumber}`,
      prompt,
      completions: completions as string[],
      ranking: ranking as number[][],
      annotator: string('annotator', true) ?? 'unknown',
      time: string('time', true),
      source: typeof source === 'object' && source !== null ? (source as JudgmentSource) : undefined,
      note: string('note', true),
      confidence: confidence as number | undefined,
      shown_order: Array.isArray(record.shown_order) ? (record.shown_order as number[]) : undefined,
    },
  };
}

/** Every [chosen, rejected] pair of a judgment (ties skipped), as TRL's pairwise rows. */
export function judgmentPairs(judgment: Judgment): PreferencePair[] {
  return rankingToPairs(judgment.ranking).map(([winner, loser]) => ({
    prompt: judgment.prompt,
    chosen: judgment.completions[winner],
    rejected: judgment.completions[loser],
    judgmentId: judgment.id,
  }));
}
