/**
 * PEFT's adapter folder (src/trainer/lora/peftConfig.ts, peftAdapter.ts): adapter_config.json has exactly the keys
 * PEFT's LoraConfig saves (listed below from PEFT's source) in the text Python's json.dumps prints; the tensors
 * carry PEFT's names, shapes, F32 and {"format": "pt"}; writing then reading gives the same adapters and heads;
 * the reader refuses, naming the file and the field or tensor, what is not a plain LoRA adapter of the model.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { NamedArrays } from '../../src/trainer/engine/engine';
import { readHfConfig } from '../../src/trainer/hf';
import { loraAName, loraBName, loraTargets, type LoraSettings } from '../../src/trainer/lora/loraTargets';
import {
  adapterWeightsFile,
  readAdapterFolder,
  scoreBiasMetadataKey,
  valueHeadFile,
  writeAdapterFiles,
  writeAdapterFolder,
} from '../../src/trainer/lora/peftAdapter';
import { adapterConfigFile, type PeftTaskType } from '../../src/trainer/lora/peftConfig';
import type { CausalLmConfig } from '../../src/trainer/model/causalLmConfig';
import { causalLmConfigOf } from '../../src/trainer/model/causalLmConfig';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';

const workDir = mkdtempSync(path.join(tmpdir(), 'peft-adapter-'));
const python = '/usr/bin/python3';
const skipPython = twinUnavailable();

/**
 * The keys of PEFT v0.20.0's adapter_config.json (commit a5526d27a9d47d1e8264d5e1b1f96c0fdc79464e): the dataclass
 * fields of PeftConfigMixin (src/peft/config.py: task_type, peft_type, auto_mapping, peft_version), PeftConfig
 * (base_model_name_or_path, revision, inference_mode) and LoraConfig (src/peft/tuners/lora/config.py), less
 * runtime_config, which LoraConfig.to_dict removes.
 */
const peftLoraConfigKeys = [
  'task_type',
  'peft_type',
  'auto_mapping',
  'peft_version',
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'r',
  'target_modules',
  'exclude_modules',
  'lora_alpha',
  'lora_dropout',
  'fan_in_fan_out',
  'bias',
  'use_rslora',
  'modules_to_save',
  'init_lora_weights',
  'layers_to_transform',
  'layers_pattern',
  'rank_pattern',
  'alpha_pattern',
  'megatron_config',
  'megatron_core',
  'trainable_token_indices',
  'loftq_config',
  'eva_config',
  'corda_config',
  'lora_ga_config',
  'use_dora',
  'velora_config',
  'alora_invocation_tokens',
  'use_qalora',
  'qalora_group_size',
  'monteclora_config',
  'layer_replication',
  'lora_bias',
  'target_parameters',
  'use_bdlora',
  'arrow_config',
  'ensure_weight_tying',
];

const gpt: CausalLmConfig = { vocab_size: 32, block_size: 16, n_layer: 2, n_head: 2, n_embd: 8, dropout: 0 };
const hidden = 8;

/** Seeded uniform values in [−1, 1) (a linear congruential generator: the same seed, the same arrays). */
function randomArray(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
}

/** Random adapters for every target of `settings`, and the heads of `taskType`, under the engine's names. */
function engineWeights(config: CausalLmConfig, settings: LoraSettings, taskType: PeftTaskType, C: number): NamedArrays {
  const weights: NamedArrays = new Map();
  let seed = 1;
  for (const t of loraTargets(config, settings)) {
    weights.set(loraAName(t.module), {
      shape: [settings.r, t.inFeatures],
      data: randomArray(settings.r * t.inFeatures, seed++),
    });
    weights.set(loraBName(t.module), {
      shape: [t.outFeatures, settings.r],
      data: randomArray(t.outFeatures * settings.r, seed++),
    });
  }
  if (taskType === 'SEQ_CLS') {
    weights.set('score.weight', { shape: [C, 1], data: randomArray(C, seed++) });
    weights.set('score.bias', { shape: [1], data: Float32Array.of(-0.375) });
  } else {
    weights.set('v_head.weight', { shape: [C, 1], data: randomArray(C, seed++) });
    weights.set('v_head.bias', { shape: [1], data: Float32Array.of(0.25) });
  }
  return weights;
}

