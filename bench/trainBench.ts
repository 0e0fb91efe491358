/**
 * `npm run bench:train`: forward and training-step time of the trainer's GPT on every TensorFlow.js
 * backend that starts here, for a ~110k- and an ~850k-parameter model at batch 16 × full context.
 * Prints a table of medians and writes bench-results/train.json. A training step is what SFT runs:
 * forward, masked cross-entropy, backward, global-norm clipping and AdamW.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backendNames, selectBackend, type BackendName } from '../src/trainer/engine/tfjs/backend';
import { maskedNll } from '../src/trainer/engine/tfjs/losses';
import { tf, type Tensor } from '../src/trainer/engine/tfjs/tfRuntime';
import { Gpt } from '../src/trainer/engine/tfjs/gpt';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { AdamW, clipByGlobalNorm } from '../src/trainer/engine/tfjs/adamW';

const models: Record<string, GptConfig> = {
  '110k': { vocab_size: 96, block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 },
  '850k': { vocab_size: 512, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
};
const batchSize = 16;
/** Timed repetitions after warm-up; the slow cpu backend gets fewer. */
const repetitions = (backend: BackendName) => (backend === 'cpu' ? 3 : 10);
const warmup = 2;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

interface Row {
  backend: BackendName;
  model: string;
  parameters: number;
  forward_ms: number;
  train_step_ms: number;
  train_tokens_per_s: number;
}

async function measure(backend: BackendName, name: string, config: GptConfig): Promise<Row> {
  const model = Gpt.create(config, { seed: 0 });
  const optimizer = new AdamW(model.weights, { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0.1 });
  const shape: [number, number] = [batchSize, config.block_size];
  const ids = tf.randomUniform(shape, 0, config.vocab_size, 'int32');
  const targets = tf.randomUniform(shape, 0, config.vocab_size, 'int32');
  const mask = tf.ones(shape);
  const variables = model.trainableVariables;
  const names = [...model.weights.keys()];

  const forward = async () => {
    const t0 = performance.now();
    const logits = tf.tidy(() => model.forward(ids).logits);
    await logits.data();
    logits.dispose();
    return performance.now() - t0;
  };
  const trainStep = async () => {
    const t0 = performance.now();
    const { value, grads } = tf.variableGrads(
      () => maskedNll(model.forward(ids).logits, targets, mask) as never,
      variables,
    );
    const named: Record<string, Tensor> = {};
    variables.forEach((variable, i) => (named[names[i]] = grads[variable.name]));
    const { clipped, norm } = clipByGlobalNorm(named, 1);
    optimizer.apply(clipped, 1e-3);
    await value.data();
    tf.dispose([value, norm, ...Object.values(grads), ...Object.values(clipped)]);
    return performance.now() - t0;
  };
  const times = async (f: () => Promise<number>) => {
    for (let i = 0; i < warmup; i++) await f();
    const out: number[] = [];
    for (let i = 0; i < repetitions(backend); i++) out.push(await f());
    return median(out);
  };
  const forwardMs = await times(forward);
  const stepMs = await times(trainStep);
  const row = {
    backend,
    model: name,
    parameters: model.parameterCount,
    forward_ms: forwardMs,
    train_step_ms: stepMs,
    train_tokens_per_s: (batchSize * config.block_size) / (stepMs / 1000),
  };
  tf.dispose([ids, targets, mask]);
  optimizer.dispose();
  model.dispose();
  return row;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const unavailable: Record<string, string> = {};
  for (const backend of backendNames) {
    try {
      await selectBackend(backend);
    } catch (error) {
      unavailable[backend] = (error as Error & { reason?: string }).reason ?? (error as Error).message;
      continue;
    }
    for (const [name, config] of Object.entries(models)) {
      const row = await measure(backend, name, config);
      rows.push(row);
      process.stderr.write(`measured ${backend} ${name}\n`);
    }
  }
  const header = ['backend', 'model', 'parameters', 'forward (ms)', 'train step (ms)', 'train tokens/s'];
  const lines = rows.map((row) => [
    row.backend,
    row.model,
    row.parameters.toLocaleString('en-US'),
    row.forward_ms.toFixed(1),
    row.train_step_ms.toFixed(1),
    row.train_tokens_per_s.toFixed(0),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  console.log(
    `batch ${batchSize} × full context; medians of ${repetitions('wasm')} (cpu: ${repetitions('cpu')}) after ` +
      `${warmup} warm-up runs\n`,
  );
  console.log([format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join('\n'));
  for (const [backend, reason] of Object.entries(unavailable)) console.log(`${backend}: not available (${reason})`);
  const out = path.join('bench-results', 'train.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const record = { date: new Date().toISOString(), node: process.version, batch_size: batchSize, rows, unavailable };
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nwrote ${out}`);
}

void main();
