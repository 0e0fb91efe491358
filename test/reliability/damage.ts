/**
 * Ways to damage the files of a run folder, a checkpoint and an ONNX export, as disks, editors,
 * half-finished copies and hostile hands do: truncation, zeros, garbage, safetensors headers that
 * lie about offsets, dtypes and shapes, tensors missing or NaN, JSON of the wrong type, files
 * missing, names that climb out of the runs folder.
 */
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { decodeSafetensors, encodeSafetensors } from '../../src/shared/safetensors';

/** A deterministic byte stream, so a "garbage" case is the same garbage every run. */
function garbage(length: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

export const truncateHalf = (file: string) => truncateSync(file, Math.floor(readFileSync(file).length / 2));
export const truncateTo = (bytes: number) => (file: string) => truncateSync(file, bytes);
export const zeroed = (file: string) => writeFileSync(file, Buffer.alloc(readFileSync(file).length));
export const garbled = (file: string) => writeFileSync(file, garbage(readFileSync(file).length));
export const remove = (file: string) => rmSync(file, { recursive: true, force: true });
export const replaceWith = (text: string | Buffer) => (file: string) => writeFileSync(file, text);

/** Rewrites a JSON file through `edit` (which may return something of another type altogether). */
export const editJson = (edit: (value: Record<string, unknown>) => unknown) => (file: string) => {
  writeFileSync(
    file,
    `${JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>), null, 2)}\n`,
  );
};

/** A safetensors file's parts: the header object and the data after it. */
function splitSafetensors(file: string): {
  header: Record<
    string,
    { dtype?: string; shape?: number[]; data_offsets?: [number, number] } | Record<string, string>
  >;
  data: Buffer;
} {
  const bytes = readFileSync(file);
  const size = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + size).toString('utf8')), data: bytes.subarray(8 + size) };
}

function joinSafetensors(file: string, header: object, data: Buffer): void {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(file, Buffer.concat([size, Buffer.from(json), data]));
}

/**
 * The first tensor's name (after the metadata), and the name of a non-square 2-D one (so a transposed shape is a wrong
 * one).
 */
function tensorNames(file: string): { first: string; matrix: string } {
  const names = Object.keys(splitSafetensors(file).header).filter((name) => name !== '__metadata__');
  const decoded = decodeSafetensors(new Uint8Array(readFileSync(file)));
  return {
    first: names[0],
    matrix:
      names.find(
        (name) =>
          decoded.tensors[name].shape.length === 2 && decoded.tensors[name].shape[0] !== decoded.tensors[name].shape[1],
      ) ?? names[0],
  };
}

/** Header edits that keep the file well-formed JSON but lie about one tensor; the damage returns the tensor's name. */
export const lyingHeader = (lie: 'offsets' | 'dtype' | 'shape' | 'size') => (file: string) => {
  const { header, data } = splitSafetensors(file);
  const name = tensorNames(file).matrix;
  const entry = header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
  if (lie === 'offsets') entry.data_offsets = [entry.data_offsets[0], entry.data_offsets[1] + 4096];
  if (lie === 'dtype') entry.dtype = 'F16';
  if (lie === 'shape') entry.shape = [entry.shape[0] + 1, entry.shape[1]];
  if (lie === 'size') {
    // Says the header is far longer than the file.
    const bytes = readFileSync(file);
    bytes.writeBigUInt64LE(BigInt(bytes.length * 4), 0);
    writeFileSync(file, bytes);
    return undefined;
  }
  joinSafetensors(file, header, data);
  return name;
};

/** Breaks the header's JSON (a '}' turned into garbage) but keeps its length. */
export const brokenHeaderJson = (file: string) => {
  const bytes = readFileSync(file);
  const size = Number(bytes.readBigUInt64LE(0));
  bytes[8 + size - 1] = 0x01;
  for (let i = 8 + size - 1; i > 8 && bytes[i - 1] === 0x20; i--) bytes[i - 1] = 0x01;
  writeFileSync(file, bytes);
};

/**
 * Valid safetensors whose tensors are wrong: one dropped, one transposed, one with a NaN. Returns the tensor's name.
 */
export const tensorEdit = (edit: 'drop' | 'transpose' | 'nan') => (file: string) => {
  const decoded = decodeSafetensors(new Uint8Array(readFileSync(file)));
  const name = tensorNames(file).matrix;
  const tensor = decoded.tensors[name];
  if (edit === 'drop') delete decoded.tensors[name];
  if (edit === 'transpose') tensor.shape = [tensor.shape[1], tensor.shape[0]];
  if (edit === 'nan') (tensor.data as Float32Array)[0] = Number.NaN;
  writeFileSync(file, encodeSafetensors(decoded.tensors, decoded.metadata));
  return name;
};
