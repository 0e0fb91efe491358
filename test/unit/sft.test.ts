// SFT end to end through the real pipeline (wasm backend, real files): learning, determinism, leaks,
// resume, bad data, backend pinning and the checkpoint format.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { chooseOrtProvider } from '../../src/trainer/engine/onnxruntime/ortProvider';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { runPipeline, type PipelineCallbacks } from '../../src/trainer/pipeline';

interface Options {
  sft?: Record<string, unknown>;
  model?: Record<string, unknown>;
  backend?: string;
  dataset?: Record<string, unknown>;
  vocabSize?: number;
}

/** Writes a small SFT config into a fresh folder; returns its path and the runs folder beside it. */
function tinyConfig(options: Options = {}): { configFile: string; runsRoot: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-sft-'));
  const config = {
    name: 'tiny',
    seed: 7,
    backend: options.backend ?? 'wasm',
    model: { n_layer: 2, n_head: 2, n_embd: 32, block_size: 48, dropout: 0, ...options.model },
    tokenizer: { vocab_size: options.vocabSize ?? 300 },
    stages: [
      {
        type: 'sft',
        dataset: options.dataset ?? { source: 'demo', num_examples: 3000 },
        learning_rate: 0.004,
        max_steps: 12,
        per_device_train_batch_size: 8,
        warmup_steps: 2,
        eval_steps: 6,
        save_steps: 6,
        ...options.sft,
      },
    ],
  };
  const configFile = path.join(dir, 'tiny.rlhf.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { configFile, runsRoot: path.join(dir, '.rlhf', 'runs'), dir };
}

function quiet(logs: string[] = []): PipelineCallbacks {
  return { log: (level, message) => logs.push(`${level}: ${message}`) };
}

function metricsOf(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
}

const deterministicKeys = ['step', 'loss/train', 'lr', 'grad_norm', 'loss/eval', 'perplexity'];
const comparable = (rows: Record<string, number>[]) =>
  rows.map((row) => Object.fromEntries(deterministicKeys.filter((key) => key in row).map((key) => [key, row[key]])));

test('SFT on the demo corpus brings eval loss far below the unigram baseline', async () => {
  // The demo model's shape, trained briefly: measured eval loss ≈ 0.4 × the unigram baseline at 200 steps
  // (examples/demo-sft.rlhf.json reaches 0.2×).
  const { configFile, runsRoot } = tinyConfig({
    model: { n_embd: 64, n_head: 4, block_size: 64 },
    vocabSize: 512,
    dataset: { source: 'demo', num_examples: 20000 },
    sft: {
      max_steps: 250,
      learning_rate: 0.005,
      per_device_train_batch_size: 16,
      warmup_steps: 20,
      eval_steps: 250,
      save_steps: 250,
    },
  });
  const { runs } = await runPipeline({ configFile, runsRoot }, quiet());
  const runJson = JSON.parse(readFileSync(path.join(runs[0].runDir, 'run.json'), 'utf8'));
  const last = metricsOf(runs[0].runDir).at(-1) as Record<string, number>;
  assert.equal(runJson.status, 'completed');
  // The config leaves "engine" at "auto": ONNX Runtime, on the provider its probe chose (the CPU one here, where
  // no GPU adapter exists; webgpu on a machine with one).
  assert.equal(runJson.engine, 'onnxruntime');
  assert.equal(runJson.backend, (await chooseOrtProvider()).label);
  assert.ok(
    last['loss/eval'] < 0.5 * runJson.unigram_eval_loss,
    `eval loss ${last['loss/eval']} vs unigram ${runJson.unigram_eval_loss}`,
  );
  assert.equal(last.perplexity, Math.exp(last['loss/eval']));
});

test('the number of tensors is unchanged across 50 warmed-up steps', async () => {
  const { configFile, runsRoot } = tinyConfig({ sft: { max_steps: 60, eval_steps: 1000, save_steps: 1000 } });
  const counts: number[] = [];
  await runPipeline({ configFile, runsRoot }, { ...quiet(), onStep: () => counts.push(tf.memory().numTensors) });
  assert.equal(counts.length, 60);
  const warmed = counts.slice(9);
  assert.equal(warmed.length, 51);
  assert.deepEqual(new Set(warmed), new Set([warmed[0]]), `tensor counts drifted: ${warmed.join(',')}`);
});

test('the same seed gives the same run', async () => {
  const a = tinyConfig({ model: { dropout: 0.1 } });
  const b = tinyConfig({ model: { dropout: 0.1 } });
  const runA = await runPipeline({ configFile: a.configFile, runsRoot: a.runsRoot }, quiet());
  const runB = await runPipeline({ configFile: b.configFile, runsRoot: b.runsRoot }, quiet());
  assert.deepEqual(comparable(metricsOf(runA.runs[0].runDir)), comparable(metricsOf(runB.runs[0].runDir)));
});

test('a run stopped at a checkpoint and resumed equals an uninterrupted run', async () => {
  const whole = tinyConfig({ model: { dropout: 0.1 } });
  const uninterrupted = await runPipeline({ configFile: whole.configFile, runsRoot: whole.runsRoot }, quiet());

  const parts = tinyConfig({ model: { dropout: 0.1 } });
  let steps = 0;
  const first = await runPipeline(
    { configFile: parts.configFile, runsRoot: parts.runsRoot },
    { ...quiet(), onStep: () => steps++, shouldStop: () => steps >= 5 },
  );
  assert.equal(first.stopped, true);
  const runDir = first.runs[0].runDir;
  assert.equal(JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, 'stopped');
  assert.deepEqual(readdirSync(path.join(runDir, 'checkpoints')), ['step-5']);

  const second = await runPipeline({ resumeDir: runDir, runsRoot: parts.runsRoot }, quiet());
  assert.equal(second.stopped, false);
  const resumed = comparable(metricsOf(runDir));
  const expected = comparable(metricsOf(uninterrupted.runs[0].runDir));
  assert.equal(resumed.length, expected.length);
  resumed.forEach((row, i) => {
    for (const key of Object.keys(expected[i]))
      assert.ok(
        Math.abs(row[key] - expected[i][key]) <= 1e-5 * Math.max(1, Math.abs(expected[i][key])),
        `step ${expected[i].step} ${key}: ${row[key]} vs ${expected[i][key]}`,
      );
  });
  const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(runJson.status, 'completed');
  assert.equal(runJson.resumed_at.length, 1);
});

test('checkpoints are real safetensors with nanoGPT names, AdamW moments, config and tokenizer', async () => {
  const { configFile, runsRoot } = tinyConfig({ sft: { max_steps: 3, save_steps: 3 } });
  const { runs } = await runPipeline({ configFile, runsRoot }, quiet());
  const dir = path.join(runs[0].runDir, 'checkpoints', 'step-3');
  assert.deepEqual(readdirSync(dir).sort(), [
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'optimizer.safetensors',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'trainer_state.json',
  ]);
  const model = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors'))));
  assert.deepEqual(model.tensors['transformer.h.1.attn.c_attn.weight'].shape, [32, 96]);
  assert.equal(model.tensors['transformer.wte.weight'].dtype, 'F32');
  const optimizer = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, 'optimizer.safetensors'))));
  assert.equal(optimizer.metadata.step, '3');
  assert.deepEqual(
    optimizer.tensors['transformer.wte.weight.exp_avg_sq'].shape,
    model.tensors['transformer.wte.weight'].shape,
  );
  const state = JSON.parse(readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
  assert.equal(state.global_step, 3);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt2');
  assert.equal(config.n_embd, 32);
  assert.equal(config.vocab_size, model.tensors['transformer.wte.weight'].shape[0]);
});

