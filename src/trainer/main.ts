/**
 * Entry of the trainer process, and the `rlhf-lens` command:
 *   rlhf-lens train <config.rlhf.json> [--runs-dir DIR]     run a config's stages
 *   rlhf-lens train --resume <run-dir>                       continue a stopped or killed run
 *   rlhf-lens sample <checkpoint-dir> [--prompt TEXT]…       sample from a checkpoint
 *   rlhf-lens export <checkpoint-or-run-dir> [--out DIR]     write a transformers.js-style ONNX folder
 *   rlhf-lens inspect --policy DIR --reference DIR [--reward DIR] …   per-token KL and scores of ONNX models, as a run
 * Started by the extension host through `fork`, the same commands report over IPC; with no command
 * it only says `trainer/ready` and answers control messages. Never imports `vscode`.
 */
import * as path from 'node:path';
import { assertNever, type HostToTrainerMessage, type LogLevel } from '../shared/protocol';
import { defaultRunsFolder } from '../shared/runsFolder';
import { connectToHost, type HostChannel } from './hostChannel';
import { HelpRequested, numberOption, parseCommandArgs, reportError, UsageError, writeFully } from './cli';
import { runPipeline, type PipelineCallbacks, type RunJsonExtras } from './pipeline';
import { requeueExitStatus } from './cluster/batchScript';
import { slurmRunRecord, submissionRun } from './cluster/slurmJob';
import { submitCommand } from './cluster/submitCommand';
import { quote } from '../shared/userError';
import { ProgressBar } from './progressBar';
import { sampleFromCheckpoint } from './completions/sampleCommand';
import { SampleServer } from './completions/sampleServer';
import { runDemo } from './demo/demoCommand';
import { exportCommand } from './onnx/exportModel';

// Usage texts are built line by line (joined with newlines) so each source line stays short; the
// columns line up in the printed text, not here.
const runEveryStage = `run every stage of a config (runs go to DIR, default ${defaultRunsFolder})`;
const theDemo = 'the embedded demo: SFT, preferences, reward model, PPO and DPO, with a report';
const trainUsage = [
  `Usage: rlhf-lens train <config.rlhf.json> [--runs-dir DIR]   ${runEveryStage}`,
  '       rlhf-lens train --resume <run-dir>                    continue a run from its latest checkpoint',
  "       rlhf-lens train <config> --sweep-index I              run element I of the config's sweep",
  '       rlhf-lens train <config> --runs-dir DIR --submission JOBDIR [--sweep-index I]',
  '                   in a Slurm job (the batch script of `rlhf-lens submit`): resumes the',
  "                   submission's run when the job is started again; USR1 stops it for a requeue",
].join('\n');
const demoUsage = `Usage: rlhf-lens demo [--quick] [--seed N] [--runs-dir DIR] [--out DIR]   ${theDemo}`;

const usage = [
  'Usage:',
  `  rlhf-lens train <config.rlhf.json> [--runs-dir DIR]   ${runEveryStage}`,
  '  rlhf-lens train --resume <run-dir>                      continue a run from its latest checkpoint',
  `  rlhf-lens demo [--quick]                                ${theDemo}`,
  '  rlhf-lens submit <config.rlhf.json> [--runs-dir DIR] [--json]   submit to Slurm (the config\'s "launcher";',
  '                   a "sweep" becomes a job array); the batch script is kept in .rlhf/jobs/<id>/',
  '  rlhf-lens sample <checkpoint-dir> [--prompt TEXT]... [--num-samples N] [--temperature T]',
  '                   [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S]',
  '  rlhf-lens export <checkpoint-or-run-dir> [--out DIR]   the model as ONNX ' +
    '(config.json, tokenizer.json, onnx/model.onnx) for onnxruntime and transformers.js',
  '  rlhf-lens inspect --policy DIR --reference DIR [--reward DIR] [--prompts FILE.jsonl] [--steps N] [--batch-size N]',
  '                    an inspection-only run over ONNX folders: per-token KL and scores, written as PPO traces',
  "  <command> --help                                        that command's options",
  'Every command takes --debug: print the stack of an error (as RLHF_LENS_DEBUG=1 does).',
].join('\n');

let stopRequested = false;
/** Created on the first `sample/request`; keeps the model loaded for the next (the Rank view's sampler). */
let sampleServer: SampleServer | undefined;

function listen(host: HostChannel | undefined): void {
  host?.onMessage((message: HostToTrainerMessage) => {
    switch (message.type) {
      case 'control/ping':
        void host.send({ type: 'trainer/pong', id: message.id });
        break;
      case 'sample/request':
        sampleServer ??= new SampleServer();
        sampleServer.sample(message).then(
          (result) => host.send(result),
          (error: unknown) =>
            host.send({
              type: 'sample/error',
              id: message.id,
              message: error instanceof Error ? error.message : String(error),
            }),
        );
        break;
      case 'control/stop':
        // A training loop finishes its step and checkpoints; an idle trainer has nothing to finish.
        stopRequested = true;
        if (!training)
          void host
            .send({ type: 'trainer/exit', code: 0, reason: 'stopped on request' })
            .finally(() => process.exit(0));
        break;
      default:
        assertNever(message, 'trainer');
    }
  });
  // The host dying closes the channel; a trainer must not outlive it, but it checkpoints first.
  process.on('disconnect', () => {
    stopRequested = true;
    if (!training && !ending) process.exit(0);
  });
}

