/**
 * Every random stream of the trainer, derived from the run's `seed` in this one place. Each stream has
 * its own derivation so that no two draw the same numbers, and each is a pure function of (seed, where
 * in the run), so a resumed run draws exactly what an uninterrupted one would. Changing any formula here
 * changes every result of every run: the values are the ones the trainer has always used, but for the
 * dropout masks' (issue 15: drawn by core/random.ts for both engines, no longer by tfjs's generator).
 */
import { scrambleSeed } from '../core/random';

/** Added to the run's seed for evaluation generations: the same draws at every eval (PPO and DPO). */
const evalGenerationOffset = 7777;
/** Multiplier that spreads per-step streams far apart (a prime). */
const perStepPrime = 1_000_003;
/** Multiplier of the preference stage's per-batch sampling stream (a prime). */
const perBatchPrime = 100_003;
/** Multiplier of SFT's per-step dropout stream (a prime). */
const dropoutPrime = 7919;
/** XOR masks that make a stream differ from another derived from the same seed and step. */
const evalSplitMask = 0x5eed;
const minibatchShuffleMask = 0x9e3779b9; // 2³²/φ, the golden-ratio constant of hash mixing
const annotatorMask = 0xa11ce;
/** Dropout calls within one forward pass: each call's mask seed is the step's dropout seed spread by this. */
const dropoutCallsPerForward = 1000;
/** PPO-ptx: one language-modelling "step" per (PPO step, epoch, minibatch start), spread out in decimal. */
const ptxStepsPerPpoStep = 1000;
const ptxStepsPerEpoch = 10;

export const seeds = {
  /** Shuffle of the train / eval split of a stage's examples. */
  evalSplit: (seed: number) => seed ^ evalSplitMask,
  /** Shuffle of epoch `epoch` of a stage's training examples (unsigned 32-bit). */
  epochShuffle: (seed: number, epoch: number) => (seed * perStepPrime + epoch) >>> 0,
  /** Dropout masks of SFT step `step`. */
  sftDropout: (seed: number, step: number) => seed * dropoutPrime + step,
  /**
   * The `Random` seed of the mask of the `call`-th dropout of one forward pass whose dropout seed is
   * `forwardSeed` (model/dropoutMasks.ts): forwardSeed·1000 + call in exact 32-bit arithmetic, scrambled.
   */
  dropoutMask: (forwardSeed: number, call: number) =>
    scrambleSeed(Math.imul(forwardSeed >>> 0, dropoutCallsPerForward) + call),
  /** Sampling of PPO's rollouts at step `step`. */
  rolloutSampling: (seed: number, step: number) => seed * perStepPrime + step,
  /** Minibatch order of PPO's epochs at step `step`. */
  minibatchShuffle: (seed: number, step: number) => (seed ^ minibatchShuffleMask) + step,
  /** The `step` argument of batchIndices for PPO-ptx's language-modelling batch of one minibatch. */
  ptxBatchStep: (step: number, epoch: number, minibatchStart: number) =>
    step * ptxStepsPerPpoStep + epoch * ptxStepsPerEpoch + minibatchStart,
  /** Sampling of held-out generations at every eval (PPO, DPO): one stream for the whole stage. */
  evalGeneration: (seed: number) => seed + evalGenerationOffset,
  /** Sampling of the preference stage's completions of prompt batch `batch`. */
  preferenceSampling: (seed: number, batch: number) => seed * perBatchPrime + batch,
  /** Sampling of the demo evaluation's chunk of held-out prompts that starts at prompt `firstPrompt`. */
  demoEvaluationChunk: (seed: number, firstPrompt: number) => seed + firstPrompt,
  /** The simulated annotator's draws (ranking noise, shown order) for prompt batch `batch`. */
  annotator: (seed: number, batch: number) => (seed ^ annotatorMask) + batch,
} as const;

// Fixed seeds (not derived from a run's seed): commands that sample outside a run.

/** `rlhf-lens sample` without `--prompt`: the seed of the demo reviews whose openings it completes. */
export const sampleDemoPromptsSeed = 12345;

/** `npm run demo`'s closing evaluation: the seed every policy's held-out generations are sampled with. */
export const demoEvaluationSeed = 2024;
