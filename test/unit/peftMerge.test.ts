/**
 * Merging LoRA adapters (src/trainer/lora/mergeLora.ts) and the merged ONNX export (onnx/hfOnnxExport.ts,
 * onnx/exportModel.ts): W = W₀ + (α/r)·B·A for Linear [out, in], W₀ + (α/r)·(B·A)ᵀ for GPT-2's Conv1D [in, out],
 * by hand and against test/fixtures/peft/peft_merge.py (torch, reading the written adapter_model.safetensors with
 * test/fixtures/hf/safetensors_io.py — no code shared with the project); the exported graph of base + adapter
 * gives the PyTorch twin's logits of the merged weights.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { NamedArrays } from '../../src/trainer/engine/engine';
import { readHfConfig } from '../../src/trainer/hf';
import { openHfWeights } from '../../src/trainer/hf/hfWeights';
import { mergeLora, mergeLoraWeights } from '../../src/trainer/lora/mergeLora';
import {
  loraAName,
  loraBName,
  loraScale,
  loraTargets,
  type LoraSettings,
  type LoraTarget,
} from '../../src/trainer/lora/loraTargets';
import { writeAdapterFolder } from '../../src/trainer/lora/peftAdapter';
import { exportHfOnnx, onnxModelPath } from '../../src/trainer/onnx/hfOnnxExport';
import { causalLmConfigOf } from '../../src/trainer/model/causalLmConfig';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { twinLogits, twinUnavailable, writeHfFolder, type HfArchitecture } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'peft-merge-'));
const python = '/usr/bin/python3';
const mergeScript = path.join(__dirname, '..', 'fixtures', 'peft', 'peft_merge.py');
const vocab = 48;
const ids = [
  [5, 17, 3, 42, 9, 28, 11],
  [7, 7, 40, 1, 19, 38, 4],
];
const logitTolerance = 1e-4;
/** float32 merge against a float64 one, weights and products of order 1. */
const weightTolerance = 1e-5;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function randomArray(length: number, seed: number, amplitude: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return ((state / 2 ** 32) * 2 - 1) * amplitude;
  });
}

const tensor = (shape: number[], values: number[]) => ({ shape, data: Float32Array.from(values) });

test('by hand: Linear [out, in] gets (α/r)·B·A, Conv1D [in, out] its transpose; the base is left as it was', () => {
  // in 3, out 2, r 1: B·A = [[1, 2, 3], [2, 4, 6]], α/r = 0.5.
  const adapters: NamedArrays = new Map([
    [loraAName('m'), tensor([1, 3], [1, 2, 3])],
    [loraBName('m'), tensor([2, 1], [1, 2])],
  ]);
  const linear: LoraTarget = { module: 'm', baseWeight: 'm.weight', inFeatures: 3, outFeatures: 2, fanInFanOut: false };
  const linearBase: NamedArrays = new Map([
    ['m.weight', tensor([2, 3], [1, 1, 1, 1, 1, 1])],
    ['other', tensor([1], [9])],
  ]);
  const merged = mergeLora(linearBase, adapters, [linear], 0.5);
  assert.deepEqual(Array.from(merged.get('m.weight')?.data ?? []), [1.5, 2, 2.5, 2, 3, 4]);
  assert.deepEqual(merged.get('m.weight')?.shape, [2, 3]);
  assert.deepEqual(Array.from(linearBase.get('m.weight')?.data ?? []), [1, 1, 1, 1, 1, 1], 'base unchanged');
  assert.equal(merged.get('other'), linearBase.get('other'), 'untargeted weights pass through');

  const conv1d: LoraTarget = { ...linear, fanInFanOut: true };
  const convBase: NamedArrays = new Map([['m.weight', tensor([3, 2], [0, 0, 0, 0, 0, 0])]]);
  const convMerged = mergeLora(convBase, adapters, [conv1d], 0.5);
  assert.deepEqual(Array.from(convMerged.get('m.weight')?.data ?? []), [0.5, 1, 1, 2, 1.5, 3], '(B·A)ᵀ, [in, out]');
  assert.throws(
    () => mergeLora(linearBase, adapters, [conv1d], 0.5),
    /"m\.weight" has shape \[2, 3\], expected \[3, 2\]/,
  );
});

interface MergeCase {
  readonly arch: HfArchitecture;
  readonly settings: LoraSettings;
}

const cases: readonly MergeCase[] = [
  { arch: 'gpt2', settings: { r: 2, alpha: 6, dropout: 0, targetModules: ['c_attn', 'c_fc', 'mlp.c_proj'] } },
  { arch: 'llama', settings: { r: 3, alpha: 4, dropout: 0.1, targetModules: 'all-linear' } },
];

