/**
 * LoRA and the memory guard in the real stages: a model folder too big for the backend is refused from its
 * config.json before a weight is read; a LoRA SFT stopped after 2 steps and resumed equals 4 steps straight; a LoRA
 * policy's PPO reference is the policy with its adapters off — the base model's log-probabilities, on the training
 * engine and on the ONNX rollout engine — and PPO then builds one trunk fewer.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { UserError } from '../../src/shared/userError';
import { readModelSource } from '../../src/trainer/checkpoint/modelLoading';
import { adaptersOffView } from '../../src/trainer/checkpoint/referenceModel';
import { responseValues, tokenBatchOf } from '../../src/trainer/data/sequences';
import type { EngineModel, NamedArrays, SamplingOptions, TrainingEngine } from '../../src/trainer/engine/engine';
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { loraBName, loraTargets, type LoraSettings } from '../../src/trainer/lora/loraTargets';
import { onnxEngineSampler } from '../../src/trainer/onnx/onnxEngineSampler';
import { OnnxRolloutEngine } from '../../src/trainer/onnx/onnxRolloutEngine';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { runPipeline } from '../../src/trainer/pipeline';
import { loadPpoModels } from '../../src/trainer/ppo/ppoTrainer';
import { collectRollout } from '../../src/trainer/rollout/engineRollout';
import type { Rollout } from '../../src/trainer/rollout/rolloutEngine';
import type { StageContext } from '../../src/trainer/stageContext';
import { twinUnavailable } from '../fixtures/hf/hfTwin';
import { writePretrainedFolder } from '../fixtures/hf/pretrainedFolders';
import { temporaryFolder } from './hfFolderWriter';
import { llama32OneB } from '../fixtures/hf/publishedConfigs';

const skip = twinUnavailable();
const lora = { r: 4, alpha: 8, dropout: 0 };
const settings: LoraSettings = { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] };
const blockSize = 40;
const tolerance = 1e-4;

const sftStage = (extra: Record<string, unknown> = {}) => ({
  type: 'sft',
  dataset: { source: 'demo', num_examples: 64 },
  learning_rate: 0.01,
  max_steps: 4,
  per_device_train_batch_size: 4,
  warmup_steps: 0,
  eval_steps: 100,
  save_steps: 100,
  logging_steps: 1,
  ...extra,
});

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, `${String(config.name)}.rlhf.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

test('a model folder too big for wasm is refused from config.json, with the figures and the alternatives', async () => {
  const dir = temporaryFolder('lora-guard-');
  mkdirSync(path.join(dir, 'llama-1b'));
  writeFileSync(path.join(dir, 'llama-1b', 'config.json'), JSON.stringify(llama32OneB));
  await new BpeTokenizer(trainBpe(['the film was great. '.repeat(20)], { vocabSize: 280 })).save(
    path.join(dir, 'llama-1b'),
  );
  const configFile = writeConfig(dir, {
    name: 'too-big',
    engine: 'tfjs',
    backend: 'wasm',
    model: { from: 'llama-1b', block_size: 256 },
    stages: [sftStage()],
  });
  const started = performance.now();
  await assert.rejects(
    runPipeline({ configFile, runsRoot: path.join(dir, 'runs') }, { log: () => undefined }),
    (error: unknown) => {
      assert.ok(error instanceof UserError, String(error));
      assert.match(error.message, /sft of a llama model of 1235\.8 M parameters \(full, block_size 256, batch 4\)/);
      assert.match(error.message, /needs about [\d.]+ GiB .*more than/);
      assert.match(error.hint ?? '', /LoRA \("lora": \{"r": 8/);
      assert.match(error.hint ?? '', /"engine": "onnxruntime"|a GPU backend/);
      assert.equal(error.field, 'stages[0]');
      return true;
    },
  );
  // Refused before any weight: the folder has none, and no run folder was made.
  assert.ok(performance.now() - started < 5000);
});

test('LoRA on a GPT built from scratch is refused: there is no pretrained model to adapt', async () => {
  const dir = temporaryFolder('lora-scratch-');
  const configFile = writeConfig(dir, {
    name: 'scratch-lora',
    backend: 'wasm',
    model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 16 },
    tokenizer: { vocab_size: 280 },
    stages: [sftStage({ lora })],
  });
  await assert.rejects(
    runPipeline({ configFile, runsRoot: path.join(dir, 'runs') }, { log: () => undefined }),
    /"lora" trains adapters on a pretrained model, but this SFT starts from scratch/,
  );
});

test('a LoRA SFT stopped after 2 steps and resumed equals 4 steps straight', { skip }, async () => {
  const dir = temporaryFolder('lora-resume-');
  await writePretrainedFolder('smollm2', path.join(dir, 'smollm2'));
  const config = (name: string) => ({
    name,
    seed: 9,
    model: { from: 'smollm2', block_size: blockSize },
    stages: [sftStage({ lora, save_steps: 2 })],
  });
  const whole = await runPipeline(
    { configFile: writeConfig(dir, config('whole')), runsRoot: path.join(dir, 'runs') },
    { log: () => undefined },
  );
  let steps = 0;
  const first = await runPipeline(
    { configFile: writeConfig(dir, config('parts')), runsRoot: path.join(dir, 'runs') },
    { log: () => undefined, onStep: () => steps++, shouldStop: () => steps >= 2 },
  );
  assert.equal(first.stopped, true);
  const runDir = first.runs[0].runDir;
  await runPipeline({ resumeDir: runDir, runsRoot: path.join(dir, 'runs') }, { log: () => undefined });
  const adapters = (run: string) =>
    decodeSafetensors(readFileSync(path.join(run, 'checkpoints', 'step-4', 'adapter_model.safetensors'))).tensors;
  const expected = adapters(whole.runs[0].runDir);
  const resumed = adapters(runDir);
  assert.deepEqual(Object.keys(resumed).sort(), Object.keys(expected).sort());
  for (const [name, tensor] of Object.entries(expected)) {
    const diff = maxAbsDiff(resumed[name].data as Float32Array, tensor.data as Float32Array);
    assert.ok(diff <= 1e-6, `${name}: ${diff}`);
  }
  const lastLoss = (run: string) =>
    readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, number>)
      .filter((row) => row['loss/train'] !== undefined)
      .at(-1)?.['loss/train'];
  assert.ok(Math.abs((lastLoss(runDir) ?? NaN) - (lastLoss(whole.runs[0].runDir) ?? NaN)) < 1e-5);
  // The first 2 steps moved the adapters: a resume that restarted them would not match.
  const atTwo = decodeSafetensors(
    readFileSync(path.join(runDir, 'checkpoints', 'step-2', 'adapter_model.safetensors')),
  );
  const name = Object.keys(expected).find((key) => key.endsWith('lora_B.weight')) as string;
  assert.ok(maxAbsDiff(atTwo.tensors[name].data as Float32Array, expected[name].data as Float32Array) > 1e-6);
});

test(
  'a LoRA PPO stopped after 2 steps and resumed equals 4 steps straight (adapters and value head)',
  { skip },
  async () => {
    const dir = temporaryFolder('lora-ppo-resume-');
    await writePretrainedFolder('smollm2', path.join(dir, 'smollm2'));
    const config = (name: string) => ({
      name,
      seed: 4,
      model: { from: 'smollm2', block_size: blockSize },
      stages: [
        {
          type: 'ppo',
          policy: 'smollm2',
          reward_model: 'smollm2',
          prompts: { source: 'demo' },
          total_episodes: 16,
          batch_size: 4,
          num_mini_batches: 1,
          num_ppo_epochs: 1,
          max_new_tokens: 4,
          eval_steps: 100,
          num_eval_prompts: 2,
          save_steps: 2,
          lora,
        },
      ],
    });
    const runsRoot = path.join(dir, 'runs');
    const whole = await runPipeline(
      { configFile: writeConfig(dir, config('whole')), runsRoot },
      { log: () => undefined },
    );
    let steps = 0;
    const first = await runPipeline(
      { configFile: writeConfig(dir, config('parts')), runsRoot },
      { log: () => undefined, onStep: () => steps++, shouldStop: () => steps >= 2 },
    );
    assert.equal(first.stopped, true);
    const runDir = first.runs[0].runDir;
    await runPipeline({ resumeDir: runDir, runsRoot }, { log: () => undefined });
    for (const file of ['adapter_model.safetensors', 'model.safetensors']) {
      const tensors = (run: string) =>
        decodeSafetensors(readFileSync(path.join(run, 'checkpoints', 'step-4', file))).tensors;
      const expected = tensors(whole.runs[0].runDir);
      const resumed = tensors(runDir);
      assert.deepEqual(Object.keys(resumed).sort(), Object.keys(expected).sort());
      for (const [name, tensor] of Object.entries(expected)) {
        const diff = maxAbsDiff(resumed[name].data as Float32Array, tensor.data as Float32Array);
        assert.ok(diff <= 1e-5, `${file} ${name}: ${diff}`);
      }
    }
  },
);

/** A LoRA policy whose adapters are not zero (B random), so adapters on and off differ. */
function loraPolicy(engine: TrainingEngine, base: Awaited<ReturnType<typeof readModelSource>>): EngineModel {
  const weights: NamedArrays = new Map(base.weights);
  let seed = 1;
  for (const target of loraTargets(base.config.model, settings)) {
    const data = Float32Array.from({ length: target.outFeatures * settings.r }, () => {
      seed = (seed * 16807) % 2147483647;
      return (seed / 2147483647 - 0.5) * 0.5;
    });
    weights.set(loraBName(target.module), { shape: [target.outFeatures, settings.r], data });
  }
  return engine.createModel(base.config.model, {
    heads: ['v_head'],
    weights,
    keepMissingHeads: true,
    seed: 3,
    lora: settings,
  });
}

