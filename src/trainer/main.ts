/**
 * Entry of the trainer process, and the `rlhf-lens` command:
 *   rlhf-lens train <config.rlhf.json> [--runs-dir DIR]     run a config's stages
 *   rlhf-lens train --resume <run-dir>                       continue a stopped or killed run
 *   rlhf-lens sample <checkpoint-dir> [--prompt TEXT]…       sample from a checkpoint
 * Started by the extension host through `fork`, the same commands report over IPC; with no command
 * it only says `trainer/ready` and answers control messages. Never imports `vscode`.
 */
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { assertNever, type HostToTrainerMessage, type LogLevel } from '../shared/protocol';
import { defaultRunsFolder } from '../shared/runsFolder';
import { connectToHost, type HostChannel } from './hostChannel';
import { ConfigError, runPipeline } from './pipeline';
import { ProgressBar } from './progressBar';
import { sampleFromCheckpoint } from './sampling/sampleCommand';

const usage = `Usage:
  rlhf-lens train <config.rlhf.json> [--runs-dir DIR]   run every stage of a config (runs go to DIR, default ${defaultRunsFolder})
  rlhf-lens train --resume <run-dir>                      continue a run from its latest checkpoint
  rlhf-lens sample <checkpoint-dir> [--prompt TEXT]... [--num-samples N] [--temperature T]
                   [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S]`;

let stopRequested = false;

function listen(host: HostChannel | undefined): void {
  host?.onMessage((message: HostToTrainerMessage) => {
    switch (message.type) {
      case 'control/ping':
        void host.send({ type: 'trainer/pong', id: message.id });
        break;
      case 'control/stop':
        // A training loop finishes its step and checkpoints; an idle trainer has nothing to finish.
        stopRequested = true;
        if (!training) void host.send({ type: 'trainer/exit', code: 0, reason: 'stopped on request' }).finally(() => process.exit(0));
        break;
      default:
        assertNever(message, 'trainer');
    }
  });
  // The host dying closes the channel; a trainer must not outlive it, but it checkpoints first.
  process.on('disconnect', () => {
    stopRequested = true;
    if (!training) process.exit(0);
  });
}

let training = false;

async function train(args: string[], host: HostChannel | undefined): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'runs-dir': { type: 'string' }, resume: { type: 'string' } } });
  if (positionals.length > 1 || (positionals.length === 0) === (values.resume === undefined)) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const log = (level: LogLevel, message: string) => {
    if (host) void host.send({ type: 'run/log', level, message });
    process.stderr.write(`${level === 'info' ? '' : `${level}: `}${message}\n`);
  };
  let bar: ProgressBar | undefined;
  training = true;
  // SIGINT/SIGTERM in a terminal: stop like the editor's Stop does (finish the step, checkpoint).
  const onSignal = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write('\nstopping after this step (again to quit at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runPipeline(
      { configFile: positionals[0], resumeDir: values.resume, runsRoot: path.resolve(values['runs-dir'] ?? defaultRunsFolder) },
      {
        log,
        shouldStop: () => stopRequested,
        onStageStart: ({ runId, runDir, stage, backend, maxSteps }) => {
          log('info', `${stage}: run ${runId} in ${runDir}`);
          if (host) void host.send({ type: 'run/started', runId, runDir, stage, backend: backend.name, backendReason: backend.reason, maxSteps });
          if (!host) bar = new ProgressBar(stage, maxSteps);
        },
        onStep: (runId, metrics, maxSteps) => {
          if (host) void host.send({ type: 'run/metrics', runId, step: metrics.step, maxSteps, metrics });
          const parts = Object.entries(metrics)
            .filter(([key]) => key !== 'step' && key !== 'time' && key !== 'lr')
            .map(([key, value]) => `${key} ${Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(3)}`);
          bar?.update(metrics.step, parts.join(' · '));
        },
        onStageEnd: ({ runId, result, error }) => {
          bar?.finish(result ? `(${result.status}, checkpoint ${result.checkpoint})` : '(failed)');
          bar = undefined;
          if (host) void host.send({ type: 'run/finished', runId, status: result ? result.status : 'failed', checkpoint: result?.checkpoint });
          if (error && host) void host.send({ type: 'run/error', message: error.message, detail: error.stack });
        },
      },
    );
    log('info', result.stopped ? `stopped; resume with: rlhf-lens train --resume ${result.runs.at(-1)?.runDir}` : `finished ${result.runs.length} stage${result.runs.length === 1 ? '' : 's'}`);
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    if (!(error instanceof ConfigError) && process.env.RLHF_LENS_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    return 1;
  } finally {
    training = false;
  }
}

const host = connectToHost();

async function main(): Promise<number> {
  listen(host);
  if (host) await host.send({ type: 'trainer/ready', pid: process.pid, nodeVersion: process.version });
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'train':
      return train(rest, host);
    case 'sample':
      return sampleFromCheckpoint(rest);
    case undefined:
      if (host) return new Promise<number>(() => undefined); // serve control messages until stopped
      process.stderr.write(`${usage}\n`);
      return 2;
    case '--help':
    case '-h':
      process.stdout.write(`${usage}\n`);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${usage}\n`);
      return 2;
  }
}

main().then(
  async (code) => {
    if (host) await host.send({ type: 'trainer/exit', code, reason: code === 0 ? 'finished' : 'failed' }).catch(() => undefined);
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`rlhf-lens trainer: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
