// The memory estimate for real models' architectures, read from their config.json as published: parameter counts
// equal the published figures; LoRA's optimizer state is a sliver of a full fine-tune's; the KV cache, the
// reference and the reward model are counted as the stage holds them; refusals name the figures and what would fit
// (LoRA, ONNX Runtime or a GPU backend, the largest block_size, the largest batch), each of which fits.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { validate } from '../../src/shared/configSchema';
import { runConfigSchema, type RunConfig } from '../../src/shared/runConfig';
import { UserError } from '../../src/shared/userError';
import { parseHfConfig, type LlamaFamilyArchitecture } from '../../src/trainer/hf';
import { llamaConfig, type LlamaConfig } from '../../src/trainer/model/causalLmConfig';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import {
  checkModelFits,
  defaultLora,
  estimateModelMemory,
  estimateStageMemory,
  loraParameters,
  modelFitsRefusal,
  transformerParameters,
  wasmLimitBytes,
  type ModelMemoryRequest,
} from '../../src/trainer/memoryGuard';
import { llama32OneB } from '../fixtures/hf/publishedConfigs';

const plenty = 512 * 2 ** 30;
const gib = 2 ** 30;

/** config.json as the model's repository publishes it (the keys that matter here). */
const publishedConfigs = {
  'SmolLM2-135M': {
    model_type: 'llama',
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    vocab_size: 49152,
    max_position_embeddings: 8192,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
  },
  'Llama-3.2-1B': llama32OneB,
  'Qwen2.5-0.5B': {
    model_type: 'qwen2',
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    vocab_size: 151936,
    max_position_embeddings: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
  },
} as const;

function published(name: keyof typeof publishedConfigs, blockSize: number): LlamaConfig {
  const architecture = parseHfConfig(publishedConfigs[name], `${name}/config.json`) as LlamaFamilyArchitecture;
  return llamaConfig(architecture, { blockSize });
}
const gpt2: GptConfig = { n_layer: 12, n_head: 12, n_embd: 768, block_size: 1024, vocab_size: 50257, dropout: 0 };

const request = (config: LlamaConfig | GptConfig, rest: Partial<ModelMemoryRequest> = {}): ModelMemoryRequest => ({
  config,
  stage: 'sft',
  batchSize: 4,
  engine: 'tfjs',
  backend: 'wasm',
  freeBytes: plenty,
  ...rest,
});

test('parameter counts from config.json alone are the published ones', () => {
  assert.equal(transformerParameters(published('SmolLM2-135M', 2048)), 134_515_008);
  assert.equal(transformerParameters(published('Llama-3.2-1B', 2048)), 1_235_814_400);
  assert.equal(transformerParameters(published('Qwen2.5-0.5B', 2048)), 494_032_768);
  assert.equal(transformerParameters(gpt2), 124_439_808);
});

test('full fine-tune: weights, gradients and both AdamW moments of every weight, in F32', () => {
  const smol = published('SmolLM2-135M', 512);
  const estimate = estimateModelMemory(request(smol));
  assert.equal(estimate.trainableParameters, 134_515_008);
  assert.equal(estimate.parts.weights, 4 * 134_515_008);
  assert.equal(estimate.parts['gradients and AdamW state'], 3 * 4 * 134_515_008);
  // The folder is BF16: one tensor at a time in transit, the embedding the largest (2 bytes read + 4 widened).
  assert.equal(estimate.parts['read buffer'], 49152 * 576 * (2 + 4));
  assert.equal(estimate.parts.reference, 0);
  assert.equal(estimate.parts['KV cache'], 0);
  assert.equal(
    estimate.bytes,
    Object.values(estimate.parts).reduce((a, b) => a + b, 0),
  );
});

