/**
 * Runs a config's stages in order, each in its own run directory, on one TensorFlow.js backend
 * chosen at start. Reports through callbacks (the process entry turns them into messages or a
 * terminal progress bar). A stage that fails marks its run.json `failed` with the error (also when
 * the process exits on an uncaught error); the checkpoints it wrote stay.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { assertStageFits, memoryTarget } from './memoryGuard';
import { defaultRunsFolder } from '../shared/runsFolder';
import type { RunConfig, StageConfig } from '../shared/runConfig';
import { latestCheckpoint } from './checkpoint/checkpoint';
import { formatBackendChoice, selectBackend, type BackendChoice } from './engine/tfjs/backend';
import { tf } from './engine/tfjs/tfRuntime';
import { runDpoStage } from './dpo/dpoTrainer';
import { runPpoStage } from './ppo/ppoTrainer';
import { promptsPerBatch, runPreferencesStage } from './preferences/preferencesStage';
import { runRewardStage } from './reward/rewardTrainer';
import { messageOf, recordExitWhileRunning } from './run/exitGuard';
import { newRunId, RunDirectory } from './run/runDirectory';
import { removeStaleTemporaries } from '../shared/durableWrite';
import { runSftStage } from './sft/sftTrainer';
import { ConfigError, loadRunConfig, loadSweepElement, requestedBackend } from './configLoading';
export { ConfigError, loadRunConfig } from './configLoading';
import { sweepElements, type SweepElement } from '../shared/sweep';
import type { RunJsonFields } from './run/runDirectory';
import {
  chooseEngine,
  createChosenEngine,
  createRolloutEngine,
  runBackend,
  type EngineChoice,
  type RunBackend,
} from './engineFactory';
import { sentimentTask } from './tasks/sentimentTask';
import type { TrainingEngine } from './engine/engine';
import type { LogLevel, StageContext, StageOutputs, StageResult } from './stageContext';

export interface PipelineCallbacks {
  readonly log: (level: LogLevel, message: string) => void;
  readonly onStageStart?: (info: {
    runId: string;
    runDir: string;
    stage: string;
    /** What the stage computes on (ONNX Runtime's execution provider, or tfjs's backend). */
    backend: RunBackend;
    /** The TensorFlow.js backend set up for this process (what the demo's evaluation runs on). */
    tfjsBackend: BackendChoice;
    engine: EngineChoice;
    maxSteps: number;
  }) => void;
  readonly onStep?: (runId: string, metrics: Readonly<Record<string, number>>, maxSteps: number) => void;
  readonly onStageEnd?: (info: { runId: string; result?: StageResult; error?: Error }) => void;
  readonly shouldStop?: () => boolean;
}

export interface PipelineResult {
  readonly runs: { runId: string; runDir: string; result: StageResult }[];
  readonly stopped: boolean;
}

function versions(): Record<string, string> {
  return {
    node: process.version,
    tfjs: tf.version_core,
    'rlhf-lens': typeof RLHF_LENS_VERSION === 'string' ? RLHF_LENS_VERSION : 'development',
  };
}
/** Set by the build (scripts/build.mjs) from package.json. */
declare const RLHF_LENS_VERSION: string | undefined;

/** Steps a stage will take, for progress bars (the stage may know better once its data is loaded). */
export function plannedSteps(stage: StageConfig): number {
  switch (stage.type) {
    case 'sft':
      return stage.max_steps;
    case 'ppo':
      return Math.max(1, Math.floor(stage.total_episodes / stage.batch_size));
    case 'preferences':
      return Math.ceil(stage.num_prompts / promptsPerBatch);
    case 'reward':
    case 'dpo':
      return 0; // known once the preference pairs are read; the stage reports it
  }
}

/** Stage outputs by stage name, for later stages' references. */
type Outputs = Record<string, StageOutputs>;

function resolver(outputs: Outputs, configDir: string, stageName: string): StageContext['resolve'] {
  return (reference, output) => {
    const earlier = outputs[reference];
    if (earlier) {
      const value = earlier[output];
      if (!value)
        throw new ConfigError(`stage "${stageName}" wants the ${output} of stage "${reference}", which writes none.`);
      return value;
    }
    const file = path.resolve(configDir, reference);
    if (!existsSync(file)) {
      const names = Object.keys(outputs);
      throw new ConfigError(
        `stage "${stageName}": "${reference}" is neither an earlier stage` +
          `${names.length ? ` (${names.map((n) => `"${n}"`).join(', ')})` : ''} nor an existing path (${file}).`,
      );
    }
    return file;
  };
}

