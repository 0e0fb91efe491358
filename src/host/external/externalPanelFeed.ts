/**
 * What a dashboard panel open on an external run sends its webview: the header, every metric point (again from
 * the start whenever the engine's metric files change: they are rewritten, not appended), the steps with
 * rollouts, the requested step's packed rows, a prompt's history and the problems met while reading. It follows
 * the folder live: a change to the shown step's file sends that step again. No `vscode` (the log is an interface).
 */
import * as path from 'node:path';
import type { MetricPoint, PromptHistoryEntry, ToDashboardMessage } from '../../shared/protocol';
import { promptEntries } from '../runData';
import type { ExternalRunSource } from './externalRun';
import type { ExternalRunChange, ExternalRunWatcher } from './externalWatcher';

export interface FeedLog {
  warn(message: string): void;
  error(message: string): void;
}

export class ExternalPanelFeed {
  private readonly watcher: ExternalRunWatcher;
  /** The step the webview asked for last: sent again when its rows change. */
  private shownStep: number | undefined;
  /** Sends are chained so a burst of changes never interleaves its messages. */
  private sending = Promise.resolve();

  constructor(
    readonly source: ExternalRunSource,
    private readonly post: (message: ToDashboardMessage) => void,
    private readonly log: FeedLog,
  ) {
    this.watcher = source.watch();
    this.watcher.onDidChange((change) => this.chain(() => this.onChange(change)));
  }

  private chain(send: () => Promise<void>): Promise<void> {
    this.sending = this.sending.then(send).catch((error: Error) => this.log.error(error.message));
    return this.sending;
  }

  /** Everything, after the webview's handshake (it may have reloaded). */
  sendAll(): Promise<void> {
    return this.chain(async () => {
      // Read first (the header says what the folder lacks), then header, metrics and steps, as for a native run.
      const points = await this.source.readMetrics();
      const steps = await this.source.listSteps();
      await this.sendRun();
      this.postMetrics(points);
      this.postSteps(steps);
      this.sendProblems();
    });
  }

  private async onChange(change: ExternalRunChange): Promise<void> {
    if (change.metrics) await this.sendMetrics();
    if (change.steps === 'all' || change.steps.length > 0) {
      await this.sendSteps();
      const shown = this.shownStep;
      if (shown !== undefined && (change.steps === 'all' || change.steps.includes(shown)))
        await this.sendTraceNow(shown);
    }
    // The header's status and what is not logged follow what the folder now holds.
    await this.sendRun();
    this.sendProblems();
  }

  private async sendRun(): Promise<void> {
    this.post({ type: 'dashboard/run', run: await this.source.runInfo() });
  }

  private async sendMetrics(): Promise<void> {
    this.postMetrics(await this.source.readMetrics());
  }

  private postMetrics(points: MetricPoint[]): void {
    const runId = path.basename(this.source.folder);
    this.post({ type: 'dashboard/metrics', runId, runName: runId, reset: true, points });
  }

  private async sendSteps(): Promise<void> {
    this.postSteps(await this.source.listSteps());
  }

  private postSteps(steps: number[]): void {
    this.post({ type: 'dashboard/steps', steps, traceKind: steps.length > 0 ? 'ppo' : null });
  }

  sendTrace(step: number): Promise<void> {
    this.shownStep = step;
    return this.chain(() => this.sendTraceNow(step));
  }

  private async sendTraceNow(step: number): Promise<void> {
    try {
      this.post({ type: 'dashboard/trace', trace: await this.source.packed(step) });
    } catch (error) {
      this.post({ type: 'dashboard/traceError', step, message: (error as Error).message });
    }
    this.sendProblems();
  }

  /** Every response to `prompt` at the steps with rollouts, in step order. */
  promptHistory(prompt: string): Promise<void> {
    return this.chain(async () => {
      const entries: PromptHistoryEntry[] = [];
      for (const step of await this.source.listSteps()) {
        const table = await this.source.readStep(step).then(
          (imported) => imported.table,
          () => undefined, // an unreadable step is reported when it is opened
        );
        if (table) entries.push(...promptEntries(step, table, prompt));
      }
      this.post({ type: 'dashboard/promptHistory', prompt, entries });
      this.sendProblems();
    });
  }

  /** The problems met since the last send: to the log, and to the webview's header. */
  private sendProblems(): void {
    const problems = this.source.problems.splice(0);
    if (problems.length === 0) return;
    for (const problem of problems) this.log.warn(`Skipped while reading ${this.source.folder}: ${problem}`);
    this.post({ type: 'dashboard/problems', problems });
  }

  dispose(): void {
    this.watcher.dispose();
  }
}
