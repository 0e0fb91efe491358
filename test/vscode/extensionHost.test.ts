/**
 * Runs the mocha integration suite (test/vscode/suite, built to out/test/suite) inside the real extension
 * host of code-server, the way @vscode/test-electron would inside desktop VS Code, which cannot be
 * downloaded here. code-server's smoke-test driver reads `extensionDevelopmentPath` and
 * `extensionTestsPath` from the page URL's `payload`, runs the suite, and hands the exit code to the
 * page's `codeAutomationExit`. Needs `npm run build` and `node scripts/ensureTestTools.mjs` first.
 */
import * as assert from 'node:assert/strict';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { repoRoot, screenshot, waitForWorkbench } from './codeServer';
import { Workbench } from './workbench';

// The authoring suite trains, stops and resumes a run; the whole suite takes 1–3 minutes on 2 cores.
const SUITE_DEADLINE_MS = 360_000;

const extensionTests = join(repoRoot, 'out', 'test', 'suite', 'index.js');
const workbench = new Workbench('rlhf-lens-exthost-');
const workspace = join(workbench.temp, 'workspace');

before(() =>
  workbench.start({
    workspace,
    // The extension under test is loaded from the repository as a development extension, never from an
    // installed copy.
    extension: 'development',
    prepare: () => {
      for (const built of [extensionTests, join(repoRoot, 'dist', 'extension.js')]) {
        if (!existsSync(built)) throw new Error(`${built} is missing: run npm run build first`);
      }
      cpSync(join(repoRoot, 'test', 'fixtures', 'workspace'), workspace, { recursive: true });
    },
  }),
);

after(() => workbench.stop());

interface LogFile {
  relativePath: string;
  contents: string;
}

/**
 * After the exit code (or the deadline) the workbench still shows what the suite left behind, e.g. the
 * trainer-crash error naming its signal; the screenshot is how a person checks it. The smoke-test driver
 * suppresses notification toasts, so open the notification center (the bell) as a user would.
 */
async function showNotifications(page: Page, t: TestContext): Promise<void> {
  await page.locator('#status\\.notifications').click();
  await page.locator('.notifications-center').waitFor({ timeout: 10_000 });
  await page.mouse.move(700, 400); // off the bell, so its hover text does not cover the list
  const notifications = await page.locator('.notifications-center .notification-list-item').allInnerTexts();
  t.diagnostic(
    `notifications: ${notifications.length ? notifications.map((n) => n.replace(/\s+/g, ' ')).join(' | ') : 'none'}`,
  );
  await screenshot(page, 'ext-host-after-suite');
}

test('the integration suite passes in the extension host', async (t) => {
  const server = workbench.server;
  const page = await workbench.newPage();
  try {
    const lines: string[] = [];
    page.on('console', (message) => {
      // Lines starting with %c repeat what codeAutomationLog already got; the rest (e.g. console.error
      // in the extension host, failed requests) only arrive here.
      if (!message.text().startsWith('%c')) lines.push(`[console.${message.type()}] ${message.text()}`);
    });
    let exited: (result: { code: number; logs: LogFile[] }) => void = () => {};
    const exit = new Promise<{ code: number; logs: LogFile[] }>((resolve) => (exited = resolve));
    // Both must exist before the workbench loads: it looks them up when it starts the tests.
    // The workbench's log, which includes the extension host's console (mocha's reporter): the message is
    // console.log's arguments, format string first.
    await page.exposeFunction('codeAutomationLog', (level: string, message: unknown) =>
      lines.push(`[${level}] ${Array.isArray(message) ? format(...message) : String(message)}`),
    );
    await page.exposeFunction('codeAutomationExit', (code: number, logs: LogFile[] = []) => exited({ code, logs }));

    const started = Date.now();
    // The payload's URIs must name the page's own host:port, or the workbench treats them as another remote.
    await page.goto(
      server.workbenchUrl(workspace, [
        ['extensionDevelopmentPath', server.remoteUri(repoRoot)],
        ['extensionTestsPath', server.remoteUri(extensionTests)],
      ]),
    );
    await waitForWorkbench(page);

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no exit code from the extension host within ${SUITE_DEADLINE_MS} ms`)),
        SUITE_DEADLINE_MS,
      );
    });
    let result: { code: number; logs: LogFile[] } | undefined;
    try {
      result = await Promise.race([exit, deadline]);
    } finally {
      clearTimeout(timer);
      console.log(lines.join('\n'));
      t.diagnostic(`suite finished in ${Date.now() - started} ms with exit code ${result?.code ?? 'none'}`);
      await showNotifications(page, t).catch((error) => t.diagnostic(`could not take the screenshot: ${error}`));
    }
    if (result.code !== 0) {
      // The extension host's own log says why (activation errors, uncaught exceptions).
      for (const log of result.logs.filter((file) => /exthost|remoteexthost/i.test(file.relativePath))) {
        console.log(`--- ${log.relativePath}\n${log.contents}`);
      }
      console.log(`--- code-server output\n${server.output()}`);
    }
    // Mocha's failure report (from "N failing" on), in the message too: a CI log's tail keeps the message.
    const failing = lines.findIndex((line) => /\d+ failing/.test(line));
    const report = failing < 0 ? '' : `:\n${lines.slice(failing, failing + 30).join('\n')}`;
    assert.equal(result.code, 0, `the integration suite failed (its output is above)${report}`);
  } finally {
    await page.close();
  }
});
