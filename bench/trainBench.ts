/**
 * `npm run bench:train`: forward and training-step time of the trainer's GPT on every TensorFlow.js
 * backend that starts here, for a ~110k- and an ~850k-parameter model at batch 16 × full context.
 * Prints a table of medians and writes bench-results/train.json. A training step is what SFT runs:
 * forward, masked cross-entropy, backward, global-norm clipping and AdamW.
 * When Debian's python3 has torch, the same step of the same model (our initial weights, our batch) runs in
 * PyTorch (bench/torch/reference.py, one thread), interleaved round by round with ours on wasm (one thread).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backendNames, selectBackend, type BackendName } from '../src/trainer/engine/tfjs/backend';
import { maskedNll } from '../src/trainer/engine/tfjs/losses';
import { tf, type Tensor } from '../src/trainer/engine/tfjs/tfRuntime';
import { Gpt } from '../src/trainer/engine/tfjs/gpt';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { AdamW, clipByGlobalNorm } from '../src/trainer/engine/tfjs/adamW';
import { formatSpread, spread, table, TorchReference, writeWeights, type Spread } from './torch/torchReference';

const models: Record<string, GptConfig> = {
  '110k': { vocab_size: 96, block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 },
  '850k': { vocab_size: 512, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
};
const batchSize = 16;
/** Timed repetitions after warm-up; the slow cpu backend gets fewer. */
const repetitions = (backend: BackendName) => (backend === 'cpu' ? 3 : 10);
const warmup = 2;
const adam = { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0.1 };
const learningRate = 1e-3;
const maxGradNorm = 1;
/** Largest |our loss − PyTorch's| on the same weights and batch that counts as the same computation. */
const lossTolerance = 1e-4;

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
  pytorch?: TorchComparison;
}

/** Ours (tfjs-wasm, one thread) against PyTorch (one thread), interleaved: one step each per round. */
interface TorchComparison {
  torch_version: string;
  blas: string;
  rounds: number;
  initial_loss: { ours: number; pytorch: number; abs_diff: number; matches: boolean };
  ours_ms: number[];
  pytorch_ms: number[];
  ratio: number[];
  ours: Spread;
  pytorch_spread: Spread;
  ratio_spread: Spread;
}

async function measure(
  backend: BackendName,
  name: string,
  config: GptConfig,
  torch: TorchReference | undefined,
): Promise<Row> {
  const model = Gpt.create(config, { seed: 0 });
  const optimizer = new AdamW(model.weights, adam);
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
    const { clipped, norm } = clipByGlobalNorm(named, maxGradNorm);
    optimizer.apply(clipped, learningRate);
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
  const setup = torch && { ids, targets, mask, model, name, config };
  const pytorch = setup ? await compareWithTorch(torch, setup, trainStep) : undefined;
  const stepMs = pytorch ? pytorch.ours.median : await times(trainStep);
  const row = {
    backend,
    model: name,
    parameters: model.parameterCount,
    forward_ms: forwardMs,
    train_step_ms: stepMs,
    train_tokens_per_s: (batchSize * config.block_size) / (stepMs / 1000),
    ...(pytorch && { pytorch }),
  };
  tf.dispose([ids, targets, mask]);
  optimizer.dispose();
  model.dispose();
  return row;
}

/**
 * Sends our initial weights and batch to PyTorch, checks both give the same loss, then alternates one
 * training step of ours and one of PyTorch's per round (after the same warm-up on each side).
 */
