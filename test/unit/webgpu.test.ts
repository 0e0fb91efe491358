/**
 * The tfjs engine on `webgpu`, on the real Dawn and tfjs-backend-webgpu: on a machine without a GPU that is
 * Dawn's OpenGL ES backend on Mesa's llvmpipe (a software adapter; the EGL/GLES packages come from
 * scripts/ensureTestTools.mjs). `auto` passes over a software adapter and says why; gradients equal the cpu
 * backend's; SFT and PPO train through the real pipeline and write their files; 200 steps leak neither
 * tensors nor GPU buffers; a device destroyed mid-run (a real loss) stops the run like a NaN, keeping its last
 * checkpoint. The models are tiny: llvmpipe runs each kernel on the CPU. The device-loss test comes last: it
 * leaves this process without a working GPU device.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { decodeTrace } from '../../src/shared/traceFormat';
import type { AdamWOptions, NamedArrays, TokenBatch } from '../../src/trainer/engine/engine';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { formatBackendChoice, selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { maskedNll } from '../../src/trainer/engine/tfjs/losses';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { webgpuDevice, webgpuErrors } from '../../src/trainer/engine/tfjs/webgpuBackend';
import { findAdapter } from '../../src/trainer/engine/webgpu/dawn';
import { createTrainingEngine } from '../../src/trainer/engineFactory';
import { runPipeline } from '../../src/trainer/pipeline';

const gradientTolerance = 1e-4;
const leakSteps = 200;
/** Steps before the leak count starts: the causal-mask cache and tfjs's shader programs fill on the first ones. */
const leakWarmupSteps = 5;

const tinyGpt: GptConfig = { vocab_size: 24, block_size: 8, n_layer: 1, n_head: 2, n_embd: 16, dropout: 0 };
const adamW: AdamWOptions = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
const tinyBatch: TokenBatch = {
  batchSize: 1,
  length: 4,
  inputs: Int32Array.from([1, 2, 3, 4]),
  targets: Int32Array.from([2, 3, 4, 5]),
  mask: Float32Array.from([1, 1, 1, 1]),
};
const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-webgpu-'));
const runsRoot = path.join(workDir, 'runs');

function writeConfig(name: string, config: Record<string, unknown>): string {
  const file = path.join(workDir, `${name}.rlhf.json`);
  writeFileSync(file, JSON.stringify({ name, seed: 3, engine: 'tfjs', backend: 'webgpu', ...config }));
  return file;
}

const sftModel = { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32, dropout: 0 };

