/**
 * The "Runs" view in the RLHF container: one item per run with a status icon and its start time;
 * a run.json that cannot be read shows as an item naming the file and the problem.
 */
import * as vscode from 'vscode';
import type { RunReadProblem, RunStatus, RunSummary } from '../shared/runSummary';
import type { WorkspaceRuns } from './workspaceRuns';

type RunsTreeItem = { readonly kind: 'run'; readonly run: RunSummary } | { readonly kind: 'problem'; readonly problem: RunReadProblem };

const statusIcons: Record<RunStatus, vscode.ThemeIcon> = {
  created: new vscode.ThemeIcon('circle-outline'),
  running: new vscode.ThemeIcon('sync~spin'),
  completed: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  stopped: new vscode.ThemeIcon('debug-stop'),
};

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsTreeItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly runs: WorkspaceRuns) {
    this.subscription = runs.onDidChange(() => this.changed.fire());
  }

  async getChildren(element?: RunsTreeItem): Promise<RunsTreeItem[]> {
    if (element) return [];
    const listing = await this.runs.list();
    return [
      ...listing.runs.map((run): RunsTreeItem => ({ kind: 'run', run })),
      ...listing.problems.map((problem): RunsTreeItem => ({ kind: 'problem', problem })),
    ];
  }

  getTreeItem(element: RunsTreeItem): vscode.TreeItem {
    if (element.kind === 'problem') {
      const item = new vscode.TreeItem(vscode.workspace.asRelativePath(element.problem.file));
      item.description = element.problem.message;
      item.tooltip = `${element.problem.file}: ${element.problem.message}`;
      item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
      item.command = { command: 'vscode.open', title: 'Open run.json', arguments: [vscode.Uri.file(element.problem.file)] };
      return item;
    }
    const { run } = element;
    const item = new vscode.TreeItem(run.name);
    item.id = run.id;
    item.description = `${run.status} · ${new Date(run.startedAt).toLocaleString()}`;
    item.tooltip = new vscode.MarkdownString(
      [`**${run.name}** (${run.id})`, `Status: ${run.status}`, `Started: ${run.startedAt}`, run.backend ? `Backend: ${run.backend}` : '', run.error ? `Error: ${run.error}` : '']
        .filter(Boolean)
        .join('\n\n'),
    );
    item.iconPath = statusIcons[run.status];
    item.contextValue = `run.${run.status}`;
    item.command = { command: 'rlhf.openDashboard', title: 'Open Dashboard' };
    return item;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
