import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readHfConfig, type HfArchitecture } from '../../src/trainer/hf';
import { PyFloat, pythonJson, temporaryFolder, writeConfig } from './hfFolderWriter';

async function configOf(config: Record<string, unknown>): Promise<HfArchitecture> {
  const folder = temporaryFolder();
  writeConfig(folder, config);
  return readHfConfig(folder);
}

async function problemOf(config: Record<string, unknown> | string): Promise<string> {
  const folder = temporaryFolder();
  if (typeof config === 'string') writeFileSync(join(folder, 'config.json'), config);
  else writeConfig(folder, config);
  const error = await readHfConfig(folder).then(
    () => assert.fail('expected an error'),
    (caught: Error) => caught,
  );
  assert.equal(error.name, 'UserError');
  return error.message;
}

test('config.json is written as transformers writes it: sorted keys, indent 2, Python floats', () => {
  const folder = temporaryFolder();
  writeConfig(folder, { rope_theta: new PyFloat(10000), rms_norm_eps: new PyFloat(1e-5), model_type: 'llama' });
  assert.equal(
    readFileSync(join(folder, 'config.json'), 'utf8'),
    '{\n  "model_type": "llama",\n  "rms_norm_eps": 1e-05,\n  "rope_theta": 10000.0\n}\n',
  );
  assert.equal(
    pythonJson({ a: [], b: {}, c: [1, new PyFloat(0.5)], d: 'é' }),
    '{\n  "a": [],\n  "b": {},\n  "c": [\n    1,\n    0.5\n  ],\n  "d": "\\u00e9"\n}',
  );
});

test('a GPT-2 config as save_pretrained writes it (only non-default keys): defaults filled', async () => {
  const architecture = await configOf({
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_embd: 32,
    n_head: 4,
    n_layer: 2,
    n_positions: 64,
    torch_dtype: 'float32',
    transformers_version: '4.46.3',
    vocab_size: 300,
  });
  assert.deepEqual(architecture, {
    family: 'gpt2',
    modelType: 'gpt2',
    architectureClass: 'GPT2LMHeadModel',
    torchDtype: 'float32',
    vocabSize: 300,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    headDim: 8,
    maxPositions: 64,
    intermediateSize: 128,
    layerNormEpsilon: 1e-5,
    activation: 'gelu_new',
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
    tieWordEmbeddings: true,
    tokenIds: { bos: 50256, eos: [50256], pad: null },
  });
});

test('a SmolLM2-shaped llama config (tied, grouped-query attention, transformers 4 keys)', async () => {
  const architecture = await configOf({
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 64,
    intermediate_size: 160,
    max_position_embeddings: 128,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    pad_token_id: 2,
    rms_norm_eps: new PyFloat(1e-5),
    rope_scaling: null,
    rope_theta: new PyFloat(100000),
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    vocab_size: 300,
  });
  assert.deepEqual(architecture, {
    family: 'llama',
    modelType: 'llama',
    architectureClass: 'LlamaForCausalLM',
    torchDtype: 'bfloat16',
    vocabSize: 300,
    hiddenSize: 64,
    intermediateSize: 160,
    numLayers: 2,
    numHeads: 4,
    numKeyValueHeads: 2,
    headDim: 16,
    maxPositions: 128,
    rmsNormEps: 1e-5,
    hiddenAct: 'silu',
    rope: { theta: 100000, scaling: { type: 'default' } },
    qkvBias: false,
    outputBias: false,
    mlpBias: false,
    slidingWindow: null,
    tieWordEmbeddings: true,
    tokenIds: { bos: 1, eos: [2], pad: 2 },
  });
});

test("Llama 3.1's rope_scaling (llama3), several eos ids, head_dim, attention and MLP biases", async () => {
  const architecture = await configOf({
    attention_bias: true,
    bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009],
    head_dim: 8,
    hidden_size: 48,
    mlp_bias: true,
    model_type: 'llama',
    num_attention_heads: 4,
    rope_scaling: {
      factor: new PyFloat(32),
      high_freq_factor: new PyFloat(4),
      low_freq_factor: new PyFloat(1),
      original_max_position_embeddings: 8192,
      rope_type: 'llama3',
    },
    rope_theta: new PyFloat(500000),
  });
  assert.ok(architecture.family === 'llama');
  assert.deepEqual(architecture.rope, {
    theta: 500000,
    scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
  });
  assert.deepEqual(architecture.tokenIds.eos, [128001, 128008, 128009]);
  assert.equal(architecture.headDim, 8);
  assert.equal(architecture.numKeyValueHeads, 4, 'no num_key_value_heads: as many as attention heads');
  assert.deepEqual([architecture.qkvBias, architecture.outputBias, architecture.mlpBias], [true, true, true]);
});

test('transformers 5 keys: rope_parameters and dtype; the old `type` key of rope_scaling', async () => {
  const v5 = await configOf({
    dtype: 'float16',
    model_type: 'llama',
    rope_parameters: { factor: new PyFloat(2), rope_theta: new PyFloat(50000), rope_type: 'linear' },
  });
  assert.ok(v5.family === 'llama');
  assert.deepEqual(v5.rope, { theta: 50000, scaling: { type: 'linear', factor: 2 } });
  assert.equal(v5.torchDtype, 'float16');
  const old = await configOf({ model_type: 'llama', rope_scaling: { factor: new PyFloat(4), type: 'linear' } });
  assert.ok(old.family === 'llama');
  assert.deepEqual(old.rope, { theta: 10000, scaling: { type: 'linear', factor: 4 } });
});

