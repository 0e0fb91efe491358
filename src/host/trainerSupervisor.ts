/**
 * Starts trainer processes and watches them: a crash (non-zero exit or a signal) is reported with its
 * code or signal through `onDidCrash`, the rest of the extension keeps working, and `dispose` stops
 * every trainer still running. Free of `vscode`; `extension.ts` turns crashes into notifications.
 */
import { Listeners, type Listener } from './listeners';
import { TrainerProcess, type TrainerExit, type TrainerStartOptions } from './trainerProcess';
import { UntrustedWorkspaceError } from './workspaceTrust';

export class TrainerSupervisor {
  private readonly running = new Set<TrainerProcess>();
  private readonly crashListeners = new Listeners<TrainerExit>();
  private readonly exitListeners = new Listeners<TrainerExit>();
  private disposed = false;

  /** `isTrusted`: the workspace's trust, asked at every start (the extension passes `workspace.isTrusted`). */
  constructor(
    private readonly defaultModulePath: string,
    private readonly isTrusted: () => boolean = () => true,
  ) {}

  /** Starts a trainer; throws UntrustedWorkspaceError in an untrusted workspace, whoever asks. */
  start(options: Omit<TrainerStartOptions, 'modulePath'> & { modulePath?: string }): TrainerProcess {
    if (this.disposed) throw new Error('RLHF Lens is shutting down; no trainer can start now.');
    if (!this.isTrusted()) throw new UntrustedWorkspaceError(options.label);
    const trainer = new TrainerProcess({ ...options, modulePath: options.modulePath ?? this.defaultModulePath });
    this.running.add(trainer);
    void trainer.exited.then((exit) => {
      this.running.delete(trainer);
      this.exitListeners.fire(exit);
      if (exit.crashed) this.crashListeners.fire(exit);
    });
    return trainer;
  }

  get trainers(): readonly TrainerProcess[] {
    return [...this.running];
  }

  onDidCrash(listener: Listener<TrainerExit>): () => void {
    return this.crashListeners.add(listener);
  }

  onDidExit(listener: Listener<TrainerExit>): () => void {
    return this.exitListeners.add(listener);
  }

  /** Stops every running trainer: a graceful stop first, a hard kill after `timeoutMs`. */
  async stopAll(timeoutMs = 5_000): Promise<TrainerExit[]> {
    return Promise.all([...this.running].map((trainer) => trainer.stop(timeoutMs)));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stopAll();
    this.crashListeners.clear();
    this.exitListeners.clear();
  }
}
