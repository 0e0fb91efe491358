// Weights of Hugging Face model folders written in transformers' exact layouts (names, shapes, dtypes, the
// `{"format": "pt"}` metadata, shards with their index): every tensor read back value for value, and every
// mismatch named with its file and tensor.
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { expectedHfTensors, openHfWeights, parseHfConfig, type HfArchitecture } from '../../src/trainer/hf';
import {
  exactValues,
  temporaryFolder,
  tensorOf,
  tensorsFor,
  writeShards,
  writeSingleFile,
  type TestDtype,
} from './hfFolderWriter';

const gpt2 = parseHfConfig(
  { model_type: 'gpt2', n_embd: 8, n_head: 2, n_layer: 2, n_positions: 16, vocab_size: 20 },
  'config.json',
);
/** SmolLM2-shaped, reduced: tied embeddings, grouped-query attention. */
const smolLlama = parseHfConfig(
  {
    model_type: 'llama',
    hidden_size: 16,
    intermediate_size: 24,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    tie_word_embeddings: true,
    vocab_size: 30,
  },
  'config.json',
);
const qwen2 = parseHfConfig(
  {
    model_type: 'qwen2',
    hidden_size: 16,
    intermediate_size: 24,
    num_attention_heads: 4,
    num_hidden_layers: 1,
    num_key_value_heads: 1,
    vocab_size: 30,
  },
  'config.json',
);

/** Every needed tensor read back equals what was written (values exact in each dtype). */
async function assertReadsBack(folder: string, architecture: HfArchitecture, dtype: TestDtype): Promise<void> {
  const weights = await openHfWeights(folder, architecture);
  const specs = expectedHfTensors(architecture);
  assert.deepEqual(weights.tensors, specs);
  for (const [index, spec] of specs.entries()) {
    const count = spec.shape.reduce((product, size) => product * size, 1);
    assert.equal(weights.dtypeOf(spec.name), dtype);
    assert.deepEqual(await weights.read(spec.name), exactValues(count, index), spec.name);
  }
}

async function problemOf(folder: string, architecture: HfArchitecture): Promise<string> {
  const error = await openHfWeights(folder, architecture).then(
    () => assert.fail('expected an error'),
    (caught: Error) => caught,
  );
  assert.equal(error.name, 'UserError', error.stack);
  return error.message;
}

test('GPT2LMHeadModel layout, F32, tied (no lm_head), with the causal-mask buffers older files carry', async () => {
  const folder = temporaryFolder();
  const tensors = tensorsFor(expectedHfTensors(gpt2), 'F32');
  tensors['transformer.h.0.attn.bias'] = tensorOf(new Float32Array(16 * 16), [1, 1, 16, 16], 'F32');
  writeSingleFile(folder, tensors);
  assert.deepEqual(decodeSafetensors(readFileSync(join(folder, 'model.safetensors'))).metadata, { format: 'pt' });
  assert.ok(!expectedHfTensors(gpt2).some((spec) => spec.name === 'lm_head.weight'));
  assert.deepEqual(
    expectedHfTensors(gpt2).find((spec) => spec.name === 'transformer.h.1.attn.c_attn.weight')?.shape,
    [8, 24],
    'Conv1D is stored [in, out]',
  );
  await assertReadsBack(folder, gpt2, 'F32');
});

test('GPT2Model layout (no transformer. prefix) reads under the same names', async () => {
  const folder = temporaryFolder();
  writeSingleFile(
    folder,
    tensorsFor(expectedHfTensors(gpt2), 'F32', (name) => name.replace(/^transformer\./, '')),
  );
  await assertReadsBack(folder, gpt2, 'F32');
});

test('a SmolLM2-shaped llama in BF16, tied, grouped-query k/v of [kv heads × head dim, hidden]', async () => {
  const folder = temporaryFolder();
  writeSingleFile(folder, tensorsFor(expectedHfTensors(smolLlama), 'BF16'));
  const specs = new Map(expectedHfTensors(smolLlama).map((spec) => [spec.name, spec.shape]));
  assert.deepEqual(specs.get('model.layers.0.self_attn.k_proj.weight'), [8, 16]);
  assert.deepEqual(specs.get('model.layers.0.self_attn.o_proj.weight'), [16, 16]);
  assert.deepEqual(specs.get('model.layers.1.mlp.down_proj.weight'), [16, 24]);
  assert.equal(specs.has('lm_head.weight'), false);
  await assertReadsBack(folder, smolLlama, 'BF16');
});