function sftConfig(name: string, stage: Record<string, unknown> = {}): string {
  return writeConfig(name, {
    model: sftModel,
    tokenizer: { vocab_size: 300 },
    stages: [
      {
        type: 'sft',
        dataset: { source: 'demo', num_examples: 200 },
        learning_rate: 0.005,
        max_steps: 4,
        per_device_train_batch_size: 4,
        warmup_steps: 1,
        eval_steps: 4,
        save_steps: 2,
        ...stage,
      },
    ],
  });
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

function metricsOf(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
}

test('auto passes over a software adapter and says why; a pinned "webgpu" uses it and names it', async () => {
  const found = await findAdapter();
  const auto = await selectBackend('auto');
  if (found.description.software) {
    assert.notEqual(auto.name, 'webgpu');
    const skipped = auto.passedOver.find(({ name }) => name === 'webgpu');
    assert.ok(skipped, `webgpu is among the backends passed over: ${formatBackendChoice(auto)}`);
    // A software adapter the default backend found is refused; Dawn's OpenGL ES backend (llvmpipe here) is not
    // even asked by `auto` (asking prints Dawn's warnings on every start of a CPU machine's trainer).
    const why = /only a software adapter .*slower than the CPU backends|opengles not asked: OpenGL ES compatibility/;
    assert.match(skipped.error, why);
    assert.match(auto.reason, /webgpu \((only a software adapter|no WebGPU adapter: )/);
  } else assert.equal(auto.name, 'webgpu', 'a hardware adapter is the best backend after tfjs-node-gpu');
  const pinned = await selectBackend('webgpu');
  assert.equal(pinned.name, 'webgpu');
  assert.deepEqual(pinned.adapter, found.description);
  assert.match(pinned.reason, /^pinned by the config \("backend": "webgpu"\); adapter /);
  if (found.description.software) assert.match(pinned.reason, /, software adapter$/);
  assert.equal(tf.getBackend(), 'webgpu');
});

/** ∂(masked LM loss)/∂w for every weight of a model made from `weights`, and the loss, on the current backend. */
async function lmGradients(weights: NamedArrays): Promise<Map<string, Float32Array>> {
  const model = Gpt.fromWeights(tinyGpt, [], weights, { seed: 0 });
  try {
    const inputs = [
      [1, 5, 9, 2, 7, 3, 4, 8],
      [6, 2, 2, 11, 0, 23, 14, 3],
    ];
    const targets = inputs.map((row) => row.map((id) => (id * 7 + 3) % tinyGpt.vocab_size));
    const mask = targets.map((row) => row.map((_, t) => (t < 6 ? 1 : 0)));
    const names = [...model.weights.keys()];
    const variables = model.trainableVariables;
    const { value, grads } = tf.variableGrads(
      () =>
        maskedNll(
          model.forward(tf.tensor2d(inputs, undefined, 'int32')).logits,
          tf.tensor2d(targets, undefined, 'int32'),
          tf.tensor2d(mask),
        ) as never,
      variables,
    );
    const out = new Map<string, Float32Array>([['loss', (await value.data()) as Float32Array]]);
    for (let i = 0; i < names.length; i++) out.set(names[i], (await grads[variables[i].name].data()) as Float32Array);
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  } finally {
    model.dispose();
  }
}

/** One AdamW step with gradient clipping (the engine's whole update) on the current backend. */
async function optimizerStep(weights: NamedArrays): Promise<{ scalars: Record<string, number>; after: NamedArrays }> {
  const engine = createTrainingEngine(await selectBackend(tf.getBackend() as 'cpu' | 'webgpu'));
  const model = engine.createModel(tinyGpt, { heads: [], seed: 0, weights });
  const optimizer = model.createOptimizer(adamW);
  try {
    // A max norm under the gradient's norm, so that clipping scales the update.
    const { scalars } = await optimizer.step(
      { kind: 'lm', batch: tinyBatch },
      { learningRate: 0.01, maxGradNorm: 0.1 },
    );
    return { scalars, after: await model.readWeights() };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

function maxAbsDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst;
}

test(`gradients and an AdamW step of a small GPT on webgpu equal cpu's to ${gradientTolerance}`, async () => {
  await selectBackend('cpu');
  const seeded = Gpt.create(tinyGpt, { seed: 11 });
  const weights = await seeded.readWeights();
  seeded.dispose();
  const onCpu = await lmGradients(weights);
  const stepOnCpu = await optimizerStep(weights);
  await selectBackend('webgpu');
  const onGpu = await lmGradients(weights);
  const stepOnGpu = await optimizerStep(weights);
  assert.deepEqual([...onGpu.keys()], [...onCpu.keys()]);
  for (const [name, expected] of onCpu) {
    const worst = maxAbsDifference(onGpu.get(name)!, expected);
    assert.ok(worst <= gradientTolerance, `${name}: max |webgpu − cpu| = ${worst}`);
    if (name !== 'loss')
      assert.ok(
        expected.some((x) => x !== 0),
        `${name} has an all-zero gradient`,
      );
  }
  assert.ok(stepOnCpu.scalars.gradNorm > 0.1, 'the gradient norm is over max_grad_norm: clipping is exercised');
  for (const scalar of ['loss', 'gradNorm'])
    assert.ok(
      Math.abs(stepOnGpu.scalars[scalar] - stepOnCpu.scalars[scalar]) <= gradientTolerance,
      `${scalar}: webgpu ${stepOnGpu.scalars[scalar]}, cpu ${stepOnCpu.scalars[scalar]}`,
    );
  for (const [name, { data }] of stepOnCpu.after) {
    const worst = maxAbsDifference(stepOnGpu.after.get(name)!.data, data);
    assert.ok(worst <= gradientTolerance, `${name} after the step: max |webgpu − cpu| = ${worst}`);
  }
  assert.deepEqual(webgpuErrors(), [], 'no GPU operation failed');
});

test(`${leakSteps} tiny optimizer steps on webgpu leak no tensors and no GPU buffers`, async () => {
  const choice = await selectBackend('webgpu');
  const engine = createTrainingEngine(choice);
  const model = engine.createModel(tinyGpt, { heads: [], seed: 5 });
  const optimizer = model.createOptimizer(adamW);
  const batch = tinyBatch;
  const buffers = () => {
    const manager = (tf.backend() as unknown as { bufferManager: BufferCounts }).bufferManager;
    return { used: manager.getNumUsedBuffers(), free: manager.getNumFreeBuffers() };
  };
  let before: { tensors: number; bytes: number; used: number; free: number } | undefined;
  let lastLoss = Number.NaN;
  for (let step = 0; step < leakSteps; step++) {
    if (step === leakWarmupSteps) {
      const memory = tf.memory() as { numTensors: number; numBytesInGPU?: number };
      before = { tensors: memory.numTensors, bytes: memory.numBytesInGPU ?? Number.NaN, ...buffers() };
    }
    const result = await optimizer.step({ kind: 'lm', batch }, { learningRate: 0.01, maxGradNorm: 1 });
    assert.ok(result.applied, `step ${step} applied`);
    lastLoss = result.scalars.loss;
  }
  const memory = tf.memory() as { numTensors: number; numBytesInGPU?: number };
  const after = { tensors: memory.numTensors, bytes: memory.numBytesInGPU ?? Number.NaN, ...buffers() };
  optimizer.dispose();
  model.dispose();
  assert.ok(Number.isFinite(lastLoss));
  assert.ok(Number.isFinite(before?.bytes), 'the webgpu backend reports numBytesInGPU');
  assert.deepEqual(after, before, 'tensors, GPU bytes in use and the buffer pool are the same after the warm-up');
  assert.deepEqual(webgpuErrors(), [], 'no GPU operation failed');
});

interface BufferCounts {
  getNumUsedBuffers(): number;
  getNumFreeBuffers(): number;
}

let sftCheckpoint = '';

test('SFT trains on "backend": "webgpu" through the pipeline: metrics, checkpoint, adapter in run.json', async () => {
  const logs: string[] = [];
  const { runs } = await runPipeline(
    { configFile: sftConfig('sft'), runsRoot },
    { log: (level, message) => logs.push(`${level}: ${message}`) },
  );
  const { runDir, result } = runs[0];
  assert.equal(result.status, 'completed');
  const runJson = readJson(path.join(runDir, 'run.json'));
  assert.equal(runJson.status, 'completed');
  assert.equal(runJson.backend, 'webgpu');
  const { description } = await findAdapter();
  assert.ok(String(runJson.backend_adapter).includes(description.device || description.description));
  if (description.software) assert.match(String(runJson.backend_adapter), /, software adapter$/);
  assert.match(String(runJson.backend_reason), /adapter /);
  assert.ok(
    logs.some((line) => line.includes(String(runJson.backend_adapter))),
    'the log names the adapter',
  );
  const metrics = metricsOf(runDir);
  const trained = metrics.filter((row) => 'loss/train' in row);
  assert.equal(trained.length, 4);
  assert.ok(trained.every((row) => Number.isFinite(row['loss/train']) && Number.isFinite(row.grad_norm)));
  assert.ok(Number.isFinite(metrics.at(-1)?.['loss/eval']));
  sftCheckpoint = result.outputs.checkpoint as string;
  assert.ok(existsSync(path.join(sftCheckpoint, 'model.safetensors')));
  assert.deepEqual(webgpuErrors(), [], 'no GPU operation failed');
});

test('a PPO step trains on "backend": "webgpu" and writes its per-token trace', async () => {
  assert.ok(sftCheckpoint, 'the SFT test ran first');
  const configFile = writeConfig('ppo', {
    stages: [
      {
        type: 'ppo',
        policy: sftCheckpoint,
        reward_model: sftCheckpoint,
        prompts: { source: 'demo' },
        total_episodes: 4,
        batch_size: 4,
        num_mini_batches: 1,
        num_ppo_epochs: 1,
        max_new_tokens: 4,
        num_eval_prompts: 2,
      },
    ],
  });
  const { runs } = await runPipeline({ configFile, runsRoot }, { log: () => undefined });
  const { runDir, result } = runs[0];
  assert.equal(result.status, 'completed');
  assert.equal(readJson(path.join(runDir, 'run.json')).backend, 'webgpu');
  const metrics = metricsOf(runDir);
  for (const key of ['objective/kl', 'loss/policy_avg', 'loss/value_avg', 'objective/scores'])
    assert.ok(Number.isFinite(metrics.at(-1)?.[key]), `${key} in metrics.jsonl`);
  const trace = decodeTrace(new Uint8Array(readFileSync(path.join(runDir, 'traces', 'step-1.arrow'))));
  assert.equal(trace.kind, 'ppo');
  assert.equal(trace.rows.length, 4);
  assert.deepEqual(webgpuErrors(), [], 'no GPU operation failed');
});

test('a GPU device destroyed mid-run fails the run, keeping its last checkpoint, saying the GPU was lost', async () => {
  const lossAfterStep = 3;
  let destroyed = false;
  const configFile = sftConfig('lost', { max_steps: 6, eval_steps: 6 });
  const failure = await runPipeline(
    { configFile, runsRoot },
    {
      log: () => undefined,
      onStep: (_runId, metrics) => {
        if (metrics.step !== lossAfterStep || destroyed) return;
        destroyed = true;
        // A real loss: Dawn resolves device.lost ("destroyed") and fails every later operation.
        webgpuDevice()?.destroy();
      },
    },
  ).then(
    () => undefined,
    (error: Error) => error,
  );
  assert.ok(destroyed, 'the device was destroyed');
  assert.ok(failure, 'the run failed');
  assert.match(failure.message, /^The GPU was lost \(destroyed: .+\) at step 4; the run stopped there\. /);
  assert.match(failure.message, /Its last checkpoint \(.*step-2.*\) is kept: resume the run to continue from it\./);
  const runDir = path.dirname(path.dirname(failure.message.match(/checkpoint \((.*)\) is kept/)![1]));
  const runJson = readJson(path.join(runDir, 'run.json'));
  assert.equal(runJson.status, 'failed');
  assert.equal(runJson.error, failure.message);
  assert.equal(runJson.last_checkpoint, path.join('checkpoints', 'step-2'));
  const checkpointFile = path.join(runDir, 'checkpoints', 'step-2', 'model.safetensors');
  const tensors = Object.values(decodeSafetensors(new Uint8Array(readFileSync(checkpointFile))).tensors);
  assert.ok(
    tensors.length > 0 && tensors.every(({ data }) => Array.from(data as ArrayLike<number>).every(Number.isFinite)),
  );
  assert.ok(!existsSync(path.join(runDir, 'checkpoints', 'step-4')), 'no checkpoint after the loss');
  assert.ok(
    metricsOf(runDir).every((row) => row.step < 4),
    'no metrics line for the step the loss interrupted',
  );
});
