// A run started on one training engine resumes on the other through the real command line
// (`node dist/trainer.js`; run `npm run build` first): an SFT stage is killed with SIGKILL after its
// step-20 checkpoint, resumed with RLHF_LENS_ENGINE (the editor's rlhf.defaultEngine) naming the other
// engine, and continues with the losses of an uninterrupted run. Checkpoints (weights and AdamW moments
// as named tensors) are engine-neutral, so only float rounding separates the two engines' steps.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { chooseOrtProvider } from '../../src/trainer/engine/onnxruntime/ortProvider';

const trainer = path.join(__dirname, '..', '..', 'dist', 'trainer.js');
const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-engines-'));
const killHook = path.join(workDir, 'kill.cjs');
const configFile = path.join(workDir, 'sft.rlhf.json');
const maxSteps = 40;
const checkpointStep = 20;
/** The kill comes at the 25th metrics line: past the step-20 checkpoint, before the end. */
const killAtMetricsLine = 25;
/** The bar for the same run on both engines: losses equal to 1e-3 (relative above 1). */
const lossTolerance = 1e-3;

const sftRun = {
  name: 'engines',
  seed: 5,
  backend: 'wasm',
  engine: 'auto',
  model: { n_layer: 1, n_head: 2, n_embd: 32, block_size: 40, dropout: 0 },
  tokenizer: { vocab_size: 300 },
  stages: [
    {
      type: 'sft',
      dataset: { source: 'demo', num_examples: 2000 },
      learning_rate: 0.005,
      max_steps: maxSteps,
      warmup_steps: 5,
      eval_steps: 1000,
      save_steps: checkpointStep,
    },
  ],
};

/** SIGKILL before the n-th write to metrics.jsonl (one line a step here: evaluation only at the end). */
const killHookSource = String.raw`
const fs = require('node:fs');
const at = Number(process.env.RLHF_TEST_KILL_AT);
const original = {
  appendFileSync: fs.appendFileSync, openSync: fs.openSync, writeSync: fs.writeSync, closeSync: fs.closeSync,
};
const metricsFiles = new Set();
let seen = 0;
const count = () => { if (++seen === at) process.kill(process.pid, 'SIGKILL'); };
const isMetrics = (file) => /metrics\.jsonl$/.test(String(file));
fs.appendFileSync = function (file, ...rest) {
  if (typeof file !== 'number' && isMetrics(file)) count();
  if (typeof file === 'number' && metricsFiles.has(file)) count();
  return original.appendFileSync.call(fs, file, ...rest);
};
fs.openSync = function (file, ...rest) {
  const fd = original.openSync.call(fs, file, ...rest);
  if (isMetrics(file)) metricsFiles.add(fd);
  return fd;
};
// A closed descriptor's number is reused for other files.
fs.closeSync = function (fd) {
  metricsFiles.delete(fd);
  return original.closeSync.call(fs, fd);
};
fs.writeSync = function (fd, ...rest) {
  if (metricsFiles.has(fd)) count();
  return original.writeSync.call(fs, fd, ...rest);
};
`;

type Engine = 'tfjs' | 'onnxruntime';

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

function cli(args: string[], engine: Engine, options: { killAt?: number } = {}): Promise<Exit> {
  const preload = options.killAt ? ['--require', killHook] : [];
  const env = { ...process.env, RLHF_LENS_ENGINE: engine, RLHF_TEST_KILL_AT: String(options.killAt ?? 0) };
  const child = spawn(process.execPath, [...preload, trainer, ...args], {
    cwd: workDir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
}

const onlyRun = (runsRoot: string) => {
  const [id] = readdirSync(runsRoot);
  return path.join(runsRoot, id);
};
const runJsonOf = (runDir: string) =>
  JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as Record<string, unknown>;
const metricsLines = (runDir: string) => readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
/** loss/train by step, from metrics.jsonl. */
const trainLosses = (runDir: string) =>
  new Map(
    readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, number>)
      .filter((row) => row['loss/train'] !== undefined)
      .map((row) => [row.step, row['loss/train']]),
  );

let uninterrupted: Map<number, number>;

before(async () => {
  assert.ok(existsSync(trainer), 'run npm run build first');
  writeFileSync(killHook, killHookSource);
  writeFileSync(configFile, JSON.stringify(sftRun, null, 2));
  const runsRoot = path.join(workDir, 'uninterrupted');
  const whole = await cli(['train', configFile, '--runs-dir', runsRoot], 'tfjs');
  assert.equal(whole.code, 0, whole.stderr);
  uninterrupted = trainLosses(onlyRun(runsRoot));
  assert.equal(uninterrupted.size, maxSteps);
});

after(() => rmSync(workDir, { recursive: true, force: true }));

for (const [first, second] of [
  ['tfjs', 'onnxruntime'],
  ['onnxruntime', 'tfjs'],
] as const) {
  test(`a run started on ${first} resumes on ${second} and continues as an uninterrupted run`, async () => {
    const runsRoot = path.join(workDir, `${first}-then-${second}`);
    const killed = await cli(['train', configFile, '--runs-dir', runsRoot], first, { killAt: killAtMetricsLine });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const runDir = onlyRun(runsRoot);
    assert.equal(runJsonOf(runDir).engine, first);
    assert.ok(
      existsSync(path.join(runDir, 'checkpoints', `step-${checkpointStep}`)),
      `no step-${checkpointStep} checkpoint: ${readdirSync(runDir).join(', ')}`,
    );

    const linesBefore = metricsLines(runDir);
    const resumed = await cli(['train', '--resume', runDir], second);
    assert.equal(resumed.code, 0, resumed.stderr);
    // It continued from the checkpoint (a restart from step 1 on the other engine would also match the losses).
    assert.match(resumed.stderr, new RegExp(`resuming from .*step-${checkpointStep} \\(step ${checkpointStep}\\)`));
    assert.deepEqual(
      metricsLines(runDir).slice(0, checkpointStep),
      linesBefore.slice(0, checkpointStep),
      `the first engine's ${checkpointStep} metrics lines are kept as written`,
    );
    assert.match(resumed.stderr, new RegExp(`engine: ${second} \\(.*RLHF_LENS_ENGINE`));
    const runJson = runJsonOf(runDir);
    assert.equal(runJson.status, 'completed');
    assert.equal(runJson.engine, second);
    assert.match(String(runJson.engine_reason), /rlhf\.defaultEngine/);
    // The backend the second engine computed on: ONNX Runtime's CPU execution provider, or tfjs's wasm.
    if (second === 'onnxruntime') {
      // The provider this machine gives (ortProvider.ts), with why, then the threads.
      const provider = await chooseOrtProvider();
      assert.equal(runJson.backend, provider.label);
      const providerName = provider.name === 'webgpu' ? 'webgpu' : 'CPU';
      const why = provider.reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(
        String(runJson.backend_reason),
        new RegExp(
          `^onnxruntime-node's ${providerName} execution provider \\(${why}\\), ` +
            /\d+ intra-op threads?( \(not spinning\))? for training, 1 for sampling: /.source,
        ),
      );
    } else assert.equal(runJson.backend, 'wasm');

    const losses = trainLosses(runDir);
    assert.deepEqual([...losses.keys()], [...uninterrupted.keys()], 'one loss a step, none doubled or missing');
    for (const [step, expected] of uninterrupted) {
      const actual = losses.get(step)!;
      assert.ok(
        Math.abs(actual - expected) <= lossTolerance * Math.max(1, Math.abs(expected)),
        `step ${step}: ${actual} on ${step <= checkpointStep ? first : second} against ${expected} uninterrupted`,
      );
    }
  });
}
