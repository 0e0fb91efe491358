// The one build script: node bundles (extension host, trainer process) as CommonJS, browser bundles
// for the webviews as IIFE, and the extension-host test suite. `--watch` rebuilds on change,
// `--production` minifies and drops source maps. Type-checking is `tsc --noEmit` (npm run lint).
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

// Native addons and VS Code itself are resolved at run time, never bundled.
const nodeExternals = ['vscode', 'onnxruntime-node', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

const version = JSON.parse(readFileSync('package.json', 'utf8')).version;

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
};

const suiteDir = 'test/vscode/suite';
const suiteEntries = readdirSync(suiteDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(suiteDir, f));

/** @type {esbuild.BuildOptions[]} */
const builds = [
  {
    ...common,
    entryPoints: { extension: 'src/extension.ts', trainer: 'src/trainer/main.ts' },
    outdir: 'dist',
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: nodeExternals,
    define: { RLHF_LENS_VERSION: JSON.stringify(version) },
    // jsonc-parser's UMD build hides its requires from esbuild; its ESM build bundles cleanly.
    mainFields: ['module', 'main'],
    // dist/trainer.js is also the `rlhf-lens` command (package.json "bin").
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    ...common,
    entryPoints: { 'webview/dashboard': 'webview/dashboard/main.ts', 'webview/rank': 'webview/rank/main.ts' },
    outdir: 'dist',
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
  },
  {
    // The pure math as a public CommonJS library (`require('./dist/core.js')`); it imports nothing.
    ...common,
    entryPoints: { core: 'src/core/index.ts' },
    outdir: 'dist',
    platform: 'neutral',
    target: 'es2022',
    format: 'cjs',
  },
  {
    ...common,
    minify: false,
    sourcemap: 'linked',
    entryPoints: suiteEntries,
    outdir: 'out/test/suite',
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: [...nodeExternals, 'mocha'],
  },
];

/** Lines the VS Code watch task's problem matcher waits for (.vscode/tasks.json). */
const watchLog = {
  name: 'watch-log',
  setup(build) {
    build.onStart(() => console.log('[watch] build started'));
    build.onEnd((result) => console.log(`[watch] build finished with ${result.errors.length} error(s)`));
  },
};

// tfjs-backend-wasm loads its .wasm binaries from beside the bundle at run time (engine/tfjs/backend.ts).
mkdirSync('dist/wasm', { recursive: true });
for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) {
  cpSync(join('node_modules/@tensorflow/tfjs-backend-wasm/dist', file), join('dist/wasm', file));
}

// dist/core.js's type declarations: tsc emits src/core/'s into dist/core-types (tsconfig.core.json)
// and dist/core.d.ts re-exports them. Emitted once per run of this script, in watch mode too.
rmSync('dist/core-types', { recursive: true, force: true });
const tsc = spawnSync(
  process.execPath,
  [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.core.json'],
  { stdio: 'inherit' },
);
if (tsc.status !== 0) {
  throw new Error(
    `tsc -p tsconfig.core.json failed (${tsc.error?.message ?? `exit ${tsc.status}`}); fix the type errors it ` +
      `printed in src/core/.`,
  );
}
writeFileSync('dist/core.d.ts', "export * from './core-types/index';\n");

// The JSON Schema of *.rlhf.json (package.json `jsonValidation`), generated from the declarations in
// src/shared/runConfig.ts that also give the config's types and the trainer's validator.
const schemaBundle = await esbuild.build({
  entryPoints: ['src/shared/runConfigJsonSchema.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  write: false,
  logLevel: 'silent',
});
const schemaModule = { exports: {} };
new Function('module', 'exports', schemaBundle.outputFiles[0].text)(schemaModule, schemaModule.exports);
mkdirSync(dirname(schemaModule.exports.runConfigSchemaFile), { recursive: true });
writeFileSync(
  schemaModule.exports.runConfigSchemaFile,
  `${JSON.stringify(schemaModule.exports.runConfigJsonSchema(), null, 2)}\n`,
);

if (watch) {
  const contexts = await Promise.all(builds.map((options) => esbuild.context({ ...options, plugins: [watchLog] })));
  await Promise.all(contexts.map((context) => context.watch()));
  console.log('[watch] watching for changes');
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
