/**
 * What the Rank view shows and checks, as pure functions both the host and the webview use: a set of
 * K completions of one prompt with the random order it is shown in, which completions are identical,
 * turning per-completion ranks (ties allowed) into a best-first ranking, and finding preference cycles
 * (A > B, B > C, C > A) among one annotator's judgments of the same prompt.
 */
import { rankingToPairs, type Random } from '../core';
import type { Judgment, JudgmentSource } from './preferences';

export const minCompletions = 2;
export const maxCompletions = 8;

/** Where a set came from, for the judgment's `source` and for the view's caption. */
export interface RankSetSource extends JudgmentSource {
  /** 'checkpoint' | 'trace' | 'jsonl' | 'onnx'. */
  readonly kind: string;
  /** One line for the view, e.g. "run sft-1 · checkpoint step-200". */
  readonly label: string;
}

/** One prompt with K completions to rank. Indices everywhere refer to `completions`. */
export interface RankSet {
  readonly id: string;
  readonly prompt: string;
  readonly completions: readonly string[];
  /** The order the completions are shown in: a permutation of 0..K-1, fresh per judgment. */
  readonly shownOrder: readonly number[];
  /** Groups (of 2 or more) of completions with exactly the same text. */
  readonly identical: readonly (readonly number[])[];
  readonly source: RankSetSource;
}

/** A Fisher–Yates permutation of 0..k-1. */
export function randomOrder(k: number, random: Random): number[] {
  const order = Array.from({ length: k }, (_, i) => i);
  for (let i = k - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Completions whose text is the same: ranking them against each other says nothing. */
export function identicalGroups(completions: readonly string[]): number[][] {
  const byText = new Map<string, number[]>();
  completions.forEach((text, index) => byText.set(text, [...(byText.get(text) ?? []), index]));
  return [...byText.values()].filter((group) => group.length > 1);
}

export function makeRankSet(
  id: string,
  prompt: string,
  completions: readonly string[],
  source: RankSetSource,
  random: Random,
): RankSet {
  if (completions.length < minCompletions || completions.length > maxCompletions) {
    throw new RangeError(
      `a set to rank needs ${minCompletions} to ${maxCompletions} completions, got ${completions.length}`,
    );
  }
  return {
    id,
    prompt,
    completions,
    shownOrder: randomOrder(completions.length, random),
    identical: identicalGroups(completions),
    source,
  };
}

/**
 * Ranks per completion (1 = best; equal numbers are ties; gaps allowed) → groups best first.
 * Returns undefined while a completion has no rank yet.
 */
export function rankingFromRanks(ranks: readonly (number | undefined)[]): number[][] | undefined {
  if (ranks.some((rank) => rank === undefined || !Number.isInteger(rank) || rank < 1)) return undefined;
  const byRank = new Map<number, number[]>();
  ranks.forEach((rank, index) => byRank.set(rank as number, [...(byRank.get(rank as number) ?? []), index]));
  return [...byRank.entries()].sort(([a], [b]) => a - b).map(([, group]) => group);
}

/** The inverse: ranks 1..G per completion from groups best first. */
export function ranksFromRanking(ranking: readonly (readonly number[])[], k: number): (number | undefined)[] {
  const ranks = new Array<number | undefined>(k).fill(undefined);
  ranking.forEach((group, g) => group.forEach((index) => (ranks[index] = g + 1)));
  return ranks;
}

/**
 * A cycle in one annotator's preferences over the completions of one prompt, judgments taken
 * together: texts in order, each preferred to the next and the last to the first. Undefined when
 * the preferences are consistent (a DAG). A single ranking cannot be cyclic; a cycle means later
 * judgments contradict earlier ones.
 */
export function findPreferenceCycle(
  judgments: readonly Judgment[],
  annotator: string,
  prompt: string,
): string[] | undefined {
  const better = new Map<string, Set<string>>(); // winner text → loser texts
  for (const judgment of judgments) {
    if (judgment.annotator !== annotator || judgment.prompt !== prompt) continue;
    for (const [winner, loser] of rankingToPairs(judgment.ranking)) {
      const w = judgment.completions[winner];
      const l = judgment.completions[loser];
      if (w === l) continue; // identical texts carry no preference
      if (!better.has(w)) better.set(w, new Set());
      better.get(w)?.add(l);
    }
  }
  // Depth-first search with colours; a back edge closes a cycle, read off the path.
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, 'open');
    path.push(node);
    for (const next of better.get(node) ?? []) {
      if (state.get(next) === 'open') return path.slice(path.indexOf(next));
      if (!state.has(next)) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of better.keys()) {
    if (!state.has(node)) {
      const cycle = visit(node);
      if (cycle) return cycle;
    }
  }
  return undefined;
}

/** A key that is the same for two sets of the same prompt and completions in any order. */
export function setKey(prompt: string, completions: readonly string[]): string {
  return JSON.stringify([prompt, [...completions].sort()]);
}
