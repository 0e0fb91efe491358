// The one test command (`npm test`, which the README and .ci/run call): installs the tools the test
// layers need, brings up a one-node Slurm cluster, builds, lints, and runs every layer — unit, reliability,
// webview (headless Chromium), the quick demo and real VS Code (code-server). No layer is skipped silently: a
// layer that cannot run is listed as failed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const results = [];
const counts = { passed: 0, failed: 0 };
const reportDir = join('test-results', 'reports');
rmSync(reportDir, { recursive: true, force: true });
mkdirSync(reportDir, { recursive: true });

function step(name, command, args, env = {}) {
  console.log(`\n=== ${name}: ${[command, ...args].join(' ')}`);
  const started = Date.now();
  const result = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  results.push({
    name,
    ok,
    seconds,
    detail: result.error?.message ?? (result.signal ? `signal ${result.signal}` : `exit ${result.status}`),
  });
  return ok;
}

/** A node:test layer: spec output for people, TAP to a file so the totals can be counted. */
function nodeTests(name, files) {
  const tap = join(reportDir, `${name}.tap`);
  const ok = step(`${name} tests`, process.execPath, [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ]);
  try {
    const text = readFileSync(tap, 'utf8');
    counts.passed += Number(/^# pass (\d+)/m.exec(text)?.[1] ?? 0);
    counts.failed += Number(/^# fail (\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    counts.failed += 1; // the layer did not even report
  }
  return ok;
}

/**
 * The Python package's layer (python/tests: RunWriter and the PyTorch example end to end) with Debian's Python,
 * counted from unittest's own summary: "Ran N tests", then "OK (skipped=k)" or "FAILED (failures=f, errors=e, …)".
 */
const pythonFailures = [];
function pythonTests(name, python, args) {
  console.log(`\n=== ${name}: ${[python, ...args].join(' ')}`);
  const started = Date.now();
  const result = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  process.stdout.write(result.stdout ?? '');
  process.stderr.write(result.stderr ?? '');
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const text = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
  const ran = /^Ran (\d+) tests? in /m.exec(text);
  const count = (key) => Number(new RegExp(`^(?:OK|FAILED) \\(.*\\b${key}=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  const failed = count('failures') + count('errors') + count('unexpected successes');
  const ok = result.status === 0 && ran !== null;
  if (ran) {
    counts.passed += Number(ran[1]) - failed - count('skipped') - count('expected failures');
    counts.failed += failed;
  }
  if (!ok && failed === 0) counts.failed += 1; // it failed without a failing test (it did not even start)
  // unittest's "FAIL: test (module.Class.test)" / "ERROR: …" headers, for the summary's failing tests.
  for (const match of text.matchAll(/^(FAIL|ERROR): (.+)$/gm)) pythonFailures.push(`${match[2]} (${match[1]})`);
  results.push({
    name,
    ok,
    seconds,
    detail:
      result.error?.message ??
      (result.signal
        ? `signal ${result.signal}`
        : ran
          ? `exit ${result.status}: ${failed} failed`
          : `exit ${result.status}, no "Ran N tests" line`),
  });
  return ok;
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const glob = (dir) =>
  readdirSync(dir)
    .filter((file) => file.endsWith('.test.ts'))
    .sort()
    .map((file) => join(dir, file));

/** A step or layer that could not run: listed as failed in the summary, with why. */
function notRun(name, reason) {
  console.log(`\n=== ${name}: not run (${reason})`);
  results.push({ name, ok: false, seconds: '0.0', detail: `not run: ${reason}` });
  return false;
}

// Tools first: a machine that cannot get them fails here with the reason, not later with a riddle.
const toolsOk = step('test tools (Chromium, Node 24, code-server, EGL for WebGPU)', process.execPath, [
  'scripts/ensureTestTools.mjs',
]);
// The real Slurm scheduler for the cluster tests (a one-node cluster from Debian's packages, brought up as root;
// not root, it must already answer). When it cannot be had, the step fails with why, and the tests that submit jobs
// fail with the same reason (test/fixtures/slurm/slurm.ts reads RLHF_LENS_SLURM_UNAVAILABLE) instead of skipping.
if (!step('Slurm cluster (one node: slurmctld, slurmd, munge)', process.execPath, ['scripts/slurmCluster.mjs'])) {
  process.env.RLHF_LENS_SLURM_UNAVAILABLE =
    'the test command could not bring up the Slurm cluster (see "Slurm cluster" above)';
}
const built = step('build', npm, ['run', 'build']);
step('lint and type-check', npm, ['run', 'lint']);
const noBuild = 'the build failed';
const noTools = 'the test tools could not be installed (see "test tools" above)';
if (built) nodeTests('unit', glob('test/unit'));
else notRun('unit tests', noBuild);
// The built CLI attacked as a hostile user would (kill -9, a full tmpfs, broken and damaged files).
if (built) nodeTests('reliability', glob('test/reliability'));
else notRun('reliability tests', noBuild);
// The Python package (standard library) and its PyTorch example, on Debian's python3 and python3-torch.
const python = '/usr/bin/python3';
if (existsSync(python)) pythonTests('python tests', python, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-v']);
else notRun('python tests', `${python} is missing (the test tools step installs Debian's python3 and python3-torch)`);
if (built && toolsOk) nodeTests('webview', glob('test/webview'));
else notRun('webview tests', built ? noTools : noBuild);
// The main job at the quick scale: the RLHF loop must improve on SFT (README's first command).
if (built) nodeTests('demo', glob('test/demo'));
else notRun('demo tests', noBuild);
const packaged = built ? step('package the .vsix', npm, ['run', 'package']) : notRun('package the .vsix', noBuild);
// The extension-host suite loads the extension from the work tree: rebuild with source maps so
// its stack traces point at the sources (package left a minified build).
if (!packaged) notRun('vscode tests', built ? 'packaging failed' : noBuild);
else if (!toolsOk) notRun('vscode tests', noTools);
else if (step('build for the extension-host suite', npm, ['run', 'build'])) nodeTests('vscode', glob('test/vscode'));
else notRun('vscode tests', 'the rebuild for the extension-host suite failed');

/**
 * Each failing test of the layers' TAP reports, with the first lines of its error: the summary is the tail a CI log
 * keeps, so why a test failed must be in it, not only thousands of lines above.
 */
function failuresFromTap(text) {
  const lines = text.split('\n');
  const failures = [];
  for (let i = 0; i < lines.length; i++) {
    const failed = /^(\s*)not ok \d+ - (.*)$/.exec(lines[i]);
    if (!failed) continue;
    const detail = [];
    // The YAML block under the result: keep only what is under its "error:" key (the message), not the stack.
    // Its keys are indented two spaces more than its "not ok" line; their values, more.
    const keyLine = new RegExp(`^${failed[1]}  ([A-Za-z_]+):(.*)$`);
    let section = '';
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]); j++) {
      const key = keyLine.exec(lines[j]);
      if (key) {
        section = key[1];
        if (section === 'error' && !['', '|-'].includes(key[2].trim())) detail.push(key[2].trim());
      } else if (section === 'error' && lines[j].trim() !== '') detail.push(lines[j].trim());
    }
    failures.push({ name: failed[2], detail });
  }
  return failures;
}

const indent = (lines) => lines.map((line) => `      ${line}`).join('\n');
const tapFailures = readdirSync(reportDir)
  .filter((file) => file.endsWith('.tap'))
  .flatMap((file) => failuresFromTap(readFileSync(join(reportDir, file), 'utf8')))
  .concat(pythonFailures.map((name) => ({ name, detail: [] })));
const failureBlock = ({ name, detail }) => `  ✖ ${name}\n${indent(detail.slice(0, 24))}`;
if (tapFailures.length > 0) console.log(`\n=== failing tests\n${tapFailures.map(failureBlock).join('\n')}`);

console.log('\n=== summary');
for (const { name, ok, seconds, detail } of results)
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${seconds} s)${ok ? '' : ` — ${detail}`}`);
// A layer that did not run, or a step that failed without failing a test, still counts as a failure.
const failedSteps = results.filter((result) => !result.ok).length;
counts.failed += results.filter((result) => result.detail.startsWith('not run')).length;
if (failedSteps > 0 && counts.failed === 0) counts.failed = failedSteps;
// A CI log keeps only its last lines: each failing test once more, in a few lines, right above the count.
for (const { name, detail } of tapFailures.slice(0, 4))
  console.log(`✖ ${name.slice(0, 160)}\n${indent(detail.slice(0, 6).map((line) => line.slice(0, 200)))}`);
console.log(`${counts.passed} passed, ${counts.failed} failed`);
process.exit(failedSteps > 0 ? 1 : 0);
