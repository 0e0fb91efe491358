/**
 * Runs a config's stages in order, each in its own run directory, on one TensorFlow.js backend
 * chosen at start. Reports through callbacks (the process entry turns them into messages or a
 * terminal progress bar). A stage that fails marks its run.json `failed` with the error; the
 * checkpoints it wrote stay.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { formatConfigProblem, readConfigText } from '../shared/configFile';
import type { RunConfig, StageConfig } from '../shared/runConfig';
import { formatBackendChoice, selectBackend, type BackendChoice } from './engine/backend';
import { tf } from './engine/tfRuntime';
import { newRunId, RunDirectory } from './run/runDirectory';
import { runSftStage, type LogLevel, type StageResult } from './sft/sftTrainer';

export interface PipelineCallbacks {
  readonly log: (level: LogLevel, message: string) => void;
  readonly onStageStart?: (info: { runId: string; runDir: string; stage: string; backend: BackendChoice; maxSteps: number }) => void;
  readonly onStep?: (runId: string, metrics: Readonly<Record<string, number>>, maxSteps: number) => void;
  readonly onStageEnd?: (info: { runId: string; result?: StageResult; error?: Error }) => void;
  readonly shouldStop?: () => boolean;
}

export class ConfigError extends Error {}

export interface PipelineResult {
  readonly runs: { runId: string; runDir: string; result: StageResult }[];
  readonly stopped: boolean;
}

/** Reads and validates a config file; throws a ConfigError listing every problem as file:line:column. */
export function loadRunConfig(configFile: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read the run config ${configFile}: ${(error as Error).message}`);
  }
  const { config, problems } = readConfigText(text);
  if (!config) throw new ConfigError(`The run config has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((problem) => `  ${formatConfigProblem(configFile, problem)}`).join('\n')}`);
  return config;
}

function versions(): Record<string, string> {
  return { node: process.version, tfjs: tf.version_core, 'rlhf-lens': typeof RLHF_LENS_VERSION === 'string' ? RLHF_LENS_VERSION : 'development' };
}
/** Set by the build (scripts/build.mjs) from package.json. */
declare const RLHF_LENS_VERSION: string | undefined;

function maxStepsOf(stage: StageConfig): number {
  return stage.max_steps;
}

async function runStage(stage: StageConfig, run: RunDirectory, config: RunConfig, configDir: string, resume: boolean, callbacks: PipelineCallbacks): Promise<StageResult> {
  const common = {
    run,
    configDir,
    seed: config.seed,
    model: config.model,
    vocabSize: config.tokenizer.vocab_size,
    resume,
    log: callbacks.log,
    onStep: (metrics: Readonly<Record<string, number>>) => callbacks.onStep?.(run.id, metrics, maxStepsOf(stage)),
    shouldStop: callbacks.shouldStop,
  };
  switch (stage.type) {
    case 'sft':
      return runSftStage(stage, common);
  }
}

/** Runs every stage of `configFile`, or, with `resumeDir`, continues that run directory's stage and the stages after it. */
export async function runPipeline(options: { configFile?: string; runsRoot: string; resumeDir?: string }, callbacks: PipelineCallbacks): Promise<PipelineResult> {
  let config: RunConfig;
  let configDir: string;
  let firstStage = 0;
  let resumed: RunDirectory | undefined;
  if (options.resumeDir) {
    resumed = RunDirectory.open(options.resumeDir);
    const fields = resumed.runJson;
    config = fields.config as RunConfig;
    configDir = fields.config_file ? path.dirname(fields.config_file) : process.cwd();
    firstStage = fields.stage_index;
  } else if (options.configFile) {
    config = loadRunConfig(options.configFile);
    configDir = path.dirname(path.resolve(options.configFile));
  } else {
    throw new ConfigError('Give a run config to train, or a run directory to resume.');
  }

  const backend = await selectBackend(config.backend);
  callbacks.log('info', formatBackendChoice(backend));
  const runs: PipelineResult['runs'] = [];
  for (let index = firstStage; index < config.stages.length; index++) {
    const stage = config.stages[index];
    const stageName = stage.name ?? stage.type;
    const isResume = resumed !== undefined && index === firstStage;
    const run = isResume
      ? (resumed as RunDirectory)
      : RunDirectory.create(options.runsRoot, {
          id: newRunId(config.name, stageName),
          name: `${config.name} · ${stageName}`,
          stage: stageName,
          stage_index: index,
          seed: config.seed,
          config,
          config_file: options.configFile ? path.resolve(options.configFile) : undefined,
          versions: versions(),
        });
    run.update({ status: 'running', backend: backend.name, backend_reason: backend.reason, ended_at: undefined, error: undefined, ...(isResume ? { resumed_at: [...(run.runJson.resumed_at ?? []), new Date().toISOString()] } : {}) });
    callbacks.onStageStart?.({ runId: run.id, runDir: run.dir, stage: stageName, backend, maxSteps: maxStepsOf(stage) });
    let result: StageResult;
    try {
      result = await runStage(stage, run, config, configDir, isResume, callbacks);
    } catch (error) {
      run.update({ status: 'failed', ended_at: new Date().toISOString(), error: (error as Error).message });
      callbacks.onStageEnd?.({ runId: run.id, error: error as Error });
      throw error;
    }
    run.update({ status: result.status === 'stopped' ? 'stopped' : 'completed', ended_at: new Date().toISOString(), step: result.step });
    callbacks.onStageEnd?.({ runId: run.id, result });
    runs.push({ runId: run.id, runDir: run.dir, result });
    if (result.status === 'stopped') return { runs, stopped: true };
  }
  return { runs, stopped: false };
}
