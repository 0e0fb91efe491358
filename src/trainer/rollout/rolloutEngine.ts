/**
 * Where PPO's rollout phases 1–2 run (generate, then the policy's log-probabilities, values and
 * entropies, the reference's log-probabilities and the reward model's scores), as the algorithm sees
 * it. Two implementations: the training engine itself (rollout/engineRollout.ts) and onnxruntime-node
 * (onnx/onnxRolloutEngine.ts); engineFactory.ts picks one for a stage's `rollout_engine`. This file
 * holds only types, so PPO and both implementations import it without importing each other.
 */
import type { SequenceBatch, PromptResponse } from '../data/sequences';
import type { EngineModel } from '../engine/engine';
import type { SamplingOptions } from '../sampling/sampler';

export interface Rollout {
  readonly items: PromptResponse[];
  readonly batch: SequenceBatch;
  /** Per sample, aligned with its response tokens. */
  readonly logprobs: number[][];
  readonly refLogprobs: number[][];
  readonly values: number[][];
  readonly entropy: number[][];
  /** The reward model's raw score per sample. */
  readonly rawScores: number[];
  readonly endedWithEos: boolean[];
  /** Seconds spent sampling, and in the policy, reference and reward passes over the samples. */
  readonly timings: { readonly generate: number; readonly score: number };
}

/** The three models of a PPO stage: the policy (with its value head), its frozen reference and the reward model. */
export interface RolloutModels {
  readonly policy: EngineModel;
  readonly reference: EngineModel;
  readonly reward: EngineModel;
}

export interface RolloutEngine {
  collect(prompts: readonly number[][], sampling: SamplingOptions, eosId: number | undefined): Promise<Rollout>;
  /** Called after every PPO update: brings the policy's new weights to the engine. */
  syncPolicy(): Promise<void>;
  release(): Promise<void>;
}

/** Which rollout engine a PPO stage asked for (its config's `rollout_engine`). */
export type RolloutEngineKind = 'training' | 'onnx' | 'tfjs';

export type RolloutEngineFactory = (kind: RolloutEngineKind, models: RolloutModels) => Promise<RolloutEngine>;
