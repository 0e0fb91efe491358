/**
 * The one training loop every trainable stage runs (SFT, reward, PPO, DPO). It owns what is the same
 * for all of them: a turn for the event loop between steps; a stop request → checkpoint → 'stopped';
 * NaN / Inf checks of each step's values (NonFiniteError, the update not applied); a GPU lost or failing
 * mid-step (GpuFailureError: stopped like a NaN, the last checkpoint kept); the metrics line
 * and `onStep` at the logging cadence; held-out evaluation at the eval cadence and at the end;
 * checkpoints every save_steps and at the end; resume (the start step, metrics after it cut); the
 * stage's result. An algorithm supplies only its step, its evaluation and its checkpoint. A stage that
 * writes its output as it goes (the preference labels) has no checkpoint and names its outputs instead.
 */
import {
  assertFinite,
  awaitGpuFailure,
  GpuFailureError,
  yieldToEventLoop,
  type StageContext,
  type StageOutputs,
  type StageResult,
} from '../stageContext';

/** What one step of an algorithm gives back. */
export interface StepOutcome {
  /** The step's metrics, in the order they are written (after `step` and `time`). */
  readonly metrics: Record<string, number>;
  /** Values that must be finite, checked in order: the first that is not stops the run (NonFiniteError). */
  readonly checked?: Readonly<Record<string, number>>;
}

/** An algorithm as the loop drives it. Steps are 0-based; `done` = step + 1 is the number of steps taken. */
export interface StageAlgorithm {
  /** The step the loop starts at: 0, or the resumed checkpoint's global_step. */
  readonly startStep: number;
  readonly maxSteps: number;
  /** Metrics are written every this many steps (and at evals and the last step); default every step. */
  readonly loggingSteps?: number;
  /** Evaluate every this many steps and after the last one. */
  readonly evalSteps?: number;
  /** Checkpoint every this many steps (and always after the last one, when there is a `checkpoint`). */
  readonly saveSteps?: number;
  /** Trains step `step`. The engine never applies an update whose loss or gradient norm is not finite. */
  step(step: number): Promise<StepOutcome>;
  /** After the last step, before its evaluation (the reward model centers its rewards here). */
  afterLastStep?(): Promise<void>;
  /** Held-out metrics after `done` steps, merged into that step's metrics line. */
  evaluate?(done: number): Promise<Record<string, number>>;
  /** Metrics of the starting model, written as step 0 before a fresh (not resumed) stage trains. */
  baseline?(): Promise<Record<string, number>>;
  /** Writes the checkpoint of `step` steps and returns its folder (the stage's `checkpoint` output). */
  checkpoint?(step: number): Promise<string>;
  /** Outputs the stage leaves besides a checkpoint (the preference stage's judgments file). */
  readonly outputs?: StageOutputs;
  /** The log line of a stop request after `step` steps; default: the step and the checkpoint written. */
  stopMessage?(step: number): string;
}

function throwOnGpuFailure(reason: string | undefined, step: number, lastCheckpoint: string): void {
  if (reason !== undefined) throw new GpuFailureError(reason, step, lastCheckpoint);
}

export async function runStageLoop(algorithm: StageAlgorithm, context: StageContext): Promise<StageResult> {
  const { run, log } = context;
  const { startStep, maxSteps, saveSteps, loggingSteps = 1 } = algorithm;
  const outputsWith = (checkpoint: string): StageOutputs =>
    algorithm.checkpoint ? { ...algorithm.outputs, checkpoint } : { ...algorithm.outputs };
  if (context.resume) run.truncateMetricsAfter(startStep);
  const record = (metrics: Record<string, number>) => {
    run.appendMetrics(metrics);
    context.onStep?.(metrics);
  };
  if (startStep === 0 && algorithm.baseline)
    record({ step: 0, time: Date.now() / 1000, ...(await algorithm.baseline()) });

  let lastMetrics: Record<string, number> = {};
  let lastCheckpoint = startStep > 0 ? run.checkpointDir(startStep) : '';
  for (let step = startStep; step < maxSteps; step++) {
    await yieldToEventLoop();
    if (context.shouldStop?.()) {
      if (algorithm.checkpoint) lastCheckpoint = await algorithm.checkpoint(step);
      log('info', algorithm.stopMessage?.(step) ?? `stopped at step ${step} on request; checkpoint ${lastCheckpoint}`);
      return { status: 'stopped', step, outputs: outputsWith(lastCheckpoint), lastMetrics };
    }
    const done = step + 1;
    try {
      const outcome = await algorithm.step(step);
      // A GPU that failed during the step leaves values that cannot be trusted: none of them is recorded.
      throwOnGpuFailure(context.engine.gpuFailure?.(), done, lastCheckpoint);
      if (outcome.checked) assertFinite(outcome.checked, done);
      const metrics: Record<string, number> = { step: done, time: Date.now() / 1000, ...outcome.metrics };
      const last = done === maxSteps;
      if (last) await algorithm.afterLastStep?.();
      const evaluates = algorithm.evaluate !== undefined && algorithm.evalSteps !== undefined;
      const evaluated = evaluates && (done % (algorithm.evalSteps as number) === 0 || last);
      if (evaluated) Object.assign(metrics, await algorithm.evaluate?.(done));
      if (done % loggingSteps === 0 || evaluated || last) record(metrics);
      lastMetrics = metrics;
      const saves = last || (saveSteps !== undefined && done % saveSteps === 0);
      if (algorithm.checkpoint && saves) lastCheckpoint = await algorithm.checkpoint(done);
    } catch (error) {
      if (error instanceof GpuFailureError) throw error;
      // After a GPU loss every operation fails, often before `device.lost` says why.
      throwOnGpuFailure(await awaitGpuFailure(context.engine), done, lastCheckpoint);
      throw error;
    }
  }
  return { status: 'completed', step: maxSteps, outputs: outputsWith(lastCheckpoint), lastMetrics };
}