async function runStage(stage: StageConfig, context: StageContext): Promise<StageResult> {
  switch (stage.type) {
    case 'sft':
      return runSftStage(stage, context);
    case 'preferences':
      return runPreferencesStage(stage, context);
    case 'reward':
      return runRewardStage(stage, context);
    case 'ppo':
      return runPpoStage(stage, context);
    case 'dpo':
      return runDpoStage(stage, context);
  }
}

/** Stages that continue from checkpoints; a preferences stage continues from its file instead. */
function hasCheckpoint(stage: StageConfig, run: RunDirectory): boolean {
  return stage.type === 'preferences' || latestCheckpoint(run.dir) !== undefined;
}

/** Where a pipeline starts: its config, the folder its paths are relative to, and the stage to run first. */
interface PipelineStart {
  readonly config: RunConfig;
  readonly configDir: string;
  readonly configFile: string | undefined;
  readonly firstStage: number;
  /** The run directory continued in place, for its stage `firstStage`; undefined for a new stage's run. */
  readonly resumed: RunDirectory | undefined;
  /** The sweep element this pipeline runs (recorded in each run.json), if one. */
  readonly sweep?: SweepElement;
}

/** The config of a new pipeline (checked like the editor checks it), or the recorded one of a resumed run. */
function pipelineStart(
  options: { configFile?: string; resumeDir?: string; sweepIndex?: number },
  callbacks: PipelineCallbacks,
): PipelineStart {
  const configFile = options.configFile && path.resolve(options.configFile);
  if (options.resumeDir) {
    // Absolute, so the outputs it records hold wherever a later resume starts.
    const resumed = RunDirectory.open(path.resolve(options.resumeDir));
    const fields = resumed.runJson;
    const resumedConfigFile = fields.config_file;
    return {
      config: fields.config as RunConfig,
      configFile: resumedConfigFile,
      configDir: resumedConfigFile ? path.dirname(resumedConfigFile) : process.cwd(),
      firstStage: fields.stage_index,
      resumed,
      sweep: fields.sweep,
    };
  } else if (options.configFile) {
    const configDir = path.dirname(path.resolve(options.configFile));
    if (options.sweepIndex !== undefined) {
      const { config, element } = loadSweepElement(options.configFile, options.sweepIndex, callbacks.log);
      return { config, configDir, configFile, firstStage: 0, resumed: undefined, sweep: element };
    }
    const config = loadRunConfig(options.configFile, callbacks.log);
    if (config.sweep)
      callbacks.log(
        'warn',
        `the config has a sweep of ${sweepElements(config.sweep).length} runs: \`rlhf-lens submit\` runs them all, ` +
          '`train --sweep-index I` one of them; this runs the config as written, without the sweep',
      );
    return { config, configDir, configFile, firstStage: 0, resumed: undefined };
  } else {
    throw new ConfigError('Give a run config to train, or a run directory to resume.');
  }
}

/**
 * A resumed stage that completed (killed before the next one began) is not run again: its recorded
 * outputs feed the next stage. Undefined when that stage was the pipeline's last.
 */
function skipCompletedStage(
  start: PipelineStart,
  outputs: Outputs,
  resumeDir: string | undefined,
  callbacks: PipelineCallbacks,
): PipelineStart | undefined {
  const { config, resumed } = start;
  if (!(resumed?.runJson.status === 'completed' && resumed.runJson.outputs)) return start;
  const stage = config.stages[start.firstStage];
  outputs[stage.name ?? stage.type] = resumed.runJson.outputs;
  const firstStage = start.firstStage + 1;
  if (firstStage >= config.stages.length) {
    callbacks.log(
      'info',
      `nothing to resume: the pipeline "${config.name}" has finished; ${resumeDir} is its last stage ` +
        `(${config.stages.length} of ${config.stages.length}) and completed`,
    );
    return undefined;
  }
  callbacks.log('info', `${resumeDir} completed; continuing with stage ${firstStage + 1} of ${config.stages.length}`);
  return { ...start, firstStage, resumed: undefined };
}

