/**
 * `npm run bench:train`: forward and training-step time of the trainer's GPT on every TensorFlow.js
 * backend that starts here, for a ~110k- and an ~850k-parameter model at batch 16 × full context.
 * Prints a table of medians and writes bench-results/train.json. A training step is what SFT runs:
 * forward, masked cross-entropy, backward, global-norm clipping and AdamW.
 * When Debian's python3 has torch, the same step of the same model (our initial weights, our batch) runs in
 * PyTorch (bench/torch/reference.py, one thread), interleaved round by round with ours on wasm (one thread).
 * In the same rounds the ONNX Runtime engine's full step runs through the seam
 * (OnnxEngine.createModel(...).createOptimizer(...).step({kind: 'lm'})) with the product's default threads (one
 * per core, not spinning) and with one thread, each against PyTorch's one thread per round.
 * RLHF_BENCH_BACKENDS=wasm (comma-separated) limits the tfjs backends measured.
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
import type { EngineOptimizer } from '../src/trainer/engine/engine';
import { onnxThreadSetting } from '../src/trainer/engine/onnxruntime/onnxThreads';
import { OnnxEngine } from '../src/trainer/engine/onnxruntime/onnxEngine';
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
/**
 * The ONNX Runtime engine's session options measured, and the PyTorch threads each is set against: the product's
 * default (onnxThreads.ts: one thread per core, not spinning, no arena) and one thread. Variants share the process,
 * so spinning variants (onnxruntime's own default) are left out: their idle pools spin and slow the others.
 */
const onnxVariants = [
  { name: 'onnx (the default)', torchThreads: 1, options: onnxThreadSetting().sessionOptions },
  { name: 'onnx-1t', torchThreads: 1, options: { intraOpNumThreads: 1, interOpNumThreads: 1 } },
] as const;
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
  pytorch_2t?: { ms: number[]; spread: Spread };
  onnx: OnnxComparison[];
}

/** One ONNX Runtime engine variant in the same rounds, against PyTorch with `torch_threads`. */
interface OnnxComparison {
  variant: string;
  torch_threads: number;
  initial_loss: number;
  ms: number[];
  spread: Spread;
  ratio: number[];
  ratio_spread: Spread;
}

