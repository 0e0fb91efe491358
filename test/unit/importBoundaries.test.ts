// DESIGN.md's import boundaries are enforced by eslint.config.mjs. These tests lint code as if it
// were a file in each folder, with the project's real config, and expect the failures a wrong import
// must produce (and no failure for the imports each folder is allowed).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: path.join(__dirname, '..', '..') });

async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(__dirname, '..', '..', file) });
  return result.messages
    .filter((message) => message.ruleId === '@typescript-eslint/no-restricted-imports')
    .map((message) => message.message);
}

const forbidden: [file: string, code: string, reason: RegExp][] = [
  [
    'src/core/gae.ts',
    "import * as vscode from 'vscode';\nexport const x = vscode;\n",
    /src\/core\/ is pure math.*no vscode/,
  ],
  ['src/core/gae.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", /no Node built-ins/],
  ['src/core/gae.ts', "import { readFileSync } from 'fs';\nexport const x = readFileSync;\n", /no Node built-ins/],
  ['src/core/gae.ts', "import * as tf from '@tensorflow/tfjs';\nexport const x = tf;\n", /no tensor or ONNX engines/],
  [
    'src/core/gae.ts',
    "import { listRuns } from '../shared/runsFolder';\nexport const x = listRuns;\n",
    /nothing of ours but core/,
  ],
  [
    'src/shared/protocol.ts',
    "import * as vscode from 'vscode';\nexport const x = vscode;\n",
    /src\/shared\/.*no vscode/,
  ],
  ['src/trainer/main.ts', "import * as vscode from 'vscode';\nexport const x = vscode;\n", /never vscode/],
  [
    'src/trainer/main.ts',
    "import { DashboardPanel } from '../host/dashboardPanel';\nexport const x = DashboardPanel;\n",
    /only core\/, shared\//,
  ],
  [
    'src/host/dashboardPanel.ts',
    "import { connectToHost } from '../trainer/hostChannel';\nexport const x = connectToHost;\n",
    /never trains in-process/,
  ],
  [
    'webview/dashboard/main.ts',
    "import * as vscode from 'vscode';\nexport const x = vscode;\n",
    /Webviews run in a browser: no vscode/,
  ],
  [
    'webview/dashboard/main.ts',
    "import { readFile } from 'node:fs/promises';\nexport const x = readFile;\n",
    /no Node built-ins/,
  ],
  ['webview/dashboard/main.ts', "import * as path from 'path';\nexport const x = path;\n", /no Node built-ins/],
  [
    'webview/dashboard/main.ts',
    "import { TrainerSupervisor } from '../../src/host/trainerSupervisor';\nexport const x = TrainerSupervisor;\n",
    /only src\/core\/ and src\/shared\//,
  ],
];

for (const [file, code, reason] of forbidden) {
  test(`lint refuses ${code.split('\n')[0]} in ${file}`, async () => {
    const errors = await boundaryErrors(file, code);
    assert.equal(errors.length, 1, `expected one boundary error, got ${JSON.stringify(errors)}`);
    assert.match(errors[0], reason);
  });
}

const allowed: [file: string, code: string][] = [
  ['src/core/gae.ts', "import { maskedMean } from './stats';\nexport const x = maskedMean;\n"],
  [
    'src/shared/protocol.ts',
    "import { gae } from '../core/gae';\nimport { readFile } from 'node:fs/promises';\nexport const x = [gae, " +
      'readFile];\n',
  ],
  [
    'src/trainer/main.ts',
    "import * as tf from '@tensorflow/tfjs';\nimport { parseHostMessage } from '../shared/protocol';\nexport " +
      'const x = [tf, parseHostMessage];\n',
  ],
  [
    'src/host/dashboardPanel.ts',
    "import * as vscode from 'vscode';\nimport { listRuns } from '../shared/runsFolder';\nexport const x = " +
      '[vscode, listRuns];\n',
  ],
  [
    'webview/dashboard/main.ts',
    "import { assertNever } from '../../src/shared/protocol';\nexport const x = assertNever;\n",
  ],
];

for (const [file, code] of allowed) {
  test(`lint allows ${code.split('\n')[0]} in ${file}`, async () => {
    assert.deepEqual(await boundaryErrors(file, code), []);
  });
}

test('the project as committed passes lint (so a boundary error is the only thing the tests above see)', async () => {
  const results = await eslint.lintFiles(['src', 'webview']);
  const problems = results.flatMap((result) =>
    result.messages.map((message) => `${result.filePath}:${message.line} ${message.message}`),
  );
  assert.deepEqual(problems, []);
});

test('the lint command itself exits non-zero on such a file (what npm run lint and CI see)', async () => {
  const { spawnSync } = await import('node:child_process');
  const root = path.join(__dirname, '..', '..');
  const lint = (file: string, code: string) =>
    spawnSync(
      process.execPath,
      [
        path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'),
        '--max-warnings',
        '0',
        '--stdin',
        '--stdin-filename',
        file,
      ],
      { cwd: root, input: code, encoding: 'utf8' },
    );
  const bad = lint('src/core/probe.ts', "import * as vscode from 'vscode';\nexport const probe = vscode;\n");
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /no-restricted-imports/);
  const good = lint('src/core/probe.ts', 'export const probe = 1;\n');
  assert.equal(good.status, 0, good.stdout + good.stderr);
});
