/**
 * The parts of the GPU check (bench/gpuCheck.ts runs each in its own process, with its own timeout): which
 * adapters each engine finds, GPU-against-CPU equality on a small model, train-step times, one PPO iteration.
 * Every part returns a JSON-able record; a part that needs an engine this build lacks says so in `unavailable`
 * instead of measuring something else under the GPU's name.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backendNames } from '../src/shared/backendNames';
import { selectBackend, type BackendName } from '../src/trainer/engine/tfjs/backend';
import { maskedNll } from '../src/trainer/engine/tfjs/losses';
import { tf, type Tensor } from '../src/trainer/engine/tfjs/tfRuntime';
import { Gpt } from '../src/trainer/engine/tfjs/gpt';
import { createTrainingEngine } from '../src/trainer/engineFactory';
import { OnnxEngine } from '../src/trainer/engine/onnxruntime/onnxEngine';
import type { TokenBatch, TrainingEngine } from '../src/trainer/engine/engine';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { runPipeline } from '../src/trainer/pipeline';
import { phaseNames } from './torch/ppoComparison';
import { spread } from './torch/torchReference';

/** The environment variable the ONNX Runtime engine reads for its execution provider (the slices' contract). */
export const ortProviderVariable = 'RLHF_LENS_ORT_PROVIDER';
export type EngineKind = 'tfjs' | 'onnxruntime';
/** tfjs: a TensorFlow.js backend; onnxruntime: an execution provider. */
export interface EngineTarget {
  readonly engine: EngineKind;
  readonly backend: string;
}
export const isGpuTarget = (target: EngineTarget) => target.backend === 'webgpu';
export const targetName = (target: EngineTarget) => `${target.engine}:${target.backend}`;

const adam = { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0.1 };
const stepOptions = { learningRate: 1e-3, maxGradNorm: 1 };
const dataSeed = 7;

/** Why a target cannot run in this build (or on this machine), or undefined when it can be tried. */
function missingInBuild(target: EngineTarget): string | undefined {
  if (target.engine === 'tfjs' && !(backendNames as readonly string[]).includes(target.backend))
    return `not available in this build: tfjs has no "${target.backend}" backend (it has ${backendNames.join(', ')})`;
  return undefined;
}

/** An engine on `target`; ONNX Runtime's provider comes from the environment (set before this process started). */
async function createEngine(target: EngineTarget): Promise<TrainingEngine> {
  const missing = missingInBuild(target);
  if (missing) throw new Unavailable(missing);
  if (target.engine === 'tfjs') return createTrainingEngine(await selectBackend(target.backend as BackendName));
  if (process.env[ortProviderVariable] !== target.backend)
    throw new Error(`${ortProviderVariable} is "${process.env[ortProviderVariable]}", not "${target.backend}"`);
  let engine: OnnxEngine;
  try {
    engine = await OnnxEngine.create();
  } catch (error) {
    // The provider pinned and not usable here: the engine says why (no adapter, no Vulkan loader).
    throw new Unavailable(`not available on this machine: ${(error as Error).message}`);
  }
  if (engine.provider.name !== target.backend)
    throw new Unavailable(
      `not available on this machine: with ${ortProviderVariable}=${target.backend} the ONNX Runtime engine runs ` +
        `on "${engine.backend}" (${engine.backendReason ?? 'no reason given'})`,
    );
  return engine;
}

/** A part that cannot run here (not a failure of what it measures). */
export class Unavailable extends Error {}

/** A deterministic next-token batch of `config` (the same numbers on every engine). */
export function tokenBatch(config: GptConfig, batchSize: number): TokenBatch {
  let state = dataSeed;
  const next = () => (state = (state * 1103515245 + 12345) % 2147483648);
  const size = batchSize * config.block_size;
  const inputs = Int32Array.from({ length: size }, () => next() % config.vocab_size);
  const targets = Int32Array.from({ length: size }, () => next() % config.vocab_size);
  return { batchSize, length: config.block_size, inputs, targets, mask: new Float32Array(size).fill(1) };
}

export interface TrainSpec {
  readonly target: EngineTarget;
  readonly model: string;
  readonly config: GptConfig;
  readonly batchSize: number;
  readonly warmup: number;
  readonly rounds: number;
}

