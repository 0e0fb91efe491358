/**
 * safetensors, the tensor file format of Hugging Face (https://github.com/huggingface/safetensors,
 * README "Format"), on plain bytes: no `fs`, no `Buffer`, so webviews can read checkpoints too.
 *
 *   8 bytes   N, unsigned little-endian 64-bit: the size of the header
 *   N bytes   UTF-8 JSON: {"__metadata__": {string: string},
 *                          "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, …}
 *             starting with `{`, padded with spaces (0x20) to a multiple of 8
 *   rest      the byte buffer: every tensor's data, little-endian, row-major, no holes, nothing after
 *
 * The encoder writes what the reference writer (Rust `safetensors::serialize`, which the Python
 * package calls) writes, so the same tensors give the same bytes: compact JSON, `__metadata__` first,
 * tensors sorted by descending dtype alignment then by name (which keeps every tensor aligned to its
 * element size, since the buffer starts at a multiple of 8), header padded to 8. The reference leaves
 * the order of metadata keys to a hash map; we sort them, so our files are deterministic.
 *
 * F16 and BF16 travel as their raw 16-bit patterns in a `Uint16Array` (JavaScript has no half floats
 * in Node 20); `tensorToFloat32` widens them. Not checked: duplicate JSON keys (`JSON.parse` keeps the last one).
 */

import { bfloat16ToFloat32, float16ToFloat32 } from './halfFloat';
import { isRecord } from './isRecord';

export type SafetensorsDtype = 'F64' | 'I64' | 'F32' | 'I32' | 'BF16' | 'F16' | 'U8';

/** The typed array that holds each dtype's elements. */
export interface SafetensorsArrays {
  F64: Float64Array;
  I64: BigInt64Array;
  F32: Float32Array;
  I32: Int32Array;
  BF16: Uint16Array;
  F16: Uint16Array;
  U8: Uint8Array;
}

/** One tensor: `data.length` is the product of `shape` (1 for the scalar shape `[]`). */
export type SafetensorsTensor = {
  [D in SafetensorsDtype]: { dtype: D; shape: number[]; data: SafetensorsArrays[D] };
}[SafetensorsDtype];

export interface SafetensorsFile {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** A file that is not valid safetensors, or tensors that cannot be written as one. */
export class SafetensorsFormatError extends Error {
  override readonly name = 'SafetensorsFormatError';
}

interface DtypeInfo {
  readonly bytes: number;
  /** Position in the reference's `Dtype` enum, which is ordered by alignment: the writer sorts on it. */
  readonly rank: number;
  readonly array: { new (buffer: ArrayBuffer): SafetensorsArrays[SafetensorsDtype]; readonly name: string };
}

const dtypes: Record<SafetensorsDtype, DtypeInfo> = {
  U8: { bytes: 1, rank: 4, array: Uint8Array },
  F16: { bytes: 2, rank: 13, array: Uint16Array },
  BF16: { bytes: 2, rank: 14, array: Uint16Array },
  I32: { bytes: 4, rank: 15, array: Int32Array },
  F32: { bytes: 4, rank: 17, array: Float32Array },
  F64: { bytes: 8, rank: 19, array: Float64Array },
  I64: { bytes: 8, rank: 20, array: BigInt64Array },
};

const headerSizeBytes = 8;
/** The reference reader's limit (MAX_HEADER_SIZE); a larger N means a corrupt or foreign file. */
const maxHeaderSize = 100_000_000;
const metadataKey = '__metadata__';
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = Object.entries(tensors).map(([name, tensor]) => {
    if (name === metadataKey)
      throw new SafetensorsFormatError(`"${metadataKey}" is reserved for metadata; rename that tensor`);
    return { name, tensor, byteLength: checkedByteLength(name, tensor) };
  });
  entries.sort(
    (a, b) => dtypes[b.tensor.dtype].rank - dtypes[a.tensor.dtype].rank || compareCodePoints(a.name, b.name),
  );

  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareCodePoints);
    for (const key of keys) {
      if (typeof metadata[key] !== 'string')
        throw new SafetensorsFormatError(`metadata "${key}" must be a string, got ${typeof metadata[key]}`);
    }
    // Built by hand: JSON.stringify would put integer-like keys ("1", "2") first, whatever the order.
    parts.push(
      `"${metadataKey}":{${keys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(metadata[key])}`).join(',')}}`,
    );
  }
  let offset = 0;
  for (const { name, tensor, byteLength } of entries) {
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":` +
        `${JSON.stringify(tensor.shape)},"data_offsets":[${offset},${offset + byteLength}]}`,
    );
    offset += byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerSize = Math.ceil(json.length / 8) * 8;
  if (headerSize > maxHeaderSize)
    throw new SafetensorsFormatError(
      `header of ${headerSize} bytes is over the ${maxHeaderSize}-byte limit readers accept`,
    );

  const out = new Uint8Array(headerSizeBytes + headerSize + offset);
  writeU64(out, headerSize);
  out.set(json, headerSizeBytes);
  out.fill(0x20, headerSizeBytes + json.length, headerSizeBytes + headerSize);
  let position = headerSizeBytes + headerSize;
  for (const { tensor, byteLength } of entries) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, byteLength), position);
    if (!littleEndian) swapBytes(out, position, byteLength, dtypes[tensor.dtype].bytes);
    position += byteLength;
  }
  return out;
}

