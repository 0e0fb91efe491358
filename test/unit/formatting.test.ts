// The lint step's formatting half: Prettier with the project's config (.prettierrc.json) and ESLint's max-len.
// Each is run as `npm run lint` runs it, on code placed in the tree's folders, and must reject what it exists
// to reject.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';

const root = path.join(__dirname, '..', '..');

async function isFormatted(file: string, code: string): Promise<boolean> {
  const filePath = path.join(root, file);
  const options = await prettier.resolveConfig(filePath);
  assert.ok(options, `Prettier finds the project's config for ${file}`);
  return prettier.check(code, { ...options, filepath: filePath });
}

test('npm run lint checks formatting first (Prettier), then ESLint, the dependency rules and tsc', () => {
  const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const steps = scripts.lint.split('&&').map((step) => step.trim().split(' ')[0]);
  assert.deepEqual(steps, ['prettier', 'eslint', 'node', 'tsc']);
  assert.match(scripts.lint, /^prettier --check /);
});

test("Prettier with the project's config rejects unformatted code in every room and accepts it formatted", async () => {
  const messy = "import {a,b} from './x'\nexport function f( x:number ){ return a(x)+b }\n";
  for (const file of ['src/core/gae.ts', 'src/trainer/ppo/ppoStep.ts', 'src/host/runController.ts', 'webview/x.ts']) {
    assert.equal(await isFormatted(file, messy), false, `${file}: unformatted code fails the check`);
    const options = await prettier.resolveConfig(path.join(root, file));
    const formatted = await prettier.format(messy, { ...options, filepath: path.join(root, file) });
    assert.equal(await isFormatted(file, formatted), true, `${file}: formatted code passes`);
    assert.match(formatted, /import \{ a, b \} from '\.\/x';/, 'single quotes, spaces in braces, semicolons');
  }
});

test(
  'ESLint rejects a line over 120 characters that Prettier leaves alone (a long string), ' + 'in every folder',
  async () => {
    const eslint = new ESLint({ cwd: root });
    const longString = `export const message = '${'x'.repeat(100)}';\n`;
    const fits = `export const message = '${'x'.repeat(90)}';\n`;
    const folders = [
      'src/core',
      'src/trainer/ppo',
      'src/trainer/dpo',
      'src/trainer/engine/tfjs',
      'src/host',
      'webview',
    ];
    for (const folder of folders) {
      const filePath = path.join(root, folder, 'example.ts');
      const [long] = await eslint.lintText(longString, { filePath });
      assert.deepEqual(
        long.messages.map((message) => message.ruleId),
        ['max-len'],
        `${folder}: a 129-character line is an error`,
      );
      const [short] = await eslint.lintText(fits, { filePath });
      assert.deepEqual(short.messages, [], `${folder}: a 119-character line passes`);
    }
  },
);
