/**
 * The one owner of Dawn (the `webgpu` package's native addon) on the tfjs side: the environment it needs,
 * the GPU it creates, the adapter search and the adapter's description. The search tries the platform's
 * default backend first (Vulkan on Linux, Metal on macOS, D3D12 on Windows), then Dawn's OpenGL ES backend
 * in compatibility mode — the only one that finds an adapter on a machine without a GPU (Mesa's llvmpipe
 * through EGL, ENVIRONMENT.md "GPU"). When none is found, the error names each backend tried and its answer.
 */
import { mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { missingVulkanLoader } from './vulkanLoader';

/** What run.json, the log and the status bar say about the adapter a run computes on. */
export interface AdapterDescription {
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  readonly device: string;
  /** Dawn's backend that found it: `vulkan`, `metal`, `d3d12` or `opengles`. */
  readonly backend: string;
  /** A CPU rasterizer posing as a GPU (llvmpipe, lavapipe, SwiftShader): slower than the CPU backends. */
  readonly software: boolean;
}

export interface FoundAdapter {
  /**
   * The GPU (Dawn instance) the adapter came from. It must stay referenced: the adapter does not keep it
   * alive, and a collected instance makes a later requestDevice abort the process (measured: a futex error).
   */
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly featureLevel: 'core' | 'compatibility';
  readonly description: AdapterDescription;
}

/** One backend the search tried and what Dawn answered. */
export interface AdapterAttempt {
  readonly backend: string;
  readonly answer: string;
}

export class NoAdapterError extends Error {
  constructor(readonly attempts: readonly AdapterAttempt[]) {
    super(`no WebGPU adapter: ${attempts.map(({ backend, answer }) => `${backend} ${answer}`).join('; ')}`);
  }
}

/** Names in an adapter's info that mean a software rasterizer (Mesa's llvmpipe, softpipe and lavapipe; SwiftShader). */
const softwareRasterizer = /llvmpipe|softpipe|lavapipe|swiftshader/i;

interface DawnModule {
  create(flags: string[]): GPU;
  globals: object;
}

interface BackendPlan {
  readonly backend: string;
  readonly flags: string[];
  readonly featureLevel: 'core' | 'compatibility';
}

/** The platform's default Dawn backend, by name, for the description and the error. */
function defaultBackendName(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'darwin') return 'metal';
  if (platform === 'win32') return 'd3d12';
  return 'vulkan';
}

const searchOrder: readonly BackendPlan[] = [
  { backend: defaultBackendName(), flags: [], featureLevel: 'core' },
  { backend: 'opengles', flags: ['backend=opengles'], featureLevel: 'compatibility' },
];

/**
 * What Dawn needs before it starts: Mesa's EGL must not look for a display (`surfaceless`), and Dawn writes
 * to XDG_RUNTIME_DIR, which a service or container often lacks — then a private folder (mode 700) of this
 * user's in the temporary folder, the same for every run so that runs leave none behind.
 */
export function prepareDawnEnvironment(environment: NodeJS.ProcessEnv = process.env): void {
  environment.EGL_PLATFORM ??= 'surfaceless';
  if (environment.XDG_RUNTIME_DIR) return;
  const dir = path.join(os.tmpdir(), `rlhf-lens-xdg-${os.userInfo().uid}`);
  mkdirSync(dir, { recursive: true, mode: privateFolderMode });
  environment.XDG_RUNTIME_DIR = dir;
}

/** Owner only: XDG_RUNTIME_DIR must not be readable by other users. */
const privateFolderMode = 0o700;

let dawn: DawnModule | undefined;

/** Loads the addon once, with its WebGPU globals (GPUBufferUsage, GPUMapMode, …) installed for tfjs. */
async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  prepareDawnEnvironment();
  // A native addon: the build leaves `webgpu` external, resolved from node_modules at run time.
  const loaded = (await import('webgpu')) as unknown as DawnModule;
  Object.assign(globalThis, loaded.globals);
  dawn = loaded;
  return loaded;
}

export function describeAdapter(adapter: GPUAdapter, backend: string): AdapterDescription {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacyFallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const names = [info.vendor, info.architecture, info.description, info.device].join(' ');
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    device: info.device,
    backend,
    software: info.isFallbackAdapter === true || legacyFallback === true || softwareRasterizer.test(names),
  };
}

/** One line: "llvmpipe-… (OpenGL version OpenGL ES 3.2 Mesa 22.3.6) on opengles, software adapter". */
export function formatAdapter(description: AdapterDescription): string {
  const { vendor, architecture, description: text, device, backend, software } = description;
  const name = [vendor, architecture, device].filter((part) => part !== '').join(' ') || 'unnamed adapter';
  return `${name}${text ? ` (${text})` : ''} on ${backend}${software ? ', software adapter' : ''}`;
}

/** The short form for the status bar: the adapter's name, and "software adapter" when it is one. */
export function adapterLabel(description: AdapterDescription): string {
  const { vendor, architecture, description: text, device, software } = description;
  const name = [vendor, architecture, device].filter((part) => part !== '').join(' ') || text || 'unnamed adapter';
  return `${name}${software ? ', software adapter' : ''}`;
}

async function tryBackend(module: DawnModule, plan: BackendPlan): Promise<FoundAdapter | string> {
  // Without the loader Dawn's Vulkan backend cannot find anything, and asking prints its warning to stderr.
  const noLoader = plan.backend === 'vulkan' ? missingVulkanLoader() : undefined;
  if (noLoader !== undefined) return `not asked: ${noLoader}`;
  try {
    const gpu = module.create(plan.flags);
    const options = {
      powerPreference: 'high-performance',
      featureLevel: plan.featureLevel,
    } as GPURequestAdapterOptions;
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) {
      const loader = plan.backend === 'vulkan' ? missingVulkanLoader() : undefined;
      return `found no ${plan.featureLevel} adapter${loader ? ` (${loader})` : ''}`;
    }
    return { gpu, adapter, featureLevel: plan.featureLevel, description: describeAdapter(adapter, plan.backend) };
  } catch (error) {
    return `failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
}

/** Why `auto` does not ask Dawn's OpenGL ES backend (said in the search's answer). */
const compatibilityOnlyPinned =
  'not asked: OpenGL ES compatibility adapters are tried only when "backend": "webgpu" is pinned (on a machine ' +
  "without a Vulkan GPU they are software rasterizers, and asking prints Dawn's warnings)";

const searches = new Map<boolean, Promise<FoundAdapter>>();

/**
 * The first adapter in the search order, found once per process; NoAdapterError says what each backend answered.
 * `withCompatibility` false (the `auto` choice) asks only the platform's default backend.
 */
export function findAdapter(withCompatibility = true): Promise<FoundAdapter> {
  let search = searches.get(withCompatibility);
  if (search) return search;
  search = (async () => {
    let module: DawnModule;
    try {
      module = await loadDawn();
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      throw new NoAdapterError([{ backend: 'dawn', answer: `could not load the webgpu package: ${message}` }]);
    }
    const attempts: AdapterAttempt[] = [];
    for (const plan of searchOrder) {
      if (plan.featureLevel === 'compatibility' && !withCompatibility) {
        attempts.push({ backend: plan.backend, answer: compatibilityOnlyPinned });
        continue;
      }
      const answer = await tryBackend(module, plan);
      if (typeof answer !== 'string') return answer;
      attempts.push({ backend: plan.backend, answer });
    }
    throw new NoAdapterError(attempts);
  })();
  searches.set(withCompatibility, search);
  return search;
}
