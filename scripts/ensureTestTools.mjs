// Makes sure the tools for the "real VS Code" tests exist: Debian's chromium (driven by playwright-core,
// whose own browser download cannot work offline) and code-server 4.139.1 (VS Code in a browser, with a
// real extension host) run by Node 24 from the npm package `node@24`; and Debian's EGL and OpenGL ES
// libraries, on which Dawn (the `webgpu` package) finds a software adapter (Mesa's llvmpipe) for the unit
// tests of the tfjs webgpu backend; the report names the adapter found. Idempotent: a marker file records a
// finished install, so a second run only checks. Usage: `node scripts/ensureTestTools.mjs`.
//
// code-server lives in the tools' cache outside the repository (scripts/testToolsEnv.mjs says where;
// RLHF_LENS_TOOLS_CACHE points it elsewhere). Every nested install runs with a clean environment: under
// `npm test` the variables npm exports would make code-server's postinstall refuse to run.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanInstallEnv, CODE_SERVER_VERSION, codeServerDir } from './testToolsEnv.mjs';

const NODE_SPEC = 'node@24';
const CHROMIUM = '/usr/bin/chromium';
// The Python package's tests and its PyTorch example (python/) run on Debian's Python and PyTorch; the TensorBoard
// importer's test fixtures serialize event protos with Debian's protobuf runtime.
const PYTHON = '/usr/bin/python3';
const PYTHON_PACKAGES = ['python3', 'python3-torch', 'python3-numpy', 'libopenblas0-pthread', 'python3-protobuf'];

// Dawn's OpenGL ES backend loads EGL and GLES through these; Mesa's EGL brings llvmpipe (ENVIRONMENT.md, GPU).
const EGL_PACKAGES = ['libegl1', 'libgles2', 'libegl-mesa0'];
const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));

const installEnv = cleanInstallEnv();
const dir = codeServerDir();
const marker = join(dir, 'installed.json');
const node24 = join(dir, 'node_modules', 'node', 'bin', 'node');
const entry = join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const say = (message) => console.log(`[ensureTestTools] ${message}`);

