/**
 * The ONNX Runtime engine's execution provider (src/trainer/engine/onnxruntime/ortProvider.ts) against the real
 * onnxruntime-node webgpu EP, no stand-in. Where the EP finds an adapter, the tests check the GPU path (the provider
 * is chosen, one training step equals the CPU provider's to 1e-4); where it finds none (these CPU-only machines:
 * onnxruntime-node's Dawn asks Vulkan alone and there is no Vulkan GPU), they assert the reason the run records.
 * Neither branch is skipped: each asserts what the machine allows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AdamWOptions, TokenBatch } from '../../src/trainer/engine/engine';
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import { missingVulkanLoader } from '../../src/trainer/engine/webgpu/vulkanLoader';
import {
  cachedWebgpuProbe,
  probeWebgpu,
  chooseOrtProvider,
  ortProviderEnvironmentVariable,
  type OrtProviderChoice,
} from '../../src/trainer/engine/onnxruntime/ortProvider';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { onnxEngineSampler } from '../../src/trainer/onnx/onnxEngineSampler';
import { runBackend } from '../../src/trainer/engineFactory';
import { tokenBatch } from './onnxAutodiffHarness';

const config: GptConfig = { vocab_size: 24, block_size: 8, n_layer: 1, n_head: 2, n_embd: 8, dropout: 0 };
const adam: AdamWOptions = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-6, weightDecay: 0.01 };
const GPU_VS_CPU_TOLERANCE = 1e-4;
/** What onnxruntime-node's webgpu EP says when its Dawn finds no adapter (webgpu_context.cc). */
const EP_NO_ADAPTER = /Failed to get a WebGPU adapter: No supported adapters/;
/** Why no adapter is usable: no Vulkan loader at all (the EP is then not asked), or the EP's own answer. */
const NO_ADAPTER = new RegExp(`libvulkan\\.so\\.1 not found: install the Vulkan loader|${EP_NO_ADAPTER.source}`);
const env = (value?: string): NodeJS.ProcessEnv =>
  value === undefined ? {} : { [ortProviderEnvironmentVariable]: value };

function batch(seed: number): TokenBatch {
  const made = tokenBatch(2, 6, config.vocab_size, seed);
  const { ids, targets, mask } = made;
  return {
    batchSize: 2,
    length: 6,
    inputs: Int32Array.from(ids),
    targets: Int32Array.from(targets),
    mask: Float32Array.from(mask),
  };
}

test('ort provider: auto takes webgpu where the EP finds an adapter, else cpu with the EP’s own reason', async () => {
  const probe = await cachedWebgpuProbe();
  const choice = await chooseOrtProvider(env());
  if (probe.available) {
    assert.equal(choice.name, 'webgpu');
    assert.equal(choice.label, `webgpu (${probe.adapter})`);
    assert.deepEqual(choice.executionProviders, ['webgpu', 'cpu']);
  } else {
    assert.equal(choice.name, 'cpu');
    assert.equal(choice.label, 'cpu');
    assert.deepEqual(choice.executionProviders, ['cpu']);
    assert.match(choice.reason, /RLHF_LENS_ORT_PROVIDER is "auto" \(the default\) and no WebGPU adapter is usable/);
    assert.match(choice.reason, NO_ADAPTER);
  }
});

test('ort provider: without a Vulkan loader the EP is not asked; asked anyway, it answers for itself', async () => {
  const probe = await probeWebgpu({ checkVulkanLoader: false });
  if (probe.available) assert.equal(typeof probe.adapter, 'string');
  else assert.match(probe.why, EP_NO_ADAPTER);
  if (missingVulkanLoader() !== undefined) {
    const checked = await probeWebgpu();
    assert.equal(checked.available, false);
    assert.match(
      !checked.available ? checked.why : '',
      /libvulkan\.so\.1 not found: install the Vulkan loader \(Debian: libvulkan1\)/,
    );
  }
});