test("LoRA trains the adapters only (PEFT's default targets q_proj, v_proj): optimizer state far smaller", () => {
  const smol = published('SmolLM2-135M', 512);
  const lora = defaultLora(smol);
  assert.deepEqual(lora.targetModules, ['q_proj', 'v_proj']);
  // Per layer: q_proj A [8, 576] B [576, 8], v_proj A [8, 576] B [192, 8].
  const adapters = 30 * 8 * (576 + 576 + 576 + 192);
  assert.equal(loraParameters(smol, lora), adapters);
  const full = estimateModelMemory(request(smol));
  const withLora = estimateModelMemory(request(smol, { lora }));
  assert.equal(withLora.trainableParameters, adapters);
  assert.equal(withLora.parts['gradients and AdamW state'], 3 * 4 * adapters);
  assert.ok(withLora.parts['gradients and AdamW state'] < full.parts['gradients and AdamW state'] / 100);
  assert.equal(withLora.parts.weights, 4 * (134_515_008 + adapters));
  // The frozen trunk still carries the gradient down to the first layer's adapters: the same activations.
  assert.equal(withLora.parts.activations, full.parts.activations);
});

test('PPO: KV cache of the rollouts, the reference (none with LoRA) and the reward model with its score head', () => {
  const smol = published('SmolLM2-135M', 512);
  const ppo = estimateModelMemory(request(smol, { stage: 'ppo', batchSize: 2, generationBatch: 8 }));
  // K and V × 3 kv heads × head_dim 64 × 30 layers × 512 positions × 8 sequences, F32.
  assert.equal(ppo.parts['KV cache'], 4 * 2 * 3 * 64 * 30 * 512 * 8);
  assert.equal(ppo.parts.reference, 4 * 134_515_008);
  assert.equal(ppo.parts['reward model'], 4 * (134_515_008 + 577));
  assert.equal(ppo.trainableParameters, 134_515_008 + 577); // the value head too
  const withLora = estimateModelMemory(request(smol, { stage: 'ppo', lora: defaultLora(smol), batchSize: 2 }));
  assert.equal(withLora.parts.reference, 0);
  const qwenReward = published('Qwen2.5-0.5B', 512);
  const other = estimateModelMemory(request(smol, { stage: 'ppo', batchSize: 2, rewardConfig: qwenReward }));
  assert.equal(other.parts['reward model'], 4 * (494_032_768 + 897));
  const dpo = estimateModelMemory(request(smol, { stage: 'dpo' }));
  assert.equal(dpo.parts.reference, 4 * 134_515_008);
  assert.equal(dpo.parts['KV cache'], 0); // DPO scores, it does not generate
});

test("our GPT through the new entry point: the run config's estimate of the same stage, part for part", () => {
  const { value } = validate(runConfigSchema, {
    name: 'm',
    backend: 'wasm',
    model: { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64 },
    tokenizer: { vocab_size: 512 },
    stages: [{ type: 'reward', preferences: 'prefs.jsonl', per_device_train_batch_size: 3 }],
  });
  const config = value as RunConfig;
  const shape = { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64, vocab_size: 512 };
  const old = estimateStageMemory(config.stages[0], config, shape);
  // A reward step scores 4 completions of each of the 3 judgments.
  const gpt: GptConfig = { ...shape, dropout: 0 };
  const fresh = estimateModelMemory(request(gpt, { stage: 'reward', batchSize: 12 }));
  assert.equal(fresh.parts.weights, old.parts.weights);
  assert.equal(fresh.parts['gradients and AdamW state'], old.parts['gradients and AdamW state']);
  assert.equal(fresh.parts.activations, old.parts.activations);
  assert.equal(fresh.parts['read buffer'], 0); // made, not read from a folder
});

