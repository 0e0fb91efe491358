/**
 * TensorFlow.js's `webgpu` backend on Dawn (engine/webgpu/dawn.ts). tfjs-backend-webgpu registers itself
 * only when `navigator.gpu` exists as it loads, and then asks `navigator.gpu.requestAdapter` for a core
 * adapter; where only Dawn's OpenGL ES backend finds one, that adapter is a compatibility one. So the
 * `navigator.gpu` given to tfjs answers every request with the adapter the search found. The device tfjs
 * creates is watched: a lost device (driver reset, GPU fault, `device.destroy()`) is remembered with
 * Dawn's reason, and so is an operation that failed validation, for the stage loop to stop the run
 * cleanly (engine.ts `gpuFailure`).
 */
import { findAdapter, type AdapterDescription, type FoundAdapter } from '../webgpu/dawn';
import { bundledTfInstance, installTf, tf } from './tfRuntime';

/** Why the device was lost ("destroyed: Device was destroyed."), once `device.lost` resolved. */
let deviceLoss: string | undefined;

/** The device tfjs-backend-webgpu created (its backend's `device`), while webgpu is the backend. */
export function webgpuDevice(): GPUDevice | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  return (tf.backend() as unknown as { device?: GPUDevice }).device;
}

export function webgpuDeviceLoss(): string | undefined {
  return deviceLoss;
}

/** Most errors kept: the first ones say what went wrong; the rest usually repeat it. */
const keptErrors = 20;
const uncapturedErrors: string[] = [];

/**
 * Validation and out-of-memory errors of GPU operations no error scope caught (an invalid pipeline, say):
 * tfjs never asks, and such an operation's result is garbage, so tests check that there were none.
 */
export function webgpuErrors(): readonly string[] {
  return uncapturedErrors;
}

/** The engine's gpuFailure: the device lost, or the first operation that failed. */
export function webgpuFailure(): string | undefined {
  if (deviceLoss !== undefined) return `the GPU was lost (${deviceLoss})`;
  if (uncapturedErrors.length > 0) return `a GPU operation failed (${uncapturedErrors[0]})`;
  return undefined;
}

/** Sets navigator.gpu so that tfjs's adapter request gets the adapter found, core or compatibility. */
function offerAdapter(found: FoundAdapter): void {
  const gpu = {
    requestAdapter: async () => found.adapter,
    getPreferredCanvasFormat: () => 'rgba8unorm',
    wgslLanguageFeatures: new Set<string>(),
  };
  const global = globalThis as { navigator?: { gpu?: unknown } };
  // Node 21+ has a navigator of its own, without `gpu`; Node 20 has none.
  if (global.navigator) Object.defineProperty(global.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

export interface WebgpuStart {
  readonly adapter: AdapterDescription;
}

/**
 * Starts tfjs on webgpu. `allowSoftware` false (the `auto` choice) refuses a software adapter, which trains
 * slower than the CPU backends; a config that pins "webgpu" may use it.
 */
export async function startWebgpu(allowSoftware: boolean): Promise<WebgpuStart> {
  const found = await findAdapter(allowSoftware);
  if (found.description.software && !allowSoftware)
    throw new Error(
      `only a software adapter (${found.description.device || found.description.description}), slower than ` +
        'the CPU backends; pin "backend": "webgpu" to use it',
    );
  offerAdapter(found);
  // Registers the backend now that navigator.gpu exists (the build bundles it; it loads on first use).
  await import('@tensorflow/tfjs-backend-webgpu');
  installTf(bundledTfInstance());
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") returned false');
  await tf.ready();
  const device = webgpuDevice();
  if (!device) throw new Error('the webgpu backend started without a device');
  deviceLoss = undefined;
  device.addEventListener('uncapturederror', (event) => {
    const { error } = event as GPUUncapturedErrorEvent;
    if (uncapturedErrors.length < keptErrors) uncapturedErrors.push(error.message.split('\n')[0]);
  });
  void device.lost.then((info) => {
    deviceLoss = `${info.reason}: ${info.message.trim() || 'no message'}`;
  });
  return { adapter: found.description };
}