test("an absent key takes the model type's transformers default", async () => {
  const llama = await configOf({ model_type: 'llama' });
  assert.ok(llama.family === 'llama');
  assert.deepEqual(
    [llama.vocabSize, llama.hiddenSize, llama.intermediateSize, llama.numLayers, llama.numKeyValueHeads],
    [32000, 4096, 11008, 32, 32],
  );
  assert.deepEqual([llama.maxPositions, llama.rmsNormEps, llama.rope.theta], [2048, 1e-6, 10000]);
  assert.deepEqual([llama.tieWordEmbeddings, llama.torchDtype, llama.tokenIds.bos], [false, null, 1]);
  const mistral = await configOf({ model_type: 'mistral' });
  assert.ok(mistral.family === 'llama');
  assert.deepEqual([mistral.intermediateSize, mistral.numKeyValueHeads, mistral.maxPositions], [14336, 8, 131072]);
  assert.deepEqual(mistral.slidingWindow, { size: 4096, fromLayer: 0 });
  assert.deepEqual([mistral.qkvBias, mistral.outputBias], [false, false]);
  const qwen = await configOf({ model_type: 'qwen2' });
  assert.ok(qwen.family === 'llama');
  assert.deepEqual([qwen.vocabSize, qwen.intermediateSize, qwen.maxPositions], [151936, 22016, 32768]);
  assert.deepEqual([qwen.tokenIds.bos, qwen.tokenIds.eos], [null, []]);
});

test('qwen2 has q/k/v biases and no o_proj bias; its sliding window only when use_sliding_window', async () => {
  const qwen = await configOf({ attention_bias: true, model_type: 'qwen2', num_hidden_layers: 4, sliding_window: 32 });
  assert.ok(qwen.family === 'llama');
  assert.deepEqual([qwen.qkvBias, qwen.outputBias, qwen.mlpBias, qwen.slidingWindow], [true, false, false, null]);
  const sliding = await configOf({
    max_window_layers: 2,
    model_type: 'qwen2',
    num_hidden_layers: 4,
    sliding_window: 32,
    use_sliding_window: true,
  });
  assert.ok(sliding.family === 'llama');
  assert.deepEqual(sliding.slidingWindow, { size: 32, fromLayer: 2 });
  const mistral = await configOf({ model_type: 'mistral', sliding_window: null });
  assert.ok(mistral.family === 'llama');
  assert.equal(mistral.slidingWindow, null, 'Mistral v0.2+: null window is full attention');
});

test('an unsupported model_type is refused naming it and what is supported', async () => {
  const message = await problemOf({ model_type: 'bert' });
  assert.match(message, /config\.json: model_type "bert" is not an architecture the lens loads/);
  assert.match(message, /supported: gpt2, llama, qwen2, mistral/);
  assert.match(await problemOf({ n_embd: 8 }), /config\.json: model_type is missing/);
});

test('malformed values name the file and the field', async () => {
  const cases: [Record<string, unknown> | string, RegExp][] = [
    [{ model_type: 'llama', hidden_size: '64' }, /config\.json: hidden_size must be a positive integer, got "64"/],
    [{ model_type: 'gpt2', layer_norm_epsilon: -1 }, /layer_norm_epsilon must be a positive number, got -1/],
    [{ model_type: 'gpt2', activation_function: 'mish' }, /activation_function must be one of "gelu_new".*"mish"/],
    [{ model_type: 'gpt2', n_embd: 30, n_head: 4 }, /n_head \(4\) must divide n_embd \(30\)/],
    [{ model_type: 'llama', num_key_value_heads: 3 }, /num_key_value_heads \(3\) must divide num_attention_heads/],
    [{ model_type: 'llama', hidden_act: 'gelu' }, /hidden_act must be one of "silu", got "gelu"/],
    [{ model_type: 'llama', eos_token_id: [1, 'x'] }, /eos_token_id must be a token id or a list of token ids/],
    [{ model_type: 'llama', tie_word_embeddings: 'yes' }, /tie_word_embeddings must be true or false/],
    [{ model_type: 'llama', torch_dtype: 'int8' }, /torch_dtype must be one of "float32", "float16", "bfloat16"/],
    [{ model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling\.rope_type "yarn" rotary/],
    [
      { model_type: 'llama', rope_scaling: { rope_type: 'llama3', factor: 8 } },
      /rope_scaling\.original_max_position_embeddings is missing/,
    ],
    [{ model_type: 'llama', rope_scaling: { rope_type: 'linear' } }, /rope_scaling\.factor is missing/],
    [
      {
        model_type: 'llama',
        rope_scaling: {
          factor: 8,
          high_freq_factor: 1,
          low_freq_factor: 1,
          original_max_position_embeddings: 64,
          rope_type: 'llama3',
        },
      },
      /rope_scaling\.high_freq_factor \(1\) must be above low_freq_factor \(1\)/,
    ],
    [{ model_type: 'llama', rope_parameters: 'fast' }, /rope_parameters must be an object/],
    ['{"model_type": "llama",', /config\.json: is not valid JSON/],
    ['[1]', /config\.json: must be a JSON object, got \[1\]/],
  ];
  for (const [config, expected] of cases) assert.match(await problemOf(config), expected, JSON.stringify(config));
});

test('a folder without config.json is a UserError naming the file', async () => {
  const folder = temporaryFolder();
  await assert.rejects(readHfConfig(folder), (error: Error) => {
    assert.equal(error.name, 'UserError');
    assert.match(error.message, /config\.json: does not exist/);
    return true;
  });
});
