/**
 * Which ONNX Runtime execution provider the engine's sessions run on: onnxruntime-node's bundled `webgpu` one
 * (Dawn inside onnxruntime-node: Vulkan on Linux, Metal / D3D12 elsewhere) when it finds an adapter, the CPU one
 * otherwise. RLHF_LENS_ORT_PROVIDER = auto (the default) | webgpu | cpu; `webgpu` pinned and unavailable is an error
 * that says why.
 *
 * The probe builds one session of a one-node graph on ['webgpu'] and runs it once: onnxruntime-node exposes no
 * adapter query, and a session is the only thing that makes its Dawn look for an adapter (~50 ms when none is
 * found). The answer is cached per process and per requested provider: every model and sampler shares it.
 *
 * What onnxruntime-node 1.30 lets a caller choose (js/node/src/session_options_helper.cc accepts only
 * preferredLayout, validationMode, weightLoadAcceleration, the buffer cache modes, enableRobustness,
 * enableMatmulFp32Accumulation and forceCpuNodeNames; anything else is "WebGPU EP has an unrecognized option"):
 * not the Dawn backend, not the adapter, not a compatibility-mode or fallback adapter. Its Linux build holds only
 * Dawn's Vulkan backend, so it cannot use Mesa's OpenGL ES (llvmpipe) the way the tfjs engine's Dawn does.
 * Nodes whose ops the webgpu EP lacks run on the CPU provider listed after it (ONNX Runtime assigns per node).
 */
import * as ort from 'onnxruntime-node';
import { missingVulkanLoader } from '../webgpu/vulkanLoader';
import { DiffGraph } from './autodiff/graph';

export const ortProviderEnvironmentVariable = 'RLHF_LENS_ORT_PROVIDER';
export const ortProviderRequests = ['auto', 'webgpu', 'cpu'] as const;
export type OrtProviderRequest = (typeof ortProviderRequests)[number];

export type OrtProviderName = 'webgpu' | 'cpu';

/** The provider the engine runs on and why (run.json's `backend` / `backend_reason`, the log, the status bar). */
export interface OrtProviderChoice {
  readonly name: OrtProviderName;
  /** What the status bar shows after "onnxruntime ·": `webgpu (<adapter>)` or `cpu`. */
  readonly label: string;
  readonly reason: string;
  /** Given to every session (training and decode): webgpu first, the CPU provider for the nodes it lacks. */
  readonly executionProviders: readonly ort.InferenceSession.ExecutionProviderConfig[];
}

/** What the probe found: an adapter (described as far as onnxruntime-node lets us), or why none. */
export type WebgpuProbe =
  { readonly available: true; readonly adapter: string } | { readonly available: false; readonly why: string };

const CPU_PROVIDERS: readonly ort.InferenceSession.ExecutionProviderConfig[] = ['cpu'];
const WEBGPU_PROVIDERS: readonly ort.InferenceSession.ExecutionProviderConfig[] = ['webgpu', 'cpu'];
/**
 * onnxruntime-node reports nothing about the adapter its Dawn picked; Dawn asks for a high-performance one on
 * the Vulkan backend (Linux), so that is what is known of it.
 */
/** The probe's matrix: 4×4, multiplied by itself. */
const PROBE_SIZE = 4;
const PROBE_SHAPE = [PROBE_SIZE, PROBE_SIZE];
/** Where onnxruntime-node's Dawn looks on Linux (its build has the Vulkan backend alone). */
const PLATFORM_HINT =
  process.platform === 'linux'
    ? ' (on Linux it asks Vulkan only: it needs libvulkan.so.1 and a GPU driver with a Vulkan ICD)'
    : '';
const ADAPTER_AS_KNOWN = "Dawn's high-performance adapter; onnxruntime-node does not report which";

/** The request RLHF_LENS_ORT_PROVIDER makes; anything else is an error naming the accepted values. */
export function ortProviderRequest(env: NodeJS.ProcessEnv = process.env): OrtProviderRequest {
  const raw = env[ortProviderEnvironmentVariable]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return 'auto';
  if ((ortProviderRequests as readonly string[]).includes(raw)) return raw as OrtProviderRequest;
  throw new Error(
    `${ortProviderEnvironmentVariable} is "${env[ortProviderEnvironmentVariable]}": ` +
      `use ${ortProviderRequests.join(', ')}`,
  );
}

