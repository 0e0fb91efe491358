/**
 * CodeLens at the top of every `*.rlhf.json`: "Start run", "Validate", and "Open last run" once a run
 * of this config exists (run.json records the config it was started from).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readRunDetails } from '../shared/runDetails';
import { launchesOnSlurm } from './cluster/submitProcess';
import type { WorkspaceRuns } from './workspaceRuns';

/** The newest run directory started from `configFile`, if any. */
export async function lastRunOf(runs: WorkspaceRuns, configFile: string): Promise<string | undefined> {
  const folder = runs.folder;
  if (!folder) return undefined;
  const listing = await runs.list(); // newest first
  for (const run of listing.runs) {
    const runDir = path.join(folder, run.id);
    const details = await readRunDetails(runDir);
    if (details.configFile && path.resolve(details.configFile) === path.resolve(configFile)) return runDir;
  }
  return undefined;
}

export class ConfigCodeLens implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly runs: WorkspaceRuns) {
    this.subscription = runs.onDidChange(() => this.changed.fire());
  }

  async provideCodeLenses(document: vscode.TextDocument): Promise<vscode.CodeLens[]> {
    const top = new vscode.Range(0, 0, 0, 0);
    const lenses = [
      new vscode.CodeLens(top, {
        title: '$(play) Start run',
        command: 'rlhf.startRun',
        arguments: [document.uri],
        tooltip: 'Train this config in a child process (RLHF: Start Run)',
      }),
      new vscode.CodeLens(top, {
        title: '$(check) Validate',
        command: 'rlhf.validateConfig',
        arguments: [document.uri],
        tooltip: 'Check this config: schema, stage references, files it names',
      }),
    ];
    if (launchesOnSlurm(document.getText()))
      lenses.splice(
        1,
        0,
        new vscode.CodeLens(top, {
          title: '$(cloud-upload) Submit to cluster',
          command: 'rlhf.submitRun',
          arguments: [document.uri],
          tooltip: 'Submit this config to Slurm with sbatch (RLHF: Submit Run to Cluster)',
        }),
      );
    const last = await lastRunOf(this.runs, document.uri.fsPath);
    if (last)
      lenses.push(
        new vscode.CodeLens(top, {
          title: `$(graph) Open last run (${path.basename(last)})`,
          command: 'rlhf.openDashboard',
          arguments: [last],
          tooltip: 'Open the dashboard on the newest run of this config',
        }),
      );
    return lenses;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