test('wasm refuses Llama-3.2-1B full training naming the figures, LoRA (still too big there) and a GPU', () => {
  const llama = published('Llama-3.2-1B', 512);
  const estimate = estimateModelMemory(request(llama));
  assert.ok(estimate.bytes > wasmLimitBytes);
  assert.throws(
    () => checkModelFits(request(llama), { details: { file: 'Llama-3.2-1B', field: 'model.from' } }),
    (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, /sft of a llama model of 1235\.8 M parameters \(full, block_size 512, batch 4\)/);
      assert.match(error.message, /needs about [\d.]+ GiB \(weights 4\.6 GiB, gradients and AdamW state 13\.8 GiB/);
      assert.match(error.message, /more than the wasm backend's 4 GiB of memory/);
      assert.match(error.message, /LoRA \("lora": \{"r": 8, "alpha": 16\}, targets q_proj, v_proj\): about/);
      assert.match(error.message, /still too much alone/); // 4.6 GiB of F32 weights exceed wasm32 by themselves
      assert.match(error.message, /"engine": "onnxruntime"/);
      assert.match(error.message, /a GPU backend \("engine": "tfjs" with "backend": "tfjs-node-gpu" or "webgpu"\)/);
      assert.doesNotMatch(error.message, /block_size \d+;|batch size \d/); // no shorter context or batch fits
      return true;
    },
  );
});

test('the block_size and batch the refusal offers fit, one more does not', () => {
  const smol = published('SmolLM2-135M', 512);
  const free = 16 * gib;
  const asked = request(smol, { batchSize: 8, freeBytes: free, backend: 'tfjs-node' });
  const refusal = modelFitsRefusal(asked, 'per_device_train_batch_size');
  assert.ok(refusal, 'refused');
  assert.match(refusal.message, /more than this machine's free memory \(16\.0 GiB\)/);
  const fits = (r: ModelMemoryRequest) => estimateModelMemory(r).bytes <= free;
  const context = Number(/block_size (\d+)/.exec(refusal.hint)?.[1]);
  assert.ok(context >= 8 && context < 512, refusal.hint);
  assert.ok(fits({ ...asked, blockSize: context }) && !fits({ ...asked, blockSize: context + 1 }));
  const batch = Number(/per_device_train_batch_size (\d+)/.exec(refusal.hint)?.[1]);
  assert.ok(batch >= 1 && batch < 8, refusal.hint);
  assert.ok(fits({ ...asked, batchSize: batch }) && !fits({ ...asked, batchSize: batch + 1 }));
  // Activations dominate here: LoRA's smaller optimizer state is not enough, and the hint says so.
  assert.match(refusal.hint, /LoRA .*optimizer state 5 MiB instead of 1\.5 GiB — still too much alone/);
  assert.deepEqual(checkModelFits({ ...asked, batchSize: batch }), estimateModelMemory({ ...asked, batchSize: batch }));
});

test('LoRA is offered as fitting where the optimizer state is what does not', () => {
  const smol = published('SmolLM2-135M', 64);
  const asked = request(smol, { batchSize: 1, freeBytes: 2 * gib, backend: 'tfjs-node' });
  const refusal = modelFitsRefusal(asked);
  assert.ok(refusal, 'refused');
  assert.match(refusal.hint, /LoRA \("lora": \{"r": 8, "alpha": 16\}, targets q_proj, v_proj\): about [\d.]+ GiB,/);
  assert.doesNotMatch(refusal.hint, /still too much alone/);
  assert.equal(modelFitsRefusal({ ...asked, lora: defaultLora(smol) }), undefined);
});

test("webgpu: each tensor fits one buffer: SmolLM2's 49152×576 embedding does, Llama-3.2-1B's needs more", () => {
  const smol = published('SmolLM2-135M', 64);
  const sample = { stage: 'sample', batchSize: 1, backend: 'webgpu' } as const;
  assert.equal(estimateModelMemory(request(smol, sample)).largestBufferBytes, 49152 * 576 * 4);
  assert.equal(modelFitsRefusal(request(smol, sample)), undefined);
  const llama = published('Llama-3.2-1B', 64);
  const refusal = modelFitsRefusal(request(llama, sample));
  assert.ok(refusal);
  assert.match(refusal.message, /has a tensor of 1002 MiB, more than the 128 MiB WebGPU gives one buffer/);
  assert.match(refusal.message, /the spec's defaults: the adapter's own were not given/);
  const adapter = { maxStorageBufferBindingSize: 2 * gib, maxBufferSize: 4 * gib };
  assert.equal(modelFitsRefusal(request(llama, { ...sample, webgpuLimits: adapter })), undefined);
});