/** A base folder, random adapters for `settings`, and the adapter folder written from them. */
async function baseAndAdapter({ arch, settings }: MergeCase) {
  const base = path.join(workDir, `${arch}-base`);
  writeHfFolder({
    arch,
    vocab,
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    initializerRange: 0.2,
    seed: 5,
    out: base,
  });
  const architecture = await readHfConfig(base);
  const config = causalLmConfigOf(architecture, 'test folder');
  const adapters: NamedArrays = new Map();
  let seed = 11;
  for (const t of loraTargets(config, settings)) {
    adapters.set(loraAName(t.module), {
      shape: [settings.r, t.inFeatures],
      data: randomArray(settings.r * t.inFeatures, seed++, 0.5),
    });
    adapters.set(loraBName(t.module), {
      shape: [t.outFeatures, settings.r],
      data: randomArray(t.outFeatures * settings.r, seed++, 0.5),
    });
  }
  const adapterFolder = path.join(workDir, `${arch}-adapter`);
  await writeAdapterFolder(adapterFolder, {
    config,
    settings,
    taskType: 'CAUSAL_LM',
    baseModelNameOrPath: base,
    weights: adapters,
  });
  const hfWeights = await openHfWeights(base, architecture);
  const baseWeights: NamedArrays = new Map();
  for (const spec of hfWeights.tensors)
    baseWeights.set(spec.name, { shape: spec.shape, data: await hfWeights.read(spec.name) });
  return { base, adapterFolder, config, adapters, baseWeights };
}

/** peft_merge.py's merged folder (config.json + model.safetensors) of `base` and `adapter`. */
function pythonMerged(base: string, adapter: string, out: string): string[] {
  const result = spawnSync(python, ['-B', mergeScript, '--base', base, '--adapter', adapter, '--out', out], {
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  return (JSON.parse(result.stdout) as { merged: string[] }).merged;
}

async function onnxLogits(folder: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path.join(folder, onnxModelPath));
  const a = await readHfConfig(folder);
  const heads = a.family === 'llama' ? a.numKeyValueHeads : a.numHeads;
  const feeds: Record<string, ort.Tensor> = {};
  const int64 = (rows: number[][]) =>
    new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
  feeds.input_ids = int64(ids);
  feeds.attention_mask = int64(ids.map((row) => row.map(() => 1)));
  feeds.position_ids = int64(ids.map((row) => row.map((_, i) => i)));
  for (let l = 0; l < a.numLayers; l++)
    for (const kind of ['key', 'value'])
      feeds[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [
        ids.length,
        heads,
        0,
        a.headDim,
      ]);
  const out = await session.run(feeds);
  return out.logits.data as Float32Array;
}

for (const mergeCase of cases) {
  const { arch, settings } = mergeCase;
  test(
    `${arch}: mergeLora equals the PyTorch merge of the written adapter files; the base is untouched`,
    { skip },
    async () => {
      const { base, adapterFolder, config, adapters, baseWeights } = await baseAndAdapter(mergeCase);
      const snapshot = new Map([...baseWeights].map(([name, w]) => [name, Float32Array.from(w.data)]));
      const targets = loraTargets(config, settings);
      const merged = mergeLora(baseWeights, adapters, targets, loraScale(settings));
      const pythonFolder = path.join(workDir, `${arch}-python-merged`);
      const pythonNames = pythonMerged(base, adapterFolder, pythonFolder);
      assert.deepEqual(pythonNames.sort(), targets.map((t) => t.baseWeight).sort());
      const expected = decodeSafetensors(new Uint8Array(readFileSync(path.join(pythonFolder, 'model.safetensors'))));
      for (const [name, w] of merged) {
        const reference = expected.tensors[name];
        assert.ok(reference, `${name} in the PyTorch merge`);
        assert.deepEqual(w.shape, reference.shape, `${name}: shape`);
        const diff = maxAbsDiff(w.data, reference.data as Float32Array);
        assert.ok(diff <= weightTolerance, `${name}: max |ours − PyTorch| = ${diff}`);
      }
      let changed = 0;
      for (const [name, data] of snapshot) {
        assert.deepEqual(baseWeights.get(name)?.data, data, `${name}: the base is not modified`);
        if (maxAbsDiff(merged.get(name)?.data ?? [], data) > 0) changed++;
      }
      assert.equal(changed, targets.length, 'exactly the targeted weights change');
      // The engine's view (base + adapters in one map) merges the same and drops the adapters.
      const together = mergeLoraWeights(new Map([...baseWeights, ...adapters]), config, settings);
      assert.deepEqual([...together.keys()].sort(), [...baseWeights.keys()].sort());
      for (const t of targets) assert.deepEqual(together.get(t.baseWeight)?.data, merged.get(t.baseWeight)?.data);
    },
  );

  test(
    `${arch}: the ONNX export of base + adapter gives the twin's logits of the merged weights`,
    { skip },
    async () => {
      const { base, adapterFolder } = await baseAndAdapter(mergeCase);
      const pythonFolder = path.join(workDir, `${arch}-python-merged-export`);
      pythonMerged(base, adapterFolder, pythonFolder);
      const expected = twinLogits(pythonFolder, ids).logits;
      const result = await exportHfOnnx(base, path.join(workDir, `${arch}-merged-onnx`), { adapterFolder });
      assert.equal(
        result.mergedWeights.length,
        loraTargets(causalLmConfigOf(await readHfConfig(base), base), settings).length,
      );
      const logits = await onnxLogits(result.outDir);
      const diff = maxAbsDiff(logits, expected);
      assert.ok(diff <= logitTolerance, `merged export vs twin of the merged weights: ${diff}`);
      // The adapters matter: the base model's logits are far from these.
      const plain = await exportHfOnnx(base, path.join(workDir, `${arch}-plain-onnx`));
      assert.ok(
        maxAbsDiff(await onnxLogits(plain.outDir), expected) > 100 * logitTolerance,
        'the merge changed the model',
      );
    },
  );
}
