/**
 * Where the trainer's engine is made: the one place that knows which TrainingEngine implementations
 * exist. The tfjs engine gets the KV-cache sampler here (sampling/ imports the engine's Gpt, so the
 * engine cannot import sampling/ itself). A second engine is a second branch here and a folder beside
 * engine/tfjs/; no algorithm changes.
 */
import type { TrainingEngine } from './engine/engine';
import type { BackendChoice } from './engine/tfjs/backend';
import { TfjsEngine } from './engine/tfjs/tfjsEngine';
import { generate } from './sampling/sampler';

export function createTrainingEngine(backend: BackendChoice): TrainingEngine {
  return new TfjsEngine(backend, generate);
}
