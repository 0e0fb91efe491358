/**
 * The extension-host side of the integration tests: the `run()` entry that VS Code calls for
 * `--extensionTestsPath` (with @vscode/test-electron, or code-server's smoke-test driver). scripts/build.mjs
 * bundles each suite file to out/test/suite/*.js; this runs every `*.test.js` next to it with mocha (tdd).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  // No colours: the output ends up in log files and test reports, not a terminal.
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 60_000 });
  // Read the directory rather than glob: one less dependency, and the build puts all suites here.
  for (const file of readdirSync(__dirname)
    .filter((name) => name.endsWith('.test.js'))
    .sort()) {
    mocha.addFile(join(__dirname, file));
  }
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} integration test(s) failed`)) : resolve()));
  });
}
