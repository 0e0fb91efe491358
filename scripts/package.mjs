// Packages a platform-specific .vsix: `node scripts/package.mjs [--target linux-x64]`. Run after a
// production build (`npm run package` does both). Only the target's onnxruntime binaries go in.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const targets = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};
const targetIndex = process.argv.indexOf('--target');
const target = targetIndex >= 0 ? process.argv[targetIndex + 1] : 'linux-x64';
if (!(target in targets)) {
  console.error(`Unknown --target ${target}; use one of ${Object.keys(targets).join(', ')}.`);
  process.exit(2);
}

const keepLine = '!node_modules/onnxruntime-node/bin/napi-v6/linux/x64/**';
const ignore = readFileSync('.vscodeignore', 'utf8');
if (!ignore.includes(keepLine)) throw new Error(`.vscodeignore must contain the line ${keepLine}`);
const dir = mkdtempSync(join(tmpdir(), 'rlhf-lens-package-'));
const ignoreFile = join(dir, 'vscodeignore');
writeFileSync(ignoreFile, ignore.replace(keepLine, `!node_modules/onnxruntime-node/bin/napi-v6/${targets[target]}/**`));

const out = `rlhf-lens-${target}.vsix`;
try {
  execFileSync(
    process.execPath,
    [
      'node_modules/@vscode/vsce/vsce',
      'package',
      '--target',
      target,
      '--ignoreFile',
      ignoreFile,
      '--out',
      out,
      '--skip-license',
      '--allow-missing-repository',
      '--no-rewrite-relative-links',
    ],
    { stdio: 'inherit' },
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${out}: ${(statSync(out).size / 1024 / 1024).toFixed(1)} MiB`);
