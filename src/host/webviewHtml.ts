/**
 * The HTML shell every RLHF Lens webview loads: a strict Content Security Policy (`default-src
 * 'none'`, scripts only by nonce, styles and images only from the extension's own resources), the
 * bundle's script and stylesheet, and nothing else. Pure string work with no `vscode` import, so the
 * webview tests in Chromium load exactly the page VS Code loads.
 */
import { randomBytes } from 'node:crypto';
import { escapeHtml, htmlDocument } from './htmlDocument';

export interface WebviewHtmlOptions {
  /** `webview.cspSource`: the origin the webview may load resources from. */
  readonly cspSource: string;
  readonly scriptUri: string;
  readonly styleUri: string;
  readonly title: string;
  /** A fresh random value per render; tests pass their own. */
  readonly nonce?: string;
}

export function createNonce(): string {
  return randomBytes(18).toString('base64');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function buildWebviewHtml(options: WebviewHtmlOptions): string {
  const nonce = options.nonce ?? createNonce();
  return htmlDocument({
    contentSecurityPolicy: contentSecurityPolicy(options.cspSource, nonce),
    head: [
      `<title>${escapeHtml(options.title)}</title>`,
      `<link rel="stylesheet" href="${escapeHtml(options.styleUri)}">`,
    ],
    body: `<body>
<main id="app" aria-busy="true"></main>
<script nonce="${escapeHtml(nonce)}" src="${escapeHtml(options.scriptUri)}"></script>
</body>`,
  });
}