async function assertReferenceIsBase(rollout: Rollout, base: EngineModel): Promise<void> {
  const evaluated = await base.evaluate(tokenBatchOf(rollout.batch), { logprobs: true, temperature: 1 });
  const baseLogprobs = responseValues(evaluated.logprobs as Float32Array, rollout.batch).flat();
  assert.ok(maxAbsDiff(rollout.refLogprobs.flat(), baseLogprobs) < tolerance, 'ref_logprob = the base model');
  assert.ok(maxAbsDiff(rollout.logprobs.flat(), baseLogprobs) > 1e-3, 'the policy (adapters on) differs');
}

test("a LoRA policy's reference is its base model, on the training engine and the ONNX rollout engine", async (t) => {
  if (skip) return t.skip(skip);
  const dir = temporaryFolder('lora-reference-');
  const folder = await writePretrainedFolder('smollm2', path.join(dir, 'smollm2'));
  const source = await readModelSource(folder, { seed: 1, blockSize });
  const engine = new OnnxEngine(onnxEngineSampler, {}, { padToBuckets: false });
  const policy = loraPolicy(engine, source);
  const base = engine.createModel(source.config.model, { heads: [], weights: source.weights, seed: 3 });
  const reward = engine.createModel(source.config.model, {
    heads: ['score'],
    weights: source.weights,
    keepMissingHeads: true,
    seed: 4,
  });
  const tokenizer = source.tokenizer;
  const prompts = ['the film', 'a movie that'].map((text) => tokenizer.encode(text, { bos: true }));
  const sampling: SamplingOptions = {
    temperature: 1,
    topK: 0,
    topP: 1,
    maxNewTokens: 5,
    seed: 2,
    padTokenId: tokenizer.padId,
  };
  const models = { policy, reference: adaptersOffView(policy), reward };
  await assertReferenceIsBase(await collectRollout(models, prompts, sampling, undefined), base);
  const onnx = await OnnxRolloutEngine.create(models, { threads: 1 });
  try {
    await assertReferenceIsBase(await onnx.collect(prompts, sampling, undefined), base);
  } finally {
    await onnx.release();
  }
  for (const model of [policy, base, reward]) model.dispose();
});

