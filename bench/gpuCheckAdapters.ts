/**
 * The GPU check's first part: what each engine finds. Dawn itself (the `webgpu` package, each of its backends
 * asked directly, so a missing Vulkan or EGL loader shows as such), tfjs's `webgpu` backend as the product
 * selects it, onnxruntime-node's execution providers, and the ONNX Runtime engine asked for `webgpu`.
 */
import * as ort from 'onnxruntime-node';
import { backendNames } from '../src/shared/backendNames';
import { selectBackend, type BackendName } from '../src/trainer/engine/tfjs/backend';
import { OnnxEngine } from '../src/trainer/engine/onnxruntime/onnxEngine';
import { ortProviderVariable } from './gpuCheckParts';

/** Dawn's backends asked in turn: Vulkan (the GPU's own), then OpenGL ES (EGL) in compatibility mode. */
const dawnBackends = [
  { flag: 'backend=vulkan', featureLevel: 'core' },
  { flag: 'backend=opengles', featureLevel: 'compatibility' },
] as const;

interface DawnModule {
  create(flags: string[]): { requestAdapter(options?: object): Promise<DawnAdapter | null> };
  globals: object;
}
interface DawnAdapter {
  info: { vendor: string; architecture: string; description: string; device: string };
  features: Set<string>;
  limits: Record<string, number>;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0];

async function dawnAdapters() {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (error) {
    return { error: `the webgpu package does not load: ${message(error)}` };
  }
  const found: Record<string, unknown> = {};
  for (const { flag, featureLevel } of dawnBackends) {
    try {
      const adapter = await dawn.create([flag]).requestAdapter({ featureLevel });
      found[flag] = adapter
        ? {
            ...pick(adapter.info),
            feature_level: featureLevel,
            shader_f16: adapter.features.has('shader-f16'),
            max_buffer_size: adapter.limits.maxBufferSize,
            max_storage_buffer_binding_size: adapter.limits.maxStorageBufferBindingSize,
          }
        : { adapter: null };
    } catch (error) {
      found[flag] = { error: message(error) };
    }
  }
  return found;
}

const pick = ({ vendor, architecture, description, device }: DawnAdapter['info']) => ({
  vendor,
  architecture,
  description,
  device,
});

async function tfjsWebgpu() {
  if (!(backendNames as readonly string[]).includes('webgpu'))
    return { unavailable: `not available in this build: tfjs backends are ${backendNames.join(', ')}` };
  try {
    const choice = await selectBackend('webgpu' as BackendName);
    return { backend: choice.name, reason: choice.reason, ...(choice as object) };
  } catch (error) {
    return { error: message(error) };
  }
}

async function ortEngine() {
  process.env[ortProviderVariable] = 'webgpu';
  try {
    const engine = await OnnxEngine.create();
    return { provider: engine.provider.name, label: engine.backend, reason: engine.backendReason };
  } catch (error) {
    // Pinned and not usable: the engine's error says why.
    return { provider: 'none', unavailable: message(error) };
  }
}

export async function adaptersPart() {
  return {
    dawn: await dawnAdapters(),
    tfjs_webgpu: await tfjsWebgpu(),
    onnxruntime: {
      supported_backends: ort.listSupportedBackends(),
      engine_with_webgpu: await ortEngine(),
    },
  };
}
