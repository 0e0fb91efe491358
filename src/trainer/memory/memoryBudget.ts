/**
 * What a run can use, per engine and backend: wasm32's 4 GiB linear memory (capped by the machine's free memory),
 * or the machine's free memory for native tfjs and ONNX Runtime (native memory). GPU backends: neither WebGPU nor
 * tfjs-node-gpu tells how much memory the adapter has before the tensors are made, so their budget is assumed to be
 * the machine's free memory (exact on unified-memory machines, an upper bound the message states otherwise); what
 * WebGPU does say is the largest buffer it gives — every tensor is one buffer, so each must fit
 * maxStorageBufferBindingSize and maxBufferSize (tfjs requests the adapter's own limits; without them the spec's
 * guaranteed defaults are assumed).
 */
import * as os from 'node:os';
import type { BackendName, EngineName } from '../../shared/backendNames';

/** What a stage is checked against: ONNX Runtime (native memory), or the tfjs backend it runs on. */
export type MemoryTarget = BackendName | 'onnxruntime';

/** What the runtime itself needs besides tensors (wasm module, data, buffers). */
export const baseBytes = 48 * 2 ** 20;
/** wasm32's linear memory. */
export const wasmLimitBytes = 4 * 2 ** 30;

/** The two WebGPU limits a single tensor meets. */
export interface WebGpuBufferLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
}

/** The WebGPU spec's default limits: what every adapter gives, when its own are not known. */
export const webgpuDefaultLimits: WebGpuBufferLimits = {
  maxStorageBufferBindingSize: 128 * 2 ** 20,
  maxBufferSize: 256 * 2 ** 20,
};

/** The target of a run on `engine` (tfjs runs on `backend`). */
export const memoryTarget = (engine: EngineName, backend: BackendName): MemoryTarget =>
  engine === 'onnxruntime' ? 'onnxruntime' : backend;

export const isGpuTarget = (target: MemoryTarget) => target === 'webgpu' || target === 'tfjs-node-gpu';

export interface MemoryBudget {
  readonly bytes: number;
  readonly what: string;
  /** Whose activation model the estimate uses. */
  readonly engine: EngineName;
}

/** What a target can use: wasm's 4 GiB linear memory, or the machine's free memory (ONNX Runtime, native tfjs). */
export function memoryBudget(target: MemoryTarget, freeBytes = os.freemem()): MemoryBudget {
  const engine = target === 'onnxruntime' ? 'onnxruntime' : 'tfjs';
  const free = `this machine's free memory (${formatBytes(freeBytes)})`;
  if (target === 'wasm')
    return {
      bytes: Math.min(wasmLimitBytes, freeBytes),
      what: wasmLimitBytes <= freeBytes ? "the wasm backend's 4 GiB of memory" : free,
      engine,
    };
  if (isGpuTarget(target))
    return { bytes: freeBytes, what: `${free}, taken as the ${target} adapter's (it does not say its own)`, engine };
  return { bytes: freeBytes, what: free, engine };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 40) return `${(bytes / 2 ** 40).toFixed(1)} TiB`;
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  return `${Math.max(1, Math.round(bytes / 2 ** 20))} MiB`;
}

/** The largest value in [1, upTo] for which `fits` holds (it is monotone), or 0. */
export function largest(upTo: number, fits: (n: number) => boolean): number {
  if (!fits(1)) return 0;
  let low = 1;
  let high = Math.max(1, upTo);
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle - 1;
  }
  return low;
}
