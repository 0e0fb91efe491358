/**
 * Any Hugging Face folder as a stage's model, at the level that needs no engine training: a Llama-family folder's
 * config, weights and tokenizer read into the stage's terms (LlamaConfig, causal-LM names, BOS as the tokenizer
 * adds it); its checkpoint written as the source's architecture (config.json that reads back to the same
 * architecture, LlamaForSequenceClassification for a reward model, the tokenizer files copied) whose logits the
 * PyTorch twin computes equal to the source folder's; and the refusals, each naming its file and field.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors, encodeSafetensors } from '../../src/shared/safetensors';
import { loadCheckpoint, saveCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { checkpointConfigJson } from '../../src/trainer/checkpoint/checkpointConfig';
import { checkpointConfig, readModelSource } from '../../src/trainer/checkpoint/modelLoading';
import type { NamedArrays } from '../../src/trainer/engine/engine';
import { parseHfConfig, readHfConfig, expectedHfTensors, type LlamaFamilyArchitecture } from '../../src/trainer/hf';
import { isLlamaConfig } from '../../src/trainer/model/causalLmConfig';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { twinLogits, twinUnavailable, writeHfFolder, type HfFolderOptions } from '../fixtures/hf/hfTwin';
import { temporaryFolder } from './hfFolderWriter';

const skipTwin = twinUnavailable();
const bpe = new BpeTokenizer(trainBpe(['the cat sat on the mat. '.repeat(20)], { vocabSize: 300 }));
/** Embedding rows past the tokenizer's ids, as released models pad theirs (Qwen2.5: 151936 rows, 151665 ids). */
const modelVocab = 320;
const llamaShape = { vocab: modelVocab, hidden: 16, heads: 4, kvHeads: 2, layers: 2, maxPositions: 64 } as const;

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

/** Llama 3's post-processor: `<|begin_of_text|>` (here our `<|bos|>`) before every sequence. */
function addBosPostProcessor(folder: string): void {
  const file = path.join(folder, 'tokenizer.json');
  const json = readJson(file);
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<|bos|>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<|bos|>', type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<|bos|>': { id: '<|bos|>', ids: [bpe.bosId], tokens: ['<|bos|>'] } },
  };
  writeFileSync(file, JSON.stringify(json));
}

async function modelFolder(options: Omit<HfFolderOptions, 'out'>, bos = false): Promise<string> {
  const { folder } = writeHfFolder({ ...options, out: temporaryFolder(`hf-${options.arch}-`) });
  await bpe.save(folder);
  if (bos) addBosPostProcessor(folder);
  return folder;
}

/** An architecture without what the saved file itself decides (class, dtype, the pad id it sets). */
function withoutFileFacts(
  architecture: LlamaFamilyArchitecture,
): Omit<LlamaFamilyArchitecture, 'architectureClass' | 'torchDtype' | 'tokenIds'> {
  const rest: Partial<LlamaFamilyArchitecture> = { ...architecture };
  delete rest.architectureClass;
  delete rest.torchDtype;
  delete rest.tokenIds;
  return rest as Omit<LlamaFamilyArchitecture, 'architectureClass' | 'torchDtype' | 'tokenIds'>;
}

async function problemOf(run: () => Promise<unknown>): Promise<string> {
  const error = await run().then(
    () => assert.fail('expected an error'),
    (caught: Error) => caught,
  );
  return error.message;
}

test("a llama folder reads as a stage's model: LlamaConfig, causal-LM names, BOS as its tokenizer says", async () => {
  const folder = await modelFolder({ arch: 'llama', ...llamaShape, ropeScaling: 'llama3', seed: 4 }, true);
  const source = await readModelSource(folder, { seed: 1, blockSize: 24 });
  const { model } = source.config;
  assert.ok(isLlamaConfig(model));
  assert.equal(model.block_size, 24, 'the run caps the context below max_position_embeddings');
  assert.equal(model.architecture.rope.scaling.type, 'llama3');
  const names = expectedHfTensors(model.architecture).map((spec) => spec.name);
  assert.deepEqual([...source.weights.keys()], names);
  assert.equal(source.tokenizer.bosId, bpe.bosId);
  assert.equal(source.tokenizer.eosId, bpe.eosId);
  assert.equal(source.tokenizer.padId, bpe.padId);
  assert.equal(source.tokenizer.vocabSize, bpe.vocabSize);
  assert.deepEqual(source.tokenizer.encode('the cat', { bos: true }), [bpe.bosId, ...bpe.encode('the cat')]);
  assert.deepEqual(source.tokenizer.encode('the cat', { eos: true }), [...bpe.encode('the cat'), bpe.eosId]);
  assert.equal(source.tokenizer.isSpecial(bpe.eosId), true);
  assert.equal(source.tokenizer.isSpecial(bpe.encode('the')[0]), false);
});