let training = false;
/** Set once the process is ending on its own: the host closing the channel then is expected. */
let ending = false;

/** SIGINT/SIGTERM in a terminal: stop like the editor's Stop does (finish the step, checkpoint); twice quits. */
function handleSignals(): void {
  const onSignal = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write('\nstopping after this step (again to quit at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** The metrics a progress bar shows, when a step has them (the rest is in metrics.jsonl). */
const headlineMetrics = [
  'loss/train',
  'loss/eval',
  'loss/reward',
  'rewards/accuracy',
  'eval/rewards/oracle_accuracy',
  'loss/dpo',
  'rewards/accuracies',
  'objective/kl',
  'objective/scores',
  'oracle/score',
  'eval/oracle/score',
  'preferences/judgments',
];

/**
 * Pipeline callbacks that report to the extension host (when forked) and to the terminal: log lines
 * on stderr and a progress bar per stage.
 */
export function reportingCallbacks(host: HostChannel | undefined): {
  callbacks: PipelineCallbacks;
  log: (level: LogLevel, message: string) => void;
} {
  const log = (level: LogLevel, message: string) => {
    if (host) void host.send({ type: 'run/log', level, message });
    process.stderr.write(`${level === 'info' ? '' : `${level}: `}${message}\n`);
  };
  let bar: ProgressBar | undefined;
  const callbacks: PipelineCallbacks = {
    log,
    shouldStop: () => stopRequested,
    onStageStart: ({ runId, runDir, stage, backend, engine, maxSteps }) => {
      const adapter = backend.adapter ? ` (adapter ${backend.adapter.line})` : '';
      log('info', `${stage}: run ${runId} in ${runDir} on engine ${engine.name}, backend ${backend.name}${adapter}`);
      if (host)
        void host.send({
          type: 'run/started',
          runId,
          runDir,
          stage,
          backend: backend.name,
          backendReason: backend.reason,
          ...(backend.adapter ? { backendAdapter: backend.adapter.label } : {}),
          engine: engine.name,
          engineReason: engine.reason,
          maxSteps,
        });
      if (!host) bar = new ProgressBar(stage, maxSteps);
    },
    onStep: (runId, metrics, maxSteps) => {
      if (host) void host.send({ type: 'run/metrics', runId, step: metrics.step, maxSteps, metrics });
      const parts = headlineMetrics
        .filter((key) => key in metrics)
        .slice(0, 4)
        .map((key) => `${key} ${Math.abs(metrics[key]) >= 100 ? metrics[key].toFixed(0) : metrics[key].toFixed(3)}`);
      bar?.update(metrics.step, parts.join(' · '), maxSteps);
    },
    onStageEnd: ({ runId, result, error }) => {
      bar?.finish(
        result
          ? `(${result.status}${result.outputs.checkpoint ? `, checkpoint ${result.outputs.checkpoint}` : ''})`
          : '(failed)',
      );
      bar = undefined;
      if (host)
        void host.send({
          type: 'run/finished',
          runId,
          status: result ? result.status : 'failed',
          checkpoint: result?.outputs.checkpoint,
        });
      if (error && host) void host.send({ type: 'run/error', message: error.message, detail: error.stack });
    },
  };
  return { callbacks, log };
}

/** Set by Slurm's early signal (USR1, before the time limit): stop, checkpoint, and exit for a requeue. */
let stopForRequeue = false;

/** Under `--submission` (a Slurm job): USR1 stops the run like Stop does, and the job then requeues itself. */
function handleSlurmSignal(log: (level: LogLevel, message: string) => void): void {
  process.on('SIGUSR1', () => {
    stopForRequeue = true;
    stopRequested = true;
    log('info', 'Slurm signalled the job (time limit or preemption near): stopping after this step to requeue');
  });
}

/** The run a Slurm job continues (its submission's, when the job was started before), and what run.json records. */
function slurmStart(
  submissionOption: string,
  runsDir: string | undefined,
  sweepIndex: number | undefined,
  log: (level: LogLevel, message: string) => void,
): { resumeDir: string | undefined; runJsonExtras: RunJsonExtras } {
  if (runsDir === undefined) throw new UsageError('--submission needs --runs-dir', trainUsage);
  const submission = path.resolve(submissionOption);
  const resumeDir = submissionRun(runsDir, submission, sweepIndex);
  if (resumeDir) log('info', `the job was started again: resuming ${resumeDir}`);
  const slurm = slurmRunRecord(submission);
  return { resumeDir, runJsonExtras: slurm ? { slurm } : {} };
}

async function train(args: string[], host: HostChannel | undefined): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    {
      'runs-dir': { type: 'string' },
      resume: { type: 'string' },
      submission: { type: 'string' },
      'sweep-index': { type: 'string' },
    },
    trainUsage,
    { min: 0, max: 1 },
  );
  if ((positionals.length === 0) === (values.resume === undefined))
    throw new UsageError(
      positionals.length === 0
        ? 'give a config file or --resume <run-dir>'
        : 'give a config file or --resume, not both',
      trainUsage,
    );
  const sweepIndex =
    values['sweep-index'] === undefined
      ? undefined
      : numberOption('sweep-index', values['sweep-index'], 'non-negative integer');
  if (values.resume !== undefined && (sweepIndex !== undefined || values.submission !== undefined))
    throw new UsageError('--sweep-index and --submission go with a config file, not --resume', trainUsage);
  training = true;
  handleSignals();
  const { callbacks, log } = reportingCallbacks(host);
  const runsRoot = values['runs-dir'] === undefined ? undefined : path.resolve(values['runs-dir']);
  let resumeDir = values.resume;
  let runJsonExtras: RunJsonExtras = {};
  if (values.submission !== undefined) {
    handleSlurmSignal(log);
    ({ resumeDir, runJsonExtras } = slurmStart(values.submission, runsRoot, sweepIndex, log));
  }
  // Without --runs-dir the pipeline picks the folder: a resumed run's own, else .rlhf/runs.
  try {
    const result = await runPipeline(
      {
        configFile: resumeDir === undefined ? positionals[0] : undefined,
        resumeDir,
        runsRoot,
        sweepIndex: resumeDir === undefined ? sweepIndex : undefined,
        runJsonExtras,
      },
      callbacks,
    );
    // No stage ran: the pipeline has said why (a finished pipeline has nothing to resume).
    if (result.runs.length > 0)
      log(
        'info',
        result.stopped
          ? `stopped; resume with: rlhf-lens train --resume ${result.runs.at(-1)?.runDir}`
          : `finished ${result.runs.length} stage${result.runs.length === 1 ? '' : 's'}`,
      );
    return result.stopped && stopForRequeue ? requeueExitStatus : 0;
  } finally {
    training = false;
  }
}

