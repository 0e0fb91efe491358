/**
 * The runs of the open workspace: where they live (`rlhf.runsFolder`), the current listing, and a
 * change event fed by file watchers on every run's `run.json` and `metrics.jsonl`, shared by the Runs
 * view, the CodeLens and the dashboard.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { runDirInside } from '../shared/runIds';
import { listRuns, type RunsListing } from '../shared/runsFolder';
import { runsFolderOf } from './lensSettings';

/** Trainers append a metrics line per step: refresh at most this often while they do. */
const refreshIntervalMs = 500;

export class WorkspaceRuns implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private watchers: vscode.Disposable[] = [];
  private pending: NodeJS.Timeout | undefined;
  private lastFired = 0;

  constructor() {
    this.watch();
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        this.watch();
        this.fire();
      }),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration('rlhf.runsFolder')) return;
        this.watch();
        this.fire();
      }),
    );
  }

  private watch(): void {
    for (const watcher of this.watchers) watcher.dispose();
    this.watchers = [];
    const root = vscode.workspace.workspaceFolders?.[0];
    const folder = this.folder;
    if (!root || !folder) return;
    // Patterns relative to the workspace folder, which exists, so VS Code's workspace watcher serves
    // them even before the first run creates the runs folder.
    const runs = path.relative(root.uri.fsPath, folder).split(path.sep).join('/');
    const watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(root, `${runs}/*/{run.json,metrics.jsonl}`),
    );
    // A deleted run folder sends no event for its files on every platform: watch the folders too.
    const folders = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(root, `${runs}/*`),
      false,
      true,
      false,
    );
    const fire = () => this.fire();
    this.watchers.push(
      watcher,
      folders,
      watcher.onDidCreate(fire),
      watcher.onDidChange(fire),
      watcher.onDidDelete(fire),
      folders.onDidCreate(fire),
      folders.onDidDelete(fire),
    );
  }

  /** One refresh per burst, and at least one every interval while a trainer keeps writing. */
  private fire(): void {
    if (this.pending) return;
    const wait = Math.max(50, refreshIntervalMs - (Date.now() - this.lastFired));
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.lastFired = Date.now();
      this.changed.fire();
    }, wait);
  }

  /** The runs folder of the first workspace folder, or undefined when no folder is open. */
  get folder(): string | undefined {
    const root = vscode.workspace.workspaceFolders?.[0];
    return root ? runsFolderOf(root.uri.fsPath).folder : undefined;
  }

  /** The directory of a run id in the runs folder; undefined for an id that would leave it (`..`, a path, NUL). */
  runDir(runId: string): string | undefined {
    const folder = this.folder;
    if (!folder) return undefined;
    try {
      return runDirInside(folder, runId);
    } catch {
      return undefined;
    }
  }

  async list(): Promise<RunsListing> {
    const folder = this.folder;
    return folder ? listRuns(folder) : { runs: [], problems: [] };
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    clearTimeout(this.pending);
    for (const disposable of [...this.watchers, ...this.disposables]) disposable.dispose();
  }
}