test('an untied llama in F16 sharded as save_pretrained(max_shard_size=…) writes it', async () => {
  const architecture = { ...smolLlama, tieWordEmbeddings: false };
  const folder = temporaryFolder();
  const names = writeShards(folder, tensorsFor(expectedHfTensors(architecture), 'F16'), 2048);
  assert.ok(names.length >= 3, `${names.length} shards`);
  assert.equal(names[0], `model-00001-of-0000${names.length}.safetensors`);
  const index = readFileSync(join(folder, 'model.safetensors.index.json'), 'utf8');
  assert.match(
    index,
    /^\{\n {2}"metadata": \{\n {4}"total_size": \d+\n {2}\},\n {2}"weight_map": \{\n {4}"lm_head\.weight"/,
  );
  const weights = await openHfWeights(folder, architecture);
  assert.deepEqual(
    weights.files,
    names.map((name) => join(folder, name)),
  );
  await assertReadsBack(folder, architecture, 'F16');
});

test('qwen2 needs q/k/v biases and no o_proj bias', async () => {
  const names = expectedHfTensors(qwen2).map((spec) => spec.name);
  assert.ok(names.includes('model.layers.0.self_attn.q_proj.bias'));
  assert.ok(names.includes('model.layers.0.self_attn.v_proj.bias'));
  assert.ok(!names.includes('model.layers.0.self_attn.o_proj.bias'));
  const folder = temporaryFolder();
  writeSingleFile(folder, tensorsFor(expectedHfTensors(qwen2), 'F32'));
  await assertReadsBack(folder, qwen2, 'F32');
});

test('missing, unexpected, wrongly shaped and integer tensors are each named with their file', async () => {
  const folder = temporaryFolder();
  const tensors = tensorsFor(expectedHfTensors(smolLlama), 'F32');
  delete tensors['model.layers.1.mlp.up_proj.weight'];
  tensors['model.layers.0.self_attn.q_proj.weight'] = tensorOf(new Float32Array(16 * 8), [8, 16], 'F32');
  tensors['model.layers.0.input_layernorm.weight'] = { dtype: 'I32', shape: [16], data: new Int32Array(16) };
  tensors['score.weight'] = tensorOf(new Float32Array(16), [1, 16], 'F32');
  writeSingleFile(folder, tensors);
  const message = await problemOf(folder, smolLlama);
  const file = join(folder, 'model.safetensors');
  for (const line of [
    `${file}: tensor "model.layers.1.mlp.up_proj.weight" is missing (expected shape [24,16])`,
    `${file}: tensor "model.layers.0.self_attn.q_proj.weight" has shape [8,16], expected [16,16]`,
    `${file}: tensor "model.layers.0.input_layernorm.weight" is I32, not a float type`,
    `${file}: tensor "score.weight" is not part of a llama model`,
  ])
    assert.ok(message.includes(line), `${line}\nin\n${message}`);
  assert.match(message, /the weights do not match config\.json \(llama, 2 layers, hidden size 16, vocabulary 30\)/);
});

test('an untied model without lm_head.weight names the head; a base-model file is named unprefixed', async () => {
  const folder = temporaryFolder();
  const architecture = { ...smolLlama, tieWordEmbeddings: false };
  writeSingleFile(
    folder,
    tensorsFor(expectedHfTensors(smolLlama), 'F32', (name) => name.replace(/^model\./, '')),
  );
  const message = await problemOf(folder, architecture);
  assert.match(message, /tensor "lm_head\.weight" is missing \(expected shape \[30,16\]\)/);
  const wrongFolder = temporaryFolder();
  const tensors = tensorsFor(expectedHfTensors(smolLlama), 'F32', (name) => name.replace(/^model\./, ''));
  delete tensors['norm.weight'];
  writeSingleFile(wrongFolder, tensors);
  assert.match(await problemOf(wrongFolder, smolLlama), /tensor "norm\.weight" is missing/);
});

test('a damaged file is named: truncated data, a foreign file', async () => {
  const folder = temporaryFolder();
  writeSingleFile(folder, tensorsFor(expectedHfTensors(gpt2), 'F32'));
  const file = join(folder, 'model.safetensors');
  truncateSync(file, statSync(file).size - 4);
  assert.match(await problemOf(folder, gpt2), new RegExp(`${file}: is damaged: invalid safetensors file: .*truncated`));
  writeFileSync(file, 'PK\u0003\u0004 this is a zip');
  assert.match(await problemOf(folder, gpt2), /model\.safetensors: is damaged: invalid safetensors file: header size/);
});

test('shards that disagree with their index are named; a shard path outside the folder is refused', async () => {
  const folder = temporaryFolder();
  const names = writeShards(folder, tensorsFor(expectedHfTensors(gpt2), 'F32'), 1024);
  const indexFile = join(folder, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> };
  index.weight_map['transformer.wte.weight'] = names[1];
  writeFileSync(indexFile, JSON.stringify(index));
  assert.ok(
    (await problemOf(folder, gpt2)).includes(
      `${indexFile}: weight_map puts tensor "transformer.wte.weight" in ${names[1]}, which does not hold it`,
    ),
  );
  index.weight_map['transformer.wte.weight'] = names[0];
  // A tensor a shard holds that the index does not list (its shard still listed for others).
  const shardTensors = (shard: string) => Object.keys(index.weight_map).filter((n) => index.weight_map[n] === shard);
  const crowded = names.find((shard) => shardTensors(shard).length > 1) ?? assert.fail('no shard holds two tensors');
  const unlisted = shardTensors(crowded)[0];
  delete index.weight_map[unlisted];
  writeFileSync(indexFile, JSON.stringify(index));
  assert.ok(
    (await problemOf(folder, gpt2)).includes(
      `${join(folder, crowded)}: tensor "${unlisted}" is not in model.safetensors.index.json's weight_map`,
    ),
  );
  index.weight_map[unlisted] = crowded;

  index.weight_map['transformer.wte.weight'] = '../elsewhere.safetensors';
  writeFileSync(indexFile, JSON.stringify(index));
  assert.match(await problemOf(folder, gpt2), /weight_map\["transformer\.wte\.weight"\] names shard "\.\.\/else/);
  writeFileSync(indexFile, JSON.stringify({ metadata: {} }));
  assert.match(await problemOf(folder, gpt2), /index\.json: weight_map must have a non-empty "weight_map" object/);
  index.weight_map['transformer.wte.weight'] = 'model-09999-of-09999.safetensors';
  writeFileSync(indexFile, JSON.stringify(index));
  assert.match(await problemOf(folder, gpt2), /model-09999-of-09999\.safetensors: does not exist/);
});

test('a folder with no safetensors weights says so, and what to do with a PyTorch pickle', async () => {
  const folder = temporaryFolder();
  assert.match(await problemOf(folder, gpt2), /has no model\.safetensors and no model\.safetensors\.index\.json/);
  writeFileSync(join(folder, 'pytorch_model.bin'), '');
  assert.match(
    await problemOf(folder, gpt2),
    /pytorch_model\.bin \(PyTorch pickle\) is not read; .*safe_serialization/,
  );
});

test('tied models may carry lm_head.weight and older llama files rotary_emb.inv_freq: both left unread', async () => {
  const folder = temporaryFolder();
  const tensors = tensorsFor(expectedHfTensors(smolLlama), 'F32');
  tensors['lm_head.weight'] = tensorOf(exactValues(30 * 16, 0), [30, 16], 'F32');
  tensors['model.layers.0.self_attn.rotary_emb.inv_freq'] = tensorOf(exactValues(2, 0), [2], 'F32');
  writeSingleFile(folder, tensors);
  const weights = await openHfWeights(folder, smolLlama);
  await assert.rejects(weights.read('lm_head.weight'), /lm_head\.weight is not a tensor of this llama model/);
  const untied = await openHfWeights(folder, { ...smolLlama, tieWordEmbeddings: false });
  assert.deepEqual(await untied.read('lm_head.weight'), exactValues(30 * 16, 0));
});

test('opening reads headers only: each tensor comes from its byte range in the file when read', async () => {
  const folder = temporaryFolder();
  writeSingleFile(folder, tensorsFor(expectedHfTensors(gpt2), 'F32'));
  const weights = await openHfWeights(folder, gpt2);
  // Rewrite one tensor's bytes on disk after opening: a reader that had loaded the file would not see it.
  const file = join(folder, 'model.safetensors');
  const bytes = readFileSync(file);
  const name = 'transformer.ln_f.bias';
  const header = JSON.parse(bytes.subarray(8, 8 + bytes.readUInt32LE(0)).toString()) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const start = 8 + bytes.readUInt32LE(0) + header[name].data_offsets[0];
  const replacement = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
  bytes.set(new Uint8Array(replacement.buffer), start);
  writeFileSync(file, bytes);
  assert.deepEqual(await weights.read(name), replacement);
});
