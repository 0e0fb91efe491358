/**
 * The PyTorch twin's Llama family (test/fixtures/hf/hf_forward.py) against properties its formulas imply:
 * Llama 3.1's RoPE rescaling keeps high frequencies and divides low ones by the factor; grouped-query attention
 * equals multi-head attention with each key/value head repeated for its group; attention is causal; mistral's
 * sliding window hides keys beyond it; each architecture saves the tensors its model class has.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '../../src/shared/safetensors';
import { twinLogits, twinRopeFrequencies, twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'hf-twin-llama-'));
/** Two float32 computations of the same function, in another order of operations. */
const sameTolerance = 1e-5;
/** Logits that must move: larger than any float32 rounding here. */
const movedAtLeast = 1e-3;
const vocab = 64;
const ids = [[5, 17, 3, 42, 9, 28, 11, 60]];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Logits of positions [from, to) of row 0 from a flat [1, T, V] array. */
const positions = (logits: Float32Array, from: number, to: number) => logits.subarray(from * vocab, to * vocab);

test('llama3 rope_scaling keeps short wavelengths, divides long ones by the factor, blends between', { skip }, () => {
  const headDim = 16;
  const original = 64;
  const [low, high, factor] = [1, 4, 8];
  const scaling = { factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: original };
  const plain = twinRopeFrequencies({ rope_theta: 10000 }, headDim);
  const scaled = twinRopeFrequencies({ rope_theta: 10000, rope_scaling: { ...scaling, rope_type: 'llama3' } }, headDim);
  const kinds = new Set<string>();
  plain.forEach((frequency, i) => {
    const wavelength = (2 * Math.PI) / frequency;
    const relative = Math.abs(scaled[i] - frequency) / frequency;
    if (wavelength < original / high) {
      kinds.add('kept');
      assert.ok(relative < sameTolerance, `θ${i} (wavelength ${wavelength}) must be kept`);
    } else if (wavelength > original / low) {
      kinds.add('divided');
      assert.ok(Math.abs(scaled[i] * factor - frequency) / frequency < sameTolerance, `θ${i} must be θ/${factor}`);
    } else {
      kinds.add('blended');
      assert.ok(scaled[i] < frequency && scaled[i] > frequency / factor, `θ${i} must lie between θ/${factor} and θ`);
    }
  });
  assert.deepEqual([...kinds].sort(), ['blended', 'divided', 'kept'], 'the head dim must reach all three bands');
});

test('llama3 rope_scaling changes logits only where the formula rescales', { skip }, () => {
  // Weights 10× transformers' std, so attention scores (and their rotation) weigh in the logits.
  const base = { arch: 'llama', vocab, seed: 6, heads: 2, hidden: 32, initializerRange: 0.2 } as const;
  const plain = twinLogits(writeHfFolder({ ...base, out: path.join(workDir, 'rope-plain') }).folder, ids);
  // original_max_position_embeddings so long that every wavelength is "short": the scaling is the identity.
  const identity = writeHfFolder({
    ...base,
    ropeScaling: 'llama3',
    ropeOriginalMaxPositions: 1 << 20,
    out: path.join(workDir, 'rope-identity'),
  });
  const unchanged = maxAbsDiff(twinLogits(identity.folder, ids).logits, plain.logits);
  assert.ok(unchanged <= sameTolerance, `identity scaling moved logits by ${unchanged}`);
  const rescaled = writeHfFolder({ ...base, ropeScaling: 'llama3', out: path.join(workDir, 'rope-rescaled') });
  const logits = twinLogits(rescaled.folder, ids).logits;
  // Position 0 has no rotation at all; later positions rotate by the rescaled frequencies.
  assert.ok(maxAbsDiff(positions(logits, 0, 1), positions(plain.logits, 0, 1)) <= sameTolerance);
  const moved = maxAbsDiff(logits, plain.logits);
  assert.ok(moved >= movedAtLeast, `rescaled RoPE moved logits by only ${moved}`);
});

/** The folder's single F32 file as tensors, and a writer of a variant of the folder. */
function readFolder(folder: string): Record<string, SafetensorsTensor> {
  return decodeSafetensors(new Uint8Array(readFileSync(path.join(folder, 'model.safetensors')))).tensors;
}

