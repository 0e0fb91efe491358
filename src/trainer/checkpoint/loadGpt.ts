/**
 * Loads a checkpoint straight into a tfjs Gpt, for tfjs-only tools (ONNX export and rollouts, the
 * sampler, benchmarks). Stages load through the seam instead (checkpoint/modelLoading.ts).
 */
import type { CheckpointContents } from './checkpoint';
import { gptConfigOf, readModelSource } from './modelLoading';
import type { ScalarHead } from '../model/gptConfig';
import { Gpt } from '../engine/tfjs/gpt';

export interface LoadedGpt {
  readonly model: Gpt;
  readonly checkpoint: CheckpointContents;
}

/**
 * A checkpoint as a Gpt with `heads`; a head the checkpoint lacks starts fresh (seeded). A LoRA stage's checkpoint
 * is read with its base and merged.
 */
export async function loadModel(dir: string, heads: readonly ScalarHead[], seed: number): Promise<LoadedGpt> {
  const checkpoint = await readModelSource(dir, { seed });
  const model = Gpt.fromWeights(gptConfigOf(checkpoint.config), heads, checkpoint.weights, {
    keepMissingHeads: true,
    seed,
  });
  return { model, checkpoint };
}
