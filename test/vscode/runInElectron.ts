/**
 * The same integration suite (out/test/suite, built by `npm run build`) in desktop VS Code via
 * @vscode/test-electron: `node --import tsx test/vscode/runInElectron.ts`. It downloads VS Code, so it
 * only works on machines with internet access; here, extensionHost.test.ts runs the suite in code-server.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
  // A copy of the fixture workspace, so nothing the tests write lands in the repository.
  const temp = mkdtempSync(join(tmpdir(), 'rlhf-lens-electron-'));
  const workspace = join(temp, 'workspace');
  cpSync(join(repoRoot, 'test', 'fixtures', 'workspace'), workspace, { recursive: true });
  try {
    await runTests({
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: join(repoRoot, 'out', 'test', 'suite', 'index.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
    });
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error('The integration suite failed:', error);
  process.exit(1);
});
