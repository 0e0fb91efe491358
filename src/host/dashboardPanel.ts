/**
 * The dashboard: one webview panel per run directory (metrics charts, per-token heatmaps of its PPO
 * traces, ratio clipping, a prompt across steps, warnings, HTML export), live while the trainer
 * writes and complete from disk after. Opened without a run when the workspace has none: it then
 * lists the runs folder and says how runs appear.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  assertNever,
  parseDashboardMessage,
  type FromDashboardMessage,
  type ToDashboardMessage,
} from '../shared/protocol';
import { detectRunFormat } from '../shared/importers/runFormat';
import { buildExportHtml } from './exportHtml';
import type { ExternalRunSource } from './external/externalRun';
import { ExternalPanelFeed } from './external/externalPanelFeed';
import { listTraceSteps, MetricsTail, readRunInfo, TraceCache } from './runData';
import { RunFolderWatcher } from './runFolderWatcher';
import { renderWebview, webviewOptions, WebviewChannel } from './webviewShell';
import type { WorkspaceRuns } from './workspaceRuns';

/** A run whose metrics the panel follows: the panel's own, or one overlaid for comparison. */
class MetricsFeed {
  private tail: MetricsTail;
  private readonly watcher: RunFolderWatcher;
  private reading = Promise.resolve();

  constructor(
    readonly runDir: string,
    private readonly post: (message: ToDashboardMessage) => void,
    private readonly log: vscode.LogOutputChannel,
    onChange?: (change: 'run' | 'traces') => void,
  ) {
    this.tail = new MetricsTail(path.join(runDir, 'metrics.jsonl'));
    this.watcher = new RunFolderWatcher(runDir);
    this.watcher.onDidChange((change) => {
      if (change === 'metrics') this.readNew();
      else onChange?.(change);
    });
  }

  /** Sends every point from the start (after the webview's handshake: it may have reloaded). */
  sendAll(): void {
    this.tail = new MetricsTail(this.tail.file);
    this.readNew(true);
  }

  /** Reads are chained so two bursts never interleave their points. */
  private readNew(forceReset = false): void {
    this.reading = this.reading.then(async () => {
      try {
        const tail = this.tail;
        const { reset, points } = await tail.read();
        for (const problem of tail.problems.splice(0)) this.log.warn(`Skipped a metrics line: ${problem}`);
        if (points.length === 0 && !reset && !forceReset) return;
        const runId = path.basename(this.runDir);
        this.post({
          type: 'dashboard/metrics',
          runId,
          runName: await this.runName(),
          reset: reset || forceReset,
          points,
        });
      } catch (error) {
        this.log.error(`Could not read ${this.tail.file}: ${(error as Error).message}`);
      }
    });
  }

  private name: string | undefined;
  private async runName(): Promise<string> {
    if (this.name === undefined)
      this.name = await readRunInfo(this.runDir).then(
        (info) => info.name,
        () => path.basename(this.runDir),
      );
    return this.name;
  }

  dispose(): void {
    this.watcher.dispose();
  }
}

export class DashboardPanel implements vscode.Disposable {
  static readonly viewType = 'rlhf.dashboard';
  /** Open panels by run directory ('' for the panel without a run). */
  private static readonly open = new Map<string, DashboardPanel>();

  private readonly channel: WebviewChannel<FromDashboardMessage, ToDashboardMessage>;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly traces = new TraceCache();
  private feed: MetricsFeed | undefined;
  /** The feed of a run of another engine (then `feed` is undefined). */
  private external: ExternalPanelFeed | undefined;
  private compared = new Map<string, MetricsFeed>();

  /**
   * Shows the dashboard of `runDir` (an absolute run directory), or the run list when it is undefined; `external`:
   * the source of a run folder of another engine (its folder is `runDir`).
   */
  static show(
    extensionUri: vscode.Uri,
    runs: WorkspaceRuns,
    log: vscode.LogOutputChannel,
    runDir?: string,
    external?: ExternalRunSource,
  ): DashboardPanel {
    const key = runDir ? path.resolve(runDir) : '';
    const existing = DashboardPanel.open.get(key);
    if (existing) {
      existing.panel.reveal();
      return existing;
    }
    const title = runDir ? `RLHF: ${path.basename(key)}` : 'RLHF Dashboard';
    const panel = vscode.window.createWebviewPanel(DashboardPanel.viewType, title, vscode.ViewColumn.Active, {
      ...webviewOptions(extensionUri),
      retainContextWhenHidden: false,
    });
    const created = new DashboardPanel(panel, extensionUri, runs, log, key || undefined, external);
    DashboardPanel.open.set(key, created);
    return created;
  }