function fail(message) {
  console.error(`[ensureTestTools] ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', env: installEnv, ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

/** Whether Debian's Python imports torch, numpy (the Python layer, the PyTorch example) and protobuf (fixtures). */
function pythonTorchReady() {
  const result = spawnSync(PYTHON, ['-c', 'import torch, numpy, google.protobuf'], {
    stdio: 'ignore',
    env: installEnv,
  });
  return result.status === 0;
}

/** Whether dpkg records every one of `packages` as installed (false where there is no dpkg). */
function debianPackagesInstalled(packages) {
  const query = spawnSync('dpkg-query', ['-W', '-f=${Status}\n', ...packages], { encoding: 'utf8' });
  if (query.status !== 0) return false;
  return query.stdout
    .trim()
    .split('\n')
    .every((status) => status.endsWith(' installed'));
}

/**
 * The adapter Dawn finds through OpenGL ES in compatibility mode, the way src/trainer/engine/webgpu/dawn.ts
 * asks: its description, or undefined and why not.
 */
function webgpuAdapter() {
  const probe = `
    const { create } = await import('webgpu');
    const adapter = await create(['backend=opengles']).requestAdapter({ featureLevel: 'compatibility' });
    const info = adapter && { device: adapter.info.device, description: adapter.info.description };
    console.log(JSON.stringify(info));`;
  const env = {
    ...installEnv,
    EGL_PLATFORM: 'surfaceless',
    XDG_RUNTIME_DIR: installEnv.XDG_RUNTIME_DIR ?? mkdtempSync(join(tmpdir(), 'rlhf-lens-xdg-')),
  };
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', probe], {
    cwd: repositoryRoot,
    encoding: 'utf8',
    env,
  });
  const line = result.stdout?.trim().split('\n').at(-1) ?? '';
  try {
    const adapter = JSON.parse(line);
    if (adapter) return { adapter };
  } catch {
    // not JSON: the probe failed; its stderr says why
  }
  return { why: (result.stderr || 'Dawn found no OpenGL ES adapter').trim().split('\n').slice(0, 3).join(' / ') };
}

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

// ---- (a) System packages, from Debian -------------------------------------------------------------

const codeServerReady = existsSync(marker) && existsSync(node24) && existsSync(entry);
const aptMissing = [];
if (!existsSync(CHROMIUM)) aptMissing.push('chromium');
const torchReady = pythonTorchReady();
if (!torchReady) aptMissing.push(...PYTHON_PACKAGES);
if (!debianPackagesInstalled(EGL_PACKAGES)) aptMissing.push(...EGL_PACKAGES);
if (!codeServerReady) {
  // Only needed to build code-server's native modules (kerberos needs the GSSAPI headers; node-gyp
  // needs a compiler, make and Python).
  if (!existsSync('/usr/include/gssapi/gssapi.h')) aptMissing.push('libkrb5-dev');
  if (!onPath('make') || !onPath('g++')) aptMissing.push('build-essential');
  if (!onPath('python3') && !aptMissing.includes('python3')) aptMissing.push('python3');
}

if (aptMissing.length === 0) {
  const buildTools = codeServerReady ? '' : ', libkrb5-dev, build tools';
  say(
    `system packages present (${CHROMIUM}, ${PYTHON} with torch, numpy and protobuf, ` +
      `${EGL_PACKAGES.join(' ')}${buildTools})`,
  );
} else {
  const advice = `Install them with: sudo apt-get update && sudo apt-get install -y ${aptMissing.join(' ')}`;
  if (process.getuid?.() !== 0)
    fail(`missing Debian packages: ${aptMissing.join(', ')}; not root, so not installing. ${advice}`);
  if (!onPath('apt-get')) fail(`missing packages: ${aptMissing.join(', ')}, and there is no apt-get here. ${advice}`);
  say(`installing Debian packages: ${aptMissing.join(' ')}`);
  const env = { ...installEnv, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update'], { env }) !== 0 || run('apt-get', ['install', '-y', ...aptMissing], { env }) !== 0) {
    fail(`apt-get failed. ${advice}`);
  }
  if (!existsSync(CHROMIUM)) fail(`apt-get finished but ${CHROMIUM} is still missing. ${advice}`);
  if (!torchReady && !pythonTorchReady())
    fail(`apt-get finished but ${PYTHON} still cannot import torch, numpy and google.protobuf. ${advice}`);
  say(`Debian packages installed (${seconds()})`);
}

// The EGL packages work when Dawn finds an adapter on them: the unit tests of the webgpu backend need one.
const webgpu = webgpuAdapter();
if (!webgpu.adapter)
  fail(`Dawn finds no WebGPU adapter through OpenGL ES (${EGL_PACKAGES.join(', ')} installed): ${webgpu.why}`);
say(`WebGPU adapter for the tests: ${webgpu.adapter.device} (${webgpu.adapter.description}), OpenGL ES, compatibility`);

// ---- (b) code-server and Node 24, from npm ---------------------------------------------------------

if (codeServerReady) {
  const recorded = JSON.parse(readFileSync(marker, 'utf8'));
  say(`code-server ${recorded.codeServer} on Node ${recorded.node} already installed in ${dir}`);
  process.exit(0);
}

say(`installing code-server ${CODE_SERVER_VERSION} and ${NODE_SPEC} into ${dir} (about 2 minutes)`);
// A half-finished earlier attempt would confuse npm; start clean.
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
// npm 11 warns about (and with `strict-allow-scripts` refuses) dependency install scripts that the
// project's `allowScripts` does not cover. These three are needed: node's preinstall fetches the
// platform binary package, code-server's postinstall runs `npm install` in lib/vscode (which builds
// VS Code's native modules), and argon2 loads its prebuilt binary.
writeFileSync(
  join(dir, 'package.json'),
  JSON.stringify(
    { name: 'rlhf-lens-test-tools', private: true, allowScripts: { node: true, 'code-server': true, argon2: true } },
    null,
    2,
  ),
);

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npmArgs = ['install', '--prefix', dir, '--no-audit', '--no-fund', '--no-update-notifier'];
if (run(npm, [...npmArgs, NODE_SPEC], { cwd: dir }) !== 0 || !existsSync(node24))
  fail(`npm install ${NODE_SPEC} failed`);
const nodeVersion = execFileSync(node24, ['--version'], { encoding: 'utf8', env: installEnv }).trim();
say(`Node ${nodeVersion} installed (${seconds()})`);

// node-gyp must compile against Node 24's headers. It would download them from nodejs.org (offline
// here), or use a `nodedir` from the user's npm config (e.g. /usr: the system Node 20's headers, which
// builds modules that Node 24 refuses). The platform package that `node@24` pulls in ships the headers;
// copy them out of node_modules, where the next `npm install` may move them while node-gyp runs.
const nodeDeps = join(dir, 'node_modules', 'node', 'node_modules');
const platformPackage = existsSync(nodeDeps)
  ? readdirSync(nodeDeps).find((name) => existsSync(join(nodeDeps, name, 'include', 'node', 'node_version.h')))
  : undefined;
if (!platformPackage) fail(`the ${NODE_SPEC} package brought no C headers (looked in ${nodeDeps}/*/include/node)`);
const headers = join(dir, 'node-headers');
cpSync(join(nodeDeps, platformPackage, 'include'), join(headers, 'include'), { recursive: true });

const env = {
  ...installEnv,
  // code-server's postinstall refuses any Node but 24 (it reads npm's user agent), so npm itself must
  // run on Node 24: its `#!/usr/bin/env node` finds the first `node` on PATH.
  PATH: [join(dir, 'node_modules', 'node', 'bin'), installEnv.PATH].join(delimiter),
  npm_config_nodedir: headers,
  // Nothing here should download native binaries; onnxruntime-node would try CUDA files.
  ONNXRUNTIME_NODE_INSTALL: 'skip',
};
if (run(npm, [...npmArgs, `code-server@${CODE_SERVER_VERSION}`], { cwd: dir, env }) !== 0 || !existsSync(entry)) {
  fail(
    `npm install code-server@${CODE_SERVER_VERSION} failed (see the output above; its native modules need ` +
      `libkrb5-dev, make, g++, python3)`,
  );
}
say(`code-server installed (${seconds()})`);

// npm can finish with install scripts skipped (a policy, --ignore-scripts in a user config): then the
// native modules are missing and code-server fails only later, in the browser. Check them now.
const vscodeDir = join(dir, 'node_modules', 'code-server', 'lib', 'vscode');
const natives = ['node-pty', '@vscode/spdlog', 'kerberos', '@parcel/watcher', '@vscode/native-watchdog'];
const check = spawnSync(node24, ['-e', `for (const m of ${JSON.stringify(natives)}) require(m);`], {
  cwd: vscodeDir,
  encoding: 'utf8',
  env: installEnv,
});
if (check.status !== 0) fail(`code-server's native modules do not load under Node ${nodeVersion}:\n${check.stderr}`);
// An explicit (empty) config file, or code-server writes a default one with a password under ~/.config.
const emptyConfig = join(dir, 'empty-config.yaml');
writeFileSync(emptyConfig, '');
const version =
  spawnSync(node24, [entry, '--config', emptyConfig, '--version'], { encoding: 'utf8', env }).stdout?.trim() ?? '';
if (!version.startsWith(CODE_SERVER_VERSION))
  fail(`code-server --version printed "${version}", expected ${CODE_SERVER_VERSION}`);

writeFileSync(
  marker,
  JSON.stringify(
    { codeServer: CODE_SERVER_VERSION, node: nodeVersion, installedAt: new Date().toISOString() },
    null,
    2,
  ),
);
say(`done: code-server ${version.split(/\s+/)[0]} on Node ${nodeVersion}; native modules load (${seconds()})`);
