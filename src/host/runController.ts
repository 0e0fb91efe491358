/**
 * Starts and stops training runs from the editor: one trainer process per run (the same
 * `rlhf-lens train` entry as the CLI), its log in the RLHF Lens output channel, its progress in the
 * status bar. Refuses to start in an untrusted workspace.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { assertNever, type TrainerToHostMessage } from '../shared/protocol';
import type { TrainerProcess } from './trainerProcess';
import type { TrainerSupervisor } from './trainerSupervisor';
import { RunStatusBar, type RunProgress } from './runStatusBar';
import type { WorkspaceRuns } from './workspaceRuns';

interface ActiveRun {
  readonly trainer: TrainerProcess;
  readonly configFile: string;
  progress?: RunProgress;
}

export class RunController implements vscode.Disposable {
  private readonly active = new Set<ActiveRun>();
  private readonly statusBar = new RunStatusBar();
  private readonly finished = new vscode.EventEmitter<{ runId: string; status: string }>();
  /** Fires when a stage of a run finishes (completed, stopped or failed). */
  readonly onDidFinishStage = this.finished.event;

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

  /** Starts `rlhf-lens train <configFile>`; resolves once the trainer process is ready. */
  async start(configFile: string): Promise<TrainerProcess | undefined> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('RLHF Lens trains only in a trusted workspace: a run executes a trainer process on this machine. Trust the workspace (Workspaces: Manage Workspace Trust) to start runs; viewing runs works without it.');
      return undefined;
    }
    const runsFolder = this.runs.folder;
    if (!runsFolder) {
      void vscode.window.showErrorMessage('Open a folder first: runs are written to its .rlhf/runs folder.');
      return undefined;
    }
    const label = path.basename(configFile).replace(/\.rlhf\.json$/, '');
    const trainer = this.supervisor.start({ label, args: ['train', configFile, '--runs-dir', runsFolder], cwd: path.dirname(runsFolder) });
    const run: ActiveRun = { trainer, configFile };
    this.active.add(run);
    this.log.info(`Starting ${configFile} (trainer pid ${trainer.pid})`);
    trainer.onOutput((line) => this.log.info(`[${label}] ${line}`));
    trainer.onMessage((message) => this.handle(run, label, message));
    void trainer.exited.then((exit) => {
      this.active.delete(run);
      this.render();
      if (!exit.crashed && exit.code !== 0) void vscode.window.showErrorMessage(`Run "${label}" failed: ${this.lastError.get(trainer) ?? exit.description}`, 'Show Log').then((choice) => choice && this.log.show());
      this.runs.refresh();
    });
    await trainer.ready.catch(() => undefined);
    return trainer;
  }

  private readonly lastError = new WeakMap<TrainerProcess, string>();

  private handle(run: ActiveRun, label: string, message: TrainerToHostMessage): void {
    switch (message.type) {
      case 'run/started':
        run.progress = { runId: message.runId, label, stage: message.stage, backend: message.backend, backendReason: message.backendReason, step: 0, maxSteps: message.maxSteps, startedAt: Date.now(), firstStep: 0 };
        this.log.info(`[${label}] ${message.stage} → ${message.runDir} on backend ${message.backend} (${message.backendReason})`);
        this.runs.refresh();
        break;
      case 'run/metrics':
        if (run.progress) {
          const first = run.progress.step === 0 && run.progress.firstStep === 0 ? message.step - 1 : run.progress.firstStep;
          run.progress = { ...run.progress, step: message.step, maxSteps: message.maxSteps, firstStep: first };
        }
        break;
      case 'run/finished':
        this.finished.fire({ runId: message.runId, status: message.status });
        this.runs.refresh();
        break;
      case 'run/error':
        this.lastError.set(run.trainer, message.message);
        this.log.error(`[${label}] ${message.message}`);
        break;
      case 'run/log':
      case 'trainer/ready':
      case 'trainer/pong':
      case 'trainer/exit':
        // Logs arrive on stderr too (onOutput); the rest is the supervisor's business.
        break;
      default:
        assertNever(message, 'run controller');
    }
    this.render();
  }

  private render(): void {
    this.statusBar.render([...this.active].flatMap((run) => (run.progress ? [run.progress] : [])));
  }

  /** Asks every running trainer to finish its step, checkpoint and exit. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.active].map((run) => run.trainer.stop(30_000)));
  }

  dispose(): void {
    this.statusBar.dispose();
    this.finished.dispose();
  }
}