/** bench:train's step (forward, masked cross-entropy, backward, clipping, AdamW) through the engine seam. */
export async function trainPart(spec: TrainSpec) {
  const engine = await createEngine(spec.target);
  const model = engine.createModel(spec.config, { heads: [], seed: 0 });
  const optimizer = model.createOptimizer(adam);
  const batch = tokenBatch(spec.config, spec.batchSize);
  const step = async () => {
    const t0 = performance.now();
    const result = await optimizer.step({ kind: 'lm', batch }, stepOptions);
    return { ms: performance.now() - t0, loss: result.scalars.loss };
  };
  const first = await step();
  for (let i = 1; i < spec.warmup; i++) await step();
  const ms: number[] = [];
  for (let i = 0; i < spec.rounds; i++) ms.push((await step()).ms);
  optimizer.dispose();
  model.dispose();
  const stepMs = spread(ms);
  return {
    engine: spec.target.engine,
    backend: engine.backend,
    backend_reason: engine.backendReason,
    model: spec.model,
    parameters: model.parameterCount,
    batch_size: spec.batchSize,
    context: spec.config.block_size,
    first_step_ms: first.ms,
    initial_loss: first.loss,
    rounds: spec.rounds,
    ms,
    step_ms: stepMs,
    tokens_per_s: (spec.batchSize * spec.config.block_size) / (stepMs.median / 1000),
  };
}

const maxAbsDifference = (a: Float32Array, b: Float32Array) =>
  a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i])), 0);

/** tfjs: the gradients of one loss on `backend` against the cpu backend's, same weights and batch. */
export async function tfjsGradientPart(config: GptConfig, batchSize: number, backend: string) {
  const missing = missingInBuild({ engine: 'tfjs', backend });
  if (missing) throw new Unavailable(missing);
  const batch = tokenBatch(config, batchSize);
  const gradients = async (name: BackendName, weights?: Awaited<ReturnType<Gpt['readWeights']>>) => {
    await selectBackend(name);
    const model = weights ? Gpt.fromWeights(config, [], weights) : Gpt.create(config, { seed: 0 });
    const shape: [number, number] = [batchSize, config.block_size];
    const ids = tf.tensor2d(batch.inputs, shape, 'int32');
    const targets = tf.tensor2d(batch.targets, shape, 'int32');
    const mask = tf.tensor2d(batch.mask, shape);
    const { value, grads } = tf.variableGrads(
      () => maskedNll(model.forward(ids).logits, targets, mask) as never,
      model.trainableVariables,
    );
    // By the variables' order, not their names: tfjs names variables by a process-wide counter, so the second
    // model's differ from the first's.
    const out = new Map<string, Float32Array>();
    for (const [index, variable] of model.trainableVariables.entries()) {
      const grad = grads[variable.name];
      if (grad) out.set(String(index), (await grad.data()) as Float32Array);
    }
    const loss = (await value.data())[0];
    const read = await model.readWeights();
    tf.dispose([value, ids, targets, mask, ...Object.values(grads)] as Tensor[]);
    model.dispose();
    return { loss, grads: out, weights: read };
  };
  const cpu = await gradients('cpu');
  const gpu = await gradients(backend as BackendName, cpu.weights);
  let maxDiff = 0;
  let maxGrad = 0;
  for (const [name, grad] of cpu.grads) {
    const other = gpu.grads.get(name);
    if (!other) throw new Error(`the ${backend} backend gave no gradient for weight ${name}`);
    maxDiff = Math.max(maxDiff, maxAbsDifference(grad, other));
    maxGrad = grad.reduce((max, x) => Math.max(max, Math.abs(x)), maxGrad);
  }
  return {
    backend,
    against: 'cpu',
    gradients: cpu.grads.size,
    max_abs_gradient: maxGrad,
    max_abs_difference: maxDiff,
    loss: { gpu: gpu.loss, cpu: cpu.loss, abs_difference: Math.abs(gpu.loss - cpu.loss) },
  };
}

/**
 * ONNX Runtime: the engine seam hides gradients, so one step on the provider against the CPU provider (same
 * weights, batch and settings): the loss, the gradient norm before clipping, and every weight after the update.
 */
