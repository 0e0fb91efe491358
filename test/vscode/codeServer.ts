/**
 * Harness for tests in a real VS Code: code-server 4.139.1 (VS Code 1.139.1 in the browser, with a real
 * extension host in Node) driven by playwright-core on Debian's chromium. `node scripts/ensureTestTools.mjs`
 * installs both; /work/shared/ENVIRONMENT.md ("A real VS Code for tests") has the measured recipe.
 * Test files set these parts up through workbench.ts's Workbench (scratch folder, .vsix, server, browser, clean-up).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';
import { CODE_SERVER_VERSION, codeServerDir } from '../../scripts/testToolsEnv.mjs';

/** The repository root, without a trailing slash (it goes into vscode-remote URIs). */
export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

const CHROMIUM = '/usr/bin/chromium';
const EXTENSION_ID = 'rlhf-lens.rlhf-lens';

export interface CodeServerPaths {
  /** The Node 24 binary from the `node@24` npm package; code-server refuses older ones. */
  node: string;
  /** code-server's CLI entry, run as `node entry.js ...`. */
  entry: string;
  /** Put first on PATH for code-server, so what it spawns with `node` also gets Node 24. */
  binDir: string;
}

/** Where scripts/ensureTestTools.mjs installed code-server (scripts/testToolsEnv.mjs). */
export function codeServerPaths(): CodeServerPaths {
  const dir = codeServerDir();
  const binDir = join(dir, 'node_modules', 'node', 'bin');
  const paths = {
    node: join(binDir, 'node'),
    entry: join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    binDir,
  };
  if (!existsSync(join(dir, 'installed.json')) || !existsSync(paths.node) || !existsSync(paths.entry)) {
    throw new Error(
      `code-server ${CODE_SERVER_VERSION} is not installed in ${dir}: run node scripts/ensureTestTools.mjs`,
    );
  }
  return paths;
}

function codeServerEnv(paths: CodeServerPaths): NodeJS.ProcessEnv {
  return { ...process.env, PATH: [paths.binDir, process.env.PATH].join(delimiter) };
}

/** An empty config file: without `--config`, code-server writes a default one (with a password) to ~/.config. */
function emptyConfig(userDataDir: string): string {
  mkdirSync(userDataDir, { recursive: true });
  const file = join(userDataDir, 'code-server-config.yaml');
  writeFileSync(file, '');
  return file;
}

