/**
 * Where the trainer's engines are made: the one place that knows which implementations exist. The
 * tfjs training engine gets the KV-cache sampler here (sampling/ imports the engine's Gpt, so the
 * engine cannot import sampling/ itself); the ONNX Runtime engine gets its sampler from
 * onnx/onnxEngineSampler.ts. The ONNX Runtime engine and PPO's ONNX rollout engine are imported on demand,
 * so a tfjs run never loads onnxruntime's native binding. A third training engine is a third branch here
 * and a folder beside engine/tfjs/; no algorithm changes.
 */
import { engineNames, type EngineName } from '../shared/backendNames';
import type { AdapterNaming, TrainingEngine } from './engine/engine';
import type { BackendChoice } from './engine/tfjs/backend';
import { TfjsEngine } from './engine/tfjs/tfjsEngine';
import { adapterLabel, formatAdapter } from './engine/webgpu/dawn';
import { engineRolloutEngine } from './rollout/engineRollout';
import type { RolloutEngineFactory } from './rollout/rolloutEngine';
import { generate } from './sampling/sampler';

/** The environment variable through which the editor passes `rlhf.defaultEngine` to the trainer. */
export const engineEnvironmentVariable = 'RLHF_LENS_ENGINE';

/** The engine a run trains on, and why (recorded in run.json, logged, shown in the status bar). */
export interface EngineChoice {
  readonly name: EngineName;
  readonly reason: string;
}

/**
 * A config's pinned engine wins; its "auto" follows RLHF_LENS_ENGINE when that names an engine (the
 * editor's `rlhf.defaultEngine`), and otherwise means ONNX Runtime.
 */
export function chooseEngine(
  configured: 'auto' | EngineName | undefined,
  environment: NodeJS.ProcessEnv = process.env,
): EngineChoice {
  if (configured && configured !== 'auto')
    return { name: configured, reason: `the config pins "engine": "${configured}"` };
  const fromEnvironment = environment[engineEnvironmentVariable];
  if ((engineNames as readonly string[]).includes(fromEnvironment ?? ''))
    return {
      name: fromEnvironment as EngineName,
      reason: `"engine" is "auto" and ${engineEnvironmentVariable} (rlhf.defaultEngine) is "${fromEnvironment}"`,
    };
  return { name: 'onnxruntime', reason: '"engine" is "auto": ONNX Runtime trains fastest on the CPU' };
}

/** The tfjs engine on `backend` (what the unit tests and the demo's evaluation use). */
export function createTrainingEngine(backend: BackendChoice): TrainingEngine {
  return new TfjsEngine(backend, generate);
}

/** The engine a run chose: ONNX Runtime (loaded here, on demand) or tfjs on `backend`. */
export async function createChosenEngine(backend: BackendChoice, engine: EngineName): Promise<TrainingEngine> {
  if (engine === 'tfjs') return createTrainingEngine(backend);
  const [{ OnnxEngine }, { onnxEngineSampler }] = await Promise.all([
    import('./engine/onnxruntime/onnxEngine'),
    import('./onnx/onnxEngineSampler'),
  ]);
  // The ONNX Runtime engine probes its execution provider here (RLHF_LENS_ORT_PROVIDER; ortProvider.ts).
  return OnnxEngine.create(onnxEngineSampler);
}

/** The compute backend a run records (run.json's `backend`), logs and shows (the status bar), and why. */
export interface RunBackend {
  readonly name: string;
  readonly reason: string;
  /** The GPU adapter, on a GPU backend (tfjs's webgpu, ONNX Runtime's webgpu provider). */
  readonly adapter?: AdapterNaming;
}

/**
 * What the engine computes on: ONNX Runtime names its own (its execution provider, with the threads in the
 * reason); tfjs runs on the TensorFlow.js backend the pipeline selected.
 */
export function runBackend(engine: TrainingEngine, tfjsBackend: BackendChoice): RunBackend {
  if (engine.backendReason !== undefined) {
    const adapter = engine.backendAdapter;
    return { name: engine.backend, reason: engine.backendReason, ...(adapter ? { adapter } : {}) };
  }
  const { adapter } = tfjsBackend;
  return {
    name: tfjsBackend.name,
    reason: tfjsBackend.reason,
    ...(adapter ? { adapter: { line: formatAdapter(adapter), label: adapterLabel(adapter) } } : {}),
  };
}

export const createRolloutEngine: RolloutEngineFactory = async (kind, models) => {
  if (kind === 'onnx') {
    const { OnnxRolloutEngine } = await import('./onnx/onnxRolloutEngine');
    return OnnxRolloutEngine.create(models);
  }
  return engineRolloutEngine(models);
};