/** Where one tensor's bytes lie: `begin`/`end` are offsets into the byte buffer, which starts at `dataStart`. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A file's header, checked against the file's length, without its tensors' data (for readers of big files). */
export interface SafetensorsHeader {
  /** Offset of the byte buffer in the file: 8 + the header size. */
  dataStart: number;
  metadata: Record<string, string>;
  /** In buffer order. */
  tensors: SafetensorsTensorInfo[];
}

/** The header size N that the first 8 bytes of a file announce, checked against the reader's limit. */
export function safetensorsHeaderSize(bytes: Uint8Array): number {
  if (bytes.length < headerSizeBytes) fail(`the file is ${bytes.length} bytes, too short for the 8-byte header size`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(4, true);
  const headerSize = view.getUint32(0, true) + high * 2 ** 32;
  if (high !== 0 || headerSize > maxHeaderSize)
    fail(`header size ${headerSize} is over the ${maxHeaderSize}-byte limit: not a safetensors file, or a corrupt one`);
  return headerSize;
}

/**
 * Parses the header of a file of `fileLength` bytes from `bytes`, which hold at least its first 8 + N bytes, and
 * checks that the tensors cover the byte buffer exactly.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileLength: number): SafetensorsHeader {
  const headerSize = safetensorsHeaderSize(bytes);
  const dataStart = headerSizeBytes + headerSize;
  if (dataStart > fileLength)
    fail(
      `the header size says ${headerSize} bytes but only ${fileLength - headerSizeBytes} follow: the file ` +
        `is truncated`,
    );
  if (headerSize === 0 || bytes[headerSizeBytes] !== 0x7b)
    fail('the header must start with "{": not a safetensors file');

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(headerSizeBytes, dataStart)));
  } catch (error) {
    fail(`the header is not valid UTF-8 JSON: ${(error as Error).message}`);
  }
  if (!isRecord(header)) fail('the header must be a JSON object');

  const metadata: Record<string, string> = {};
  const infos: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === metadataKey) {
      if (!isRecord(value)) fail(`"${metadataKey}" must be an object of strings`);
      for (const [key, text] of Object.entries(value)) {
        if (typeof text !== 'string') fail(`metadata "${key}" must be a string, got ${describe(text)}`);
        define(metadata, key, text);
      }
      continue;
    }
    infos.push({ name, ...parseTensorInfo(name, value) });
  }

  // The byte buffer must be covered exactly: tensors back to back from 0, no overlap, no hole, nothing after.
  const bufferLength = fileLength - dataStart;
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const info of infos) {
    if (info.end > bufferLength)
      fail(
        `tensor "${info.name}": data_offsets [${info.begin}, ${info.end}] run past the end of the ` +
          `${bufferLength}-byte buffer: the file is truncated`,
      );
    if (info.begin < cursor)
      fail(
        `tensor "${info.name}": data_offsets [${info.begin}, ${info.end}] overlap tensor "${previous}", which ` +
          `ends at ${cursor}`,
      );
    if (info.begin > cursor)
      fail(
        `tensor "${info.name}": data_offsets start at ${info.begin}, leaving bytes ${cursor}..${info.begin} ` +
          `of the buffer unused (holes are not allowed)`,
      );
    cursor = info.end;
    previous = info.name;
  }
  if (cursor !== bufferLength)
    fail(`${bufferLength - cursor} bytes after the last tensor are not described by the header`);
  return { dataStart, metadata, tensors: infos };
}

/**
 * One tensor from its raw little-endian bytes (exactly `end - begin` of them), copied into a fresh, aligned buffer
 * so the typed array never aliases the caller's bytes (a Node Buffer's slice() is a view into its shared pool) —
 * unless `owned`: the caller hands over a buffer of its own holding just these bytes, used as is (no second copy
 * of a big tensor).
 */
export function tensorFromBytes(info: SafetensorsTensorInfo, raw: Uint8Array, owned = false): SafetensorsTensor {
  if (raw.length !== info.end - info.begin)
    fail(`tensor "${info.name}": got ${raw.length} bytes, expected ${info.end - info.begin}`);
  const ownsWholeBuffer =
    owned && raw.buffer instanceof ArrayBuffer && raw.byteOffset === 0 && raw.buffer.byteLength === raw.length;
  const copy = ownsWholeBuffer ? (raw as Uint8Array<ArrayBuffer>) : new Uint8Array(raw.length);
  if (!ownsWholeBuffer) copy.set(raw);
  if (!littleEndian) swapBytes(copy, 0, copy.length, dtypes[info.dtype].bytes);
  return { dtype: info.dtype, shape: info.shape, data: new dtypes[info.dtype].array(copy.buffer) } as SafetensorsTensor;
}

export function decodeSafetensors(input: Uint8Array | ArrayBuffer): SafetensorsFile {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const { dataStart, metadata, tensors: infos } = parseSafetensorsHeader(bytes, bytes.length);
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const info of infos) {
    define(tensors, info.name, tensorFromBytes(info, bytes.subarray(dataStart + info.begin, dataStart + info.end)));
  }
  return { tensors, metadata };
}

