/**
 * ONNX export with external data (src/trainer/onnx/onnxExternalData.ts), as big models need past protobuf's 2 GiB:
 * a tiny model exported with the threshold at 0 gets Optimum's layout (onnx/model.onnx + onnx/model.onnx_data,
 * config.json's transformers.js_config.use_external_data_format), every initializer of ≥ 1024 bytes EXTERNAL with
 * location/offset/length, offsets on 4096-byte pages, the bytes those entries point at being the single-file
 * export's; onnxruntime-node and transformers.js load the folder and give the single-file export's logits; a LoRA
 * checkpoint exported with external data (what `rlhf-lens export --external-data` asks) is its merged model.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { NamedArrays } from '../../src/trainer/engine/engine';
import { readHfConfig } from '../../src/trainer/hf';
import { loraAName, loraBName, loraTargets, type LoraSettings } from '../../src/trainer/lora/loraTargets';
import { writeAdapterFiles } from '../../src/trainer/lora/peftAdapter';
import { gptConfigOf } from '../../src/trainer/checkpoint/modelLoading';
import { loadCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { exportCheckpoint, exportCommand } from '../../src/trainer/onnx/exportModel';
import { exportHfOnnx, onnxDataPath, onnxModelPath } from '../../src/trainer/onnx/hfOnnxExport';
import { externalDataAlignment, externalDataSizeThreshold } from '../../src/trainer/onnx/onnxExternalData';
import { twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';
import { checkpointWithHeads } from './onnxFixtures';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'onnx-large-'));
const vocab = 48;
const ids = [
  [5, 17, 3, 42, 9, 28, 11],
  [7, 7, 40, 1, 19, 38, 4],
];
const tolerance = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const int64 = (rows: readonly (readonly number[])[]) =>
  new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

/** Full-sequence outputs of the exported folder's graph, loaded from its path (external data resolved beside it). */
async function runFolder(folder: string, rows: number[][], cacheHeads: number, layers: number, headDim: number) {
  const session = await ort.InferenceSession.create(path.join(folder, onnxModelPath));
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(rows),
    attention_mask: int64(rows.map((row) => row.map(() => 1))),
    position_ids: int64(rows.map((row) => row.map((_, i) => i))),
  };
  for (let l = 0; l < layers; l++)
    for (const kind of ['key', 'value'])
      feeds[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [
        rows.length,
        cacheHeads,
        0,
        headDim,
      ]);
  return session.run(feeds);
}

const entry = (tensor: onnx.ITensorProto, key: string) => tensor.externalData?.find((e) => e.key === key)?.value;

