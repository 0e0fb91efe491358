/**
 * Messages every webview sends, whatever its panel: the dashboard's and the Rank view's message
 * unions (dashboardMessages.ts, rankMessages.ts) include them. A leaf module, so those files need
 * not import protocol.ts, which re-exports them all as the one protocol module (imports go one way:
 * protocol.ts → dashboardMessages.ts / rankMessages.ts → webviewMessages.ts).
 */

/** The webview's script loaded and listens; the host sends nothing before this. */
export interface WebviewReadyMessage {
  readonly type: 'webview/ready';
}
