// The `rlhf-lens` command's one error path, driven as a user drives it: the built CLI
// (`node dist/trainer.js`, so run `npm run build` first) with stdout and stderr through pipes.
// Every subcommand answers --help; user errors print `error: <file>:<line>: <what> — <what to do>`
// without a stack; values are cut to 200 characters; configs that cannot run (a missing dataset,
// 200k-deep nesting, a model that cannot fit in memory) are refused before any run folder exists;
// and the last error line arrives even when the reader of the pipe is slow.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';

const trainer = path.join(import.meta.dirname, '..', '..', 'dist', 'trainer.js');
const work = mkdtempSync(path.join(tmpdir(), 'rlhf-cli-errors-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs the CLI with pipes; `slowReaderMs` leaves stderr unread that long, as a busy reader would. */
function cli(args: string[], options: { slowReaderMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  assert.ok(existsSync(trainer), `${trainer} is missing: run npm run build`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [trainer, ...args], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RLHF_LENS_DEBUG: '', ...options.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    if (options.slowReaderMs) {
      child.stderr.pause();
      setTimeout(() => child.stderr.on('data', (chunk: Buffer) => err.push(chunk)).resume(), options.slowReaderMs);
    } else {
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    }
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        seconds: (performance.now() - started) / 1000,
      }),
    );
  });
}

const stackLine = /^\s+at .+[:(]/m;
const lastLine = (text: string) => text.trimEnd().split('\n').at(-1) ?? '';

function writeConfig(name: string, config: unknown): { file: string; runs: string } {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.rlhf.json`);
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return { file, runs: path.join(dir, 'runs') };
}

const noRunFolder = (runs: string) =>
  assert.ok(
    !existsSync(runs) || readdirSync(runs).length === 0,
    `a run folder was written: ${existsSync(runs) ? readdirSync(runs).join(', ') : ''}`,
  );

for (const command of ['train', 'demo', 'sample', 'export', 'inspect']) {
  for (const flag of ['--help', '-h']) {
    test(`rlhf-lens ${command} ${flag} prints its usage on stdout and exits 0`, async () => {
      const result = await cli([command, flag]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^Usage: rlhf-lens ${command} `));
      assert.equal(result.stderr, '');
    });
  }
  test(`rlhf-lens ${command} with an unknown option prints the usage and exits 2, without a stack`, async () => {
    const result = await cli([command, '--no-such-option', 'x']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^error: unknown option "--no-such-option" — see the usage below\nUsage: rlhf-lens /);
    assert.doesNotMatch(result.stderr, stackLine);
  });
}

test('rlhf-lens --help lists every command; an unknown command exits 2 with the usage', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  for (const command of ['train', 'demo', 'sample', 'export', 'inspect'])
    assert.match(help.stdout, new RegExp(`rlhf-lens ${command} `));
  const unknown = await cli(['trian']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^error: unknown command "trian"/);
});

test('sample on a folder that does not exist: one error line naming it, no stack; --debug adds the stack', async () => {
  const missing = path.join(work, 'no-such-checkpoint');
  const result = await cli(['sample', missing]);
  assert.equal(result.code, 1);
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
  assert.match(result.stderr, /^error: .*no-such-checkpoint.* — give a checkpoint folder/);
  assert.doesNotMatch(result.stderr, stackLine);
  const debug = await cli(['sample', missing, '--debug']);
  assert.equal(debug.code, 1);
  assert.match(debug.stderr, stackLine);
  assert.match(lastLine(debug.stderr), /^error: /);
});

test('sample on a damaged checkpoint (truncated config.json): the folder is named, no stack', async () => {
  const dir = path.join(work, 'damaged-checkpoint');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), '{"model_type": "rlhf-lens-gpt", "n_la');
  for (const file of ['model.safetensors', 'trainer_state.json', 'tokenizer.json'])
    writeFileSync(path.join(dir, file), '');
  const result = await cli(['sample', dir]);
  assert.equal(result.code, 1);
  assert.ok(result.stderr.includes(dir), result.stderr);
  assert.match(result.stderr, /^error: /);
  assert.doesNotMatch(result.stderr, stackLine);
  assert.doesNotMatch(result.stderr, /internal error/);
});