/** A graph of one MatMul: the smallest model that makes the webgpu EP find an adapter and compile a kernel. */
function probeModel(): Uint8Array {
  const graph = new DiffGraph('float32');
  const x = graph.input('x', PROBE_SHAPE);
  graph.output(graph.node1('MatMul', [x, x], {}, { shape: PROBE_SHAPE, kind: 'float' }), 'y');
  return graph.encode('rlhf-lens-provider-probe');
}

/** Builds and runs the probe session on ['webgpu'] alone (no CPU fallback, so that a success means the EP ran). */
export async function probeWebgpu(options: { checkVulkanLoader?: boolean } = {}): Promise<WebgpuProbe> {
  const bundled = ort.listSupportedBackends().some((backend) => backend.name === 'webgpu' && backend.bundled);
  if (!bundled)
    return {
      available: false,
      why: `this onnxruntime-node build (${process.platform}-${process.arch}) has no webgpu EP`,
    };
  // Without the Vulkan loader the EP cannot find an adapter, and asking it anyway costs a session and prints
  // Dawn's "Couldn't load Vulkan" on every trainer start.
  const noLoader = (options.checkVulkanLoader ?? true) ? missingVulkanLoader() : undefined;
  if (noLoader !== undefined) return { available: false, why: `onnxruntime-node's webgpu EP: ${noLoader}` };
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(probeModel(), { executionProviders: ['webgpu'] });
    const identity = Float32Array.from({ length: PROBE_SIZE * PROBE_SIZE }, (_, i) =>
      i % (PROBE_SIZE + 1) === 0 ? 1 : 0,
    );
    const { y } = await session.run({ x: new ort.Tensor('float32', identity, PROBE_SHAPE) });
    const product = y.data as Float32Array;
    if (!product.every((value, i) => value === identity[i]))
      return { available: false, why: 'the webgpu EP found an adapter but computed a wrong product in the probe' };
    return { available: true, adapter: ADAPTER_AS_KNOWN };
  } catch (error) {
    return { available: false, why: `onnxruntime-node's webgpu EP: ${shortOrtMessage(error)}${PLATFORM_HINT}` };
  } finally {
    await session?.release();
  }
}

const probes = new Map<string, Promise<WebgpuProbe>>();

/** The probe's answer, made once per process. */
export function cachedWebgpuProbe(probe: () => Promise<WebgpuProbe> = probeWebgpu): Promise<WebgpuProbe> {
  let answer = probes.get('webgpu');
  if (!answer) probes.set('webgpu', (answer = probe()));
  return answer;
}

const cpuChoice = (reason: string): OrtProviderChoice => ({
  name: 'cpu',
  label: 'cpu',
  reason,
  executionProviders: CPU_PROVIDERS,
});

/**
 * The provider RLHF_LENS_ORT_PROVIDER asks for: `cpu` without probing; `auto` → webgpu when the probe finds an
 * adapter, else cpu with the probe's reason; `webgpu` → webgpu, or an error that says why it is unavailable.
 */
export async function chooseOrtProvider(
  env: NodeJS.ProcessEnv = process.env,
  probe: () => Promise<WebgpuProbe> = cachedWebgpuProbe,
): Promise<OrtProviderChoice> {
  const request = ortProviderRequest(env);
  const variable = ortProviderEnvironmentVariable;
  if (request === 'cpu') return cpuChoice(`${variable} is "cpu"`);
  const found = await probe();
  const asked = request === 'auto' ? `${variable} is "auto" (the default)` : `${variable} is "webgpu"`;
  if (found.available)
    return {
      name: 'webgpu',
      label: `webgpu (${found.adapter})`,
      reason: `${asked}: onnxruntime-node's webgpu EP found ${found.adapter}; nodes it lacks run on the CPU EP`,
      executionProviders: WEBGPU_PROVIDERS,
    };
  if (request === 'webgpu') throw new Error(`${asked} but no WebGPU adapter is usable: ${found.why}`);
  return cpuChoice(`${asked} and no WebGPU adapter is usable (${found.why})`);
}

/** ONNX Runtime's message without its source location ("…/webgpu_context.cc:136 … was false. Failed to …"). */
export function shortOrtMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const failed = text.indexOf('Failed to');
  return (failed >= 0 ? text.slice(failed) : text).trim();
}