/** What every stage of a pipeline run shares. */
interface PipelineRun {
  readonly start: PipelineStart;
  readonly runsRoot: string;
  /** Outputs of the stages run so far, by stage name. */
  readonly outputs: Outputs;
  /** The TensorFlow.js backend selected (the tfjs engine's; the demo's evaluation runs on it either way). */
  readonly backend: BackendChoice;
  /** What the chosen engine computes on, as recorded and shown. */
  readonly ranOn: RunBackend;
  readonly engine: TrainingEngine;
  /** Which engine `engine` is, and why it was chosen. */
  readonly engineChoice: EngineChoice;
  readonly callbacks: PipelineCallbacks;
  /** Fields every run.json of this pipeline records (a Slurm job's `slurm`, a sweep element's `sweep`). */
  readonly runJsonExtras: RunJsonExtras;
}

/** run.json fields that say where a run ran: written when its folder is made and each time it (re)starts. */
export type RunJsonExtras = Partial<Pick<RunJsonFields, 'slurm' | 'sweep'>>;

/** The stage's run folder: the resumed one, or a new one recording the config and the earlier stages' outputs. */
function stageRunDirectory(pipeline: PipelineRun, index: number, isResume: boolean): RunDirectory {
  const { config, configFile, resumed } = pipeline.start;
  const stage = config.stages[index];
  const stageName = stage.name ?? stage.type;
  return isResume
    ? (resumed as RunDirectory)
    : RunDirectory.create(pipeline.runsRoot, {
        id: newRunId(config.name, stageName),
        name: `${config.name} · ${stageName}`,
        stage: stageName,
        stage_index: index,
        seed: config.seed,
        config,
        config_file: configFile,
        versions: versions(),
        stage_outputs: { ...pipeline.outputs },
        ...pipeline.runJsonExtras,
      });
}

/** Runs one stage in `run` and records how it ended in run.json. */
async function runStageInFolder(
  pipeline: PipelineRun,
  index: number,
  run: RunDirectory,
  isResume: boolean,
): Promise<StageResult> {
  const { config, configDir } = pipeline.start;
  const { backend, ranOn, engineChoice, callbacks } = pipeline;
  const stage = config.stages[index];
  const stageName = stage.name ?? stage.type;
  // Killed before its first checkpoint: nothing to continue from, so the stage starts again here.
  const fromCheckpoint = isResume && hasCheckpoint(stage, run);
  if (isResume && !fromCheckpoint) {
    callbacks.log('info', `${run.dir} has no checkpoint yet: stage "${stageName}" starts again from the beginning`);
    run.clearForRestart();
  }
  if (isResume) run.keepFailureReserve();
  run.update({
    status: 'running',
    backend: ranOn.name,
    backend_reason: ranOn.reason,
    // Cleared (undefined is not written) when a resumed run computes on no adapter.
    backend_adapter: ranOn.adapter?.line,
    engine: engineChoice.name,
    engine_reason: engineChoice.reason,
    ended_at: undefined,
    error: undefined,
    ...pipeline.runJsonExtras,
    ...(isResume ? { resumed_at: [...(run.runJson.resumed_at ?? []), new Date().toISOString()] } : {}),
  });
  callbacks.onStageStart?.({
    runId: run.id,
    runDir: run.dir,
    stage: stageName,
    backend: ranOn,
    tfjsBackend: backend,
    engine: engineChoice,
    maxSteps: plannedSteps(stage),
  });
  const result = await runStage(stage, {
    run,
    configDir,
    seed: config.seed,
    model: config.model,
    vocabSize: config.tokenizer.vocab_size,
    engine: pipeline.engine,
    createRolloutEngine,
    task: sentimentTask,
    resume: fromCheckpoint,
    log: callbacks.log,
    onStep: (metrics) => callbacks.onStep?.(run.id, metrics, run.runJson.max_steps ?? plannedSteps(stage)),
    shouldStop: callbacks.shouldStop,
    resolve: resolver(pipeline.outputs, configDir, stageName),
  });
  run.update({
    status: result.status === 'stopped' ? 'stopped' : 'completed',
    ended_at: new Date().toISOString(),
    step: result.step,
    outputs: result.outputs,
  });
  return result;
}

