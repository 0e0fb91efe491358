/**
 * Starts, stops and resumes training runs from the editor: one trainer process per run (the same
 * `rlhf-lens train` entry as the CLI), up to `rlhf.maxConcurrentRuns` at once. Each run gets a
 * cancellable progress notification, its log in the RLHF Lens log channel, and its progress in the
 * status bar. Refuses to start in an untrusted workspace, or from a config with errors.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { configFileChecks, readConfigText } from '../shared/configFile';
import { assertNever, type LogLevel, type TrainerToHostMessage } from '../shared/protocol';
import { FileFormatError, parseJsonText, runJsonProblems } from '../shared/runFiles';
import { isRunDirInside } from '../shared/runIds';
import { defaultBackend, defaultEngine, maxConcurrentRuns } from './lensSettings';
import type { TrainerProcess } from './trainerProcess';
import type { TrainerSupervisor } from './trainerSupervisor';
import { RunStatusBar, type RunProgress } from './runStatusBar';
import type { WorkspaceRuns } from './workspaceRuns';
import { trustExplanation } from './workspaceTrust';

/** A trainer this window started, and what it reported so far. */
export interface ActiveRun {
  readonly trainer: TrainerProcess;
  readonly label: string;
  /** The config file, or for a resumed run the run directory it continues. */
  readonly source: string;
  /** Stages the trainer will run (known for a config; a resumed run counts from its stage). */
  readonly stageCount: number;
  stagesStarted: number;
  /** The run id and directory of the stage training now. */
  runId?: string;
  runDir?: string;
  progress?: RunProgress;
  reportProgress?: (message: string, fraction: number) => void;
}

export class RunController implements vscode.Disposable {
  private readonly active = new Set<ActiveRun>();
  private readonly statusBar = new RunStatusBar();
  private readonly finished = new vscode.EventEmitter<{ runId: string; status: string }>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when a stage of a run finishes (completed, stopped or failed). */
  readonly onDidFinishStage = this.finished.event;
  /** Fires when a run starts, makes progress, or its trainer exits. */
  readonly onDidChange = this.changed.event;
  /** Why the last start or resume was refused, for tests and the log. */
  lastRefusal: string | undefined;

