import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeSafetensors,
  parseSafetensorsHeader,
  tensorFromBytes,
  encodeSafetensors,
  SafetensorsFormatError,
  type SafetensorsTensor,
} from '../../src/shared/safetensors';

const ascii = (text: string): number[] => Array.from(text, (char) => char.charCodeAt(0));

/** A file from its parts: header size N (u64 LE), header text, then the buffer's bytes. */
function file(header: string, data: number[] = [], headerSize = header.length): Uint8Array {
  const size = [
    headerSize & 0xff,
    (headerSize >>> 8) & 0xff,
    (headerSize >>> 16) & 0xff,
    headerSize >>> 24,
    0,
    0,
    0,
    0,
  ];
  return new Uint8Array([...size, ...ascii(header), ...data]);
}

test('encodes a tiny file byte for byte as the format specifies', () => {
  const bytes = encodeSafetensors(
    {
      w: { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) },
      step: { dtype: 'I64', shape: [], data: new BigInt64Array([7n]) },
    },
    { format: 'pt' },
  );
  // Compact JSON, "__metadata__" first, then tensors by descending dtype alignment (I64 before F32):
  //   {"__metadata__":{"format":"pt"},                                     32 bytes
  //   "step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},             55 bytes
  //   "w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}              54 bytes
  // 141 bytes, padded with 3 spaces to 144 = 0x90, the next multiple of 8.
  const header =
    '{"__metadata__":{"format":"pt"},' +
    '"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
    '"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}';
  assert.equal(header.length, 141);
  const expected = [
    ...[0x90, 0, 0, 0, 0, 0, 0, 0], // N = 144, u64 little-endian
    ...ascii(header),
    ...ascii('   '),
    ...[7, 0, 0, 0, 0, 0, 0, 0], // step: 7n as i64 LE
    ...[0x00, 0x00, 0x80, 0x3f], // w[0]:  1.0f = 0x3f800000, LE
    ...[0x00, 0x00, 0x00, 0xc0], // w[1]: -2.0f = 0xc0000000, LE
  ];
  assert.equal(expected.length, 8 + 144 + 16);
  assert.deepEqual(Array.from(bytes), expected);
});

test('without metadata the header has no "__metadata__" key, and no tensors is "{}" padded to 8', () => {
  assert.deepEqual(Array.from(encodeSafetensors({})), [8, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}      ')]);
  const bytes = encodeSafetensors({
    b: { dtype: 'U8', shape: [1], data: new Uint8Array([9]) },
    a: { dtype: 'U8', shape: [1], data: new Uint8Array([8]) },
  });
  const header =
    '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
  assert.equal(header.length, 105); // tensors of one dtype are sorted by name; 7 spaces pad it to 112
  assert.deepEqual(Array.from(bytes), Array.from(file(`${header}       `, [8, 9])));
});

test('reads a header written without padding, as older writers did', () => {
  const header = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
  assert.equal(header.length, 60);
  const { tensors, metadata } = decodeSafetensors(
    file(header, [1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80]),
  );
  assert.deepEqual(metadata, {});
  assert.deepEqual(tensors.test, { dtype: 'I32', shape: [2, 2], data: new Int32Array([1, 2, -1, -(2 ** 31)]) });
});

test('round-trips every dtype, the scalar shape [] and a zero-size tensor', () => {
  const parent = new Float32Array([0, 1.5, -2.25, 3e-8, 4, 5, 6, 7]);
  const tensors: Record<string, SafetensorsTensor> = {
    'layer.0.weight': { dtype: 'F32', shape: [2, 3], data: parent.subarray(1, 7) }, // a view with a byte offset
    'layer.0.bias': {
      dtype: 'F64',
      shape: [2, 1, 2],
      data: new Float64Array([Math.PI, -0, Infinity, Number.MIN_VALUE]),
    },
    half: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7e00]) },
    brain: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xbf80]) },
    step: { dtype: 'I32', shape: [], data: new Int32Array([-42]) },
    ids: { dtype: 'I64', shape: [3], data: new BigInt64Array([0n, -1n, 2n ** 62n]) },
    mask: { dtype: 'U8', shape: [5], data: new Uint8Array([1, 0, 255, 3, 4]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    __proto__: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) },
  };
  const metadata = { format: 'pt', '10': 'ten', '2': 'two', note: 'ünïcödé ✓' };
  const bytes = encodeSafetensors(tensors, metadata);
  const decoded = decodeSafetensors(bytes.slice().buffer);
  assert.deepEqual(Object.keys(decoded.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, tensor] of Object.entries(tensors)) {
    const got = decoded.tensors[name];
    assert.equal(got.dtype, tensor.dtype, name);
    assert.deepEqual(got.shape, tensor.shape, name);
    assert.equal(got.data.constructor, tensor.data.constructor, name);
    assert.deepEqual(
      Array.from(got.data as ArrayLike<number | bigint>),
      Array.from(tensor.data as ArrayLike<number | bigint>),
      name,
    );
  }
  assert.deepEqual(decoded.metadata, metadata);
  assert.equal(Object.getPrototypeOf(decoded.tensors), Object.prototype, 'a tensor named __proto__ stays a tensor');

  // Sorting by descending alignment puts every tensor on a multiple of its element size.
  const headerSize = new DataView(bytes.buffer).getUint32(0, true);
  assert.equal(headerSize % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerSize))) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const elementBytes: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, U8: 1 };
  for (const [name, info] of Object.entries(header)) {
    if (name !== '__metadata__')
      assert.equal((8 + headerSize + info.data_offsets[0]) % elementBytes[info.dtype], 0, name);
  }
  assert.equal(Object.keys(header)[0], '__metadata__');
});