export async function ortStepEqualityPart(config: GptConfig, batchSize: number, backend: string) {
  const gpuEngine = await createEngine({ engine: 'onnxruntime', backend });
  const batch = tokenBatch(config, batchSize);
  const oneStep = async (engine: TrainingEngine) => {
    const model = engine.createModel(config, { heads: [], seed: 0 });
    const optimizer = model.createOptimizer(adam);
    const { scalars } = await optimizer.step({ kind: 'lm', batch }, stepOptions);
    const weights = await model.readWeights();
    optimizer.dispose();
    model.dispose();
    return { scalars, weights };
  };
  const gpu = await oneStep(gpuEngine);
  // The CPU side in the same process: the provider is the engine's choice, so an engine on the CPU provider.
  process.env[ortProviderVariable] = 'cpu';
  const cpu = await oneStep(await OnnxEngine.create());
  let maxWeightDiff = 0;
  for (const [name, weight] of cpu.weights)
    maxWeightDiff = Math.max(maxWeightDiff, maxAbsDifference(weight.data, gpu.weights.get(name)!.data));
  return {
    backend: gpuEngine.backend,
    backend_reason: gpuEngine.backendReason,
    against: 'cpu',
    loss_abs_difference: Math.abs(gpu.scalars.loss - cpu.scalars.loss),
    grad_norm: { gpu: gpu.scalars.gradNorm, cpu: cpu.scalars.gradNorm },
    grad_norm_abs_difference: Math.abs(gpu.scalars.gradNorm - cpu.scalars.gradNorm),
    weights_after_step_max_abs_difference: maxWeightDiff,
  };
}

export interface PpoSpec {
  readonly target: EngineTarget;
  readonly model: GptConfig;
  readonly batchSize: number;
  readonly newTokens: number;
  readonly epochs: number;
  readonly miniBatches: number;
  /** PPO iterations run; the first is warm-up, the last is reported. */
  readonly iterations: number;
}

/** One PPO iteration as bench:rollout runs it: a short SFT checkpoint, then a PPO stage through runPipeline. */
export async function ppoPart(spec: PpoSpec) {
  // Unavailable targets say so before a run is made (the run itself would fall back to the CPU provider).
  await createEngine(spec.target);
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-gpu-check-ppo-'));
  const runsRoot = path.join(dir, 'runs');
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify(value));
    return file;
  };
  // tfjs's backend for the run (the ONNX Runtime engine's evaluation helpers use it too); wasm beside ONNX Runtime.
  const backend = spec.target.engine === 'tfjs' ? spec.target.backend : 'wasm';
  const { vocab_size, ...model } = spec.model;
  const log = { log: () => undefined };
  const sft = await runPipeline(
    {
      configFile: write('sft.rlhf.json', {
        name: 'sft',
        seed: 1,
        backend,
        engine: spec.target.engine,
        model,
        tokenizer: { vocab_size },
        stages: [
          { type: 'sft', dataset: { source: 'demo', num_examples: 100 }, max_steps: 2, warmup_steps: 1, save_steps: 2 },
        ],
      }),
      runsRoot,
    },
    log,
  );
  const checkpoint = sft.runs[0].result.outputs.checkpoint as string;
  const ppoStage = {
    type: 'ppo',
    rollout_engine: 'training',
    policy: checkpoint,
    reward_model: checkpoint,
    prompts: { source: 'demo' },
    total_episodes: spec.iterations * spec.batchSize,
    batch_size: spec.batchSize,
    num_mini_batches: spec.miniBatches,
    num_ppo_epochs: spec.epochs,
    max_new_tokens: spec.newTokens,
    stop_token: 'none',
    eval_steps: 1000,
    num_eval_prompts: 2,
    save_steps: 1000,
  };
  const config = { name: 'ppo', seed: 1, backend, engine: spec.target.engine, model, stages: [ppoStage] };
  const { runs } = await runPipeline({ configFile: write('ppo.rlhf.json', config), runsRoot }, log);
  const runJson = JSON.parse(readFileSync(path.join(runs[0].runDir, 'run.json'), 'utf8')) as Record<string, unknown>;
  const rows = readFileSync(path.join(runs[0].runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
  const last = rows[rows.length - 1];
  const phases = Object.fromEntries(phaseNames.map((phase) => [`${phase}_ms`, (last[`time/${phase}`] ?? 0) * 1000]));
  const totalMs = Object.values(phases).reduce((sum, ms) => sum + ms, 0);
  const ranOn = String(runJson.backend ?? '?');
  if (isGpuTarget(spec.target) && ranOn !== spec.target.backend)
    throw new Unavailable(`not available in this build: the PPO run ran on "${ranOn}", not "${spec.target.backend}"`);
  return {
    engine: spec.target.engine,
    backend: ranOn,
    iterations: rows.length,
    reported_iteration: last.step,
    ...phases,
    total_ms: totalMs,
    response_tokens_per_s: (spec.batchSize * spec.newTokens) / (totalMs / 1000),
  };
}