test('a tokenizer that adds no BOS (Qwen2) gives prompts none; pad falls back to EOS without a pad_token', async () => {
  const folder = await modelFolder({ arch: 'qwen2', ...llamaShape, seed: 5 });
  const configFile = path.join(folder, 'tokenizer_config.json');
  const tokenizerConfig = readJson(configFile);
  delete tokenizerConfig.pad_token;
  writeFileSync(configFile, JSON.stringify(tokenizerConfig));
  const source = await readModelSource(folder, { seed: 1 });
  assert.equal(source.tokenizer.bosId, undefined);
  assert.deepEqual(source.tokenizer.encode('the cat', { bos: true }), bpe.encode('the cat'));
  assert.equal(source.tokenizer.padId, bpe.eosId);
});

test('a Llama-family checkpoint is written as its source architecture and reads back to it', async () => {
  const folder = await modelFolder({ arch: 'llama', ...llamaShape, tie: false, seed: 6 }, true);
  const source = await readModelSource(folder, { seed: 1 });
  const model = source.config.model;
  assert.ok(isLlamaConfig(model));
  const width = model.architecture.hiddenSize;
  const weights: NamedArrays = new Map(source.weights);
  weights.set('score.weight', { shape: [width, 1], data: Float32Array.from({ length: width }, (_, i) => i / 10) });
  weights.set('score.bias', { shape: [1], data: Float32Array.of(0.5) });
  const dir = temporaryFolder('ckpt-llama-');
  await saveCheckpoint(dir, {
    config: checkpointConfig({ config: model, heads: ['score'] }, source.tokenizer),
    weights,
    trainerState: { global_step: 1, max_steps: 1, stage: 'reward', seed: 1 },
    tokenizer: source.tokenizer,
  });
  const json = readJson(path.join(dir, 'config.json'));
  assert.deepEqual(json.architectures, ['LlamaForSequenceClassification']);
  assert.deepEqual([json.model_type, json.num_labels, json.pad_token_id], ['llama', 1, bpe.padId]);
  const reread = (await readHfConfig(dir)) as LlamaFamilyArchitecture;
  // The class and dtype are the saved file's; pad_token_id is set, as a sequence classifier needs one.
  assert.deepEqual(reread.tokenIds, { ...model.architecture.tokenIds, pad: bpe.padId });
  assert.deepEqual(withoutFileFacts(reread), withoutFileFacts(model.architecture));
  for (const name of ['tokenizer.json', 'tokenizer_config.json'])
    assert.deepEqual(readFileSync(path.join(dir, name)), readFileSync(path.join(folder, name)), `${name} copied`);
  const saved = decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors')))).tensors;
  assert.deepEqual(saved['score.weight'].shape, [1, width]);
  assert.ok('lm_head.weight' in saved && 'model.layers.1.self_attn.k_proj.weight' in saved);

  const loaded = await loadCheckpoint(dir);
  assert.deepEqual([...loaded.weights.keys()].sort(), [...weights.keys()].sort());
  for (const [name, { data }] of weights) assert.deepEqual(loaded.weights.get(name)?.data, data, name);
  assert.deepEqual(loaded.config.model, { ...model, architecture: reread, score_pooling: 'last' });
  assert.equal(loaded.tokenizer.bosId, bpe.bosId);
});

