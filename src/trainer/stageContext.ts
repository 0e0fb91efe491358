/**
 * What every training stage receives and returns. Stages know nothing of processes or messages:
 * they report through these callbacks, and the pipeline turns them into run files and messages.
 */
import type { LogLevel } from '../shared/protocol';
import type { ModelConfig } from '../shared/runConfig';
import type { TrainingEngine } from './engine/engine';
import type { RolloutEngineFactory } from './rollout/rolloutEngine';
import type { RunDirectory } from './run/runDirectory';
import type { Task } from './tasks/task';

export type { LogLevel } from '../shared/protocol';

/** What a finished stage leaves for later stages to use. */
export interface StageOutputs {
  /** Its final checkpoint folder. */
  readonly checkpoint?: string;
  /** Its preference judgments file. */
  readonly preferences?: string;
}

export interface StageContext {
  readonly run: RunDirectory;
  /** Paths in the config are relative to this folder. */
  readonly configDir: string;
  readonly seed: number;
  readonly model: ModelConfig;
  readonly vocabSize: number;
  /** Where models live and train (engine/engine.ts): the only way a stage computes with a model. */
  readonly engine: TrainingEngine;
  /** PPO's rollout engine for a stage's `rollout_engine`: the training engine itself, or ONNX Runtime. */
  readonly createRolloutEngine: RolloutEngineFactory;
  /** The task's oracle (the demo's sentiment score), for metrics and the simulated annotator. */
  readonly task: Task;
  /** Continue this run from its latest checkpoint instead of starting it. */
  readonly resume?: boolean;
  readonly log: (level: LogLevel, message: string) => void;
  /** Every logged step's metrics, as written to metrics.jsonl. */
  readonly onStep?: (metrics: Readonly<Record<string, number>>) => void;
  /** Polled between steps: true finishes the step, checkpoints, and returns `stopped`. */
  readonly shouldStop?: () => boolean;
  /**
   * Resolves a stage's reference to earlier work: the name of an earlier stage of the config gives
   * that stage's output; anything else is a path relative to the config file.
   */
  readonly resolve: (reference: string, output: keyof StageOutputs) => string;
}

export interface StageResult {
  readonly status: 'completed' | 'stopped';
  readonly step: number;
  readonly outputs: StageOutputs;
  readonly lastMetrics: Readonly<Record<string, number>>;
}

/**
 * Gives the event loop a turn between steps. tfjs's `data()` on the wasm and cpu backends resolves
 * as a microtask, so a loop of steps never lets IPC messages or signals in: without this, a stop
 * request from the editor (or Ctrl+C) waits until the stage ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A loss, gradient or reward that is not a finite number: the run stops, keeping its last good checkpoint. */
export class NonFiniteError extends Error {
  constructor(
    readonly quantity: string,
    readonly step: number,
    readonly value: number,
  ) {
    super(
      `${quantity} is ${value} at step ${step}; stopped without applying that update. ` +
        'The last good checkpoint is kept. Try a lower learning_rate or max_grad_norm.',
    );
  }
}

/**
 * The GPU under the engine failed mid-run (its device lost, or an operation invalid): the run stops like a
 * NaN does, keeping its last checkpoint.
 */
export class GpuFailureError extends Error {
  constructor(
    readonly reason: string,
    readonly step: number,
    readonly lastCheckpoint: string,
  ) {
    super(
      `${reason.charAt(0).toUpperCase()}${reason.slice(1)} at step ${step}; the run stopped there. ` +
        (lastCheckpoint
          ? `Its last checkpoint (${lastCheckpoint}) is kept: resume the run to continue from it.`
          : 'It had no checkpoint yet: start it again.'),
    );
  }
}

/** How long a failed step waits for the GPU to report a failure before its error is taken as not one. */
const gpuFailureSettleMs = 1000;
const gpuFailurePollMs = 20;

/**
 * After an error in a step: a GPU that was lost makes later operations fail before `device.lost` resolves,
 * so a failure is awaited briefly; its reason, when there was one, else undefined.
 */
export async function awaitGpuFailure(engine: TrainingEngine): Promise<string | undefined> {
  if (!engine.gpuFailure) return undefined;
  for (let waited = 0; waited <= gpuFailureSettleMs; waited += gpuFailurePollMs) {
    const failure = engine.gpuFailure();
    if (failure) return failure;
    await new Promise((resolve) => setTimeout(resolve, gpuFailurePollMs));
  }
  return undefined;
}

/** Throws NonFiniteError for the first of `values` that is NaN or infinite. */
export function assertFinite(values: Readonly<Record<string, number>>, step: number): void {
  for (const [quantity, value] of Object.entries(values))
    if (!Number.isFinite(value)) throw new NonFiniteError(quantity, step, value);
}