/** Stage `index`: checked against the memory guard, run in its folder; a failure is recorded there and rethrown. */
async function runPipelineStage(
  pipeline: PipelineRun,
  index: number,
): Promise<{ runId: string; runDir: string; result: StageResult }> {
  const { config, configDir, configFile, firstStage, resumed } = pipeline.start;
  const { callbacks } = pipeline;
  const isResume = resumed !== undefined && index === firstStage;
  // Before its run folder is written; the error names the file the config came from.
  const configSource = resumed ? path.join(resumed.dir, 'run.json') : configFile;
  assertStageFits(config, index, memoryTarget(pipeline.engineChoice.name, pipeline.backend.name), {
    configDir,
    locate: configSource ? () => ({ file: configSource }) : undefined,
  });
  const run = stageRunDirectory(pipeline, index, isResume);
  let result: StageResult;
  const removeExitGuard = recordExitWhileRunning(run);
  try {
    result = await runStageInFolder(pipeline, index, run, isResume);
  } catch (error) {
    const failure = run.markFailed(messageOf(error));
    if (failure)
      callbacks.log('error', `could not record the failure in ${path.join(run.dir, 'run.json')}: ${failure.message}`);
    callbacks.onStageEnd?.({ runId: run.id, error: error as Error });
    throw error;
  } finally {
    removeExitGuard();
  }
  return { runId: run.id, runDir: run.dir, result };
}

/**
 * Runs every stage of `configFile`, or, with `resumeDir`, continues that run directory's stage and the
 * stages after it: from its last checkpoint, or from the start when it has none yet (from the earlier
 * stages' recorded outputs), or with the next stage when it had completed. New run directories go to
 * `runsRoot`; without one, a resumed pipeline's go next to the resumed run (its own runs folder,
 * wherever the command is started), a new pipeline's to `.rlhf/runs`.
 */
export async function runPipeline(
  options: {
    configFile?: string;
    runsRoot?: string;
    resumeDir?: string;
    /** Run this element of the config's sweep (its settings written in); the file's config otherwise. */
    sweepIndex?: number;
    runJsonExtras?: RunJsonExtras;
  },
  callbacks: PipelineCallbacks,
): Promise<PipelineResult> {
  const opened = pipelineStart(options, callbacks);
  const { resumed } = opened;
  const runsRoot = path.resolve(options.runsRoot ?? (resumed ? path.dirname(resumed.dir) : defaultRunsFolder));
  // What killed writers left in the runs folder (a run folder half made, a run.json half written in a
  // run never resumed); other trainers may be writing there now, so only temporaries of exited ones.
  removeStaleTemporaries(runsRoot, { keepLiveOwners: true });
  // Outputs of earlier stages; a resumed run recorded the ones it was started with.
  const outputs: Outputs = { ...((resumed?.runJson.stage_outputs as Outputs | undefined) ?? {}) };
  const start = skipCompletedStage(opened, outputs, options.resumeDir, callbacks);
  if (!start) return { runs: [], stopped: false };

  const backend = await selectBackend(requestedBackend(start.config.backend));
  const engineChoice = chooseEngine(start.config.engine);
  const engine = await createChosenEngine(backend, engineChoice.name);
  const ranOn = runBackend(engine, backend);
  // tfjs's choice is logged on every run: the demo's evaluation runs on it whichever engine trains.
  callbacks.log('info', `${engineChoice.name === 'tfjs' ? '' : 'tfjs '}${formatBackendChoice(backend)}`);
  callbacks.log('info', `engine: ${engineChoice.name} (${engineChoice.reason})`);
  if (engineChoice.name !== 'tfjs') callbacks.log('info', `backend ${ranOn.name}: ${ranOn.reason}`);
  const pipeline: PipelineRun = {
    start,
    runsRoot,
    outputs,
    backend,
    ranOn,
    engine,
    engineChoice,
    callbacks,
    runJsonExtras: { ...(start.sweep ? { sweep: start.sweep } : {}), ...options.runJsonExtras },
  };
  const runs: PipelineResult['runs'] = [];
  for (let index = start.firstStage; index < start.config.stages.length; index++) {
    const stage = start.config.stages[index];
    const stageRun = await runPipelineStage(pipeline, index);
    const { result } = stageRun;
    outputs[stage.name ?? stage.type] = result.outputs;
    callbacks.onStageEnd?.({ runId: stageRun.runId, result });
    runs.push(stageRun);
    if (result.status === 'stopped') return { runs, stopped: true };
  }
  return { runs, stopped: false };
}
