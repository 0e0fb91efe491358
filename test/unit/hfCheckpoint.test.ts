/**
 * Checkpoints are Hugging Face folders: our GPT saved as `gpt2` with GPT2Config's keys, a policy's value head under
 * TRL's names, a reward model as GPT2ForSequenceClassification; the PyTorch twin (which reads only config.json
 * and the safetensors, as transformers does) computes our logits from the saved folder; everything loads back to
 * the engine's names; and a checkpoint of the format before (model_type "rlhf-lens-gpt") still loads.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { Random } from '../../src/core/random';
import { checkCheckpointConfig } from '../../src/shared/runFiles';
import { decodeSafetensors, encodeSafetensors } from '../../src/shared/safetensors';
import { loadCheckpoint, saveCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { checkpointConfig } from '../../src/trainer/checkpoint/modelLoading';
import type { NamedArrays } from '../../src/trainer/engine/engine';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { GptConfig, ScalarHead } from '../../src/trainer/model/gptConfig';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { twinLogits, twinUnavailable } from '../fixtures/hf/hfTwin';
import { temporaryFolder } from './hfFolderWriter';

const skipTwin = twinUnavailable();
/** float32 forward passes of two implementations agree to this (the bar for logits). */
const logitsTolerance = 1e-4;
/** Moves every weight off the init (biases 0, LayerNorm γ 1) so a dropped bias or γ shows in logits. */
const weightNudge = 0.2;
const dropout = 0.1;

const tokenizer = new BpeTokenizer(trainBpe(['the cat sat on the mat. '.repeat(20)], { vocabSize: 300 }));
const config: GptConfig = {
  vocab_size: tokenizer.vocabSize,
  block_size: 16,
  n_layer: 2,
  n_head: 2,
  n_embd: 16,
  dropout,
};

before(async () => {
  await selectBackend('wasm');
});

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const savedTensors = (dir: string) =>
  decodeSafetensors(new Uint8Array(readFileSync(path.join(dir, 'model.safetensors')))).tensors;

async function nudgedWeights(heads: readonly ScalarHead[]): Promise<NamedArrays> {
  const fresh = Gpt.create(config, { seed: 11, heads });
  const weights = await fresh.readWeights();
  fresh.dispose();
  for (const { data } of weights.values()) data.forEach((value, i) => (data[i] = value + weightNudge * Math.sin(i)));
  return weights;
}

/** AdamW moments for every weight, each a distinct pattern so a mixed-up name or shape shows. */
function momentsOf(weights: NamedArrays): NamedArrays {
  const moments: NamedArrays = new Map();
  let offset = 0;
  for (const [name, { shape, data }] of weights) {
    for (const kind of ['exp_avg', 'exp_avg_sq']) {
      const values = data.map((_, i) => Math.cos(i + offset++));
      moments.set(`${name}.${kind}`, { shape, data: Float32Array.from(values) });
    }
  }
  return moments;
}

async function saveOurs(dir: string, heads: readonly ScalarHead[]) {
  const weights = await nudgedWeights(heads);
  const moments = momentsOf(weights);
  const model = { config: heads.includes('score') ? { ...config, score_pooling: 'sum' as const } : config, heads };
  await saveCheckpoint(dir, {
    config: checkpointConfig(model, tokenizer),
    weights,
    optimizer: { step: 7, moments },
    trainerState: { global_step: 7, max_steps: 10, stage: 'test', seed: 11 },
    tokenizer,
  });
  return { weights, moments, model };
}