/** Collects a child's output, keeping the tail, so failures can show what code-server said. */
function captureOutput(child: ChildProcess): () => string {
  let text = '';
  const add = (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-64_000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => text;
}

/** `code-server --install-extension`, as a user would install the packaged .vsix. */
export async function installExtension(vsixPath: string, extensionsDir: string, userDataDir: string): Promise<void> {
  const paths = codeServerPaths();
  const args = [
    paths.entry,
    '--config',
    emptyConfig(userDataDir),
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    '--install-extension',
    vsixPath,
  ];
  const child = spawn(paths.node, args, { env: codeServerEnv(paths), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutput(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`code-server --install-extension ${vsixPath} exited with ${code}:\n${output()}`);
}

export interface StartOptions {
  /** The folder code-server opens. */
  workspace: string;
  userDataDir: string;
  extensionsDir: string;
  port?: number;
  /** Lets a page pass `extensionDevelopmentPath`/`extensionTestsPath` in the URL's `payload`. */
  smokeTestDriver?: boolean;
  /** User settings on top of the quiet defaults, e.g. `{ 'workbench.colorTheme': 'Default Dark Modern' }`. */
  settings?: Record<string, unknown>;
  /**
   * Keep Workspace Trust on (code-server's default; tests usually pass --disable-workspace-trust). A
   * fresh user-data-dir trusts no folder, so the workspace opens in Restricted Mode; the startup
   * prompt is turned off so nothing asks.
   */
  workspaceTrust?: boolean;
}

export interface CodeServer {
  url: string;
  port: number;
  /** What code-server printed so far (tail). */
  output(): string;
  /** The workbench URL for a folder, with an optional smoke-test-driver payload. */
  workbenchUrl(folder: string, payload?: [string, string][]): string;
  /** A vscode-remote URI for a path on this server; its authority must be the page's own host:port. */
  remoteUri(path: string): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('could not pick a free port');
  return address.port;
}

// Settings that keep the workbench quiet and the screenshots plain: no AI side panel, no welcome page,
// no git scan, no telemetry, fewer extension gallery look-ups (offline they only log errors).
const quietSettings = {
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.startupEditor': 'none',
  'git.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'workbench.tips.enabled': false,
};

/**
 * Every code-server group still running. Being in their own groups, they miss a Ctrl+C or the test
 * runner's SIGTERM meant for us; kill them whenever this process ends without having stopped them.
 */
const running = new Set<number>();
const killAll = () => {
  for (const pgid of running) killGroup(pgid, 'SIGKILL');
  running.clear();
};
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    // Then die of the signal as without this handler, unless someone else (Playwright) handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: no process left in the group
  }
}

async function until(
  what: string,
  deadlineMs: number,
  check: () => Promise<boolean> | boolean,
  describe: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}\n${describe()}`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

export async function startCodeServer(options: StartOptions): Promise<CodeServer> {
  const paths = codeServerPaths();
  const port = options.port ?? (await freePort());
  const userSettings = join(options.userDataDir, 'User', 'settings.json');
  mkdirSync(dirname(userSettings), { recursive: true });
  const trustSettings = options.workspaceTrust
    ? {
        'security.workspace.trust.enabled': true,
        'security.workspace.trust.startupPrompt': 'never',
        'security.workspace.trust.emptyWindow': false,
      }
    : {};
  writeFileSync(userSettings, JSON.stringify({ ...quietSettings, ...trustSettings, ...options.settings }, null, 2));
  mkdirSync(options.extensionsDir, { recursive: true });

  const args = [
    paths.entry,
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    ...(options.workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--config',
    emptyConfig(options.userDataDir),
    '--user-data-dir',
    options.userDataDir,
    '--extensions-dir',
    options.extensionsDir,
    ...(options.smokeTestDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
    options.workspace,
  ];
  // Its own process group: code-server spawns the extension host, file watchers and terminals, and
  // stopping the group stops them all.
  const child = spawn(paths.node, args, {
    env: codeServerEnv(paths),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgid = child.pid;
  if (pgid === undefined) throw new Error('code-server did not start');
  running.add(pgid);
  const output = captureOutput(child);
  let exited = false;
  child.once('exit', () => (exited = true));

  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (running.delete(pgid)) {
      killGroup(pgid, 'SIGTERM');
      // Give it a moment to shut the extension host down cleanly, then make sure nothing is left.
      await until('code-server to exit', 10_000, () => !killGroup(pgid, 0)).catch(() => killGroup(pgid, 'SIGKILL'));
    }
  };

  try {
    await until(
      `code-server to answer ${url}healthz`,
      60_000,
      async () => {
        if (exited) throw new Error(`code-server exited early (code ${child.exitCode}):\n${output()}`);
        return fetch(`${url}healthz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      output,
    );
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url,
    port,
    output,
    workbenchUrl: (folder, payload) =>
      `${url}?folder=` +
      `${encodeURIComponent(folder)}${payload ? `&payload=${encodeURIComponent(JSON.stringify(payload))}` : ''}`,
    remoteUri: (path) => `vscode-remote://127.0.0.1:${port}${path}`,
    stop,
  };
}

/** Debian's chromium; Playwright's own browser download cannot work offline. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
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

/** The workbench is usable once its status bar is there (measured 3–11 s after navigation). */
export async function waitForWorkbench(page: Page, timeout = 60_000): Promise<void> {
  await page.locator('.monaco-workbench').waitFor({ timeout });
  await page.locator('.part.statusbar').waitFor({ timeout });
}

/**
 * Runs the command `title` from the command palette and picks the row that shows `text` in the
 * quick pick it opens (the palette's own widget stays open for it, so the shared `runCommand`,
 * which waits for the widget to close, does not fit). Returns the labels it offered.
 */
