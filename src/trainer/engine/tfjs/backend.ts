/**
 * Chooses the TensorFlow.js backend at start, in DESIGN.md's order — `tfjs-node-gpu` (CUDA) → `webgpu`
 * (Dawn; a hardware adapter only) → `tfjs-node` → `wasm` → `cpu` — or the one a config pins. The native
 * packages are optional dependencies and are often absent (their install downloads libtensorflow), so each
 * is tried with a guarded `require`; the reason for the choice, and why each better backend was passed
 * over, is recorded so run.json, the log and the status bar can say it. On `webgpu` the choice also
 * describes the adapter.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { backendNames, type BackendName } from '../../../shared/backendNames';
import { formatAdapter, type AdapterDescription } from '../webgpu/dawn';
import { bundledTfInstance, installTf, tf, type Tf } from './tfRuntime';
import { startWebgpu } from './webgpuBackend';

export { backendNames, type BackendName };
export type BackendRequest = BackendName | 'auto';

export interface BackendAttempt {
  readonly name: BackendName;
  readonly error: string;
}

export interface BackendChoice {
  readonly name: BackendName;
  /** One sentence: why this backend. */
  readonly reason: string;
  /** The better backends that were tried first, and why each failed. */
  readonly passedOver: readonly BackendAttempt[];
  /** The WebGPU adapter, on `webgpu`. */
  readonly adapter?: AdapterDescription;
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    readonly reason: string,
  ) {
    super(
      `The backend "${backend}" pinned by the config is not available here: ${reason}. ` +
        `Set "backend" to "auto" to use the best available one, or install what it needs` +
        (backend.startsWith('tfjs-node')
          ? ` (npm install @tensorflow/${backend}; its install downloads libtensorflow).`
          : '.'),
    );
  }
}

/** Starts a backend; `pinned` when the config names it (webgpu then accepts a software adapter). */
type Attempt = (pinned: boolean) => Promise<AdapterDescription | void>;

function nativeAttempt(packageName: string, backendName: string): Attempt {
  return async () => {
    // A require by variable: esbuild leaves it to run time, where the optional package may be absent.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require(packageName) as Tf;
    await native.setBackend(backendName);
    await native.ready();
    installTf(native);
  };
}

/** Where the build copies tfjs-backend-wasm's binaries (next to dist/trainer.js); absent when run from sources. */
function bundledWasmDir(): string | undefined {
  const dir = path.join(__dirname, 'wasm');
  return existsSync(path.join(dir, 'tfjs-backend-wasm.wasm')) ? dir : undefined;
}

const attempts: Record<BackendName, Attempt> = {
  'tfjs-node-gpu': nativeAttempt('@tensorflow/tfjs-node-gpu', 'tensorflow'),
  webgpu: async (pinned) => (await startWebgpu(pinned)).adapter,
  'tfjs-node': nativeAttempt('@tensorflow/tfjs-node', 'tensorflow'),
  wasm: async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dir = bundledWasmDir();
    if (dir) wasm.setWasmPaths(`${dir}${path.sep}`);
    installTf(bundledTfInstance());
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
    await tf.ready();
  },
  cpu: async () => {
    await import('@tensorflow/tfjs-backend-cpu');
    installTf(bundledTfInstance());
    if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
    await tf.ready();
  },
};

function adapterClause(adapter: AdapterDescription | void): string {
  return adapter ? `; adapter ${formatAdapter(adapter)}` : '';
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // A missing optional package is the common case: say it plainly rather than with a stack.
  if (/Cannot find module/.test(message)) return 'the package is not installed';
  return message.split('\n')[0];
}

export async function selectBackend(request: BackendRequest = 'auto'): Promise<BackendChoice> {
  if (request !== 'auto') {
    let adapter: AdapterDescription | void;
    try {
      adapter = await attempts[request](true);
    } catch (error) {
      throw new BackendUnavailableError(request, describe(error));
    }
    const reason = `pinned by the config ("backend": "${request}")${adapterClause(adapter)}`;
    return { name: request, reason, passedOver: [], ...(adapter ? { adapter } : {}) };
  }
  const passedOver: BackendAttempt[] = [];
  for (const name of backendNames) {
    let adapter: AdapterDescription | void;
    try {
      adapter = await attempts[name](false);
    } catch (error) {
      passedOver.push({ name, error: describe(error) });
      continue;
    }
    const reason =
      (passedOver.length === 0
        ? 'the best backend, and available'
        : `the best available: ${passedOver.map(({ name, error }) => `${name} (${error})`).join(', ')} not usable`) +
      adapterClause(adapter);
    return { name, reason, passedOver, ...(adapter ? { adapter } : {}) };
  }
  throw new Error(
    `No TensorFlow.js backend could start: ${passedOver.map(({ name, error }) => `${name}: ${error}`).join('; ')}`,
  );
}

/** One line for logs and the status bar. */
export function formatBackendChoice(choice: BackendChoice): string {
  return `backend ${choice.name}: ${choice.reason}`;
}