function assertSameArrays(actual: NamedArrays, expected: NamedArrays, names: readonly string[]): void {
  for (const name of names) {
    const a = actual.get(name);
    const e = expected.get(name);
    assert.ok(a && e, `${name} present in both`);
    assert.deepEqual(a.shape, e.shape, `${name}: shape`);
    assert.deepEqual(Array.from(a.data), Array.from(e.data), `${name}: values`);
  }
}

test('adapter_config.json: the keys of PEFT v0.20.0 LoraConfig, as json.dumps(indent=2, sort_keys)', async () => {
  const settings: LoraSettings = { r: 4, alpha: 16, dropout: 0, targetModules: ['c_attn', 'c_proj'] };
  const folder = path.join(workDir, 'keys');
  await writeAdapterFolder(folder, {
    config: gpt,
    settings,
    taskType: 'CAUSAL_LM',
    baseModelNameOrPath: 'gpt2',
    weights: engineWeights(gpt, settings, 'CAUSAL_LM', hidden),
  });
  const text = readFileSync(path.join(folder, adapterConfigFile), 'utf8');
  const json = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(json).sort(), [...peftLoraConfigKeys].sort());
  assert.equal(json.peft_type, 'LORA');
  assert.equal(json.task_type, 'CAUSAL_LM');
  assert.equal(json.r, 4);
  assert.equal(json.lora_alpha, 16);
  assert.equal(json.fan_in_fan_out, true, "GPT-2's Conv1D");
  assert.equal(json.bias, 'none');
  assert.equal(json.inference_mode, true, 'save_pretrained sets inference_mode for the save');
  assert.equal(json.use_rslora, false);
  assert.equal(json.revision, null);
  assert.equal(json.modules_to_save, null);
  assert.deepEqual(json.target_modules, ['c_attn', 'c_proj']);
  assert.match(text, /"lora_dropout": 0\.0,/, 'a Python float');
  if (skipPython) return;
  // Python's own printing of the parsed file must give the same text byte for byte.
  const script =
    'import json,sys; sys.stdout.write(json.dumps(json.load(open(sys.argv[1])), indent=2, sort_keys=True))';
  const printed = spawnSync(python, ['-c', script, path.join(folder, adapterConfigFile)], { encoding: 'utf8' });
  assert.equal(printed.status, 0, printed.stderr);
  assert.equal(printed.stdout, text);
});