  constructor(
    private readonly supervisor: TrainerSupervisor,
    private readonly runs: WorkspaceRuns,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get statusText(): string | undefined {
    return this.statusBar.text;
  }

  get running(): number {
    return this.active.size;
  }

  get activeRuns(): readonly ActiveRun[] {
    return [...this.active];
  }

  /** The active run training `runId` (a run directory's name), if this window runs it. */
  activeRun(runId: string): ActiveRun | undefined {
    return [...this.active].find((run) => run.runId === runId);
  }

  private refuse(
    message: string,
    show: (message: string, ...items: string[]) => Thenable<string | undefined> = vscode.window.showWarningMessage,
  ): undefined {
    this.lastRefusal = message;
    this.log.warn(message);
    void show(message);
    return undefined;
  }

  /** Checks what every start needs; returns the runs folder, or undefined after telling the user why not. */
  private canStart(): string | undefined {
    if (!vscode.workspace.isTrusted) return this.refuse(trustExplanation('starts training'));
    const runsFolder = this.runs.folder;
    if (!runsFolder)
      return this.refuse(
        'Open a folder first: runs are written to its .rlhf/runs folder.',
        vscode.window.showErrorMessage,
      );
    const limit = maxConcurrentRuns();
    if (this.active.size >= limit) {
      return this.refuse(
        `${this.active.size} run${this.active.size === 1 ? ' is' : 's are'} training already, the limit of ` +
          `rlhf.maxConcurrentRuns (${limit}). Stop one, or raise the setting.`,
      );
    }
    return runsFolder;
  }

  /** Starts `rlhf-lens train <configFile>`; resolves once the trainer process is ready. */
  async start(configFile: string): Promise<TrainerProcess | undefined> {
    const runsFolder = this.canStart();
    if (!runsFolder) return undefined;
    const label = path.basename(configFile).replace(/\.rlhf\.json$/, '');
    if ([...this.active].some((run) => run.source === configFile))
      return this.refuse(`"${label}" is training already; stop it before starting it again.`);
    // The same checks as the editor's diagnostics: a config with errors never reaches a trainer.
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (error) {
      return this.refuse(`Cannot read ${configFile}: ${(error as Error).message}`, vscode.window.showErrorMessage);
    }
    const { config, problems } = readConfigText(text, configFileChecks(configFile));
    if (!config) {
      const errors = problems.filter((problem) => problem.severity === 'error');
      const first = errors[0];
      const errorCount = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
      const firstError = first
        ? `, the first on line ${first.line}: ${first.path.length ? `${first.path.at(-1)} ` : ''}${first.message}`
        : '';
      const message = `"${label}" was not started: the config has ${errorCount}${firstError}. See the Problems panel.`;
      this.lastRefusal = message;
      this.log.warn(message);
      void vscode.window
        .showErrorMessage(message, 'Show Problems')
        .then((choice) => choice && vscode.commands.executeCommand('workbench.actions.view.problems'));
      return undefined;
    }
    return this.launch({
      label,
      source: configFile,
      stageCount: config.stages.length,
      args: ['train', configFile, '--runs-dir', runsFolder],
      cwd: path.dirname(runsFolder),
    });
  }

  /** Continues a stopped, failed or killed run from its last checkpoint (`rlhf-lens train --resume`). */
  async resume(runDir: string): Promise<TrainerProcess | undefined> {
    const runsFolder = this.canStart();
    if (!runsFolder) return undefined;
    const runId = path.basename(runDir);
    if (this.activeRun(runId)) return this.refuse(`Run ${runId} is training already.`);
    if (!isRunDirInside(runsFolder, runDir))
      return this.refuse(
        `${runDir} is not a run in this workspace's runs folder ${runsFolder}; nothing was resumed.`,
        vscode.window.showErrorMessage,
      );
    let runJson: { name?: string; status?: string; stage_index?: number; config?: { stages?: unknown[] } };
    const runJsonFile = path.join(runDir, 'run.json');
    try {
      // The run.json validator every reader shares; the trainer adds its resume checks (stage, stored config).
      const value = parseJsonText(readFileSync(runJsonFile, 'utf8'), runJsonFile);
      const problems = runJsonProblems(value);
      if (problems.length > 0) throw new FileFormatError(runJsonFile, problems);
      runJson = value as typeof runJson;
    } catch (error) {
      return this.refuse(`Cannot resume ${runDir}: ${(error as Error).message}`, vscode.window.showErrorMessage);
    }
    // A completed stage resumes into the next one (killed between stages); only the last has nothing left.
    const stagesLeft =
      (runJson.config?.stages?.length ?? 1) - (runJson.stage_index ?? 0) - (runJson.status === 'completed' ? 1 : 0);
    if (stagesLeft <= 0)
      return this.refuse(
        `Run ${runId} is completed; there is nothing to resume.`,
        vscode.window.showInformationMessage,
      );
    const stageCount = stagesLeft;
    return this.launch({
      label: runJson.name ?? runId,
      source: runDir,
      stageCount,
      args: ['train', '--resume', runDir, '--runs-dir', runsFolder],
      cwd: path.dirname(runsFolder),
    });
  }

  private async launch(options: {
    label: string;
    source: string;
    stageCount: number;
    args: string[];
    cwd: string;
  }): Promise<TrainerProcess> {
    const backend = defaultBackend();
    const engine = defaultEngine();
    // A config's "auto" backend and engine follow the rlhf.defaultBackend and rlhf.defaultEngine
    // settings; pinned ones stay pinned.
    const env = {
      ...process.env,
      ...(backend === 'auto' ? {} : { RLHF_LENS_BACKEND: backend }),
      ...(engine === 'auto' ? {} : { RLHF_LENS_ENGINE: engine }),
    };
    const trainer = this.supervisor.start({ label: options.label, args: options.args, cwd: options.cwd, env });
    const run: ActiveRun = {
      trainer,
      label: options.label,
      source: options.source,
      stageCount: options.stageCount,
      stagesStarted: 0,
    };
    this.active.add(run);
    this.lastRefusal = undefined;
    this.log.info(`[${run.label}] rlhf-lens ${options.args.join(' ')} (trainer pid ${trainer.pid})`);
    // Log lines arrive as run/log messages with their level; the raw stderr (which repeats them, and
    // holds anything a crash prints) goes to the trace level.
    trainer.onOutput((line) => this.log.trace(`[${run.label}] ${line}`));
    trainer.onMessage((message) => this.handle(run, message));
    this.showProgress(run);
    void trainer.exited.then((exit) => {
      this.active.delete(run);
      this.render();
      this.changed.fire();
      if (exit.requested && exit.signal) {
        // Asked to stop, it did not finish its step in time: the last checkpoint is what resumes.
        void vscode.window.showWarningMessage(
          `Run "${run.label}" did not stop within 30 s and was killed; Resume Run continues from its last checkpoint.`,
        );
      } else if (!exit.crashed && exit.code !== 0) {
        if (exit.stderrTail) this.log.error(`[${run.label}] ${exit.description}. Its last output:\n${exit.stderrTail}`);
        void vscode.window
          .showErrorMessage(`Run "${run.label}" failed: ${this.lastError.get(trainer) ?? exit.description}`, 'Show Log')
          .then((choice) => choice && this.log.show());
      }
      this.runs.refresh();
    });
    this.changed.fire();
    await trainer.ready.catch(() => undefined);
    return trainer;
  }

  /** A notification with the run's progress; its Cancel button stops the run (checkpoint first). */
  private showProgress(run: ActiveRun): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `RLHF ${run.label}`, cancellable: true },
      (progress, token) => {
        let reported = 0;
        run.reportProgress = (message, fraction) => {
          const percent = Math.min(100, Math.max(0, fraction * 100));
          progress.report({ message, increment: Math.max(0, percent - reported) });
          reported = Math.max(reported, percent);
        };
        token.onCancellationRequested(() => {
          this.log.info(`[${run.label}] stop requested from the progress notification`);
          void run.trainer.stop(30_000);
        });
        return run.trainer.exited;
      },
    );
  }

  private readonly lastError = new WeakMap<TrainerProcess, string>();

  private handle(run: ActiveRun, message: TrainerToHostMessage): void {
    const { label } = run;
    switch (message.type) {
      case 'run/started':
        run.stagesStarted++;
        run.runId = message.runId;
        run.runDir = message.runDir;
        run.progress = {
          runId: message.runId,
          label,
          stage: message.stage,
          backend: message.backend,
          backendReason: message.backendReason,
          backendAdapter: message.backendAdapter,
          engine: message.engine,
          engineReason: message.engineReason,
          step: 0,
          maxSteps: message.maxSteps,
          startedAt: Date.now(),
          firstStep: 0,
        };
        this.log.info(
          `[${label}] ${message.stage} → ${message.runDir} on engine ${message.engine} (${message.engineReason}), ` +
            `backend ${message.backend} (${message.backendReason})`,
        );
        run.reportProgress?.(`${message.stage} starting`, (run.stagesStarted - 1) / run.stageCount);
        this.runs.refresh();
        break;
      case 'run/metrics':
        if (run.progress) {
          const first =
            run.progress.step === 0 && run.progress.firstStep === 0 ? message.step - 1 : run.progress.firstStep;
          run.progress = { ...run.progress, step: message.step, maxSteps: message.maxSteps, firstStep: first };
          const stageFraction = message.maxSteps > 0 ? message.step / message.maxSteps : 0;
          run.reportProgress?.(
            `${run.progress.stage} ${message.step}/${message.maxSteps}`,
            (run.stagesStarted - 1 + stageFraction) / run.stageCount,
          );
        }
        break;
      case 'run/finished':
        this.log.info(
          `[${label}] ${message.runId} ` +
            `${message.status}${message.checkpoint ? ` (checkpoint ${message.checkpoint})` : ''}`,
        );
        this.finished.fire({ runId: message.runId, status: message.status });
        this.runs.refresh();
        break;
      case 'run/error':
        this.lastError.set(run.trainer, message.message);
        this.log.error(`[${label}] ${message.message}`);
        break;
      case 'run/log':
        logAt(this.log, message.level, `[${label}] ${message.message}`);
        break;
      case 'trainer/ready':
      case 'trainer/pong':
      case 'trainer/exit':
      case 'sample/result':
      case 'sample/error':
        // The supervisor's business, or the sampler's.
        break;
      default:
        assertNever(message, 'run controller');
    }
    this.render();
    this.changed.fire();
  }

  private render(): void {
    this.statusBar.render([...this.active].flatMap((run) => (run.progress ? [run.progress] : [])));
  }

  /** Asks one run's trainer to finish its step, checkpoint and exit; false when this window does not run it. */
  async stop(runId: string): Promise<boolean> {
    const run = this.activeRun(runId);
    if (!run) return false;
    await run.trainer.stop(30_000);
    return true;
  }

  /** Asks every running trainer to finish its step, checkpoint and exit. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.active].map((run) => run.trainer.stop(30_000)));
  }

  dispose(): void {
    this.statusBar.dispose();
    this.finished.dispose();
    this.changed.dispose();
  }
}

function logAt(log: vscode.LogOutputChannel, level: LogLevel, line: string): void {
  switch (level) {
    case 'debug':
      return log.debug(line);
    case 'info':
      return log.info(line);
    case 'warn':
      return log.warn(line);
    case 'error':
      return log.error(line);
    default:
      assertNever(level, 'log level');
  }
}