test(
  'the twin computes the same logits from a saved Llama checkpoint as from its source',
  { skip: skipTwin },
  async () => {
    const folder = await modelFolder({ arch: 'llama', ...llamaShape, seed: 7 }, true);
    const source = await readModelSource(folder, { seed: 1 });
    const dir = temporaryFolder('ckpt-llama-twin-');
    await saveCheckpoint(dir, {
      config: checkpointConfig({ config: source.config.model, heads: [] }, source.tokenizer),
      weights: source.weights,
      trainerState: { global_step: 1, max_steps: 1, stage: 'sft', seed: 1 },
      tokenizer: source.tokenizer,
    });
    const ids = [bpe.encode('the cat sat on the mat', { bos: true })];
    assert.deepEqual(twinLogits(dir, ids).logits, twinLogits(folder, ids).logits);
  },
);

test('qwen2 and mistral configs (sliding windows, q/k/v biases) read back to the same architecture', async () => {
  for (const options of [
    { arch: 'qwen2', ...llamaShape },
    { arch: 'mistral', ...llamaShape, slidingWindow: 8 },
  ] as const) {
    const folder = await modelFolder(options);
    const architecture = (await readHfConfig(folder)) as LlamaFamilyArchitecture;
    const config = { model: { family: 'llama', architecture, vocab_size: modelVocab, block_size: 64, dropout: 0 } };
    const written = checkpointConfigJson({
      ...config,
      model: config.model as never,
      heads: [],
      bos_token_id: undefined,
      eos_token_id: bpe.eosId,
      pad_token_id: bpe.padId,
      tokenizer: 'hf',
    });
    const reread = parseHfConfig(written, 'config.json') as LlamaFamilyArchitecture;
    assert.deepEqual(withoutFileFacts(reread), withoutFileFacts(architecture), options.arch);
    assert.deepEqual(
      reread.tokenIds.eos,
      architecture.tokenIds.eos.length > 0 ? architecture.tokenIds.eos : [bpe.eosId],
    );
  }
});

test('refusals name file and field: no config.json, other model_type, missing tensor, larger vocabulary', async () => {
  const empty = temporaryFolder('hf-empty-');
  assert.match(await problemOf(() => readModelSource(empty, { seed: 1 })), /hf-empty-[^/]*: has no config\.json/);

  const bert = await modelFolder({ arch: 'llama', ...llamaShape });
  const bertConfig = path.join(bert, 'config.json');
  writeFileSync(bertConfig, JSON.stringify({ ...readJson(bertConfig), model_type: 'bert' }));
  const refusal = await problemOf(() => readModelSource(bert, { seed: 1 }));
  assert.ok(refusal.startsWith(`${bertConfig}: model_type "bert"`), refusal);
  assert.match(refusal, /supported: gpt2, llama, qwen2, mistral/);

  const cut = await modelFolder({ arch: 'llama', ...llamaShape });
  const weightsFile = path.join(cut, 'model.safetensors');
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(weightsFile)));
  delete tensors['model.layers.1.mlp.up_proj.weight'];
  writeFileSync(weightsFile, encodeSafetensors(tensors, { format: 'pt' }));
  assert.match(
    await problemOf(() => readModelSource(cut, { seed: 1 })),
    /model\.safetensors: tensor "model\.layers\.1\.mlp\.up_proj\.weight" is missing/,
  );

  const small = await modelFolder({ arch: 'llama', ...llamaShape, vocab: 200 });
  const vocabRefusal = await problemOf(() => readModelSource(small, { seed: 1 }));
  assert.match(
    vocabRefusal,
    new RegExp(`tokenizer\\.json has token id ${bpe.vocabSize - 1}, past the model's vocab_size \\(200\\)`),
  );
  assert.ok(vocabRefusal.startsWith(`${path.join(small, 'config.json')}: vocab_size`), vocabRefusal);

  const scaled = await modelFolder({ arch: 'gpt2', vocab: modelVocab, hidden: 16, heads: 2 });
  const scaledConfig = path.join(scaled, 'config.json');
  writeFileSync(scaledConfig, JSON.stringify({ ...readJson(scaledConfig), scale_attn_by_inverse_layer_idx: true }));
  const scaledRefusal = await problemOf(() => readModelSource(scaled, { seed: 1 }));
  assert.ok(scaledRefusal.startsWith(`${scaledConfig}: scale_attn_by_inverse_layer_idx is true`), scaledRefusal);
});
