/**
 * Loads a built webview bundle in headless Chromium exactly as VS Code would: the same HTML shell
 * and Content Security Policy (src/host/webviewHtml.ts), served from a local origin, with a stand-in
 * for `acquireVsCodeApi` that records what the webview posts and lets the test post to it.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildWebviewHtml } from '../../src/host/webviewHtml';

const root = path.join(__dirname, '..', '..');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const screenshotDir = path.join(root, 'test-results', 'screenshots');

export type Theme = 'light' | 'dark' | 'high-contrast';

export interface WebviewPage {
  readonly page: Page;
  /** Messages the webview posted to the host, in order. */
  posted(): Promise<unknown[]>;
  /** Delivers a message to the webview as the host would. */
  send(message: unknown): Promise<void>;
  /** Content-Security-Policy violations the page reported. */
  cspViolations(): Promise<string[]>;
  /** Uncaught errors and console errors of the page, and resources that failed to load. */
  readonly errors: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium not found at ${chromiumPath}: run "node scripts/ensureTestTools.mjs" (npm test does) or set ` +
        `CHROMIUM_PATH.`,
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

function serveStatic(): Promise<Server> {
  const allowed: Record<string, string> = {
    '/dist/webview/': path.join(root, 'dist', 'webview'),
    '/themes/': path.join(__dirname, 'themes'),
  };
  const types: Record<string, string> = {
    '.js': 'text/javascript',
    '.css': 'text/css',
    '.html': 'text/html',
    '.svg': 'image/svg+xml',
  };
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204).end();
      return;
    }
    if (url.pathname === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end((server as Server & { html?: string }).html);
      return;
    }
    const prefix = Object.keys(allowed).find((candidate) => url.pathname.startsWith(candidate));
    const file = prefix ? path.join(allowed[prefix], path.normalize(url.pathname.slice(prefix.length))) : undefined;
    if (!file || !prefix || !file.startsWith(allowed[prefix]) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Stands in for VS Code's `acquireVsCodeApi`: records posted messages, keeps state, and throws on
 * a second call as VS Code does. Also records Content-Security-Policy violations. */
const vsCodeApiStub = `
  window.__posted = [];
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (event) =>
    window.__csp.push(event.violatedDirective + ': ' + event.blockedURI),
  );
  let acquired = false;
  window.acquireVsCodeApi = () => {
    if (acquired) throw new Error('acquireVsCodeApi may be called only once');
    acquired = true;
    return {
      postMessage: (message) => window.__posted.push(JSON.parse(JSON.stringify(message))),
      getState: () => window.__state,
      setState: (value) => { window.__state = value; },
    };
  };
`;

/** Opens `dist/webview/<bundle>.js` in a page with the given theme and viewport. */
export async function openWebview(
  browser: Browser,
  bundle: string,
  options: { theme?: Theme; width?: number; height?: number } = {},
): Promise<WebviewPage> {
  const script = path.join(root, 'dist', 'webview', `${bundle}.js`);
  if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build first`);
  const server = await serveStatic();
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const shell = buildWebviewHtml({
    cspSource: origin,
    scriptUri: `${origin}/dist/webview/${bundle}.js`,
    styleUri: `${origin}/dist/webview/${bundle}.css`,
    title: bundle,
  });
  // VS Code injects its theme variables itself; here a theme stylesheet from the allowed origin does.
  // VS Code also marks the body with the theme's kind (vscode-light, vscode-dark, vscode-high-contrast).
  const themeClass = `vscode-${options.theme ?? 'dark'}`;
  (server as Server & { html?: string }).html = shell
    .replace('</head>', `<link rel="stylesheet" href="${origin}/themes/${options.theme ?? 'dark'}.css">\n</head>`)
    .replace('<body>', `<body class="${themeClass}">`);

  const context = await browser.newContext({
    viewport: { width: options.width ?? 1000, height: options.height ?? 640 },
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => message.type() === 'error' && errors.push(`console: ${message.text()}`));
  page.on('response', (response) => response.status() >= 400 && errors.push(`${response.status()} ${response.url()}`));
  // A string, not a function: tsx rewrites functions with helpers that do not exist in the page.
  await page.addInitScript(vsCodeApiStub);
  await page.goto(`${origin}/index.html`);
  return {
    page,
    errors,
    posted: () => page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted),
    send: (message) => page.evaluate((data) => window.postMessage(data, '*'), message),
    cspViolations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp),
    close: async () => {
      await context.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