test('ort provider: webgpu pinned and unavailable is an error that says why; available, it is chosen', async () => {
  const probe = await cachedWebgpuProbe();
  const pinned = chooseOrtProvider(env('webgpu'));
  if (probe.available) assert.equal((await pinned).name, 'webgpu');
  else
    await assert.rejects(pinned, (error: Error) => {
      assert.match(error.message, /^RLHF_LENS_ORT_PROVIDER is "webgpu" but no WebGPU adapter is usable: /);
      assert.match(error.message, NO_ADAPTER);
      return true;
    });
});

test('ort provider: cpu pinned never probes; an unknown value names the accepted ones', async () => {
  const mustNotProbe = () => Promise.reject(new Error('the probe ran although cpu was pinned'));
  const choice = await chooseOrtProvider(env(' CPU '), mustNotProbe);
  assert.deepEqual(choice, {
    name: 'cpu',
    label: 'cpu',
    reason: 'RLHF_LENS_ORT_PROVIDER is "cpu"',
    executionProviders: ['cpu'],
  });
  await assert.rejects(chooseOrtProvider(env('cuda')), /RLHF_LENS_ORT_PROVIDER is "cuda": use auto, webgpu, cpu/);
});

test('ort provider: the run records the provider (run.json backend, status bar label) and its reason', async () => {
  const engine = await OnnxEngine.create(onnxEngineSampler);
  const choice = await chooseOrtProvider(env());
  const recorded = runBackend(engine, { name: 'wasm', reason: 'unused by the ONNX Runtime engine', passedOver: [] });
  assert.equal(recorded.name, choice.label);
  assert.match(
    recorded.reason,
    new RegExp(`^onnxruntime-node's ${choice.name === 'webgpu' ? 'webgpu' : 'CPU'} execution provider \\(`),
  );
  assert.ok(recorded.reason.includes(choice.reason), recorded.reason);
});

test('ort provider: a step and a sample on the chosen provider equal the CPU provider’s to 1e-4', async () => {
  const cpu: OrtProviderChoice = await chooseOrtProvider(env('cpu'));
  const chosen = await chooseOrtProvider(env());
  const models = [
    new OnnxEngine(onnxEngineSampler, undefined, {}, chosen),
    new OnnxEngine(onnxEngineSampler, undefined, {}, cpu),
  ].map((engine) => engine.createModel(config, { heads: [], seed: 5 }));
  const steps = await Promise.all(
    models.map((model) =>
      model.createOptimizer(adam).step({ kind: 'lm', batch: batch(2) }, { learningRate: 1e-2, maxGradNorm: 1 }),
    ),
  );
  for (const name of ['loss', 'gradNorm']) {
    const [onChosen, onCpu] = steps.map((step) => step.scalars[name]);
    assert.ok(
      Number.isFinite(onCpu) && Math.abs(onChosen - onCpu) <= GPU_VS_CPU_TOLERANCE,
      `${name}: ${onChosen} vs ${onCpu}`,
    );
  }
  const [chosenWeights, cpuWeights] = await Promise.all(models.map((model) => model.readWeights()));
  for (const [name, { data }] of cpuWeights) {
    const other = chosenWeights.get(name)?.data ?? [];
    for (let i = 0; i < data.length; i++)
      assert.ok(Math.abs(other[i] - data[i]) <= GPU_VS_CPU_TOLERANCE, `${name}[${i}]: ${other[i]} vs ${data[i]}`);
  }
  const sampling = { maxNewTokens: 4, temperature: 0, topK: 0, topP: 1, seed: 1, padTokenId: 0 };
  const [sampledChosen, sampledCpu] = await Promise.all(models.map((model) => model.generate([[1, 2, 3]], sampling)));
  assert.deepEqual(
    sampledChosen.map((s) => s.tokens),
    sampledCpu.map((s) => s.tokens),
  );
  // Here, without an adapter, both sides ran on the CPU provider: say so rather than pass as a GPU check.
  if (chosen.name === 'cpu') assert.match(chosen.reason, NO_ADAPTER);
  for (const model of models) model.dispose();
});