async function compareWithTorch(
  torch: TorchReference,
  setup: { ids: Tensor; targets: Tensor; mask: Tensor; model: Gpt; name: string; config: GptConfig },
  ourStep: () => Promise<number>,
): Promise<TorchComparison> {
  const { ids, targets, mask, model, name, config } = setup;
  const key = `train-${name}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-train-bench-'));
  await torch.request('train_setup', {
    key,
    config,
    weights_path: writeWeights(path.join(dir, `${name}.safetensors`), await model.readWeights()),
    ids: ids.arraySync(),
    targets: targets.arraySync(),
    mask: mask.arraySync(),
    learning_rate: learningRate,
    weight_decay: adam.weightDecay,
    max_grad_norm: maxGradNorm,
  });
  const oursLossTensor = tf.tidy(() => maskedNll(model.forward(ids).logits, targets, mask));
  const ours = (await oursLossTensor.data())[0];
  oursLossTensor.dispose();
  const pytorch = (await torch.request('train_loss', { key })).loss as number;
  const absDiff = Math.abs(ours - pytorch);
  const initialLoss = { ours, pytorch, abs_diff: absDiff, matches: absDiff <= lossTolerance };
  process.stderr.write(
    `${name}: initial loss ours ${ours.toFixed(6)}, PyTorch ${pytorch.toFixed(6)} (|Δ| ${absDiff.toExponential(1)})\n`,
  );
  const torchStep = async () => (await torch.request('train_step', { key })).ms as number;
  for (let i = 0; i < warmup; i++) {
    await ourStep();
    await torchStep();
  }
  const oursMs: number[] = [];
  const pytorchMs: number[] = [];
  const rounds = repetitions('wasm');
  for (let round = 0; round < rounds; round++) {
    oursMs.push(await ourStep());
    pytorchMs.push(await torchStep());
    const ratio = oursMs[round] / pytorchMs[round];
    console.log(
      `${name} round ${round + 1}/${rounds}: ours ${oursMs[round].toFixed(1)} ms, PyTorch ` +
        `${pytorchMs[round].toFixed(1)} ms, ours/PyTorch ${ratio.toFixed(2)}×`,
    );
  }
  await torch.request('release', { key });
  const ratio = oursMs.map((ms, i) => ms / pytorchMs[i]);
  return {
    torch_version: torch.info.torch,
    blas: torch.info.blas.library,
    rounds,
    initial_loss: initialLoss,
    ours_ms: oursMs,
    pytorch_ms: pytorchMs,
    ratio,
    ours: spread(oursMs),
    pytorch_spread: spread(pytorchMs),
    ratio_spread: spread(ratio),
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const unavailable: Record<string, string> = {};
  const torch = await TorchReference.start();
  for (const backend of backendNames) {
    try {
      await selectBackend(backend);
    } catch (error) {
      unavailable[backend] = (error as Error & { reason?: string }).reason ?? (error as Error).message;
      continue;
    }
    for (const [name, config] of Object.entries(models)) {
      const row = await measure(backend, name, config, backend === 'wasm' ? torch : undefined);
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
  console.log(
    `\nbatch ${batchSize} × full context; medians of ${repetitions('wasm')} (cpu: ${repetitions('cpu')}) after ` +
      `${warmup} warm-up runs\n`,
  );
  console.log(table(header, lines));
  for (const [backend, reason] of Object.entries(unavailable)) console.log(`${backend}: not available (${reason})`);
  const compared = rows.filter((row) => row.pytorch);
  if (compared.length > 0) printTorchTable(compared);
  await torch?.close();
  const out = path.join('bench-results', 'train.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const record = { date: new Date().toISOString(), node: process.version, batch_size: batchSize, rows, unavailable };
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nwrote ${out}`);
}

function printTorchTable(rows: Row[]): void {
  const first = rows[0].pytorch as TorchComparison;
  console.log(
    `\nTrain step against PyTorch ${first.torch_version} (CPU, 1 thread; ours: tfjs-wasm, 1 thread), ` +
      `${first.rounds} interleaved rounds after ${warmup} warm-up each: median (min–max)\n`,
  );
  console.log(
    table(
      ['model', 'ours (ms)', 'PyTorch (ms)', 'ours / PyTorch', 'initial loss ours / PyTorch (abs. difference)'],
      rows.map((row) => {
        const p = row.pytorch as TorchComparison;
        const loss = p.initial_loss;
        return [
          row.model,
          formatSpread(p.ours),
          formatSpread(p.pytorch_spread),
          formatSpread(p.ratio_spread, 2, '×'),
          `${loss.ours.toFixed(5)} / ${loss.pytorch.toFixed(5)} (${loss.abs_diff.toExponential(1)}` +
            `${loss.matches ? '' : ` > ${lossTolerance}: NOT the same computation`})`,
        ];
      }),
    ),
  );
}

void main();
