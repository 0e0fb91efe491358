/**
 * The PyTorch twin of Hugging Face models (test/fixtures/hf): its folders are deterministic and are valid
 * safetensors byte for byte (checked with this project's reader and writer, an independent implementation of the
 * same format), its shards and index are consistent, and its gpt2 forward pass equals RLHF Lens' tfjs GPT both
 * ways: on a checkpoint RLHF Lens saved, and on a gpt2 folder the twin wrote. The Llama family's properties
 * are in hfTwinLlama.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { Random } from '../../src/core/random';
import { decodeSafetensors, encodeSafetensors } from '../../src/shared/safetensors';
import { saveCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { checkpointConfig } from '../../src/trainer/checkpoint/modelLoading';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { twinLogits, twinUnavailable, writeHfFolder, type HfDtype } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'hf-twin-'));
/** float32 forward passes of two implementations agree to this (the bar for logits). */
const logitsTolerance = 1e-4;
/** Moves every weight off nanoGPT's init (biases 0, LayerNorm γ 1) so a dropped bias or γ shows in logits. */
const weightNudge = 0.2;

before(async () => {
  await selectBackend('wasm');
});

const folderFiles = (folder: string) =>
  Object.fromEntries(readdirSync(folder).map((name) => [name, readFileSync(path.join(folder, name))]));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function randomIds(rows: number, length: number, vocab: number, seed: number): number[][] {
  const random = new Random(seed);
  return Array.from({ length: rows }, () => Array.from({ length }, () => random.int(vocab)));
}

async function tfjsLogits(model: Gpt, ids: number[][]): Promise<Float32Array> {
  const logits = tf.tidy(() => model.forward(tf.tensor2d(ids, undefined, 'int32')).logits);
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return data;
}

test('the same seed writes the same bytes; another seed other weights', { skip }, () => {
  const options = { arch: 'llama', dtype: 'bf16', shards: 2, kvHeads: 2, seed: 3 } as const;
  const first = folderFiles(writeHfFolder({ ...options, out: path.join(workDir, 'seed-a') }).folder);
  const again = folderFiles(writeHfFolder({ ...options, out: path.join(workDir, 'seed-b') }).folder);
  const other = folderFiles(writeHfFolder({ ...options, seed: 4, out: path.join(workDir, 'seed-c') }).folder);
  assert.deepEqual(Object.keys(first).sort(), [
    'config.json',
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
    'model.safetensors.index.json',
  ]);
  for (const name of Object.keys(first)) assert.ok(first[name].equals(again[name]), `${name} differs for one seed`);
  assert.ok(!first['model-00001-of-00002.safetensors'].equals(other['model-00001-of-00002.safetensors']));
});

const dtypeNames: Record<HfDtype, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  test(`${dtype} files are the bytes this project's safetensors writer makes of the same tensors`, { skip }, () => {
    const written = writeHfFolder({ arch: 'qwen2', dtype, out: path.join(workDir, `format-${dtype}`) });
    const bytes = new Uint8Array(readFileSync(path.join(written.folder, 'model.safetensors')));
    const decoded = decodeSafetensors(bytes);
    assert.deepEqual(decoded.metadata, { format: 'pt' });
    assert.deepEqual(Object.keys(decoded.tensors).sort(), Object.keys(written.tensors).sort());
    for (const [name, shape] of Object.entries(written.tensors)) {
      assert.equal(decoded.tensors[name].dtype, dtypeNames[dtype], name);
      assert.deepEqual(decoded.tensors[name].shape, shape, name);
    }
    assert.deepEqual(encodeSafetensors(decoded.tensors, { format: 'pt' }), bytes);
  });
}