test('decoded data is a copy: changing the file bytes afterwards does not change the tensors', () => {
  const bytes = encodeSafetensors({ x: { dtype: 'U8', shape: [2], data: new Uint8Array([1, 2]) } });
  const { tensors } = decodeSafetensors(bytes);
  bytes.fill(0);
  assert.deepEqual(Array.from(tensors.x.data as Uint8Array), [1, 2]);
});

test('a Node Buffer from the shared pool (as readFileSync of a small file gives) decodes to its own tensors', () => {
  const data = Float32Array.from([1.5, -2, 3.25]);
  const encoded = encodeSafetensors({ w: { dtype: 'F32', shape: [3], data } });
  // Buffer.from(array) of a small size lands in Node's 8 KiB pool at a non-zero offset.
  const pooled = Buffer.from(Array.from(encoded));
  assert.ok(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.length, 'the buffer is a view into a pool');
  const { tensors } = decodeSafetensors(pooled);
  assert.deepEqual(Array.from(tensors.w.data as Float32Array), [1.5, -2, 3.25]);
});

const x4 = '"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
const malformed: [what: string, bytes: Uint8Array, message: RegExp][] = [
  ['fewer than 8 bytes', new Uint8Array([1, 2, 3]), /3 bytes, too short for the 8-byte header size/],
  [
    'a header size past the end',
    file(`{${x4}}`, [0, 0, 0, 0], 200),
    /says 200 bytes but only 58 follow: the file is truncated/,
  ],
  [
    'a header size over 2^32',
    new Uint8Array([8, 0, 0, 0, 1, 0, 0, 0, ...ascii('{}      ')]),
    /over the 100000000-byte limit/,
  ],
  ['a header that is not JSON', file('{"x": [1, 2'), /not valid UTF-8 JSON/],
  ['a header that does not start with {', file(' {}     '), /must start with "\{"/],
  ['a header that is an array', file('[1, 2]'), /must start with "\{"/],
  [
    'invalid UTF-8 in the header',
    new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0, ...ascii('{"'), 0xff, ...ascii('":1}')]),
    /not valid UTF-8/,
  ],
  [
    'an unsupported dtype',
    file('{"x":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}', [1]),
    /dtype "BOOL" is not supported \(supported: /,
  ],
  [
    'a negative dimension',
    file('{"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', [1]),
    /shape must be an array of non-negative integers/,
  ],
  [
    'reversed data_offsets',
    file('{"x":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}', [1]),
    /data_offsets must be \[begin, end\] with 0 <= begin <= end/,
  ],
  [
    'a size that does not match dtype × shape',
    file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]),
    /hold 4 bytes but F32 of shape \[2\] needs 8/,
  ],
  ['offsets past the buffer', file(`{${x4}}`, [0, 0]), /run past the end of the 2-byte buffer/],
  [
    'overlapping tensors',
    file(`{${x4},"y":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}`, [0, 0, 0, 0, 0]),
    /tensor "y".*overlap tensor "x"/,
  ],
  [
    'a hole between tensors',
    file(`{${x4},"y":{"dtype":"U8","shape":[1],"data_offsets":[5,6]}}`, [0, 0, 0, 0, 0, 0]),
    /bytes 4..5 of the buffer unused/,
  ],
  [
    'bytes after the last tensor',
    file(`{${x4}}`, [0, 0, 0, 0, 9, 9]),
    /2 bytes after the last tensor are not described/,
  ],
  [
    'a metadata value that is not a string',
    file('{"__metadata__":{"epoch":3}}'),
    /metadata "epoch" must be a string, got number/,
  ],
];