test('a bad number option names the option and the value', async () => {
  const result = await cli(['sample', work, '--top-p', 'lots']);
  assert.equal(result.code, 1);
  assert.equal(result.stderr, 'error: --top-p must be a number, got "lots" — give --top-p a number\n');
});

test("inspect's β flag is the config's name (--init-kl-coef); its old name --kl-coef is read; not both", async () => {
  const models = ['--policy', work, '--reference', work];
  const bad = await cli(['inspect', ...models, '--init-kl-coef', 'lots']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'error: --init-kl-coef must be a number, got "lots" — give --init-kl-coef a number\n');
  const old = await cli(['inspect', ...models, '--kl-coef', 'lots']);
  assert.equal(old.code, 1);
  assert.equal(old.stderr, 'error: --kl-coef must be a number, got "lots" — give --kl-coef a number\n');
  const both = await cli(['inspect', ...models, '--init-kl-coef', '0.1', '--kl-coef', '0.1']);
  assert.equal(both.code, 2);
  assert.match(
    both.stderr,
    /^error: give β once: --init-kl-coef \(--kl-coef is its old name\) — see the usage below\n/,
  );
  const estimator = await cli(['inspect', ...models, '--kl-estimator', 'k9']);
  assert.equal(estimator.code, 1);
  assert.match(estimator.stderr, /--kl-estimator must be k1, k2, k3 or abs, got "k9"/);
});

test('train with a dataset path that does not exist: file:line of the path, and no run folder', async () => {
  const { file, runs } = writeConfig('missing-dataset', {
    name: 'missing',
    stages: [{ type: 'sft', dataset: { source: 'jsonl', path: 'no-such.jsonl' } }],
  });
  const line =
    readFileSync(file, 'utf8')
      .split('\n')
      .findIndex((text) => text.includes('no-such.jsonl')) + 1;
  const result = await cli(['train', file, '--runs-dir', runs]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`^error: .*missing-dataset\\.rlhf\\.json:${line}:\\d+: stages`, 'm'));
  assert.match(result.stderr, /stages\[0\]\.dataset\.path the JSONL file "no-such\.jsonl" does not exist/m);
  assert.match(lastLine(result.stderr), /^error: .*: the run config has 1 problem — fix them/);
  assert.doesNotMatch(result.stderr, stackLine);
  noRunFolder(runs);
});

test('a 50 MB run name is quoted cut to 200 characters', async () => {
  const name = `has space ${'x'.repeat(50_000_000)}`;
  const { file, runs } = writeConfig(
    'huge-name',
    `{"name": ${JSON.stringify(name)}, "stages": [{"type": "sft", "dataset": {"source": "demo"}}]}`,
  );
  const result = await cli(['train', file, '--runs-dir', runs]);
  assert.equal(result.code, 1);
  assert.ok(result.stderr.length < 2000, `stderr has ${result.stderr.length} characters`);
  assert.match(
    result.stderr,
    /name must have at most 64 characters, got 50000010: "has space x{189}… \(49999812 more characters\)/,
  );
  noRunFolder(runs);
});