async function measure(
  backend: BackendName,
  name: string,
  config: GptConfig,
  torch: TorchPair | undefined,
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

interface TorchPair {
  one: TorchReference;
  two?: TorchReference;
}

/** The ONNX Runtime engine's optimizers, one per variant, from the same weights as ours. */
async function onnxOptimizers(model: Gpt, config: GptConfig): Promise<EngineOptimizer[]> {
  const weights = await model.readWeights();
  return onnxVariants.map(({ options }) =>
    new OnnxEngine(undefined, options).createModel(config, { heads: [], seed: 0, weights }).createOptimizer(adam),
  );
}

/**
 * Sends our initial weights and batch to PyTorch, checks both give the same loss, then alternates one
 * training step of each contender per round (tfjs-wasm, the ONNX engine's variants, PyTorch 1 and 2 threads),
 * after the same warm-up on each side.
 */
async function compareWithTorch(
  torch: TorchPair,
  setup: { ids: Tensor; targets: Tensor; mask: Tensor; model: Gpt; name: string; config: GptConfig },
  ourStep: () => Promise<number>,
): Promise<TorchComparison> {
  const { ids, targets, mask, model, name, config } = setup;
  const key = `train-${name}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-train-bench-'));
  const torchSetup = {
    key,
    config,
    weights_path: writeWeights(path.join(dir, `${name}.safetensors`), await model.readWeights()),
    ids: ids.arraySync(),
    targets: targets.arraySync(),
    mask: mask.arraySync(),
    learning_rate: learningRate,
    weight_decay: adam.weightDecay,
    max_grad_norm: maxGradNorm,
  };
  await torch.one.request('train_setup', torchSetup);
  await torch.two?.request('train_setup', torchSetup);
  const onnx = await onnxOptimizers(model, config);
  const batch = {
    batchSize,
    length: config.block_size,
    inputs: Int32Array.from(ids.dataSync()),
    targets: Int32Array.from(targets.dataSync()),
    mask: Float32Array.from(mask.dataSync()),
  };
  const onnxLosses: number[] = [];
  const onnxStep = (i: number) => async () => {
    const t0 = performance.now();
    const result = await onnx[i].step({ kind: 'lm', batch }, { learningRate, maxGradNorm });
    const ms = performance.now() - t0;
    if (onnxLosses.length <= i) onnxLosses.push(result.scalars.loss);
    return ms;
  };
  const oursLossTensor = tf.tidy(() => maskedNll(model.forward(ids).logits, targets, mask));
  const ours = (await oursLossTensor.data())[0];
  oursLossTensor.dispose();
  const pytorch = (await torch.one.request('train_loss', { key })).loss as number;
  const absDiff = Math.abs(ours - pytorch);
  const initialLoss = { ours, pytorch, abs_diff: absDiff, matches: absDiff <= lossTolerance };
  process.stderr.write(
    `${name}: initial loss ours ${ours.toFixed(6)}, PyTorch ${pytorch.toFixed(6)} (|Δ| ${absDiff.toExponential(1)})\n`,
  );
  const torchStep = (reference: TorchReference) => async () =>
    (await reference.request('train_step', { key })).ms as number;
  const contenders: (() => Promise<number>)[] = [
    ourStep,
    ...onnx.map((_, i) => onnxStep(i)),
    torchStep(torch.one),
    ...(torch.two ? [torchStep(torch.two)] : []),
  ];
  for (let i = 0; i < warmup; i++) for (const step of contenders) await step();
  const times: number[][] = contenders.map(() => []);
  const rounds = repetitions('wasm');
  const columns = `tfjs / ${onnxVariants.map((v) => v.name).join(', ')} / PyTorch 1t, 2t`;
  for (let round = 0; round < rounds; round++) {
    for (const [i, step] of contenders.entries()) times[i].push(await step());
    const cells = times.map((ms) => ms[round].toFixed(1)).join(' / ');
    console.log(`${name} round ${round + 1}/${rounds} (ms: ${columns}): ${cells}`);
  }
  await torch.one.request('release', { key });
  await torch.two?.request('release', { key });
  const oursMs = times[0];
  const pytorchMs = times[1 + onnx.length];
  const pytorch2Ms = torch.two ? times[2 + onnx.length] : undefined;
  const ratio = oursMs.map((ms, i) => ms / pytorchMs[i]);
  const onnxComparisons = onnxVariants.flatMap((variant, v) => {
    const against = variant.torchThreads === 1 ? pytorchMs : pytorch2Ms;
    if (!against) return [];
    const ms = times[1 + v];
    const onnxRatio = ms.map((value, i) => value / against[i]);
    return [
      {
        variant: variant.name,
        torch_threads: variant.torchThreads,
        initial_loss: onnxLosses[v],
        ms,
        spread: spread(ms),
        ratio: onnxRatio,
        ratio_spread: spread(onnxRatio),
      },
    ];
  });
  return {
    torch_version: torch.one.info.torch,
    blas: torch.one.info.blas.library,
    rounds,
    initial_loss: initialLoss,
    ours_ms: oursMs,
    pytorch_ms: pytorchMs,
    ratio,
    ours: spread(oursMs),
    pytorch_spread: spread(pytorchMs),
    ratio_spread: spread(ratio),
    ...(pytorch2Ms && { pytorch_2t: { ms: pytorch2Ms, spread: spread(pytorch2Ms) } }),
    onnx: onnxComparisons,
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const unavailable: Record<string, string> = {};
  const one = await TorchReference.start();
  const torch = one && { one, two: await TorchReference.start(2) };
  const only = process.env.RLHF_BENCH_BACKENDS?.split(',');
  for (const backend of backendNames.filter((name) => !only || only.includes(name))) {
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
  await torch?.one.close();
  await torch?.two?.close();
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
  console.log(
    `\nThe ONNX Runtime engine's full step (through the seam) in the same rounds, against PyTorch with ` +
      `the threads shown (PyTorch's median (min–max) for those threads in the same rounds)\n`,
  );
  console.log(
    table(
      ['model', 'variant', 'ONNX (ms)', 'PyTorch threads', 'ONNX / PyTorch', 'initial loss ONNX (|Δ| to PyTorch)'],
      rows.flatMap((row) => {
        const p = row.pytorch as TorchComparison;
        return p.onnx.map((o) => [
          row.model,
          o.variant,
          formatSpread(o.spread),
          `${o.torch_threads}: ${formatSpread(o.torch_threads === 1 ? p.pytorch_spread : p.pytorch_2t!.spread)} ms`,
          formatSpread(o.ratio_spread, 2, '×'),
          `${o.initial_loss.toFixed(5)} (${Math.abs(o.initial_loss - p.initial_loss.pytorch).toExponential(1)})`,
        ]);
      }),
    ),
  );
}

void main();
