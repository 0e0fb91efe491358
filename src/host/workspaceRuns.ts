/**
 * The runs of the open workspace: where they live, the current listing, and a change event fed by a
 * file watcher on `<run-id>/run.json`, shared by the Runs view and the dashboard.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { defaultRunsFolder, listRuns, type RunsListing } from '../shared/runsFolder';

export class WorkspaceRuns implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private debounce: NodeJS.Timeout | undefined;

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher(`**/${defaultRunsFolder.split(path.sep).join('/')}/*/run.json`);
    const fire = () => {
      // Trainers rewrite run.json on every status change; one refresh per burst is enough.
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.changed.fire(), 100);
    };
    this.disposables.push(
      watcher,
      watcher.onDidCreate(fire),
      watcher.onDidChange(fire),
      watcher.onDidDelete(fire),
      vscode.workspace.onDidChangeWorkspaceFolders(fire),
    );
  }

  /** The runs folder of the first workspace folder, or undefined when no folder is open. */
  get folder(): string | undefined {
    const root = vscode.workspace.workspaceFolders?.[0];
    return root ? path.join(root.uri.fsPath, defaultRunsFolder) : undefined;
  }

  async list(): Promise<RunsListing> {
    const folder = this.folder;
    return folder ? listRuns(folder) : { runs: [], problems: [] };
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    clearTimeout(this.debounce);
    for (const disposable of this.disposables) disposable.dispose();
  }
}