test('a policy adapter round-trips; tensors carry PEFT names, F32 and format pt; TRL v_head beside it', async () => {
  const settings: LoraSettings = { r: 2, alpha: 8, dropout: 0.05, targetModules: ['c_attn', 'mlp.c_proj'] };
  const weights = engineWeights(gpt, settings, 'CAUSAL_LM', hidden);
  const folder = path.join(workDir, 'policy');
  await writeAdapterFolder(folder, {
    config: gpt,
    settings,
    taskType: 'CAUSAL_LM',
    baseModelNameOrPath: '/models/gpt2',
    weights,
  });

  const file = decodeSafetensors(new Uint8Array(readFileSync(path.join(folder, adapterWeightsFile))));
  assert.deepEqual(file.metadata, { format: 'pt' });
  assert.deepEqual(Object.keys(file.tensors).sort(), [
    'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
    'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
    'base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight',
    'base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight',
    'base_model.model.transformer.h.1.attn.c_attn.lora_A.weight',
    'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight',
    'base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight',
    'base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight',
  ]);
  for (const tensor of Object.values(file.tensors)) assert.equal(tensor.dtype, 'F32');
  assert.deepEqual(file.tensors['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'].shape, [2, hidden]);
  assert.deepEqual(file.tensors['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape, [3 * hidden, 2]);
  assert.deepEqual(file.tensors['base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight'].shape, [2, 4 * hidden]);
  const valueHead = decodeSafetensors(new Uint8Array(readFileSync(path.join(folder, valueHeadFile))));
  assert.deepEqual(Object.keys(valueHead.tensors).sort(), ['v_head.summary.bias', 'v_head.summary.weight']);
  assert.deepEqual(valueHead.tensors['v_head.summary.weight'].shape, [1, hidden]);

  const read = readAdapterFolder(folder, gpt);
  assert.equal(read.taskType, 'CAUSAL_LM');
  assert.deepEqual(read.settings, settings);
  assert.equal(read.baseModelNameOrPath, '/models/gpt2');
  assertSameArrays(read.adapters, weights, [...read.adapters.keys()]);
  assert.equal(read.adapters.size, 8);
  assertSameArrays(read.heads, weights, ['v_head.weight', 'v_head.bias']);
});

test('a reward model adapter (SEQ_CLS, Llama, all-linear) round-trips with score as modules_to_save', async (t) => {
  if (skipPython) return t.skip(skipPython);
  const { folder: base } = writeHfFolder({
    arch: 'llama',
    vocab: 32,
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 24,
    out: path.join(workDir, 'llama-base'),
  });
  const architecture = await readHfConfig(base);
  assert.equal(architecture.family, 'llama');
  const config = causalLmConfigOf(architecture, 'test folder');
  const settings: LoraSettings = { r: 3, alpha: 6, dropout: 0, targetModules: 'all-linear' };
  const weights = engineWeights(config, settings, 'SEQ_CLS', 16);
  const folder = path.join(workDir, 'reward');
  await writeAdapterFolder(folder, { config, settings, taskType: 'SEQ_CLS', baseModelNameOrPath: base, weights });

  const json = JSON.parse(readFileSync(path.join(folder, adapterConfigFile), 'utf8')) as Record<string, unknown>;
  assert.equal(json.fan_in_fan_out, false);
  assert.deepEqual(json.modules_to_save, ['classifier', 'score'], "PeftModelForSequenceClassification's default");
  assert.equal((json.target_modules as string[]).length, 2 * 7, 'all-linear saved resolved: 7 linear layers a block');
  assert.ok((json.target_modules as string[]).includes('model.layers.1.mlp.down_proj'));
  const file = decodeSafetensors(new Uint8Array(readFileSync(path.join(folder, adapterWeightsFile))));
  assert.deepEqual(file.tensors['base_model.model.score.weight'].shape, [1, 16]);
  assert.deepEqual(file.tensors['base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight'].shape, [8, 3]);
  assert.equal(file.metadata[scoreBiasMetadataKey], '-0.375');

  const read = readAdapterFolder(folder, config);
  assert.equal(read.taskType, 'SEQ_CLS');
  assert.deepEqual(read.settings, settings, 'the resolved list reads back as all-linear');
  assert.equal(read.adapters.size, 2 * 2 * 7);
  assertSameArrays(read.adapters, weights, [...read.adapters.keys()]);
  assertSameArrays(read.heads, weights, ['score.weight', 'score.bias']);
});

/** A written folder, its adapter_config.json edited by `edit`. */
async function editedFolder(name: string, edit: (json: Record<string, unknown>) => void): Promise<string> {
  const settings: LoraSettings = { r: 2, alpha: 4, dropout: 0, targetModules: ['c_attn'] };
  const folder = path.join(workDir, name);
  await writeAdapterFolder(folder, {
    config: gpt,
    settings,
    taskType: 'CAUSAL_LM',
    baseModelNameOrPath: null,
    weights: engineWeights(gpt, settings, 'CAUSAL_LM', hidden),
  });
  const file = path.join(folder, adapterConfigFile);
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  writeFileSync(file, JSON.stringify(json));
  return folder;
}

test('the reader refuses what is not a plain LoRA adapter of the model, naming file and field or tensor', async () => {
  const cases: [string, (json: Record<string, unknown>) => void, RegExp][] = [
    [
      'rank',
      (j) => void (j.r = 3),
      new RegExp(
        'adapter_model\\.safetensors: tensor ' +
          '"base_model\\.model\\.transformer\\.h\\.0\\.attn\\.c_attn\\.lora_A\\.weight" ' +
          'has shape \\[2, 8\\], expected \\[3, 8\\]',
      ),
    ],
    ['dora', (j) => void (j.use_dora = true), /adapter_config\.json: field "use_dora" is true; only plain LoRA/],
    ['rslora', (j) => void (j.use_rslora = true), /field "use_rslora"/],
    ['task', (j) => void (j.task_type = 'TOKEN_CLS'), /adapter_config\.json: field "task_type" is "TOKEN_CLS"/],
    ['type', (j) => void (j.peft_type = 'IA3'), /field "peft_type" is "IA3"/],
    ['alpha', (j) => void (j.lora_alpha = 'big'), /field "lora_alpha" must be a positive number/],
    [
      'targets',
      (j) => void (j.target_modules = ['q_proj']),
      /field "target_modules".*"q_proj" matches no linear layer/,
    ],
    [
      'fewer',
      (j) => void (j.target_modules = ['transformer.h.0.attn.c_attn']),
      /tensor "base_model\.model\.transformer\.h\.1\.attn\.c_attn\.lora_A\.weight" belongs to no module/,
    ],
    ['pattern', (j) => void (j.rank_pattern = { c_attn: 4 }), /field "rank_pattern" sets a per-layer rank/],
  ];
  for (const [name, edit, message] of cases) {
    const folder = await editedFolder(`bad-${name}`, edit);
    assert.throws(() => readAdapterFolder(folder, gpt), message, name);
  }
  assert.throws(() => readAdapterFolder(workDir, gpt), /no adapter_config\.json, so not a PEFT adapter folder/);
});

test('the writer refuses adapters of the wrong shape or missing, naming the tensor', async () => {
  const settings: LoraSettings = { r: 2, alpha: 4, dropout: 0, targetModules: ['c_fc'] };
  const weights = engineWeights(gpt, settings, 'CAUSAL_LM', hidden);
  weights.set('transformer.h.1.mlp.c_fc.lora_B.weight', { shape: [2, 32], data: new Float32Array(64) });
  const input = { config: gpt, settings, taskType: 'CAUSAL_LM' as const, baseModelNameOrPath: null, weights };
  await assert.rejects(
    writeAdapterFolder(path.join(workDir, 'bad-shape'), input),
    /"transformer\.h\.1\.mlp\.c_fc\.lora_B\.weight" has shape \[2, 32\], expected \[32, 2\]/,
  );
  weights.delete('transformer.h.1.mlp.c_fc.lora_B.weight');
  await assert.rejects(
    writeAdapterFolder(path.join(workDir, 'missing'), input),
    /the weight "transformer\.h\.1\.mlp\.c_fc\.lora_B\.weight" is missing/,
  );
});

test("a policy's value head never replaces a model folder's model.safetensors (TRL's name for it)", async () => {
  const settings: LoraSettings = { r: 2, alpha: 4, dropout: 0, targetModules: ['c_attn'] };
  const dir = mkdtempSync(path.join(workDir, 'model-folder-'));
  writeFileSync(path.join(dir, valueHeadFile), 'the base weights');
  const weights = engineWeights(gpt, settings, 'CAUSAL_LM', hidden);
  const input = { config: gpt, settings, taskType: 'CAUSAL_LM' as const, baseModelNameOrPath: null, weights };
  assert.throws(() => writeAdapterFiles(dir, input), /model\.safetensors exists: TRL keeps a PEFT policy's value head/);
  assert.equal(readFileSync(path.join(dir, valueHeadFile), 'utf8'), 'the base weights');
  assert.ok(!existsSync(path.join(dir, adapterConfigFile)), 'nothing written');
  weights.delete('v_head.weight');
  weights.delete('v_head.bias');
  assert.deepEqual(writeAdapterFiles(dir, input), [adapterConfigFile, adapterWeightsFile], 'adapters alone: fine');
});
