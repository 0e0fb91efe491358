/**
 * The pipeline's entry point: a run config's stage checked against the memory of the engine and backend it runs on,
 * before any run folder is written, with the model's shape from the config or from the checkpoint it starts from.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BackendName } from '../../shared/backendNames';
import type { ModelConfig, RunConfig } from '../../shared/runConfig';
import { UserError } from '../../shared/userError';
import { memoryBudget, type MemoryTarget } from './memoryBudget';
import type { ModelShape } from './modelSize';
import { checkStageMemory } from './stageMemory';
import { assertFolderStageFits, modelSource } from './folderGuard';

/** A config's model shape (the tokenizer's vocabulary is at most vocab_size). */
export function configShape(model: ModelConfig, vocabSize: number): ModelShape {
  return {
    n_layer: model.n_layer,
    n_head: model.n_head,
    n_embd: model.n_embd,
    block_size: model.block_size,
    vocab_size: vocabSize,
  };
}

/** Throws a UserError when stage `stageIndex` cannot fit the memory of `target` (see checkStageMemory). */
export function assertStageFits(
  config: RunConfig,
  stageIndex: number,
  target: MemoryTarget,
  options: {
    configDir?: string;
    freeBytes?: number;
    locate?: (at: (string | number)[]) => { file: string; line?: number; column?: number };
  } = {},
): void {
  // A resumed run's config comes from its run.json; when that lacks the model's shape, the run
  // folder's validator reports it, not this guard.
  const { model, tokenizer } = (config ?? {}) as Partial<RunConfig>;
  if (!config.stages?.[stageIndex] || !model) return;
  const configDir = options.configDir ?? process.cwd();
  // A model read from a folder (model.from, a checkpoint or Hugging Face folder a stage names): its config.json's
  // architecture, before any weight is read.
  const at = ['stages', stageIndex];
  const details = { ...options.locate?.(at), field: formatField(at) };
  if (assertFolderStageFits(config, stageIndex, target, { configDir, freeBytes: options.freeBytes, details })) return;
  if (typeof model.n_layer !== 'number' || typeof tokenizer?.vocab_size !== 'number') return;
  const shape = stageModelShape(config, stageIndex, (reference) =>
    readCheckpointShape(path.resolve(configDir, reference)),
  );
  const refusal = checkStageMemory(config, stageIndex, shape, memoryBudget(target, options.freeBytes));
  if (refusal)
    throw new UserError(refusal.message, {
      ...options.locate?.(refusal.path),
      field: formatField(refusal.path),
      hint: refusal.hint,
    });
}

function readCheckpointShape(dir: string): Partial<ModelShape> | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Partial<ModelShape>;
  } catch {
    return undefined; // not a checkpoint (yet): the config's shape stands; the stage's own checks say what is wrong
  }
}

/**
 * The backend "auto" will most likely pick, for checking a config before the backend starts: a
 * native tfjs package when one is installed, else wasm. Each stage is checked again against the
 * backend actually chosen.
 */
export function likelyBackend(requested: BackendName | 'auto'): BackendName {
  if (requested !== 'auto') return requested;
  for (const [packageName, backend] of [
    ['@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu'],
    ['@tensorflow/tfjs-node', 'tfjs-node'],
  ] as const) {
    try {
      require.resolve(packageName);
      return backend;
    } catch {
      // not installed
    }
  }
  return 'wasm';
}

export function formatField(at: readonly (string | number)[]): string {
  return at.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value > 0;
const isShape = (shape: Partial<ModelShape>): shape is ModelShape =>
  Object.values(shape).every((value) => isPositiveInteger(value));

/**
 * The shape of the model stage `stageIndex` trains or samples: the config's, unless it comes (through
 * earlier stages) from a checkpoint folder, whose config.json has the shape.
 */
export function stageModelShape(
  config: RunConfig,
  stageIndex: number,
  checkpointConfig: (reference: string) => Partial<ModelShape> | undefined,
): ModelShape {
  const base = configShape(config.model, config.tokenizer.vocab_size);
  const names = config.stages.map((stage) => stage.name ?? stage.type);
  let index = stageIndex;
  for (let hops = 0; hops < config.stages.length; hops++) {
    const source = modelSource(config.stages[index]);
    if (source === undefined) return base;
    const earlier = names.indexOf(source);
    if (earlier >= 0 && earlier < index) {
      index = earlier;
      continue;
    }
    const found = checkpointConfig(source);
    if (!found) return base;
    const shape = {
      n_layer: found.n_layer,
      n_head: found.n_head,
      n_embd: found.n_embd,
      block_size: found.block_size,
      vocab_size: found.vocab_size,
    };
    return isShape(shape) ? shape : base;
  }
  return base;
}
