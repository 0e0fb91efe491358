/**
 * The seeds of RLHF Lens's random streams, each named for the stream it starts, so that a result can
 * be reproduced from run.json's `seed` alone and two streams never share a seed by accident. The
 * values are the ones the trainer has always used: changing one moves every result of the streams it
 * starts.
 *
 * (Created on the names branch with only the derivations outside the seam folders; the seam branch
 * adds its own — both keep the values below.)
 */

/** A prime stride between the streams of consecutive run seeds, so nearby run seeds never overlap. */
const runSeedStride = 1_000_003;

/**
 * The sampler's seed for one step's rollouts: one fresh stream per step. The PPO stage passes its
 * 0-based step index, an inspection run (`rlhf-lens inspect`) its 1-based step number — as each always
 * has, so neither run's samples move.
 */
export function rolloutSamplingSeed(runSeed: number, step: number): number {
  return runSeed * runSeedStride + step;
}

/** `rlhf-lens sample` without `--prompt`: the seed of the demo reviews whose openings it completes. */
export const sampleDemoPromptsSeed = 12345;

/** `npm run demo`'s closing evaluation: the seed every policy's held-out generations are sampled with. */
export const demoEvaluationSeed = 2024;