test('a config nested 200,000 levels deep is refused with a clear error, not a stack overflow', async () => {
  const { file, runs } = writeConfig(
    'deep',
    `{"name": "deep", "stages": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
  );
  const result = await cli(['train', file, '--runs-dir', runs]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: .*deep\.rlhf\.json:1:\d+: nests objects and lists more than 64 levels deep/);
  assert.doesNotMatch(result.stderr, /Maximum call stack|internal error/);
  noRunFolder(runs);
});

test('the last error line arrives through a pipe whose reader is slow, every time', async () => {
  // 3000 unknown settings: ~300 KB of error lines, far more than a pipe holds, then the summary.
  const stage: Record<string, unknown> = { type: 'sft', dataset: { source: 'demo' } };
  for (let i = 0; i < 3000; i++) stage[`no_such_setting_${i}`] = i;
  const { file, runs } = writeConfig('many-problems', { name: 'many', stages: [stage] });
  for (let attempt = 0; attempt < 4; attempt++) {
    const result = await cli(['train', file, '--runs-dir', runs], { slowReaderMs: 300 });
    assert.equal(result.code, 1);
    assert.equal(result.stderr.split('\n').filter((line) => line.startsWith('error: ')).length, 3001);
    assert.match(
      lastLine(result.stderr),
      /^error: .*many-problems\.rlhf\.json: the run config has 3000 problems — fix them/,
    );
  }
});

// The memory guard, through the CLI: refused in seconds, with the estimate and what fits, before any run folder.
const memoryCases: [string, Record<string, unknown>, RegExp][] = [
  [
    '32 layers × 2048 wide',
    {
      model: { n_layer: 32, n_head: 16, n_embd: 2048, block_size: 256 },
      stages: [{ type: 'sft', dataset: { source: 'demo' } }],
    },
    new RegExp(
      /model stage "sft" needs about \d+(\.\d)? GiB \(weights .*\), /.source +
        /more than the wasm backend's 4 GiB of memory — /.source +
        /even at the smallest batch the model is too big; what fits: n_layer \d+/.source,
    ),
  ],
  [
    'block 2048 × batch 1024',
    {
      model: { n_layer: 2, n_head: 4, n_embd: 64, block_size: 2048 },
      stages: [{ type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: 1024 }],
    },
    new RegExp(
      /stages\[0\]\.per_device_train_batch_size stage "sft" needs about \d+(\.\d)? TiB .* — /.source +
        /the largest per_device_train_batch_size that fits is \d+; lower it/.source,
    ),
  ],
];
for (const [label, config, expected] of memoryCases) {
  test(
    `the memory guard refuses ${label} on wasm quickly, with the estimate and what fits, and writes no run ` + `folder`,
    async () => {
      const { file, runs } = writeConfig(`memory-${label.replace(/\W+/g, '-')}`, {
        name: 'big',
        engine: 'tfjs',
        backend: 'wasm',
        ...config,
      });
      const result = await cli(['train', file, '--runs-dir', runs]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, expected);
      assert.match(result.stderr, /^error: .*\.rlhf\.json:\d+:\d+: /);
      assert.ok(result.seconds < 5, `took ${result.seconds.toFixed(1)} s`);
      noRunFolder(runs);
    },
  );
}

test("on the ONNX Runtime engine the memory guard sizes against the free memory, not wasm's 4 GiB", async () => {
  const { file, runs } = writeConfig('memory-onnxruntime', {
    name: 'big',
    engine: 'onnxruntime',
    model: { n_layer: 32, n_head: 16, n_embd: 2048, block_size: 256 },
    stages: [{ type: 'sft', dataset: { source: 'demo' } }],
  });
  const result = await cli(['train', file, '--runs-dir', runs]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    new RegExp(
      /model stage "sft" needs about \d+(\.\d)? GiB \(weights .*\), more than this machine's free memory /.source +
        /\(\d+(\.\d)? GiB\) — even at the smallest batch the model is too big; what fits: n_layer \d+/.source,
    ),
  );
  assert.ok(result.seconds < 5, `took ${result.seconds.toFixed(1)} s`);
  noRunFolder(runs);
});

test(
  '48 layers × 4096 wide, and block 4096 × batch 4096, ' +
    "are beyond the schema's maxima: refused at once, no run folder",
  async () => {
    const { file, runs } = writeConfig('beyond-maxima', {
      name: 'big',
      model: { n_layer: 48, n_head: 32, n_embd: 4096, block_size: 4096 },
      stages: [{ type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: 4096 }],
    });
    const result = await cli(['train', file, '--runs-dir', runs]);
    assert.equal(result.code, 1);
    for (const problem of [
      /model\.n_layer must be ≤ 32, got 48/,
      /model\.n_embd must be ≤ 2048, got 4096/,
      /model\.block_size must be ≤ 2048, got 4096/,
      /per_device_train_batch_size must be ≤ 1024, got 4096/,
    ])
      assert.match(result.stderr, problem);
    assert.ok(result.seconds < 5, `took ${result.seconds.toFixed(1)} s`);
    noRunFolder(runs);
  },
);
