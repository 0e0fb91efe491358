/**
 * Writes Hugging Face model folders for tests in the exact layout transformers writes: config.json as
 * `PretrainedConfig.to_json_string` (json.dumps, indent 2, sorted keys, newline; floats in Python's repr, so
 * 1e-05 and 10000.0), model.safetensors with `{"format": "pt"}` metadata, and `save_pretrained(max_shard_size=…)`'s
 * shards `model-0000i-of-0000n.safetensors` with model.safetensors.index.json (metadata.total_size = the bytes of
 * all tensors, weight_map sorted).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, type SafetensorsTensor } from '../../src/shared/safetensors';
import type { HfTensorSpec } from '../../src/trainer/hf';

/** A number Python holds as a float: written with Python's repr (10000.0, 1e-05), not JavaScript's. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Python's float repr: shortest round-trip digits, exponent form below 1e-4 or from 1e16, always a dot or e. */
function pythonFloat(value: number): string {
  const [digits, exponentText] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const sign = exponent < 0 ? '-' : '+';
    return `${digits}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const text = String(value);
  return Number.isInteger(value) ? `${text}.0` : text;
}

/** json.dumps(value, indent=2, sort_keys=True) as Python writes it. */
export function pythonJson(value: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (value instanceof PyFloat) return pythonFloat(value.value);
  if (Array.isArray(value))
    return value.length === 0
      ? '[]'
      : `[\n${value.map((item) => inner + pythonJson(item, inner)).join(',\n')}\n${indent}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    if (keys.length === 0) return '{}';
    const entries = keys.map(
      (key) => `${inner}${JSON.stringify(key)}: ${pythonJson((value as Record<string, unknown>)[key], inner)}`,
    );
    return `{\n${entries.join(',\n')}\n${indent}}`;
  }
  // json.dumps escapes non-ASCII by default (ensure_ascii=True).
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function temporaryFolder(prefix = 'hf-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(folder: string, config: Record<string, unknown>): void {
  writeFileSync(join(folder, 'config.json'), `${pythonJson(config)}\n`);
}

export type TestDtype = 'F32' | 'F16' | 'BF16';

/** Deterministic values that are exact in every dtype written (multiples of 1/64 below 2). */
export function exactValues(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (((i * 37 + seed * 11) % 127) - 63) / 64;
  return values;
}

/** F32 values whose F16 / BF16 forms are exact, as the bit patterns safetensors stores. */
export function tensorOf(values: Float32Array, shape: number[], dtype: TestDtype): SafetensorsTensor {
  if (dtype === 'F32') return { dtype, shape, data: values };
  const bits = new Uint32Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const data = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = dtype === 'BF16' ? bits[i] >>> 16 : toHalfBits(values[i]);
  return { dtype, shape, data };
}

/** F16 bits of a value that F16 holds exactly as a normal number (or zero): the test values only. */
function toHalfBits(value: number): number {
  if (value === 0) return Object.is(value, -0) ? 0x8000 : 0;
  const sign = value < 0 ? 0x8000 : 0;
  const exponent = Math.floor(Math.log2(Math.abs(value)));
  const mantissa = Math.abs(value) / 2 ** exponent - 1;
  return sign | ((exponent + 15) << 10) | Math.round(mantissa * 1024);
}

/** Tensors for `specs`, values from exactValues (seeded by position), renamed by `rename`. */
export function tensorsFor(
  specs: readonly HfTensorSpec[],
  dtype: TestDtype,
  rename: (name: string) => string = (name) => name,
): Record<string, SafetensorsTensor> {
  const tensors: Record<string, SafetensorsTensor> = {};
  specs.forEach((spec, index) => {
    const count = spec.shape.reduce((product, size) => product * size, 1);
    tensors[rename(spec.name)] = tensorOf(exactValues(count, index), spec.shape, dtype);
  });
  return tensors;
}

export function writeSingleFile(folder: string, tensors: Record<string, SafetensorsTensor>): void {
  writeFileSync(join(folder, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
}

/** Shards of about `maxShardBytes` each, in the tensors' order, and their index, as save_pretrained writes them. */
export function writeShards(
  folder: string,
  tensors: Record<string, SafetensorsTensor>,
  maxShardBytes: number,
): string[] {
  const shards: Record<string, SafetensorsTensor>[] = [{}];
  let shardBytes = 0;
  let totalSize = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    const bytes = tensor.data.byteLength;
    if (shardBytes > 0 && shardBytes + bytes > maxShardBytes) {
      shards.push({});
      shardBytes = 0;
    }
    shards[shards.length - 1][name] = tensor;
    shardBytes += bytes;
    totalSize += bytes;
  }
  const count = String(shards.length).padStart(5, '0');
  const names = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${count}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    writeFileSync(join(folder, names[i]), encodeSafetensors(shard, { format: 'pt' }));
    for (const name of Object.keys(shard)) weightMap[name] = names[i];
  });
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  writeFileSync(join(folder, 'model.safetensors.index.json'), `${pythonJson(index)}\n`);
  return names;
}
