/**
 * Where the trainer's engines are made: the one place that knows which implementations exist. The
 * tfjs training engine gets the KV-cache sampler here (sampling/ imports the engine's Gpt, so the
 * engine cannot import sampling/ itself). PPO's rollout engine is the training engine or ONNX Runtime
 * (imported on demand, so a tfjs-only run never loads onnxruntime's native binding). A second training
 * engine is a second branch here and a folder beside engine/tfjs/; no algorithm changes.
 */
import type { TrainingEngine } from './engine/engine';
import type { BackendChoice } from './engine/tfjs/backend';
import { TfjsEngine } from './engine/tfjs/tfjsEngine';
import { engineRolloutEngine } from './rollout/engineRollout';
import type { RolloutEngineFactory } from './rollout/rolloutEngine';
import { generate } from './sampling/sampler';

export function createTrainingEngine(backend: BackendChoice): TrainingEngine {
  return new TfjsEngine(backend, generate);
}

export const createRolloutEngine: RolloutEngineFactory = async (kind, models) => {
  if (kind === 'onnx') {
    const { OnnxRolloutEngine } = await import('./onnx/onnxRolloutEngine');
    return OnnxRolloutEngine.create(models);
  }
  return engineRolloutEngine(models);
};
