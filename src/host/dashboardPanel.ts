/**
 * The dashboard webview panel. One per window for now: it lists the workspace's runs and follows
 * the runs folder as trainers write to it.
 */
import * as vscode from 'vscode';
import { assertNever, parseDashboardMessage, type FromDashboardMessage, type ToDashboardMessage } from '../shared/protocol';
import { renderWebview, webviewOptions, WebviewChannel } from './webviewShell';
import type { WorkspaceRuns } from './workspaceRuns';

export class DashboardPanel implements vscode.Disposable {
  static readonly viewType = 'rlhf.dashboard';
  private static current: DashboardPanel | undefined;

  private readonly channel: WebviewChannel<FromDashboardMessage, ToDashboardMessage>;
  private readonly disposables: vscode.Disposable[] = [];

  static show(extensionUri: vscode.Uri, runs: WorkspaceRuns, log: vscode.LogOutputChannel): DashboardPanel {
    if (DashboardPanel.current) {
      DashboardPanel.current.panel.reveal();
      return DashboardPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(DashboardPanel.viewType, 'RLHF Dashboard', vscode.ViewColumn.Active, {
      ...webviewOptions(extensionUri),
      retainContextWhenHidden: false,
    });
    DashboardPanel.current = new DashboardPanel(panel, extensionUri, runs, log);
    return DashboardPanel.current;
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private readonly runs: WorkspaceRuns,
    private readonly log: vscode.LogOutputChannel,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'rlhf.svg');
    this.channel = new WebviewChannel<FromDashboardMessage, ToDashboardMessage>(panel.webview, {
      parse: parseDashboardMessage,
      log,
      onReady: () => void this.sendRuns(),
      onMessage: (message) => {
        switch (message.type) {
          case 'dashboard/refresh':
            void this.sendRuns();
            break;
          default:
            assertNever(message.type, 'dashboard');
        }
      },
    });
    panel.webview.html = renderWebview(panel.webview, extensionUri, 'dashboard', 'RLHF Dashboard');
    this.disposables.push(
      this.channel,
      runs.onDidChange(() => void this.sendRuns()),
      panel.onDidDispose(() => this.dispose()),
    );
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

  dispose(): void {
    if (DashboardPanel.current === this) DashboardPanel.current = undefined;
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
    this.panel.dispose();
  }
}