test('shards hold every tensor once, as the index maps them, and total_size counts their bytes', { skip }, () => {
  const written = writeHfFolder({ arch: 'mistral', dtype: 'f16', shards: 3, out: path.join(workDir, 'shards') });
  const index = JSON.parse(readFileSync(path.join(written.folder, 'model.safetensors.index.json'), 'utf8')) as {
    metadata: { total_size: number };
    weight_map: Record<string, string>;
  };
  assert.deepEqual(Object.keys(index.weight_map).sort(), Object.keys(written.tensors).sort());
  let bytes = 0;
  for (const shard of ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors'].concat(
    'model-00003-of-00003.safetensors',
  )) {
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(path.join(written.folder, shard))));
    for (const [name, tensor] of Object.entries(tensors)) {
      assert.equal(index.weight_map[name], shard, name);
      bytes += tensor.data.byteLength;
    }
  }
  assert.equal(index.metadata.total_size, bytes);
});

test("gpt2 names and shapes: GPT2LMHeadModel's, Conv1D [in, out], no lm_head (tied)", { skip }, () => {
  const written = writeHfFolder({ arch: 'gpt2', hidden: 16, heads: 2, out: path.join(workDir, 'gpt2-names') });
  assert.deepEqual(written.tensors['transformer.h.0.attn.c_attn.weight'], [16, 48]);
  assert.deepEqual(written.tensors['transformer.h.1.mlp.c_proj.weight'], [64, 16]);
  assert.ok(!('lm_head.weight' in written.tensors));
  const config = JSON.parse(readFileSync(path.join(written.folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(
    [config.model_type, config.architectures, config.torch_dtype],
    ['gpt2', ['GPT2LMHeadModel'], 'float32'],
  );
});

const gptConfig: GptConfig = { vocab_size: 0, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };

test("the twin's gpt2 logits on a checkpoint RLHF Lens saved equal the tfjs GPT's", { skip }, async () => {
  const tokenizer = new BpeTokenizer(trainBpe(['the cat sat on the mat. '.repeat(20)], { vocabSize: 300 }));
  const config = { ...gptConfig, vocab_size: tokenizer.vocabSize };
  const fresh = Gpt.create(config, { seed: 11 });
  const weights = await fresh.readWeights();
  fresh.dispose();
  for (const { data } of weights.values()) data.forEach((value, i) => (data[i] = value + weightNudge * Math.sin(i)));
  const model = Gpt.fromWeights(config, [], weights);
  const dir = path.join(workDir, 'our-checkpoint');
  await saveCheckpoint(dir, {
    config: checkpointConfig(model, tokenizer),
    weights,
    trainerState: { global_step: 0, max_steps: 0, stage: 'test', seed: 11 },
    tokenizer,
  });
  const ids = randomIds(2, 12, config.vocab_size, 5);
  const ours = await tfjsLogits(model, ids);
  model.dispose();
  const twin = twinLogits(dir, ids);
  assert.deepEqual(twin.shape, [2, 12, config.vocab_size]);
  const diff = maxAbsDiff(twin.logits, ours);
  assert.ok(diff <= logitsTolerance, `twin vs tfjs GPT: max |difference| ${diff}`);
});

test("a gpt2 folder the twin wrote runs in the tfjs GPT with the twin's logits", { skip }, async () => {
  // Weights 10× transformers' std: activations far from 0, where the tanh GELU differs from the exact one.
  const shape = { vocab: 96, hidden: 16, heads: 2, layers: 2, maxPositions: 16, initializerRange: 0.2 };
  const written = writeHfFolder({ arch: 'gpt2', ...shape, seed: 2, out: path.join(workDir, 'gpt2-to-tfjs') });
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(path.join(written.folder, 'model.safetensors'))));
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, tensor] of Object.entries(tensors)) {
    assert.equal(tensor.dtype, 'F32');
    weights.set(name, { shape: tensor.shape, data: tensor.data as Float32Array });
  }
  const config: GptConfig = { vocab_size: 96, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
  const model = Gpt.fromWeights(config, [], weights);
  const ids = randomIds(2, 10, shape.vocab, 8);
  const ours = await tfjsLogits(model, ids);
  model.dispose();
  const diff = maxAbsDiff(twinLogits(written.folder, ids).logits, ours);
  assert.ok(diff <= logitsTolerance, `twin vs tfjs GPT: max |difference| ${diff}`);
});