async function demo(args: string[], host: HostChannel | undefined): Promise<number> {
  // Checked here so `demo --help` and a wrong option get the usage; runDemo parses the same options.
  parseCommandArgs(
    args,
    { quick: { type: 'boolean' }, seed: { type: 'string' }, 'runs-dir': { type: 'string' }, out: { type: 'string' } },
    demoUsage,
    { min: 0, max: 0 },
  );
  training = true;
  handleSignals();
  try {
    return await runDemo(args, () => reportingCallbacks(host).callbacks);
  } finally {
    training = false;
  }
}

const host = connectToHost();

async function main(argv: string[]): Promise<number> {
  listen(host);
  if (host) await host.send({ type: 'trainer/ready', pid: process.pid, nodeVersion: process.version });
  const [command, ...rest] = argv;
  switch (command) {
    case 'train':
      return train(rest, host);
    case 'export':
      return exportCommand(rest);
    case 'inspect':
      // Imported on demand: it loads onnxruntime's native binding, which other commands never need.
      return (await import('./onnx/inspectRun')).inspectCommand(rest);
    case 'sample':
      return sampleFromCheckpoint(rest);
    case 'demo':
      return demo(rest, host);
    case 'submit':
      return submitCommand(rest);
    case undefined:
      if (host) return new Promise<number>(() => undefined); // serve control messages until stopped
      throw new UsageError('no command given', usage);
    case '--help':
    case '-h':
    case 'help':
      throw new HelpRequested(usage);
    default:
      throw new UsageError(`unknown command ${quote(command)}`, usage);
  }
}

/**
 * Ends the process without losing output: the exit status is set, the host (when forked) is told and
 * the channel closed, stdout and stderr are flushed, and the process ends by itself. Native or wasm
 * backends may keep handles alive (thread pools); once everything is written, exiting is safe, so an
 * unref'd timer ends such a process shortly after.
 */
async function finish(code: number): Promise<void> {
  ending = true;
  process.exitCode = code;
  if (host) {
    await host.send({ type: 'trainer/exit', code, reason: code === 0 ? 'finished' : 'failed' }).catch(() => undefined);
    if (process.connected) process.disconnect();
  }
  await Promise.all([writeFully(process.stdout, ''), writeFully(process.stderr, '')]);
  setTimeout(() => process.exit(code), 500).unref();
}

/** `--debug` anywhere before `--`: print stacks (the same as RLHF_LENS_DEBUG=1, which child code reads). */
function takeDebugFlag(argv: string[]): string[] {
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const kept = argv.filter((arg, i) => i >= end || arg !== '--debug');
  if (kept.length !== argv.length) process.env.RLHF_LENS_DEBUG = '1';
  return kept;
}

main(takeDebugFlag(process.argv.slice(2)))
  .catch((error: unknown) => reportError(error))
  .then(finish, () => finish(1));