test('PPO with LoRA builds no reference model: one trunk fewer than without', async (t) => {
  if (skip) return t.skip(skip);
  const dir = temporaryFolder('lora-one-trunk-');
  const folder = await writePretrainedFolder('smollm2', path.join(dir, 'smollm2'));
  const created = async (withLora: boolean) => {
    const engine = new OnnxEngine(undefined, {}, { padToBuckets: false });
    let count = 0;
    const counting = new Proxy(engine, {
      get(target, property, receiver) {
        if (property === 'createModel')
          return (...args: Parameters<TrainingEngine['createModel']>) => {
            count++;
            return target.createModel(...args);
          };
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const stage = { policy: folder, reward_model: folder, ...(withLora && { lora }) };
    const context = {
      engine: counting,
      seed: 5,
      model: { block_size: blockSize },
      log: () => undefined,
      resolve: (reference: string) => reference,
    } as unknown as StageContext;
    const models = await loadPpoModels(stage as unknown as Parameters<typeof loadPpoModels>[0], context);
    const trunk = models.reference === models.policy || models.reference.lora !== undefined;
    for (const model of new Set([models.policy, models.reward])) model.dispose();
    if (!withLora) models.reference.dispose();
    return { count, trunk };
  };
  assert.deepEqual(await created(false), { count: 3, trunk: false });
  assert.deepEqual(await created(true), { count: 2, trunk: true });
});

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
};