test('malformed JSONL lines are reported with file and line, and the run goes on with the rest', async () => {
  const { configFile, runsRoot, dir } = tinyConfig({
    dataset: { source: 'jsonl', path: 'data.jsonl' },
    sft: { max_steps: 3, eval_fraction: 0.1 },
  });
  const good = Array.from({ length: 40 }, (_, i) =>
    JSON.stringify(
      i % 2 ? { text: `the film number ${i} was great fun.` } : { prompt: `review ${i}:`, completion: ' i loved it.' },
    ),
  );
  const lines = [
    ...good.slice(0, 10),
    '{"text": 12}',
    ...good.slice(10, 30),
    '{not json',
    ...good.slice(30),
    '{"prompt": "x"}',
  ];
  writeFileSync(path.join(dir, 'data.jsonl'), `${lines.join('\n')}\n`);
  const logs: string[] = [];
  const { runs } = await runPipeline({ configFile, runsRoot }, quiet(logs));
  const dataFile = path.join(dir, 'data.jsonl');
  const problems = logs.filter((line) => line.includes(`${dataFile}:`) && line.startsWith('warn'));
  assert.equal(problems.length, 3, logs.join('\n'));
  assert.match(problems.join('\n'), /data\.jsonl:11\b.*"text"/);
  assert.match(problems.join('\n'), /data\.jsonl:32\b/);
  assert.match(problems.join('\n'), /data\.jsonl:43\b.*"completion"/);
  const runJson = JSON.parse(readFileSync(path.join(runs[0].runDir, 'run.json'), 'utf8'));
  assert.equal(runJson.train_examples + runJson.eval_examples, 40);
  assert.equal(runJson.status, 'completed');
});

test('a pinned backend that is not available fails with a message saying what to do, and starts no run', async () => {
  const { configFile, runsRoot } = tinyConfig({ backend: 'tfjs-node' });
  await assert.rejects(
    runPipeline({ configFile, runsRoot }, quiet()),
    new RegExp(
      /The backend "tfjs-node" pinned by the config is not available here: /.source +
        /the package is not installed\. Set "backend" to "auto"/.source,
    ),
  );
  assert.throws(() => readdirSync(runsRoot), /ENOENT/);
});

test('a broken config names file, line, column and field for every problem', async () => {
  const { configFile, runsRoot } = tinyConfig();
  writeFileSync(
    configFile,
    '{\n  "name": "x",\n  "model": { "n_head": 3, "n_embd": 32 },\n  "stages": [\n' +
      '    { "type": "sft", "learning_rate": -1, "max_step": 5 }\n  ]\n}\n',
  );
  await assert.rejects(runPipeline({ configFile, runsRoot }, quiet()), (error: Error) => {
    assert.deepEqual(error.message.split('\n'), [
      `${configFile}:5:5: stages[0].dataset is required: Where the training text comes from.`,
      `${configFile}:5:39: stages[0].learning_rate must be > 0, got -1`,
      `${configFile}:5:43: stages[0].max_step unknown setting "max_step"; did you mean "max_steps"?`,
      `${configFile}: the run config has 3 problems — fix them (the editor underlines each one) and run again`,
    ]);
    return true;
  });
});