  /** The panels open now (tests read this through the extension's API). */
  static get openRunDirs(): string[] {
    return [...DashboardPanel.open.keys()].filter(Boolean);
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly runs: WorkspaceRuns,
    private readonly log: vscode.LogOutputChannel,
    readonly runDir: string | undefined,
    external?: ExternalRunSource,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'rlhf.svg');
    this.channel = new WebviewChannel<FromDashboardMessage, ToDashboardMessage>(panel.webview, {
      parse: parseDashboardMessage,
      log,
      onReady: () => void this.sendEverything(),
      onMessage: (message) => void this.handle(message),
    });
    panel.webview.html = renderWebview(panel.webview, extensionUri, 'dashboard', panel.title);
    const post = (message: ToDashboardMessage) => this.channel.post(message);
    if (external) this.external = new ExternalPanelFeed(external, post, log);
    else if (runDir) {
      this.feed = new MetricsFeed(runDir, post, log, (change) =>
        change === 'run' ? void this.sendRun() : void this.sendSteps(),
      );
    }
    this.disposables.push(
      this.channel,
      runs.onDidChange(() => void this.sendRuns()),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  private async handle(message: Exclude<FromDashboardMessage, { type: 'webview/ready' }>): Promise<void> {
    switch (message.type) {
      case 'dashboard/refresh':
        await this.sendEverything();
        break;
      case 'dashboard/requestTrace':
        if (this.external) await this.external.sendTrace(message.step);
        else await this.sendTrace(message.step);
        break;
      case 'dashboard/compare':
        this.hostCompared = message.runIds;
        this.setCompared(message.runIds);
        break;
      case 'dashboard/requestPromptHistory': {
        if (this.external) await this.external.promptHistory(message.prompt);
        if (!this.runDir || this.external) break;
        const steps = await listTraceSteps(this.runDir);
        const entries = await this.traces.promptHistory(this.runDir, steps, message.prompt);
        this.channel.post({ type: 'dashboard/promptHistory', prompt: message.prompt, entries });
        break;
      }
      case 'dashboard/exportHtml':
        await this.exportHtml(message.title, message.body, message.themeCss, message.bodyClass);
        break;
      case 'dashboard/openRun': {
        // An id from the webview is a folder name inside the runs folder, never a path out of it.
        const runDir = this.runs.runDir(message.runId);
        if (runDir) DashboardPanel.show(this.extensionUri, this.runs, this.log, runDir);
        else
          this.log.warn(
            `dashboard: ignored run id ${JSON.stringify(String(message.runId).slice(0, 200))}, which is not a ` +
              `folder name inside the runs folder`,
          );
        break;
      }
      default:
        assertNever(message, 'dashboard');
    }
  }

  private async sendEverything(): Promise<void> {
    await this.sendRuns();
    if (this.external) {
      this.panel.title = `RLHF: ${path.basename(this.external.source.folder)} (${this.external.source.engine})`;
      await this.external.sendAll();
      return;
    }
    if (!this.runDir) return;
    await this.sendRun();
    this.feed?.sendAll();
    if (this.hostCompared.length > 0) this.channel.post({ type: 'dashboard/compared', runIds: this.hostCompared });
    for (const feed of this.compared.values()) feed.sendAll();
    await this.sendSteps();
  }

  private async sendRuns(): Promise<void> {
    try {
      const listing = await this.runs.list();
      this.channel.post({
        type: 'dashboard/runs',
        runsFolder: this.runs.folder ?? '',
        runs: listing.runs,
        problems: listing.problems,
      });
    } catch (error) {
      this.log.error(`Could not list runs in ${this.runs.folder}: ${(error as Error).message}`);
    }
  }

  private async sendRun(): Promise<void> {
    if (!this.runDir) return;
    try {
      const run = await readRunInfo(this.runDir);
      this.panel.title = `RLHF: ${run.name}`;
      this.channel.post({ type: 'dashboard/run', run });
    } catch (error) {
      this.log.error(`Could not read the run in ${this.runDir}: ${(error as Error).message}`);
    }
  }

  private async sendSteps(): Promise<void> {
    if (!this.runDir) return;
    try {
      const steps = await listTraceSteps(this.runDir);
      const traceKind = steps.length > 0 ? await this.traces.kind(this.runDir, steps[0]).catch(() => null) : null;
      this.channel.post({ type: 'dashboard/steps', steps, traceKind });
    } catch (error) {
      this.log.error(`Could not list the traces of ${this.runDir}: ${(error as Error).message}`);
    }
  }

  private async sendTrace(step: number): Promise<void> {
    if (!this.runDir) return;
    try {
      const started = performance.now();
      const trace = await this.traces.packed(this.runDir, step);
      for (const problem of this.traces.problems.splice(0)) this.log.warn(`Skipped a trace line: ${problem}`);
      this.log.debug(
        `Read step ${step}'s trace (${trace.numSamples} samples, ${trace.numTokens} tokens) in ` +
          `${(performance.now() - started).toFixed(0)} ms`,
      );
      this.channel.post({ type: 'dashboard/trace', trace });
    } catch (error) {
      const message =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `Step ${step} has no trace file.`
          : (error as Error).message;
      this.channel.post({ type: 'dashboard/traceError', step, message });
    }
  }

  /**
   * Overlays other runs of the runs folder on this panel's metric charts (a sweep's runs opened together), as if
   * their boxes under "Compare with" were checked.
   */
  compareWith(runIds: readonly string[]): void {
    this.hostCompared = runIds.filter((id) => this.runs.runDir(id) !== undefined);
    this.setCompared(this.hostCompared);
    this.channel.post({ type: 'dashboard/compared', runIds: this.hostCompared });
  }

  /** What compareWith asked for, sent again after the webview (re)loads. */
  private hostCompared: readonly string[] = [];

  private setCompared(runIds: readonly string[]): void {
    const wanted = new Set(
      runIds.map((id) => this.runs.runDir(id)).filter((dir): dir is string => dir !== undefined && dir !== this.runDir),
    );
    for (const [dir, feed] of this.compared) {
      if (wanted.has(dir)) continue;
      feed.dispose();
      this.compared.delete(dir);
      this.channel.post({ type: 'dashboard/metrics', runId: path.basename(dir), runName: '', reset: true, points: [] });
    }
    for (const dir of wanted) {
      if (this.compared.has(dir)) continue;
      const feed = new MetricsFeed(dir, (message) => this.channel.post(message), this.log);
      this.compared.set(dir, feed);
      feed.sendAll();
    }
  }

  private async exportHtml(title: string, body: string, themeCss: string, bodyClass: string): Promise<void> {
    const css = new TextDecoder().decode(
      await vscode.workspace.fs.readFile(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', 'dashboard.css')),
    );
    const html = buildExportHtml({ title, body, themeCss, bodyClass, css });
    const base =
      vscode.workspace.workspaceFolders?.[0]?.uri ??
      (this.runDir ? vscode.Uri.file(path.dirname(this.runDir)) : undefined);
    const fileName = `${title.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'dashboard'}.html`;
    const target = await vscode.window.showSaveDialog({
      defaultUri: base ? vscode.Uri.joinPath(base, fileName) : undefined,
      filters: { HTML: ['html'] },
      title: 'Export the dashboard view as HTML',
    });
    if (!target) {
      this.channel.post({ type: 'dashboard/exported' });
      return;
    }
    await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(html));
    this.channel.post({ type: 'dashboard/exported', file: target.fsPath });
    void vscode.window.showInformationMessage(`Exported the dashboard view to ${target.fsPath}.`);
  }

  dispose(): void {
    for (const [key, panel] of DashboardPanel.open) if (panel === this) DashboardPanel.open.delete(key);
    this.feed?.dispose();
    this.external?.dispose();
    for (const feed of this.compared.values()) feed.dispose();
    this.compared.clear();
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
    this.panel.dispose();
  }
}

/**
 * `rlhf.openDashboard`'s handler. Its optional argument is a run directory: a path string, a Uri,
 * or an object with `runDir` or `resourceUri` (a tree item). Without one it opens the run of the file
 * in the active editor (a run's metrics.jsonl, say), or asks with a quick pick of the workspace's
 * runs (and shows the empty run list when there are none).
 */
export function openDashboardCommand(extensionUri: vscode.Uri, runs: WorkspaceRuns, log: vscode.LogOutputChannel) {
  return async (target?: unknown): Promise<DashboardPanel | undefined> => {
    const given = runDirOf(target) ?? runDirOfActiveEditor();
    // A folder of another engine (no run.json) opens through Open Run Folder…, which reads its format.
    if (given && !existsSync(path.join(given, 'run.json'))) {
      const format = await detectRunFormat(given);
      if (format !== undefined && format !== 'rlhf-lens')
        return vscode.commands.executeCommand<DashboardPanel | undefined>('rlhf.openRunFolder', given);
    }
    if (given) return DashboardPanel.show(extensionUri, runs, log, given);
    const listing = await runs.list();
    const folder = runs.folder;
    if (!folder || listing.runs.length === 0) return DashboardPanel.show(extensionUri, runs, log);
    const picked = await vscode.window.showQuickPick(
      listing.runs.map((run) => ({
        label: run.name,
        description: `${run.status} · ${run.id}`,
        detail: new Date(run.startedAt).toLocaleString(),
        runDir: path.join(folder, run.id),
      })),
      { placeHolder: 'Run to open in the dashboard', matchOnDescription: true },
    );
    return picked ? DashboardPanel.show(extensionUri, runs, log, picked.runDir) : undefined;
  };
}

/** The run directory of the file in the active editor (its run.json, metrics.jsonl, a config copy…), if any. */
function runDirOfActiveEditor(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  if (uri?.scheme !== 'file') return undefined;
  const match = /^(.*[\\/]\.rlhf[\\/]runs[\\/][^\\/]+)[\\/]/.exec(uri.fsPath);
  return match?.[1];
}

function runDirOf(target: unknown): string | undefined {
  // A run.json (or metrics.jsonl) given instead of its folder opens the folder.
  const folderOf = (file: string) => (/(^|[\\/])(run\.json|metrics\.jsonl)$/.test(file) ? path.dirname(file) : file);
  if (typeof target === 'string' && target.length > 0) return folderOf(target);
  if (target instanceof vscode.Uri) return folderOf(target.fsPath);
  if (typeof target === 'object' && target !== null) {
    const record = target as { runDir?: unknown; resourceUri?: unknown };
    if (typeof record.runDir === 'string') return folderOf(record.runDir);
    if (record.resourceUri instanceof vscode.Uri) return folderOf(record.resourceUri.fsPath);
  }
  return undefined;
}