test(
  'a Hugging Face folder exported with external data: layout, offsets, bytes, onnxruntime and transformers.js',
  { skip },
  async () => {
    const root = path.join(workDir, 'tjs');
    const { folder } = writeHfFolder({
      arch: 'llama',
      vocab,
      hidden: 32,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      initializerRange: 0.3,
      seed: 9,
      out: path.join(workDir, 'llama'),
    });
    const a = await readHfConfig(folder);
    assert.equal(a.family, 'llama');
    const single = await exportHfOnnx(folder, path.join(workDir, 'single'));
    assert.equal(single.externalData, false, 'a tiny model stays in one file by default (2 GiB threshold)');
    assert.ok(!existsSync(path.join(single.outDir, onnxDataPath)));
    const external = await exportHfOnnx(folder, path.join(root, 'tiny-external'), { externalDataThresholdBytes: 0 });
    assert.equal(external.externalData, true);
    assert.equal(onnxDataPath, path.join('onnx', 'model.onnx_data'), "Optimum's and transformers.js' file name");

    const config = JSON.parse(readFileSync(path.join(external.outDir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(config['transformers.js_config'], { use_external_data_format: true });
    const singleConfig = JSON.parse(readFileSync(path.join(single.outDir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(singleConfig['transformers.js_config'], undefined);

    const data = readFileSync(path.join(external.outDir, onnxDataPath));
    const model = onnx.ModelProto.decode(readFileSync(path.join(external.outDir, onnxModelPath)));
    const inline = new Map(
      onnx.ModelProto.decode(readFileSync(path.join(single.outDir, onnxModelPath))).graph?.initializer?.map((t) => [
        t.name,
        t,
      ]) ?? [],
    );
    let moved = 0;
    for (const tensor of model.graph?.initializer ?? []) {
      const original = inline.get(tensor.name) as onnx.ITensorProto;
      const bytes = original.rawData as Uint8Array;
      if (bytes.length < externalDataSizeThreshold) {
        assert.notEqual(tensor.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL, `${tensor.name}: small, inline`);
        assert.deepEqual(tensor.rawData, bytes);
        continue;
      }
      moved++;
      assert.equal(tensor.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL, `${tensor.name}: EXTERNAL`);
      assert.equal(tensor.rawData?.length ?? 0, 0, `${tensor.name}: no raw_data left`);
      assert.deepEqual(
        tensor.externalData?.map((e) => e.key),
        ['location', 'offset', 'length'],
      );
      assert.equal(entry(tensor, 'location'), 'model.onnx_data');
      const offset = Number(entry(tensor, 'offset'));
      const length = Number(entry(tensor, 'length'));
      assert.equal(offset % externalDataAlignment, 0, `${tensor.name}: offset ${offset} on a 4096-byte page`);
      assert.equal(length, bytes.length);
      assert.ok(Buffer.from(bytes).equals(data.subarray(offset, offset + length)), `${tensor.name}: its bytes`);
    }
    assert.ok(moved >= 2 * 7, `every weight matrix moved (${moved})`);
    assert.ok(
      readFileSync(path.join(external.outDir, onnxModelPath)).length < 64 * 1024,
      'the graph file holds no weights',
    );

    const expected = (await runFolder(single.outDir, ids, a.numKeyValueHeads, a.numLayers, a.headDim)).logits
      .data as Float32Array;
    const logits = (await runFolder(external.outDir, ids, a.numKeyValueHeads, a.numLayers, a.headDim)).logits
      .data as Float32Array;
    assert.deepEqual(logits, expected, 'onnxruntime-node: the same logits as the single-file export');

    const transformers = await import('@huggingface/transformers');
    transformers.env.allowRemoteModels = false;
    transformers.env.localModelPath = `${root}/`;
    const lm = await transformers.AutoModelForCausalLM.from_pretrained('tiny-external', { dtype: 'fp32' });
    try {
      const row = ids[0];
      const tensor = (values: number[]) =>
        new transformers.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
      const output = (await lm({ input_ids: tensor(row), attention_mask: tensor(row.map(() => 1)) })) as {
        logits: { data: Float32Array };
      };
      const diff = maxAbsDiff(output.logits.data, expected.subarray(0, row.length * vocab));
      assert.ok(diff <= tolerance, `transformers.js on the external-data folder vs the single-file export: ${diff}`);
    } finally {
      await lm.dispose();
    }
  },
);

test('a LoRA checkpoint exported with --external-data: the merged model, weights in onnx/model.onnx_data', async () => {
  const { dir, model } = await checkpointWithHeads('lora-policy', ['v_head']);
  model.dispose();
  const checkpoint = await loadCheckpoint(dir);
  const config = gptConfigOf(checkpoint.config);
  const settings: LoraSettings = { r: 2, alpha: 8, dropout: 0, targetModules: ['c_attn', 'c_fc'] };
  const adapters: NamedArrays = new Map();
  let seed = 3;
  for (const t of loraTargets(config, settings)) {
    adapters.set(loraAName(t.module), {
      shape: [settings.r, t.inFeatures],
      data: wave(settings.r * t.inFeatures, seed++),
    });
    adapters.set(loraBName(t.module), {
      shape: [t.outFeatures, settings.r],
      data: wave(t.outFeatures * settings.r, seed++),
    });
  }
  const loraDir = path.join(workDir, 'lora-checkpoint');
  cpSync(dir, loraDir, { recursive: true });
  writeAdapterFiles(loraDir, { config, settings, taskType: 'CAUSAL_LM', baseModelNameOrPath: dir, weights: adapters });

  // The reference: PyTorch merges the adapter files into the checkpoint's model.safetensors (test/fixtures/peft).
  const mergedDir = path.join(workDir, 'python-merged-checkpoint');
  cpSync(dir, mergedDir, { recursive: true });
  if (!skip) {
    const script = path.join(__dirname, '..', 'fixtures', 'peft', 'peft_merge.py');
    const result = spawnSync(
      '/usr/bin/python3',
      ['-B', script, '--base', dir, '--adapter', loraDir, '--out', mergedDir],
      { encoding: 'utf8' },
    );
    assert.equal(result.status, 0, result.stderr);
  }
  const merged = await exportCheckpoint(loraDir, path.join(workDir, 'lora-export'), { externalDataThresholdBytes: 0 });
  assert.equal(merged.externalData, true);
  assert.equal(merged.mergedWeights.length, 2 * 2);
  assert.ok(existsSync(path.join(merged.outDir, onnxDataPath)));
  // The command's flag asks the same (threshold 0).
  const commandOut = path.join(workDir, 'command-export');
  assert.equal(await exportCommand([loraDir, '--out', commandOut, '--external-data']), 0);
  assert.ok(
    readFileSync(path.join(commandOut, onnxDataPath)).equals(readFileSync(path.join(merged.outDir, onnxDataPath))),
  );
  const plain = await exportCheckpoint(dir, path.join(workDir, 'plain-export'));
  const row = [[1, 5, 9, 14, 2, 7]];
  const heads = config.n_head;
  const headDim = config.n_embd / config.n_head;
  const ours = await runFolder(merged.outDir, row, heads, config.n_layer, headDim);
  const base = await runFolder(plain.outDir, row, heads, config.n_layer, headDim);
  assert.ok(
    maxAbsDiff(ours.logits.data as Float32Array, base.logits.data as Float32Array) > 100 * tolerance,
    'the adapters change the model',
  );
  if (skip) return;
  const reference = await runFolder(
    (await exportCheckpoint(mergedDir, path.join(workDir, 'python-export'))).outDir,
    row,
    heads,
    config.n_layer,
    headDim,
  );
  const diff = maxAbsDiff(ours.logits.data as Float32Array, reference.logits.data as Float32Array);
  assert.ok(diff <= tolerance, `merged export vs the export of PyTorch's merged weights: ${diff}`);
  assert.ok(
    maxAbsDiff(ours.values.data as Float32Array, reference.values.data as Float32Array) <= tolerance,
    'values too',
  );
});

/** Deterministic adapter values of order 0.3. */
function wave(length: number, seed: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => 0.3 * Math.sin(seed * 1.7 + i * 0.37));
}
