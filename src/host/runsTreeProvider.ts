/**
 * The "Runs" view in the RLHF container: one item per run with a status icon, its stage, step of
 * total and latest key metrics; a run.json that cannot be read shows as an item naming the file and
 * the problem. It follows the runs folder's watcher and the trainers this window runs.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatKeyMetrics, keyMetrics, readRunDetails, type RunDetails } from '../shared/runDetails';
import type { RunReadProblem, RunStatus, RunSummary } from '../shared/runSummary';
import type { ClusterElement } from './cluster/clusterElements';
import type { ClusterRuns, SubmissionListing } from './cluster/clusterRuns';
import { elementTreeItem, submissionTreeItem } from './cluster/clusterTreeItems';
import { openRunFolderCommand } from './external/externalCommands';
import type { ExternalRunItem, ExternalRunList } from './external/externalRunList';
import type { RunController } from './runController';
import type { WorkspaceRuns } from './workspaceRuns';

export type RunsTreeItem =
  | {
      readonly kind: 'run';
      readonly run: RunSummary;
      readonly runDir: string;
      readonly details: RunDetails;
      readonly activeHere: boolean;
    }
  | { readonly kind: 'problem'; readonly problem: RunReadProblem }
  /** The group of run folders of other engines (rlhf.externalRuns, Open Run Folder…). */
  | { readonly kind: 'externalGroup'; readonly items: readonly ExternalRunItem[] }
  | { readonly kind: 'external'; readonly external: ExternalRunItem }
  /** A sweep submitted to Slurm: its elements are its children. */
  | { readonly kind: 'slurmSubmission'; readonly listing: SubmissionListing }
  /** A Slurm job (or array element) with its state (and its output's end when it died before its trainer started). */
  | { readonly kind: 'slurmJob'; readonly element: ClusterElement };

/** The label of the Runs view's group of other engines' runs. */
export const externalGroupLabel = 'Runs of other engines';

const statusIcons: Record<RunStatus, vscode.ThemeIcon> = {
  created: new vscode.ThemeIcon('circle-outline'),
  running: new vscode.ThemeIcon('sync~spin', new vscode.ThemeColor('charts.blue')),
  completed: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  stopped: new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('charts.yellow')),
};

