/**
 * A simulated annotator for the demo task: it ranks K completions by the sentiment oracle with
 * Bradley–Terry noise. Sorting by oracle(x)/T plus independent Gumbel noise samples a Plackett–Luce
 * ranking, whose pairwise marginals are exactly Bradley–Terry: P(a above b) = σ((oracle(a) − oracle(b)) / T).
 * T = 0 ranks by the oracle exactly. Identical completions are tied (one group).
 */
import type { Random } from '../../core/random';

export function simulatedRanking(
  completions: readonly string[],
  scores: readonly number[],
  temperature: number,
  random: Random,
): number[][] {
  const keys = scores.map((score) => (temperature > 0 ? score / temperature + gumbel(random) : score));
  const order = completions.map((_, i) => i).sort((a, b) => keys[b] - keys[a] || a - b);
  const groups: number[][] = [];
  for (const index of order) {
    // Same text, same judgment: the annotator cannot prefer one copy over another.
    const same = groups.find((group) => completions[group[0]] === completions[index]);
    if (same) same.push(index);
    else if (temperature === 0 && groups.length > 0 && scores[groups[groups.length - 1][0]] === scores[index])
      groups[groups.length - 1].push(index);
    else groups.push([index]);
  }
  return groups;
}

/** A standard Gumbel draw: −log(−log U). */
function gumbel(random: Random): number {
  return -Math.log(-Math.log(Math.max(random.next(), 1e-12)));
}
