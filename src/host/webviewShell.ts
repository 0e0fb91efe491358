/**
 * What every RLHF Lens webview shares on the host side: options that confine it to the bundle and
 * media folders, its HTML, and a typed channel that validates each incoming message and holds
 * outgoing ones until the webview's `webview/ready` handshake (sent again after every reload).
 */
import * as vscode from 'vscode';
import { buildWebviewHtml } from './webviewHtml';

/** The name of a webview bundle under `dist/webview/` (`<name>.js`, `<name>.css`). */
export type WebviewBundle = 'dashboard' | 'rank';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [
      vscode.Uri.joinPath(extensionUri, 'dist', 'webview'),
      vscode.Uri.joinPath(extensionUri, 'media'),
    ],
  };
}

export function renderWebview(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  bundle: WebviewBundle,
  title: string,
): string {
  const asset = (file: string) =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', file)).toString();
  return buildWebviewHtml({
    cspSource: webview.cspSource,
    scriptUri: asset(`${bundle}.js`),
    styleUri: asset(`${bundle}.css`),
    title,
  });
}

export interface WebviewChannelOptions<In extends { type: string }> {
  /** Returns undefined for anything the host must not act on. */
  readonly parse: (value: unknown) => In | undefined;
  /** Called with every valid message except the handshake. */
  readonly onMessage: (message: Exclude<In, { type: 'webview/ready' }>) => void;
  /** Called on each handshake: send the webview its state (it may have reloaded and lost it). */
  readonly onReady: () => void;
  readonly log: vscode.LogOutputChannel;
}

export class WebviewChannel<In extends { type: string }, Out> implements vscode.Disposable {
  private ready = false;
  private pending: Out[] = [];
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly webview: vscode.Webview,
    options: WebviewChannelOptions<In>,
  ) {
    this.subscription = webview.onDidReceiveMessage((raw: unknown) => {
      const message = options.parse(raw);
      if (!message) {
        options.log.warn(`Ignored an invalid message from a webview: ${JSON.stringify(raw)?.slice(0, 200)}`);
        return;
      }
      if (message.type === 'webview/ready') {
        this.ready = true;
        const queued = this.pending;
        this.pending = [];
        for (const item of queued) void this.webview.postMessage(item);
        options.onReady();
        return;
      }
      options.onMessage(message as Exclude<In, { type: 'webview/ready' }>);
    });
  }

  post(message: Out): void {
    if (this.ready) void this.webview.postMessage(message);
    else this.pending.push(message);
  }

  dispose(): void {
    this.subscription.dispose();
    this.pending = [];
  }
}
