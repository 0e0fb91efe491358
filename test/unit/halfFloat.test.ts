// F16 and BF16 → F32: known bit patterns (exact by hand), and every one of the 65536 patterns of each dtype
// against PyTorch's own conversion (/usr/bin/python3 with Debian's python3-torch; skipped, saying why, without it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { bfloat16ToFloat32, float16ToFloat32 } from '../../src/shared/halfFloat';
import { SafetensorsFormatError, tensorToFloat32 } from '../../src/shared/safetensors';

const patternCount = 2 ** 16;
const python = '/usr/bin/python3';
const torchCheck = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
const noTorch =
  torchCheck.status === 0
    ? false
    : `${python} cannot import torch; install Debian python3-torch (node scripts/ensureTestTools.mjs does)`;

test('F16 bit patterns widen to their exact values: normals, subnormals, ±0, ±Infinity, NaN', () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x7bff, 65504],
    [0x0400, 2 ** -14],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0000, 0],
    [0x8000, -0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const values = float16ToFloat32(new Uint16Array(cases.map(([bits]) => bits)));
  cases.forEach(([bits, expected], i) => assert.ok(Object.is(values[i], expected), `0x${bits.toString(16)}`));
  assert.ok(Number.isNaN(float16ToFloat32(new Uint16Array([0x7e00]))[0]));
});

test('BF16 bit patterns widen to their exact values', () => {
  const cases: [number, number][] = [
    [0x3f80, 1],
    [0xc040, -3],
    [0x3eab, 0.333984375],
    [0x7f7f, 3.3895313892515355e38],
    [0x0001, 2 ** -133],
    [0x8000, -0],
    [0x7f80, Infinity],
  ];
  const values = bfloat16ToFloat32(new Uint16Array(cases.map(([bits]) => bits)));
  cases.forEach(([bits, expected], i) => assert.ok(Object.is(values[i], expected), `0x${bits.toString(16)}`));
  assert.ok(Number.isNaN(bfloat16ToFloat32(new Uint16Array([0x7fc0]))[0]));
});

test('all 65536 F16 and BF16 patterns give the F32 bits PyTorch gives', { skip: noTorch }, () => {
  const script = [
    'import sys, torch',
    `bits = torch.arange(0, ${patternCount}, dtype=torch.int32).to(torch.int16)`,
    'for dtype in (torch.float16, torch.bfloat16):',
    '    sys.stdout.buffer.write(bits.view(dtype).float().view(torch.int32).numpy().tobytes())',
  ].join('\n');
  const result = spawnSync(python, ['-c', script], { maxBuffer: 2 * 4 * patternCount + 1024 });
  assert.equal(result.status, 0, String(result.stderr));
  const torchBits = new Uint32Array(new Uint8Array(result.stdout).buffer);
  const patterns = Uint16Array.from({ length: patternCount }, (_, i) => i);
  const ours = [float16ToFloat32(patterns), bfloat16ToFloat32(patterns)].map(
    (values) => new Uint32Array(values.buffer),
  );
  ['F16', 'BF16'].forEach((dtype, d) => {
    const expected = torchBits.subarray(d * patternCount, (d + 1) * patternCount);
    const differing = patterns.filter((i) => ours[d][i] !== expected[i]);
    assert.equal(differing.length, 0, `${dtype}: first differing pattern 0x${differing[0]?.toString(16)}`);
  });
});

test('tensorToFloat32 widens F16/BF16, keeps F32, rounds F64, refuses integers', () => {
  assert.deepEqual(
    tensorToFloat32('w', { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }),
    new Float32Array([1, -2]),
  );
  assert.deepEqual(
    tensorToFloat32('w', { dtype: 'BF16', shape: [1], data: new Uint16Array([0x3f80]) }),
    new Float32Array([1]),
  );
  const f32 = new Float32Array([0.5]);
  assert.equal(tensorToFloat32('w', { dtype: 'F32', shape: [1], data: f32 }), f32);
  assert.deepEqual(
    tensorToFloat32('w', { dtype: 'F64', shape: [1], data: new Float64Array([0.1]) }),
    new Float32Array([0.1]),
  );
  assert.throws(
    () => tensorToFloat32('ids', { dtype: 'I64', shape: [1], data: new BigInt64Array([1n]) }),
    (error: Error) =>
      error instanceof SafetensorsFormatError &&
      /tensor "ids": dtype I64 is not a floating-point type/.test(error.message),
  );
});
