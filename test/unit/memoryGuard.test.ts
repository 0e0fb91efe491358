// The memory guard's estimator: its parameter count is the real model's, its activation estimate
// tracks a real training step's wasm heap, and its refusals name the estimate and the largest batch
// (or model) that fits — which itself fits, while one more does not. ONNX Runtime is held to the machine's
// free memory with its own (measured) activation share, and its estimate bounds a real step's peak RSS.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { validate } from '../../src/shared/configSchema';
import { runConfigSchema, type RunConfig } from '../../src/shared/runConfig';
import { renderTemplate, runTemplates } from '../../src/shared/runTemplates';
import { readConfigText } from '../../src/shared/configFile';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { maskedNll } from '../../src/trainer/engine/tfjs/losses';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { AdamW } from '../../src/trainer/engine/tfjs/adamW';
import {
  assertStageFits,
  checkStageMemory,
  estimateStageMemory,
  memoryBudget,
  memoryTarget,
  onnxActivationShare,
  parameterCount,
  stageModelShape,
  trainingActivationBytes,
  wasmLimitBytes,
  type ModelShape,
} from '../../src/trainer/memoryGuard';
import { demoConfig, demoScales } from '../../src/trainer/demo/demoConfig';

const plenty = 512 * 2 ** 30;

function config(model: Record<string, number>, stages: object[], vocab = 512): RunConfig {
  const { value, problems } = validate(runConfigSchema, {
    name: 'm',
    backend: 'wasm',
    model,
    tokenizer: { vocab_size: vocab },
    stages,
  });
  assert.deepEqual(problems, []);
  return value as RunConfig;
}
const shapeOf = ({ model, tokenizer }: RunConfig): ModelShape => ({
  n_layer: model.n_layer,
  n_head: model.n_head,
  n_embd: model.n_embd,
  block_size: model.block_size,
  vocab_size: tokenizer.vocab_size,
});

test("parameterCount is the real GPT's (with a value head)", async () => {
  await selectBackend('cpu');
  for (const shape of [
    { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64, vocab_size: 512 },
    { n_layer: 3, n_head: 2, n_embd: 48, block_size: 32, vocab_size: 300 },
  ]) {
    const model = Gpt.create({ ...shape, dropout: 0 }, { seed: 1, heads: ['v_head'] });
    try {
      assert.equal(parameterCount(shape), model.parameterCount);
    } finally {
      model.dispose();
    }
  }
});

test(
  'activations grow linearly with the batch and about ' + 'quadratically with the context when attention dominates',
  () => {
    const shape: ModelShape = { n_layer: 2, n_head: 8, n_embd: 64, block_size: 1024, vocab_size: 512 };
    assert.equal(trainingActivationBytes(shape, 8), 2 * trainingActivationBytes(shape, 4));
    const ratio = trainingActivationBytes(shape, 4, 1024) / trainingActivationBytes(shape, 4, 512);
    assert.ok(ratio > 3.5 && ratio < 4, `ratio ${ratio}`);
  },
);

test(
  'PPO holds the trained policy, its optimizer state, a ' + 'reference and a reward model; SFT only the first two',
  () => {
    const c = config({ n_layer: 2, n_head: 4, n_embd: 64, block_size: 64 }, [
      { type: 'sft', dataset: { source: 'demo' } },
      { type: 'preferences', prompts: { source: 'demo' }, max_new_tokens: 8 },
      { type: 'reward' },
      { type: 'ppo', prompts: { source: 'demo' }, max_new_tokens: 8 },
    ]);
    const bytes = parameterCount(shapeOf(c)) * 4;
    assert.equal(estimateStageMemory(c.stages[0], c, shapeOf(c)).parts.weights, bytes);
    assert.equal(estimateStageMemory(c.stages[0], c, shapeOf(c)).parts['gradients and AdamW state'], 3 * bytes);
    assert.equal(estimateStageMemory(c.stages[3], c, shapeOf(c)).parts.weights, 3 * bytes);
    assert.equal(estimateStageMemory(c.stages[1], c, shapeOf(c)).parts['gradients and AdamW state'], 0);
  },
);

test('the templates, examples and the demo fit the wasm backend', () => {
  const configs = [
    ...runTemplates.map((t) => readConfigText(renderTemplate(t.id, 'x')).config as RunConfig),
    demoConfig(demoScales.full, 'demo') as unknown as RunConfig,
    demoConfig(demoScales.quick, 'demo-quick') as unknown as RunConfig,
  ];
  for (const c of configs) {
    const checked = validate(runConfigSchema, c).value as RunConfig;
    checked.stages.forEach((_, index) =>
      assert.equal(
        checkStageMemory(checked, index, shapeOf(checked), memoryBudget('wasm', plenty)),
        undefined,
        `${checked.name} stage ${index}`,
      ),
    );
  }
});

