/**
 * A ranking of K completions, best first with ties as groups, turned into the pairwise preferences
 * a reward model or DPO trains on: every (winner, loser) with the winner in an earlier group. For K
 * completions and no ties that is K·(K−1)/2 pairs, as InstructGPT (https://arxiv.org/abs/2203.02155,
 * §3.5) uses all pairs of one ranking; tied completions give no pair. This is what exporting to TRL's
 * pairwise format (`prompt`, `chosen`, `rejected`) needs.
 */

/** `[winner, loser]`: indices of the completions as shown. */
export type PreferencePair = [winner: number, loser: number];

/**
 * `[[2], [0, 3], [1]]` (2 best, then 0 and 3 tied, then 1) → `[[2,0], [2,3], [2,1], [0,1], [3,1]]`.
 * Order: winners in reading order (group by group, then as listed in the group), and for each
 * winner its losers in reading order. Throws on an index that is not a non-negative integer, an
 * index given twice, or an empty group.
 */
export function rankingToPairs(ranking: readonly (readonly number[])[]): PreferencePair[] {
  if (!Array.isArray(ranking)) {
    throw new TypeError('rankingToPairs: ranking must be an array of groups, best first, e.g. [[2], [0, 3], [1]].');
  }
  const seen = new Map<number, number>(); // completion index → its group
  ranking.forEach((group, g) => {
    if (!Array.isArray(group) || group.length === 0) {
      throw new RangeError(
        `rankingToPairs: group ${g} must be a non-empty array of completion indices, e.g. [0] or [0, 3] for a tie.`,
      );
    }
    for (const index of group) {
      if (!Number.isInteger(index) || index < 0) {
        throw new RangeError(
          `rankingToPairs: group ${g} holds ${JSON.stringify(index)}; completion indices are non-negative integers.`,
        );
      }
      const earlier = seen.get(index);
      if (earlier !== undefined) {
        throw new RangeError(
          `rankingToPairs: completion ${index} appears twice (groups ${earlier} and ${g}); rank each completion once.`,
        );
      }
      seen.set(index, g);
    }
  });

  const pairs: PreferencePair[] = [];
  for (let g = 0; g < ranking.length; g++) {
    for (const winner of ranking[g]) {
      for (let h = g + 1; h < ranking.length; h++) {
        for (const loser of ranking[h]) pairs.push([winner, loser]);
      }
    }
  }
  return pairs;
}