function writeVariant(folder: string, tensors: Record<string, SafetensorsTensor>, config: object): string {
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  writeFileSync(path.join(folder, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return folder;
}

/** [groups·rows, C] weight with each block of `rows` rows (one key/value head) repeated `group` times in place. */
function repeatHeads(tensor: SafetensorsTensor, headDim: number, group: number): SafetensorsTensor {
  const [rows, columns] = tensor.shape;
  const data = new Float32Array(rows * group * columns);
  for (let head = 0; head < rows / headDim; head++)
    for (let copy = 0; copy < group; copy++)
      data.set(
        tensor.data.subarray(head * headDim * columns, (head + 1) * headDim * columns) as Float32Array,
        (head * group + copy) * headDim * columns,
      );
  return { dtype: 'F32', shape: [rows * group, columns], data };
}

for (const arch of ['llama', 'qwen2'] as const) {
  test(`${arch}: grouped-query attention equals multi-head attention with repeated key/value heads`, { skip }, () => {
    const [heads, kvHeads, hidden] = [4, 2, 32];
    const headDim = hidden / heads;
    const gqa = writeHfFolder({ arch, vocab, heads, kvHeads, hidden, seed: 9, out: path.join(workDir, `gqa-${arch}`) });
    const tensors = readFolder(gqa.folder);
    for (const name of Object.keys(tensors))
      if (/\.(k_proj|v_proj)\.(weight|bias)$/.test(name)) {
        const tensor = tensors[name];
        const asMatrix = tensor.shape.length === 1 ? { ...tensor, shape: [tensor.shape[0], 1] } : tensor;
        const repeated = repeatHeads(asMatrix, headDim, heads / kvHeads);
        tensors[name] = tensor.shape.length === 1 ? { ...repeated, shape: [repeated.shape[0]] } : repeated;
      }
    const config = JSON.parse(readFileSync(path.join(gqa.folder, 'config.json'), 'utf8')) as object;
    const mha = writeVariant(path.join(workDir, `mha-${arch}`), tensors, { ...config, num_key_value_heads: heads });
    const diff = maxAbsDiff(twinLogits(mha, ids).logits, twinLogits(gqa.folder, ids).logits);
    assert.ok(diff <= sameTolerance, `GQA vs repeated-head MHA: max |difference| ${diff}`);
  });
}

for (const arch of ['llama', 'qwen2', 'mistral'] as const) {
  test(`${arch}: changing a later token leaves earlier logits exactly as they were`, { skip }, () => {
    const written = writeHfFolder({ arch, vocab, seed: 4, kvHeads: 2, out: path.join(workDir, `causal-${arch}`) });
    const changed = [[...ids[0].slice(0, 5), 1, 2, 3]];
    const [before, after] = [twinLogits(written.folder, ids).logits, twinLogits(written.folder, changed).logits];
    assert.deepEqual(positions(after, 0, 5), positions(before, 0, 5));
    assert.ok(maxAbsDiff(positions(after, 5, 8), positions(before, 5, 8)) >= movedAtLeast);
  });
}

test('mistral: a query sees exactly sliding_window keys (itself included), through every layer', { skip }, () => {
  const [window, layers, last] = [2, 2, ids[0].length - 1];
  const base = { arch: 'mistral', vocab, layers, seed: 5 } as const;
  const windowed = writeHfFolder({ ...base, slidingWindow: window, out: path.join(workDir, 'window-2') }).folder;
  const full = writeHfFolder({ ...base, out: path.join(workDir, 'window-full') }).folder;
  const [narrow, wide] = [twinLogits(windowed, ids).logits, twinLogits(full, ids).logits];
  // Positions before the window's end see every earlier key either way; each later one loses the far keys.
  assert.ok(maxAbsDiff(positions(narrow, 0, window), positions(wide, 0, window)) <= sameTolerance);
  for (let position = window; position <= last; position++) {
    const moved = maxAbsDiff(positions(narrow, position, position + 1), positions(wide, position, position + 1));
    assert.ok(moved >= movedAtLeast, `position ${position} must lose keys beyond the window (moved ${moved})`);
  }
  // Each layer reaches window − 1 positions back: the last position depends on tokens from `reach` on only.
  const reach = last - layers * (window - 1);
  const withTokenChanged = (position: number) => [ids[0].map((id, i) => (i === position ? (id + 1) % vocab : id))];
  const beyond = twinLogits(windowed, withTokenChanged(reach - 1)).logits;
  assert.deepEqual(positions(beyond, last, last + 1), positions(narrow, last, last + 1));
  const within = twinLogits(windowed, withTokenChanged(reach)).logits;
  assert.ok(maxAbsDiff(positions(within, last, last + 1), positions(narrow, last, last + 1)) >= movedAtLeast);
});

test('each architecture saves its model class tensors: biases, lm_head only untied, head_dim', { skip }, () => {
  const tensorsOf = (options: Parameters<typeof writeHfFolder>[0]) => writeHfFolder(options).tensors;
  const qwen = tensorsOf({ arch: 'qwen2', vocab, out: path.join(workDir, 'names-qwen2') });
  assert.ok('model.layers.0.self_attn.q_proj.bias' in qwen && 'model.layers.1.self_attn.v_proj.bias' in qwen);
  assert.ok(!('model.layers.0.self_attn.o_proj.bias' in qwen) && 'lm_head.weight' in qwen);
  const tied = tensorsOf({ arch: 'llama', vocab, tie: true, headDim: 16, out: path.join(workDir, 'names-llama') });
  assert.ok(!('lm_head.weight' in tied) && !('model.layers.0.self_attn.q_proj.bias' in tied));
  assert.deepEqual(tied['model.layers.0.self_attn.q_proj.weight'], [4 * 16, 32]);
  assert.deepEqual(tied['model.layers.0.self_attn.o_proj.weight'], [32, 4 * 16]);
  const biased = tensorsOf({
    arch: 'llama',
    vocab,
    attentionBias: true,
    mlpBias: true,
    out: path.join(workDir, 'names-llama-bias'),
  });
  assert.ok('model.layers.0.self_attn.o_proj.bias' in biased && 'model.layers.0.mlp.down_proj.bias' in biased);
});