for (const [what, bytes, message] of malformed) {
  test(`rejects a file with ${what}`, () => {
    assert.throws(
      () => decodeSafetensors(bytes),
      (error: unknown) => {
        assert.ok(error instanceof SafetensorsFormatError);
        assert.match(error.message, /^invalid safetensors file: /);
        assert.match(error.message, message);
        return true;
      },
    );
  });
}

test('refuses to encode tensors whose data does not match their dtype or shape', () => {
  assert.throws(
    () => encodeSafetensors({ x: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
    /tensor "x": shape \[2, 2\] has 4 elements but data has 3/,
  );
  assert.throws(
    () =>
      encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float64Array(2) } as unknown as SafetensorsTensor }),
    /tensor "x": F32 data must be a Float32Array, got Float64Array/,
  );
  assert.throws(
    () => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }),
    /reserved for metadata/,
  );
  assert.throws(
    () => encodeSafetensors({}, { epoch: 3 } as unknown as Record<string, string>),
    /metadata "epoch" must be a string/,
  );
});

test(
  'a file cut at every byte offset is refused as a ' + 'SafetensorsFormatError, never a RangeError or a short tensor',
  () => {
    const whole = encodeSafetensors(
      {
        b: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        a: { dtype: 'I64', shape: [1], data: new BigInt64Array([9n]) },
        c: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      },
      { format: 'pt' },
    );
    for (let length = 0; length < whole.length; length++) {
      assert.throws(
        () => decodeSafetensors(whole.subarray(0, length)),
        SafetensorsFormatError,
        `cut at ${length} of ${whole.length}`,
      );
    }
    assert.deepEqual(Object.keys(decodeSafetensors(whole).tensors).sort(), ['a', 'b', 'c']);
  },
);

const lies: [what: string, bytes: Uint8Array, message: RegExp][] = [
  [
    'a header size of 2^53',
    new Uint8Array([0, 0, 0, 0, 0, 0, 0x20, 0, ...ascii('{}      ')]),
    /header size \d+ is over the 100000000-byte limit/,
  ],
  ['a header size of 0', file('', [], 0), /must start with "\{"/],
  [
    'data_offsets that are not whole numbers',
    file('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,"1"]}}', [1]),
    /tensor "x": data_offsets must be \[begin, end\]/,
  ],
  [
    'data_offsets beyond 2^53',
    file('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,9007199254740993]}}', [1]),
    /tensor "x": data_offsets must be \[begin, end\]/,
  ],
  [
    'a shape whose size overflows',
    file('{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}', [0, 0, 0, 0]),
    /tensor "x": data_offsets \[0, 4\] hold 4 bytes but F32 of shape \[4294967296, 4294967296\] needs/,
  ],
  [
    'two tensors claiming the same bytes',
    file(`{${x4},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, [0, 0, 0, 0]),
    /overlap tensor/,
  ],
  [
    'a tensor entry that is not an object',
    file('{"x":[0,4]}'),
    /tensor "x": expected \{"dtype", "shape", "data_offsets"\}, got an array/,
  ],
  [
    'a header nested 200,000 deep',
    file(`{"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`),
    /invalid safetensors file: (tensor "x"|the header is not valid UTF-8 JSON)/,
  ],
];

for (const [what, bytes, message] of lies) {
  test(`rejects a header with ${what}`, () => {
    assert.throws(
      () => decodeSafetensors(bytes),
      (error: unknown) => error instanceof SafetensorsFormatError && message.test(error.message),
    );
  });
}

test('parseSafetensorsHeader reads a header alone; tensorFromBytes copies unless handed its own buffer', () => {
  const bytes = encodeSafetensors(
    { b: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } },
    { format: 'pt' },
  );
  const headerLength = 8 + new DataView(bytes.buffer).getUint32(0, true);
  const header = parseSafetensorsHeader(bytes.subarray(0, headerLength), bytes.length);
  assert.deepEqual(header, {
    dataStart: headerLength,
    metadata: { format: 'pt' },
    tensors: [{ name: 'b', dtype: 'F32', shape: [2], begin: 0, end: 8 }],
  });
  assert.throws(() => parseSafetensorsHeader(bytes.subarray(0, headerLength), bytes.length + 4), /4 bytes after/);
  const raw = bytes.slice(headerLength);
  const copied = tensorFromBytes(header.tensors[0], raw);
  const owned = tensorFromBytes(header.tensors[0], raw, true);
  assert.deepEqual([copied.data, owned.data], [new Float32Array([1, 2]), new Float32Array([1, 2])]);
  assert.notEqual(copied.data.buffer, raw.buffer);
  assert.equal(owned.data.buffer, raw.buffer);
  assert.throws(() => tensorFromBytes(header.tensors[0], raw.subarray(0, 4)), /tensor "b": got 4 bytes, expected 8/);
});