function parseTensorInfo(
  name: string,
  value: unknown,
): { dtype: SafetensorsDtype; shape: number[]; begin: number; end: number } {
  const where = `tensor "${name}"`;
  if (!isRecord(value)) fail(`${where}: expected {"dtype", "shape", "data_offsets"}, got ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string' || !Object.hasOwn(dtypes, dtype)) {
    fail(`${where}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(dtypes).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isSize))
    fail(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize) || offsets[0] > offsets[1]) {
    fail(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const needed =
    (shape as number[]).reduce((product, size) => product * size, 1) * dtypes[dtype as SafetensorsDtype].bytes;
  if (end - begin !== needed)
    fail(
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} of shape [` +
        `${shape.join(', ')}] needs ${needed}`,
    );
  return { dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

function checkedByteLength(name: string, tensor: SafetensorsTensor): number {
  const info = Object.hasOwn(dtypes, tensor.dtype) ? dtypes[tensor.dtype] : undefined;
  if (info === undefined)
    throw new SafetensorsFormatError(
      `tensor "${name}": dtype "${tensor.dtype}" is not supported (supported: ${Object.keys(dtypes).join(', ')})`,
    );
  if (!(tensor.data instanceof info.array)) {
    throw new SafetensorsFormatError(
      `tensor "${name}": ${tensor.dtype} data must be a ${info.array.name}, got ` +
        `${tensor.data?.constructor?.name ?? typeof tensor.data}`,
    );
  }
  if (!Array.isArray(tensor.shape) || !tensor.shape.every(isSize)) {
    throw new SafetensorsFormatError(
      `tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(tensor.shape)}`,
    );
  }
  const elements = tensor.shape.reduce((product, size) => product * size, 1);
  if (tensor.data.length !== elements) {
    throw new SafetensorsFormatError(
      `tensor "${name}": shape [${tensor.shape.join(', ')}] has ${elements} elements but data has ` +
        `${tensor.data.length}`,
    );
  }
  return tensor.data.byteLength;
}

function writeU64(out: Uint8Array, value: number): void {
  const view = new DataView(out.buffer, out.byteOffset, 8);
  view.setUint32(0, value % 2 ** 32, true);
  view.setUint32(4, Math.floor(value / 2 ** 32), true);
}

/** Reverses each `size`-byte element in place: the format is little-endian whatever the platform. */
function swapBytes(bytes: Uint8Array, start: number, length: number, size: number): void {
  if (size === 1) return;
  for (let i = start; i < start + length; i += size) bytes.subarray(i, i + size).reverse();
}

/** Rust compares `String`s by UTF-8 bytes, which is code-point order; JavaScript's `<` compares UTF-16 units. */
function compareCodePoints(a: string, b: string): number {
  const left = Array.from(a, (char) => char.codePointAt(0) as number);
  const right = Array.from(b, (char) => char.codePointAt(0) as number);
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    if (left[i] !== right[i]) return left[i] - right[i];
  }
  return left.length - right.length;
}

/** Assignment would let a tensor named "__proto__" in an untrusted file replace the result's prototype. */
function define<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function fail(message: string): never {
  throw new SafetensorsFormatError(`invalid safetensors file: ${message}`);
}

/**
 * A floating-point tensor's values as 32-bit floats: F32 as is, F16 and BF16 widened exactly, F64 rounded.
 * Integer dtypes are refused (weights are floats; an integer tensor where a weight belongs is a wrong file).
 */
export function tensorToFloat32(name: string, tensor: SafetensorsTensor): Float32Array {
  switch (tensor.dtype) {
    case 'F32':
      return tensor.data;
    case 'F16':
      return float16ToFloat32(tensor.data);
    case 'BF16':
      return bfloat16ToFloat32(tensor.data);
    case 'F64':
      return Float32Array.from(tensor.data);
    default:
      throw new SafetensorsFormatError(
        `tensor "${name}": dtype ${tensor.dtype} is not a floating-point type (expected F32, F16, BF16 or F64)`,
      );
  }
}