/** "sft · 120/600 · loss/train 2.31 · loss/eval 2.40". */
export function describeRun(run: RunSummary, details: RunDetails): string {
  const parts: string[] = [details.stage ?? run.status];
  if (details.step !== undefined)
    parts.push(details.maxSteps ? `${details.step}/${details.maxSteps}` : `step ${details.step}`);
  const metrics = formatKeyMetrics(details.metrics);
  if (metrics) parts.push(metrics);
  return parts.join(' · ');
}

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsTreeItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  /** The items of the last listing, for tests and commands that look a run up by id. */
  private latest: RunsTreeItem[] = [];

  private pending: NodeJS.Timeout | undefined;
  private lastFired = 0;

  constructor(
    private readonly runs: WorkspaceRuns,
    private readonly controller: RunController,
    private readonly external?: ExternalRunList,
    private readonly cluster?: ClusterRuns,
  ) {
    this.subscriptions = [runs.onDidChange(() => this.refreshSoon()), controller.onDidChange(() => this.refreshSoon())];
    if (external) this.subscriptions.push(external.onDidChange(() => this.refreshSoon()));
    if (cluster) this.subscriptions.push(cluster.onDidChange(() => this.refreshSoon()));
  }

  /**
   * At most two refreshes a second: a trainer reports every step (tens a second), and a view told
   * to refresh again before it finished listing starts over, so unthrottled it would never show.
   */
  private refreshSoon(): void {
    if (this.pending) return;
    this.pending = setTimeout(
      () => {
        this.pending = undefined;
        this.lastFired = Date.now();
        this.changed.fire();
      },
      Math.max(50, 500 - (Date.now() - this.lastFired)),
    );
  }

  get items(): readonly RunsTreeItem[] {
    return this.latest;
  }

  async getChildren(element?: RunsTreeItem): Promise<RunsTreeItem[]> {
    if (element?.kind === 'externalGroup')
      return element.items.map((external): RunsTreeItem => ({ kind: 'external', external }));
    if (element?.kind === 'slurmSubmission') return element.listing.elements.map(jobItem);
    if (element) return [];
    const clusterItems = (this.cluster?.listing.submissions ?? []).map((listing) =>
      listing.submission.arraySize === undefined
        ? jobItem(listing.elements[0])
        : ({ kind: 'slurmSubmission', listing } satisfies RunsTreeItem),
    );
    // A cluster job's run folder shows under its job, not again among the runs.
    const clusterRunDirs = new Set(
      (this.cluster?.listing.submissions ?? []).flatMap((listing) =>
        listing.elements.flatMap((item) => (item.run ? [path.resolve(item.run.runDir)] : [])),
      ),
    );
    const externalItems = (await this.external?.list()) ?? [];
    const group: RunsTreeItem[] = externalItems.length > 0 ? [{ kind: 'externalGroup', items: externalItems }] : [];
    const listing = await this.runs.list();
    const folder = this.runs.folder ?? '';
    const runs = await Promise.all(
      listing.runs
        .filter((run) => !clusterRunDirs.has(path.resolve(folder, run.id)))
        .map(async (run): Promise<RunsTreeItem> => {
          const runDir = path.join(folder, run.id);
          return {
            kind: 'run',
            run,
            runDir,
            details: await readRunDetails(runDir),
            activeHere: this.controller.activeRun(run.id) !== undefined,
          };
        }),
    );
    this.latest = [
      ...clusterItems,
      ...runs,
      ...listing.problems.map((problem): RunsTreeItem => ({ kind: 'problem', problem })),
      ...group,
    ];
    return this.latest;
  }

  getTreeItem(element: RunsTreeItem): vscode.TreeItem {
    if (element.kind === 'slurmSubmission') return submissionTreeItem(element.listing);
    if (element.kind === 'slurmJob') return elementTreeItem(element.element);
    if (element.kind === 'externalGroup') {
      const item = new vscode.TreeItem(externalGroupLabel, vscode.TreeItemCollapsibleState.Expanded);
      item.id = 'externalRuns';
      item.description = `${element.items.length}`;
      item.tooltip =
        'Run folders of TRL, verl, NeMo-RL or an RL Logging Board: the rlhf.externalRuns setting and Open Run Folder…';
      item.contextValue = 'externalRuns';
      return item;
    }
    if (element.kind === 'external') return externalTreeItem(element.external);
    if (element.kind === 'problem') {
      const item = new vscode.TreeItem(vscode.workspace.asRelativePath(element.problem.file));
      item.description = element.problem.message;
      item.tooltip = `${element.problem.file}: ${element.problem.message}`;
      item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
      item.command = {
        command: 'vscode.open',
        title: 'Open run.json',
        arguments: [vscode.Uri.file(element.problem.file)],
      };
      item.contextValue = 'runProblem';
      return item;
    }
    const { run, details, runDir, activeHere } = element;
    const item = new vscode.TreeItem(run.name);
    item.id = run.id;
    item.description = describeRun(run, details);
    const metricLines = keyMetrics
      .filter((key) => key in details.metrics)
      .map((key) => `| ${key} | ${details.metrics[key]} |`);
    const stepText =
      details.step !== undefined ? `, step ${details.step}${details.maxSteps ? ` of ${details.maxSteps}` : ''}` : '';
    const endedText = run.endedAt ? `, ended ${new Date(run.endedAt).toLocaleString()}` : '';
    item.tooltip = new vscode.MarkdownString(
      [
        `**${run.name}** — ${run.status}${activeHere ? ' (training in this window)' : ''}`,
        `\`${run.id}\``,
        details.stage ? `Stage **${details.stage}**${stepText}` : '',
        `Started ${new Date(run.startedAt).toLocaleString()}${endedText}`,
        run.engine ? `Engine: ${run.engine}` : '',
        run.backend ? `Backend: ${run.backend}${run.backendAdapter ? ` on ${run.backendAdapter}` : ''}` : '',
        details.configFile ? `Config: ${vscode.workspace.asRelativePath(details.configFile)}` : '',
        run.error ? `Error: ${run.error}` : '',
        metricLines.length > 0 ? `| metric | latest |\n| --- | --- |\n${metricLines.join('\n')}` : '',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
    item.iconPath = statusIcons[run.status];
    // The context menu keys on this: `run.<status>`, plus `.active` when this window trains it and
    // `.config` when its config file is known (Reveal Config).
    item.contextValue = ['run', run.status, activeHere ? 'active' : '', details.configFile ? 'config' : '']
      .filter(Boolean)
      .join('.');
    item.command = { command: 'rlhf.openDashboard', title: 'Open Dashboard', arguments: [runDir] };
    return item;
  }

  dispose(): void {
    clearTimeout(this.pending);
    this.external?.dispose();
    for (const subscription of this.subscriptions) subscription.dispose();
    this.changed.dispose();
  }
}

/** A cluster job's item. */
function jobItem(element: ClusterElement): RunsTreeItem {
  return { kind: 'slurmJob', element };
}

/**
 * A run folder of another engine: its name and engine; opening it shows its dashboard. Its context value
 * (`externalRun`, `.opened` when Open Run Folder… added it) keeps the native runs' actions (Resume, Stop, Delete,
 * Reveal Config) off it.
 */
function externalTreeItem(external: ExternalRunItem): vscode.TreeItem {
  const name = external.folder ? path.basename(external.folder) : 'rlhf.externalRuns';
  const item = new vscode.TreeItem(name);
  item.id = `external:${external.folder || external.problem}`;
  if (external.problem) {
    item.description = external.folder ? 'not a run folder' : external.problem;
    item.tooltip = external.problem;
    item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    item.contextValue = external.origin === 'opened' ? 'externalRunProblem.opened' : 'externalRunProblem';
    return item;
  }
  item.description = external.engine;
  const listedBy = external.origin === 'setting' ? ' (rlhf.externalRuns)' : '';
  item.tooltip = `${external.engine} run · ${external.folder}${listedBy}`;
  item.iconPath = new vscode.ThemeIcon('graph-line');
  item.resourceUri = vscode.Uri.file(external.folder);
  item.contextValue = external.origin === 'opened' ? 'externalRun.opened' : 'externalRun';
  item.command = { command: openRunFolderCommand, title: 'Open Dashboard', arguments: [external.folder] };
  return item;
}