export async function runCommandAndPick(page: Page, title: string, text: string): Promise<string[]> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  const deadline = Date.now() + 30_000;
  // Right after the workbench appears the palette may not list extension commands yet: reopen it.
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ timeout: 30_000 });
    await input.fill(`>${title}`);
    if (
      await widget
        .locator('.monaco-list-row', { hasText: title })
        .first()
        .waitFor({ timeout: 3_000 })
        .then(
          () => true,
          () => false,
        )
    )
      break;
    if (Date.now() > deadline) throw new Error(`the command palette has no "${title}"`);
    await page.keyboard.press('Escape');
  }
  await widget.locator('.monaco-list-row.focused', { hasText: title }).first().waitFor();
  await input.press('Enter');
  await widget.locator('.monaco-list-row', { hasText: text }).first().waitFor({ timeout: 30_000 });
  // One label per row: a row's detail line (the run's start time) is an icon label of its own.
  const rows = widget.locator('.monaco-list-row');
  const offered: string[] = [];
  for (let i = 0; i < (await rows.count()); i++)
    offered.push((await rows.nth(i).locator('.label-name').first().textContent()) ?? '');
  await input.fill(text);
  await widget.locator('.monaco-list-row.focused', { hasText: text }).waitFor();
  await input.press('Enter');
  await widget.waitFor({ state: 'hidden', timeout: 30_000 });
  return offered;
}

/** Runs a command from the palette by its title, as a user would ("RLHF: Open Dashboard"). */
export async function runCommand(page: Page, title: string, timeout = 30_000): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  const row = widget.locator('.monaco-list-row', { hasText: title }).first();
  const deadline = Date.now() + timeout;
  // The palette lists the commands known when it opens; right after the workbench appears, extension
  // contributions may not be there yet. Reopen it until the command shows up.
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ timeout });
    await input.fill(`>${title}`);
    const found = await row.waitFor({ timeout: 3_000 }).then(
      () => true,
      () => false,
    );
    if (found) break;
    if (Date.now() > deadline) throw new Error(`the command palette has no "${title}" after ${timeout} ms`);
    await page.keyboard.press('Escape');
    await widget.waitFor({ state: 'hidden', timeout });
  }
  // Enter runs the highlighted row: make sure it is ours, not whatever was highlighted before.
  await widget.locator('.monaco-list-row.focused', { hasText: title }).first().waitFor({ timeout });
  await input.press('Enter');
  await widget.waitFor({ state: 'hidden', timeout });
}

/**
 * The content of the extension's dashboard webview panel (the outer iframe hosts an inner one), not the Rank view,
 * which is a webview view of the same extension.
 */
export function dashboardFrame(page: Page): FrameLocator {
  return page
    .frameLocator(`iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]:not([src*="purpose=webviewView"])`)
    .frameLocator('#active-frame');
}

/**
 * Trains `config` headless with the built trainer (dist/trainer.js), its runs in `runsFolder`; returns the folder of
 * the run whose id names `stage` (e.g. "ppo").
 */
export function trainHeadless(config: string, runsFolder: string, stage: string): string {
  const trained = spawnSync(
    process.execPath,
    [join(repoRoot, 'dist', 'trainer.js'), 'train', config, '--runs-dir', runsFolder],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (trained.status !== 0)
    throw new Error(`the trainer failed (exit ${trained.status}):\n${trained.stdout}\n${trained.stderr}`);
  const run = readdirSync(runsFolder).find((name) => name.includes(`-${stage}-`));
  if (!run) throw new Error(`no ${stage} run in ${runsFolder}: ${readdirSync(runsFolder).join(', ')}`);
  return join(runsFolder, run);
}

/** Saves `test-results/screenshots/<name>.png` for a person to check; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = join(repoRoot, 'test-results', 'screenshots');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name.replace(/\.png$/, '')}.png`);
  await page.screenshot({ path: file });
  return file;
}
