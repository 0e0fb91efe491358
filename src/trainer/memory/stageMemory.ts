/**
 * A run config's stage, estimated for our GPT's shape (the run config's model, or the checkpoint it starts from),
 * and refused with the largest batch (or model) that fits.
 */
import type { EngineName } from '../../shared/backendNames';
import type { RunConfig, StageConfig } from '../../shared/runConfig';
import { bytesPerFloat, inferenceActivationBytes, kvCacheBytes, trainingActivationBytes } from './activations';
import { baseBytes, formatBytes, largest, type MemoryBudget } from './memoryBudget';
import { parameterCount, shapeDims, type ModelShape } from './modelSize';

export interface MemoryEstimate {
  readonly bytes: number;
  /** What the bytes are, for the message and the tests. */
  readonly parts: Readonly<Record<string, number>>;
  /** The setting that scales the activations, and its value. */
  readonly batchField?: string;
  readonly batch: number;
}

/** Sequences one step trains (with gradients) and runs without gradients (sampling, scoring). */
export interface StageSequences {
  readonly train: number;
  readonly inference: number;
}

/** Sequences per step for a batch setting of `b`, and the setting's name, by stage type. */
export function stageBatchShape(
  stage: StageConfig,
  config: RunConfig,
): { field?: string; batch: number; sequences: (b: number) => StageSequences } {
  switch (stage.type) {
    case 'sft':
      return {
        field: 'per_device_train_batch_size',
        batch: stage.per_device_train_batch_size,
        sequences: (b) => ({ train: b, inference: 0 }),
      };
    case 'preferences':
      // Prompts are sampled 16 at a time (preferencesStage.ts), K completions each.
      return { batch: 16, sequences: () => ({ train: 0, inference: 16 * stage.completions_per_prompt }) };
    case 'reward': {
      // A step scores every completion of each judgment: K of the preferences stage it reads (4 when it reads a file).
      const source = config.stages.find((other) => (other.name ?? other.type) === stage.preferences);
      const completions = source?.type === 'preferences' ? source.completions_per_prompt : 4;
      return {
        field: 'per_device_train_batch_size',
        batch: stage.per_device_train_batch_size,
        sequences: (b) => ({ train: b * completions, inference: 0 }),
      };
    }
    case 'ppo':
      // Rollouts of the whole batch without gradients; updates on minibatches.
      return {
        field: 'batch_size',
        batch: stage.batch_size,
        sequences: (b) => ({
          train: Math.ceil(b / stage.num_mini_batches) * (stage.ptx_coef > 0 ? 2 : 1),
          inference: b,
        }),
      };
    case 'dpo':
      return {
        field: 'per_device_train_batch_size',
        batch: stage.per_device_train_batch_size,
        sequences: (b) => ({ train: 2 * b, inference: 2 * b }),
      };
  }
}

/** Models a stage holds: trained (4 copies: weights, gradients, two AdamW moments) and frozen. */
function modelCopies(stage: StageConfig): { trained: number; frozen: number } {
  switch (stage.type) {
    case 'sft':
    case 'reward':
      return { trained: 1, frozen: 0 };
    case 'preferences':
      return { trained: 0, frozen: 1 };
    case 'ppo':
      return { trained: 1, frozen: 2 }; // the reference and the reward model
    case 'dpo':
      return { trained: 1, frozen: 1 }; // the reference
  }
}

export function estimateStageMemory(
  stage: StageConfig,
  config: RunConfig,
  shape: ModelShape,
  batch?: number,
  engine: EngineName = 'tfjs',
): MemoryEstimate {
  const { field, batch: configured, sequences } = stageBatchShape(stage, config);
  const b = batch ?? configured;
  const { train, inference } = sequences(b);
  const dims = shapeDims(shape);
  const parameters = parameterCount(shape) * bytesPerFloat;
  const { trained, frozen } = modelCopies(stage);
  const parts = {
    weights: parameters * (trained + frozen),
    'gradients and AdamW state': parameters * 3 * trained,
    activations: Math.max(
      trained > 0 ? trainingActivationBytes(dims, train, shape.block_size, engine) : 0,
      inferenceActivationBytes(dims, inference) + kvCacheBytes(dims, inference),
    ),
    runtime: baseBytes,
  };
  return { bytes: Object.values(parts).reduce((a, x) => a + x, 0), parts, batchField: field, batch: b };
}

export interface MemoryRefusal {
  /** Path of the setting to point at in the config. */
  readonly path: (string | number)[];
  readonly message: string;
  readonly hint: string;
  readonly estimate: MemoryEstimate;
}

/** "x 1 GiB, y 2 MiB": an estimate's parts for a message. */
export const describeParts = (parts: Readonly<Record<string, number>>) =>
  Object.entries(parts)
    .filter(([, bytes]) => bytes > 0)
    .map(([name, bytes]) => `${name} ${formatBytes(bytes)}`)
    .join(', ');

/** Why `stage` cannot fit `budget`, with the largest batch (or model) that does; undefined when it fits. */
export function checkStageMemory(
  config: RunConfig,
  stageIndex: number,
  shape: ModelShape,
  budget: MemoryBudget,
): MemoryRefusal | undefined {
  const stage = config.stages[stageIndex];
  const { engine } = budget;
  const estimate = estimateStageMemory(stage, config, shape, undefined, engine);
  if (estimate.bytes <= budget.bytes) return undefined;
  const parts = describeParts(estimate.parts);
  const message = `needs about ${formatBytes(estimate.bytes)} (${parts}), more than ${budget.what}`;
  const fitsBatch = (b: number) => estimateStageMemory(stage, config, shape, b, engine).bytes <= budget.bytes;
  // PPO's batch must stay a multiple of its minibatches.
  const smallestBatch = stage.type === 'ppo' ? Math.max(2, stage.num_mini_batches) : 1;
  if (estimate.batchField) {
    const batch = largest(estimate.batch, fitsBatch);
    const fitting = stage.type === 'ppo' ? batch - (batch % stage.num_mini_batches) : batch;
    if (fitting >= smallestBatch) {
      return {
        path: ['stages', stageIndex, estimate.batchField],
        message: `stage "${stage.name ?? stage.type}" ${message}`,
        hint: `the largest ${estimate.batchField} that fits is ${fitting}; lower it (or the model's size)`,
        estimate,
      };
    }
  }
  // Not even the smallest batch fits: the model is too big. The largest n_layer at this width, else a narrower width.
  const smallest = estimate.batchField ? smallestBatch : estimate.batch;
  const fitsShape = (changed: Partial<ModelShape>) =>
    estimateStageMemory(stage, config, { ...shape, ...changed }, smallest, engine).bytes <= budget.bytes;
  const layers = largest(shape.n_layer, (n) => fitsShape({ n_layer: n }));
  // fitsShape is monotone in block_size; the floor of 8 applies to the answer (false at 1 would stop the search).
  const context = largest(shape.block_size, (n) => fitsShape({ block_size: n }));
  const ways = [
    ...(layers > 0 ? [`n_layer ${layers} (at n_embd ${shape.n_embd}, block_size ${shape.block_size})`] : []),
    ...(context >= 8 ? [`block_size ${context} (at n_layer ${shape.n_layer})`] : []),
  ];
  const hint =
    ways.length > 0
      ? `even at the smallest batch the model is too big; what fits: ${ways.join(', or ')}`
      : `even one layer of width ${shape.n_embd} does not fit; lower n_embd`;
  return { path: ['model'], message: `stage "${stage.name ?? stage.type}" ${message}`, hint, estimate };
}
