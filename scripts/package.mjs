// Packages a platform-specific .vsix: `node scripts/package.mjs [--target linux-x64]`. Run after a
// production build (`npm run package` does both). Only the target's onnxruntime and Dawn binaries go in.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Per VS Code target: onnxruntime-node's binary folder and the webgpu package's (Dawn) one. */
const targets = {
  'linux-x64': { onnxruntime: 'linux/x64', dawn: 'linux-x64' },
  'linux-arm64': { onnxruntime: 'linux/arm64', dawn: 'linux-arm64' },
  'darwin-arm64': { onnxruntime: 'darwin/arm64', dawn: 'darwin-universal' },
  'win32-x64': { onnxruntime: 'win32/x64', dawn: 'win32-x64' },
  'win32-arm64': { onnxruntime: 'win32/arm64', dawn: 'win32-arm64' },
};
const targetIndex = process.argv.indexOf('--target');
const target = targetIndex >= 0 ? process.argv[targetIndex + 1] : 'linux-x64';
if (!(target in targets)) {
  console.error(`Unknown --target ${target}; use one of ${Object.keys(targets).join(', ')}.`);
  process.exit(2);
}

// .vscodeignore keeps linux-x64's binaries; these lines are rewritten for the target packaged.
const onnxBinaries = 'node_modules/onnxruntime-node/bin/napi-v6';
const keepLines = {
  [`!${onnxBinaries}/linux/x64/**`]: `!${onnxBinaries}/${targets[target].onnxruntime}/**`,
  '!node_modules/webgpu/dist/linux-x64/**': `!node_modules/webgpu/dist/${targets[target].dawn}/**`,
};
let ignore = readFileSync('.vscodeignore', 'utf8');
for (const [line, replacement] of Object.entries(keepLines)) {
  if (!ignore.split('\n').includes(line)) throw new Error(`.vscodeignore must contain the line ${line}`);
  ignore = ignore.replace(line, replacement);
}
const dir = mkdtempSync(join(tmpdir(), 'rlhf-lens-package-'));
const ignoreFile = join(dir, 'vscodeignore');
writeFileSync(ignoreFile, ignore);

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