test('the largest batch the refusal names fits, and one more does not', () => {
  const c = config({ n_layer: 2, n_head: 4, n_embd: 64, block_size: 2048 }, [
    { type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: 1024 },
  ]);
  const budget = memoryBudget('wasm', plenty);
  const refusal = checkStageMemory(c, 0, shapeOf(c), budget);
  assert.ok(refusal);
  assert.deepEqual(refusal.path, ['stages', 0, 'per_device_train_batch_size']);
  const fitting = Number(/the largest per_device_train_batch_size that fits is (\d+)/.exec(refusal.hint)?.[1]);
  assert.ok(fitting >= 1 && fitting < 1024, refusal.hint);
  assert.ok(estimateStageMemory(c.stages[0], c, shapeOf(c), fitting).bytes <= budget.bytes);
  assert.ok(estimateStageMemory(c.stages[0], c, shapeOf(c), fitting + 1).bytes > budget.bytes);
  assert.match(
    refusal.message,
    /needs about [\d.]+ TiB \(weights .*activations .*\), more than the wasm backend's 4 GiB of memory/,
  );
});

test('a model too big at any batch gets the largest n_layer (and block_size) that fits instead', () => {
  const c = config({ n_layer: 32, n_head: 16, n_embd: 2048, block_size: 256 }, [
    { type: 'sft', dataset: { source: 'demo' } },
  ]);
  const refusal = checkStageMemory(c, 0, shapeOf(c), memoryBudget('wasm', plenty));
  assert.ok(refusal);
  assert.deepEqual(refusal.path, ['model']);
  const layers = Number(/n_layer (\d+) \(at n_embd 2048/.exec(refusal.hint)?.[1]);
  assert.ok(layers >= 1 && layers < 32, refusal.hint);
  assert.ok(estimateStageMemory(c.stages[0], c, { ...shapeOf(c), n_layer: layers }, 1).bytes <= wasmLimitBytes);
  assert.ok(estimateStageMemory(c.stages[0], c, { ...shapeOf(c), n_layer: layers + 1 }, 1).bytes > wasmLimitBytes);
});

test('a context too long at any batch gets the largest block_size that fits', () => {
  // Two narrow layers of 16 heads: attention's T² per head dominates.
  const c = config({ n_layer: 2, n_head: 16, n_embd: 64, block_size: 2048 }, [
    { type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: 1 },
  ]);
  const refusal = checkStageMemory(c, 0, shapeOf(c), memoryBudget('wasm', plenty));
  assert.ok(refusal);
  const context = Number(/block_size (\d+) \(at n_layer 2\)/.exec(refusal.hint)?.[1]);
  assert.ok(context >= 8 && context < 2048, refusal.hint);
  assert.ok(estimateStageMemory(c.stages[0], c, { ...shapeOf(c), block_size: context }, 1).bytes <= wasmLimitBytes);
  assert.ok(estimateStageMemory(c.stages[0], c, { ...shapeOf(c), block_size: context + 1 }, 1).bytes > wasmLimitBytes);
});

test(
  "other backends are held to the machine's free memory; " + "PPO's fitting batch stays a multiple of its minibatches",
  () => {
    const c = config({ n_layer: 4, n_head: 4, n_embd: 256, block_size: 512 }, [
      { type: 'sft', dataset: { source: 'demo' } },
      { type: 'preferences', prompts: { source: 'demo' }, max_new_tokens: 8 },
      { type: 'reward' },
      {
        type: 'ppo',
        prompts: { source: 'demo' },
        batch_size: 1024,
        num_mini_batches: 8,
        total_episodes: 4096,
        max_new_tokens: 8,
      },
    ]);
    const free = 3 * 2 ** 30;
    assert.equal(memoryBudget('tfjs-node', free).bytes, free);
    assert.equal(memoryBudget('wasm', 2 ** 40).bytes, wasmLimitBytes);
    assert.throws(
      () => assertStageFits(c, 3, 'tfjs-node', { freeBytes: free }),
      (error: Error) => {
        const fitting = Number(/the largest batch_size that fits is (\d+)/.exec(error.message)?.[1]);
        assert.ok(fitting > 0 && fitting % 8 === 0, error.message);
        assert.match(error.message, /this machine's free memory \(3\.0 GiB\)/);
        return true;
      },
    );
    assert.doesNotThrow(() => assertStageFits(c, 3, 'tfjs-node', { freeBytes: 2 ** 40 }));
  },
);

test("a stage that starts from a checkpoint folder is estimated with the checkpoint's shape", () => {
  const c = config({ n_layer: 2, n_head: 4, n_embd: 64, block_size: 64 }, [
    { type: 'sft', init_from: 'ckpt', dataset: { source: 'demo' } },
    { type: 'dpo', policy: 'sft', preferences: 'prefs.jsonl', max_new_tokens: 8 },
  ]);
  const big = { n_layer: 12, n_head: 12, n_embd: 768, block_size: 1024, vocab_size: 50257 };
  assert.deepEqual(
    stageModelShape(c, 1, (reference) => (reference === 'ckpt' ? big : undefined)),
    big,
  );
  assert.deepEqual(
    stageModelShape(c, 1, () => undefined),
    shapeOf(c),
  );
});

test(
  'calibration: the estimate of a real training step ' + 'on wasm is within 0.6–1.6× of the heap it grows to',
  async (t) => {
    // A fresh wasm heap only grows, so its size after the step is the step's peak (plus the runtime's own).
    await selectBackend('wasm');
    const shape: ModelShape = { n_layer: 2, n_head: 8, n_embd: 64, block_size: 256, vocab_size: 512 };
    const batch = 16;
    const c = config({ n_layer: 2, n_head: 8, n_embd: 64, block_size: 256 }, [
      { type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: batch },
    ]);
    const model = Gpt.create({ ...shape, dropout: 0 }, { seed: 3 });
    const optimizer = new AdamW(model.weights, {
      adamBeta1: 0.9,
      adamBeta2: 0.99,
      adamEpsilon: 1e-8,
      weightDecay: 0.1,
    });
    try {
      const ids = tf.randomUniform([batch, shape.block_size], 0, shape.vocab_size, 'int32');
      const mask = tf.ones([batch, shape.block_size]);
      for (let step = 0; step < 2; step++) {
        const { value, grads } = tf.variableGrads(
          () => maskedNll(model.forward(ids).logits, ids, mask) as never,
          model.trainableVariables,
        );
        optimizer.apply(grads, 1e-3);
        value.dispose();
        for (const grad of Object.values(grads)) grad.dispose();
      }
      const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
      const estimate = estimateStageMemory(c.stages[0], c, shape).bytes;
      t.diagnostic(`estimate ${(estimate / 2 ** 20).toFixed(0)} MiB, wasm heap ${(heap / 2 ** 20).toFixed(0)} MiB`);
      assert.ok(
        estimate / heap > 0.6 && estimate / heap < 1.6,
        `estimate ${(estimate / 2 ** 20).toFixed(0)} MiB, heap ${(heap / 2 ** 20).toFixed(0)} MiB`,
      );
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  },
);

test("ONNX Runtime is held to the machine's free memory, not wasm's 4 GiB, with its smaller activation share", () => {
  assert.equal(memoryTarget('onnxruntime', 'wasm'), 'onnxruntime');
  assert.equal(memoryTarget('tfjs', 'wasm'), 'wasm');
  // The T 512 calibration shape: over wasm's 4 GiB on tfjs, so refused there; it fits ONNX Runtime's budget.
  const c = config({ n_layer: 2, n_head: 8, n_embd: 64, block_size: 512 }, [
    { type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: 24 },
  ]);
  assert.ok(checkStageMemory(c, 0, shapeOf(c), memoryBudget('wasm', plenty)), 'refused on wasm');
  const onnx = memoryBudget('onnxruntime', plenty);
  assert.deepEqual(onnx, { bytes: plenty, what: "this machine's free memory (512.0 GiB)", engine: 'onnxruntime' });
  assert.equal(checkStageMemory(c, 0, shapeOf(c), onnx), undefined);
  const tfjs = estimateStageMemory(c.stages[0], c, shapeOf(c));
  const ort = estimateStageMemory(c.stages[0], c, shapeOf(c), undefined, 'onnxruntime');
  assert.equal(ort.parts.activations, onnxActivationShare * tfjs.parts.activations);
  assert.equal(ort.parts.weights, tfjs.parts.weights);
  // With 3 GiB free, both are refused; ONNX Runtime's fitting batch is at least tfjs's on a native backend.
  const free = 3 * 2 ** 30;
  const fitting = (target: 'onnxruntime' | 'tfjs-node') => {
    const refusal = checkStageMemory(c, 0, shapeOf(c), memoryBudget(target, free));
    assert.ok(refusal, target);
    return Number(/the largest per_device_train_batch_size that fits is (\d+)/.exec(refusal.hint)?.[1]);
  };
  assert.ok(fitting('onnxruntime') > fitting('tfjs-node'), `${fitting('onnxruntime')} vs ${fitting('tfjs-node')}`);
  assert.throws(() => assertStageFits(c, 0, 'onnxruntime', { freeBytes: free }), /this machine's free memory/);
  assert.doesNotThrow(() => assertStageFits(c, 0, 'onnxruntime', { freeBytes: plenty }));
});

test('calibration: the ONNX Runtime estimate of a real training step bounds its peak RSS, within 4×', (t) => {
  const shape: ModelShape = { n_layer: 2, n_head: 8, n_embd: 64, block_size: 256, vocab_size: 512 };
  const batchSize = 16;
  const c = config({ n_layer: 2, n_head: 8, n_embd: 64, block_size: 256 }, [
    { type: 'sft', dataset: { source: 'demo' }, per_device_train_batch_size: batchSize },
  ]);
  const probe = path.join(__dirname, 'onnxMemoryProbe.ts');
  const output = execFileSync(process.execPath, ['--import', 'tsx', probe, JSON.stringify({ shape, batchSize })], {
    encoding: 'utf8',
  });
  const peak = Number(output.trim());
  const estimate = estimateStageMemory(c.stages[0], c, shape, undefined, 'onnxruntime').bytes;
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  t.diagnostic(`estimate ${mib(estimate)} MiB, peak RSS over the baseline ${mib(peak)} MiB`);
  assert.ok(peak > 0 && estimate >= peak && estimate <= 4 * peak, `estimate ${mib(estimate)}, peak ${mib(peak)} MiB`);
});