function assertSameArrays(actual: NamedArrays, expected: NamedArrays, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: names`);
  for (const [name, { shape, data }] of expected) {
    const got = actual.get(name);
    assert.deepEqual(got?.shape, shape, `${what}: shape of ${name}`);
    assert.deepEqual(got?.data, data, `${what}: values of ${name}`);
  }
}

test("a policy checkpoint is a gpt2 folder: GPT2Config's keys, TRL's value head, and it loads back", async () => {
  const dir = temporaryFolder('ckpt-policy-');
  const { weights, moments } = await saveOurs(dir, ['v_head']);
  const json = readJson(path.join(dir, 'config.json'));
  const expected = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: tokenizer.vocabSize,
    n_positions: 16,
    n_ctx: 16,
    n_embd: 16,
    n_layer: 2,
    n_head: 2,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    resid_pdrop: dropout,
    embd_pdrop: dropout,
    attn_pdrop: dropout,
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    rlhf_lens: { heads: ['v_head'], block_size: 16, tokenizer: 'bpe' },
  };
  for (const [key, value] of Object.entries(expected)) assert.deepEqual(json[key], value, `config.json ${key}`);
  assert.equal(json.model_type, 'gpt2');
  assert.deepEqual(readJson(path.join(dir, 'generation_config.json')), {
    _from_model_config: true,
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  });
  assert.deepEqual(readJson(path.join(dir, 'special_tokens_map.json')), {
    bos_token: '<|bos|>',
    eos_token: '<|eos|>',
    pad_token: '<|pad|>',
  });

  const tensors = savedTensors(dir);
  assert.deepEqual(tensors['v_head.summary.weight'].shape, [1, 16]);
  assert.deepEqual(tensors['v_head.summary.bias'].shape, [1]);
  assert.deepEqual(tensors['v_head.summary.weight'].data, weights.get('v_head.weight')?.data);
  assert.ok(!('v_head.weight' in tensors) && !('v_head.bias' in tensors), 'engine head names are not saved');
  const optimizerFile = path.join(dir, 'optimizer.safetensors');
  const savedMoments = decodeSafetensors(new Uint8Array(readFileSync(optimizerFile))).tensors;
  assert.deepEqual(savedMoments['v_head.summary.weight.exp_avg_sq'].shape, [1, 16]);

  const loaded = await loadCheckpoint(dir);
  assertSameArrays(loaded.weights, weights, 'weights');
  assertSameArrays(loaded.optimizer?.moments ?? new Map(), moments, 'optimizer moments');
  assert.equal(loaded.optimizer?.step, 7);
  assert.deepEqual(loaded.config.model, { ...config, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new' });
  assert.deepEqual(loaded.config.heads, ['v_head']);
  assert.ok(loaded.tokenizer instanceof BpeTokenizer);
  assert.deepEqual(loaded.tokenizer.toJSON(), tokenizer.toJSON());
});

test('a reward model checkpoint is a GPT2ForSequenceClassification: score.weight [1, C], and our bias', async () => {
  const dir = temporaryFolder('ckpt-reward-');
  const { weights } = await saveOurs(dir, ['score']);
  const json = readJson(path.join(dir, 'config.json'));
  assert.deepEqual(json.architectures, ['GPT2ForSequenceClassification']);
  assert.deepEqual(
    [json.num_labels, json.id2label, json.label2id, json.pad_token_id],
    [1, { 0: 'LABEL_0' }, { LABEL_0: 0 }, tokenizer.padId],
  );
  assert.deepEqual(json.rlhf_lens, { heads: ['score'], score_pooling: 'sum', block_size: 16, tokenizer: 'bpe' });
  const tensors = savedTensors(dir);
  assert.deepEqual(tensors['score.weight'].shape, [1, 16]);
  assert.deepEqual(tensors['score.bias'].shape, [1]);
  const loaded = await loadCheckpoint(dir);
  assertSameArrays(loaded.weights, weights, 'weights');
  assert.equal(loaded.config.model.score_pooling, 'sum');
});

test("the twin reads the saved folder as GPT-2 and computes the tfjs GPT's logits", { skip: skipTwin }, async () => {
  const dir = temporaryFolder('ckpt-twin-');
  const { weights } = await saveOurs(dir, ['v_head']);
  const model = Gpt.fromWeights({ ...config, dropout: 0 }, ['v_head'], weights);
  const random = new Random(5);
  const ids = Array.from({ length: 2 }, () => Array.from({ length: 12 }, () => random.int(config.vocab_size)));
  const logits = tf.tidy(() => model.forward(tf.tensor2d(ids, undefined, 'int32')).logits);
  const ours = (await logits.data()) as Float32Array;
  logits.dispose();
  model.dispose();
  const twin = twinLogits(dir, ids);
  assert.deepEqual(twin.shape, [2, 12, config.vocab_size]);
  let worst = 0;
  for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(twin.logits[i] - ours[i]));
  assert.ok(worst <= logitsTolerance, `twin vs tfjs GPT: max |difference| ${worst}`);
});

test('a checkpoint of the format before (model_type "rlhf-lens-gpt", engine head names) still loads', async () => {
  const dir = temporaryFolder('ckpt-legacy-');
  const weights = await nudgedWeights(['v_head']);
  const legacyConfig = {
    model_type: 'rlhf-lens-gpt',
    ...config,
    heads: ['v_head'],
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(legacyConfig));
  const tensors = Object.fromEntries(
    [...weights].map(([name, { shape, data }]) => [name, { dtype: 'F32' as const, shape, data }]),
  );
  writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  writeFileSync(
    path.join(dir, 'trainer_state.json'),
    JSON.stringify({ global_step: 3, max_steps: 5, stage: 'ppo', seed: 1, kl_coef: 0.1, score_moments: {} }),
  );
  await tokenizer.save(dir);
  assert.equal(checkCheckpointConfig(legacyConfig, 'config.json').model_type, 'rlhf-lens-gpt');
  const loaded = await loadCheckpoint(dir).catch((error: Error) => error);
  // trainer_state.json of a PPO checkpoint needs its score moments: the checker names them.
  assert.match(String(loaded), /score_moments\.mean is missing/);
  writeFileSync(
    path.join(dir, 'trainer_state.json'),
    JSON.stringify({ global_step: 3, max_steps: 5, stage: 'sft', seed: 1 }),
  );
  const again = await loadCheckpoint(dir);
  assertSameArrays(again.weights, weights, 'legacy weights');
  assert.equal(again.config.legacy, true);
  assert.deepEqual(again.config.model, config);
  assert.deepEqual(again.config.heads, ['v_head']);
});
