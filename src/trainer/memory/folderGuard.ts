/**
 * The memory guard of a stage whose model comes from a folder — the run's `model.from`, or a checkpoint or Hugging
 * Face folder a stage names (init_from, policy) — checked from the folder's config.json alone, before any weight is
 * read: a Llama-3.2-1B folder on wasm is refused in milliseconds with the figures and what would fit (modelFits.ts),
 * not after minutes of reading 5 GB of tensors.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RunConfig, StageConfig } from '../../shared/runConfig';
import type { UserErrorDetails } from '../../shared/userError';
import { readCheckpointConfig } from '../checkpoint/checkpointConfig';
import { parseHfConfig } from '../hf/hfConfig';
import { loraSettingsOf } from '../lora/loraTargets';
import { isLlamaConfig, llamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import { gptConfigOfGpt2 } from '../model/gpt2Config';
import type { MemoryTarget } from './memoryBudget';
import { checkModelFits } from './modelFits';
import type { StageKind } from './modelMemory';
import { stageBatchShape } from './stageMemory';

/** The stage (or path) a stage's model comes from: its policy, or the checkpoint it starts from. */
export function modelSource(stage: StageConfig): string | undefined {
  switch (stage.type) {
    case 'sft':
      return stage.init_from === 'scratch' ? undefined : stage.init_from;
    case 'reward':
      return stage.init_from;
    default:
      return stage.policy;
  }
}

/**
 * The folder stage `stageIndex`'s model is read from, following earlier stages back to the first: a folder a stage
 * names, or the run's `model.from` under an SFT from scratch; undefined for our GPT built from the config.
 */
export function stageModelFolder(config: RunConfig, stageIndex: number, configDir: string): string | undefined {
  const names = config.stages.map((stage) => stage.name ?? stage.type);
  let index = stageIndex;
  for (let hops = 0; hops <= config.stages.length; hops++) {
    const stage = config.stages[index];
    const source = stage.type === 'preferences' ? stage.policy : modelSource(stage);
    if (source === undefined)
      return config.model.from === undefined ? undefined : path.resolve(configDir, config.model.from);
    const earlier = names.indexOf(source);
    if (earlier >= 0 && earlier < index) {
      index = earlier;
      continue;
    }
    return path.resolve(configDir, source);
  }
  return undefined;
}

/**
 * The architecture in `folder`'s config.json as the stage will build it (context capped at `blockSize`), or
 * undefined when there is no config.json yet (an earlier stage writes it; the stage's own loading says what is wrong).
 */
export function folderModelConfig(folder: string, blockSize: number | undefined): CausalLmConfig | undefined {
  const file = path.join(folder, 'config.json');
  if (!existsSync(file)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // readHfConfig names the file and what is wrong with it when the stage loads it
  }
  const lens = typeof json === 'object' && json !== null && 'rlhf_lens' in json;
  if (lens || (json as { model_type?: unknown }).model_type === 'rlhf-lens-gpt')
    return readCheckpointConfig(json, file).model;
  const architecture = parseHfConfig(json, file);
  return architecture.family === 'gpt2'
    ? gptConfigOfGpt2(architecture, file, { blockSize })
    : llamaConfig(architecture, { blockSize });
}

/**
 * Checks stage `stageIndex` against the memory of `target` when its model comes from a folder: true when it did
 * (it fits), false when the stage's model is the config's own GPT; a UserError with the figures when it cannot fit.
 */
export function assertFolderStageFits(
  config: RunConfig,
  stageIndex: number,
  target: MemoryTarget,
  options: { configDir: string; freeBytes?: number; details?: UserErrorDetails },
): boolean {
  const stage = config.stages[stageIndex];
  const folder = stageModelFolder(config, stageIndex, options.configDir);
  if (folder === undefined) return false;
  const model = folderModelConfig(folder, config.model.block_size);
  if (model === undefined) return false;
  const { field, batch } = stageBatchShape(stage, config);
  const lora = 'lora' in stage && stage.lora ? stage.lora : undefined;
  const modelType = isLlamaConfig(model) ? model.architecture.modelType : 'gpt2';
  checkModelFits(
    {
      config: model,
      ...(lora && { lora: loraSettingsOf(lora, modelType) }),
      stage: stage.type as StageKind,
      batchSize: batch,
      blockSize: Math.min(model.block_size, config.model.block_size ?? model.block_size),
      engine: target === 'onnxruntime' ? 'onnxruntime' : 'tfjs',
      backend: target === 'onnxruntime' ? 'cpu' : target,
      freeBytes: options.freeBytes,
    },
    {
      details: { ...options.details, field: `stages[${stageIndex}]`, file: options.details?.file ?? folder },
      batchField: field,
    },
  );
  return true;
}
