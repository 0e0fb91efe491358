// A whole model folder — config.json, model.safetensors, our BPE's tokenizer files — opened at once, and the
// parameter counts of published architectures from their config.json values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectedHfTensors, hfParameterCount, openHfModelFolder, parseHfConfig } from '../../src/trainer/hf';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import {
  exactValues,
  PyFloat,
  pythonJson,
  temporaryFolder,
  tensorsFor,
  writeConfig,
  writeSingleFile,
} from './hfFolderWriter';

const bpe = new BpeTokenizer(trainBpe(['a small corpus for a small tokenizer', 'small things'], { vocabSize: 280 }));
const tokenizerSize = Object.keys(bpe.toJSON().model.vocab).length;

async function smolFolder(vocabSize: number): Promise<string> {
  const folder = temporaryFolder();
  const config = {
    architectures: ['LlamaForCausalLM'],
    hidden_size: 16,
    intermediate_size: 32,
    model_type: 'llama',
    num_attention_heads: 4,
    num_hidden_layers: 1,
    num_key_value_heads: 1,
    rms_norm_eps: new PyFloat(1e-5),
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    vocab_size: vocabSize,
  };
  writeConfig(folder, config);
  const architecture = parseHfConfig(JSON.parse(pythonJson(config)), 'config.json');
  writeSingleFile(folder, tensorsFor(expectedHfTensors(architecture), 'BF16'));
  await bpe.save(folder);
  return folder;
}

test('a SmolLM2-shaped folder opens whole: architecture, weights and tokenizer', async () => {
  // vocab_size padded past the tokenizer, as published models do.
  const folder = await smolFolder(tokenizerSize + 8);
  const model = await openHfModelFolder(folder);
  assert.equal(model.architecture.modelType, 'llama');
  assert.equal(model.weights.dtypeOf('model.embed_tokens.weight'), 'BF16');
  assert.deepEqual(await model.weights.read('model.norm.weight'), exactValues(16, model.weights.tensors.length - 1));
  assert.deepEqual(model.tokenizer.encode('small', { addSpecialTokens: false }), bpe.encode('small'));
});

test('a tokenizer with ids past vocab_size is refused naming both files', async () => {
  const folder = await smolFolder(tokenizerSize - 1);
  await assert.rejects(openHfModelFolder(folder), (error: Error) => {
    assert.equal(error.name, 'UserError');
    assert.match(
      error.message,
      new RegExp(`config\\.json: vocab_size .*tokenizer\\.json has token id ${tokenizerSize - 1}, past the model's`),
    );
    return true;
  });
});

test('parameter counts of published architectures, from their config.json values', () => {
  // GPT-2 small: every key at GPT2Config's defaults.
  assert.equal(hfParameterCount(parseHfConfig({ model_type: 'gpt2' }, 'config.json')), 124_439_808);
  const smolLm2 = {
    hidden_size: 576,
    intermediate_size: 1536,
    model_type: 'llama',
    num_attention_heads: 9,
    num_hidden_layers: 30,
    num_key_value_heads: 3,
    tie_word_embeddings: true,
    vocab_size: 49152,
  };
  assert.equal(hfParameterCount(parseHfConfig(smolLm2, 'config.json')), 134_515_008);
  const llama32OneB = {
    head_dim: 64,
    hidden_size: 2048,
    intermediate_size: 8192,
    model_type: 'llama',
    num_attention_heads: 32,
    num_hidden_layers: 16,
    num_key_value_heads: 8,
    tie_word_embeddings: true,
    vocab_size: 128256,
  };
  assert.equal(hfParameterCount(parseHfConfig(llama32OneB, 'config.json')), 1_235_814_400);
});
