/**
 * One test file's VS Code, set up the same way for every code-server test: a scratch folder, the packaged extension
 * (the .vsix of `npm run package`) installed as a user installs it, code-server serving the test's workspace, and a
 * headless chromium to drive it. codeServer.ts has the parts; this puts them together.
 *
 * The scratch folder is made when the test file loads, since the file's paths (its workspace, fixture folders) live
 * in it; start() runs in before() and stop() in after(). stop() also cleans up after a before() that failed halfway.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  codeServerPaths,
  installExtension,
  launchChromium,
  repoRoot,
  startCodeServer,
  waitForWorkbench,
  type CodeServer,
  type StartOptions,
} from './codeServer';

const VSIX = join(repoRoot, 'rlhf-lens-linux-x64.vsix');
const EXTENSIONS_DIR = 'extensions';
const USER_DATA_DIR = 'user-data';
/** Wide enough for the side bar, an editor and a dashboard side by side in the screenshots. */
const DEFAULT_VIEWPORT = { width: 1400, height: 900 };

export interface Viewport {
  width: number;
  height: number;
}

export interface WorkbenchOptions {
  /** The folder code-server opens; openPage() shows it unless told another. */
  workspace: string;
  /**
   * Writes the test's files (workspace, runs, models). Runs after the checks that fail fast (the .vsix and
   * code-server are there) and before anything is installed or started, so a slow fixture never runs in vain.
   */
  prepare?: () => void | Promise<void>;
  /**
   * 'packaged' (the default): the .vsix is installed into the scratch folder's extensions. 'development': nothing
   * is installed, and the smoke-test driver lets the page load the extension from the repository (its URL's
   * `extensionDevelopmentPath`/`extensionTestsPath` payload; see CodeServer.workbenchUrl).
   */
  extension?: 'packaged' | 'development';
  /** User settings on top of codeServer.ts's quiet defaults. */
  settings?: Record<string, unknown>;
}

export interface ExtraServerOptions {
  workspace: string;
  /** Its own user-data folder's name in the scratch folder: a fresh profile (e.g. one that trusts no folder). */
  userDataDir: string;
  /** See StartOptions.workspaceTrust. */
  workspaceTrust?: boolean;
  settings?: Record<string, unknown>;
}

export interface OpenPageOptions {
  /** The folder to show (default: the workspace of start()). */
  folder?: string;
  /** The code-server to ask (default: the one of start()). */
  server?: CodeServer;
  viewport?: Viewport;
}

export class Workbench {
  /** The test file's scratch folder; user-data/ and extensions/ go in it too. stop() removes it. */
  readonly temp: string;
  private workspace: string | undefined;
  private servers: CodeServer[] = [];
  private launched: Browser | undefined;

  /** Makes the scratch folder `<tmpdir>/<tempPrefix>XXXXXX`. */
  constructor(tempPrefix: string) {
    this.temp = mkdtempSync(join(tmpdir(), tempPrefix));
  }

  /** The code-server of start(). */
  get server(): CodeServer {
    const [server] = this.servers;
    if (!server) throw new Error('the workbench has no code-server: start() did not finish (see before())');
    return server;
  }

  get browser(): Browser {
    if (!this.launched) throw new Error('the workbench has no browser: start() did not finish (see before())');
    return this.launched;
  }

  /** Checks the tools, prepares the files, installs the extension, starts code-server and the browser. */
  async start(options: WorkbenchOptions): Promise<void> {
    const packaged = (options.extension ?? 'packaged') === 'packaged';
    if (packaged && !existsSync(VSIX)) throw new Error(`${VSIX} is missing: run npm run package first`);
    codeServerPaths(); // fails with "run node scripts/ensureTestTools.mjs" when it is not installed
    await options.prepare?.();
    const userDataDir = join(this.temp, USER_DATA_DIR);
    const extensionsDir = join(this.temp, EXTENSIONS_DIR);
    // In development mode the extensions folder stays empty: the extension under test is loaded from the
    // repository, never from an installed copy.
    if (packaged) await installExtension(VSIX, extensionsDir, userDataDir);
    this.workspace = options.workspace;
    await this.launchServer({
      workspace: options.workspace,
      userDataDir,
      extensionsDir,
      smokeTestDriver: !packaged,
      settings: options.settings,
    });
    this.launched = await launchChromium();
  }

  /** Another code-server with the same extensions (e.g. one whose fresh profile trusts no folder); stop() ends it. */
  startServer(options: ExtraServerOptions): Promise<CodeServer> {
    if (this.servers.length === 0) throw new Error('startServer() comes after start(): start() installs the extension');
    return this.launchServer({
      workspace: options.workspace,
      userDataDir: join(this.temp, options.userDataDir),
      extensionsDir: join(this.temp, EXTENSIONS_DIR),
      workspaceTrust: options.workspaceTrust,
      settings: options.settings,
    });
  }

  /** A blank page in a context of its own (closing the page closes the context). */
  newPage(viewport: Viewport = DEFAULT_VIEWPORT): Promise<Page> {
    return this.browser.newPage({ viewport });
  }

  /** A page showing the workbench on a folder, once the workbench is usable. */
  async openPage(options: OpenPageOptions = {}): Promise<Page> {
    const server = options.server ?? this.server;
    const folder = options.folder ?? this.workspace;
    if (folder === undefined) throw new Error('openPage() comes after start(): no workspace yet');
    const page = await this.newPage(options.viewport);
    await page.goto(server.workbenchUrl(folder));
    await waitForWorkbench(page);
    return page;
  }

  /** Closes the browser, stops every code-server and removes the scratch folder, whatever was started. */
  async stop(): Promise<void> {
    try {
      await this.launched?.close();
      for (const server of this.servers) await server.stop();
    } finally {
      this.launched = undefined;
      this.servers = [];
      rmSync(this.temp, { recursive: true, force: true });
    }
  }

  private async launchServer(options: StartOptions): Promise<CodeServer> {
    const server = await startCodeServer(options);
    this.servers.push(server);
    return server;
  }
}
