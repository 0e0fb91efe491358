/**
 * The checkpoint of a stage that trains LoRA adapters: a PEFT adapter folder, never a copy of the base weights.
 *   adapter_config.json, adapter_model.safetensors   PEFT's files (lora/peftAdapter.ts); a reward model's score head
 *                                                    as modules_to_save, in adapter_model.safetensors
 *   model.safetensors                                a policy's value head only, where TRL keeps it beside the adapter
 *   optimizer.safetensors                            AdamW's moments of what trains: the adapters and the heads
 *   config.json, generation_config.json              the base architecture and `rlhf_lens` (heads, context,
 *                                                    tokenizer, `lora_base`), read by this project
 *   trainer_state.json, the tokenizer's files
 *
 * Where the base is. adapter_config.json's `base_model_name_or_path` is the base folder's ABSOLUTE path, as PEFT
 * resolves it (from the working directory, not the adapter's folder), so `PeftModel.from_pretrained` finds it from
 * anywhere. config.json's `rlhf_lens.lora_base` is the same folder RELATIVE to the checkpoint, so a run folder that
 * moves together with its base (a base that is an earlier stage's checkpoint of the same run, or a model folder
 * beside the runs) still loads. The loader tries the relative path first, then the absolute one.
 *
 * A base that is itself a LoRA checkpoint (a reward model or PPO policy trained with LoRA on an SFT LoRA checkpoint)
 * is read merged (loraSource in modelLoading.ts): the later stage trained its adapters on W₀ + (α/r)·B₁A₁. LoRA is
 * additive, so transformers reaches the same weights by loading the SFT folder (its base with its adapter) and the
 * later adapter on top, or by merge_and_unload of the SFT adapter first.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../../shared/isRecord';
import { writeFileDurable, writeFolderDurable, writeJsonDurable } from '../../shared/durableWrite';
import { checkTrainerState } from '../../shared/runFiles';
import type { NamedArrays } from '../engine/engine';
import { adapterWeightsFile, readAdapterFolder, writeAdapterFiles } from '../lora/peftAdapter';
import { adapterConfigFile } from '../lora/peftConfig';
import { isLoraWeight, type LoraSettings } from '../lora/loraTargets';
import {
  assertFinite,
  loadCheckpointTokenizer,
  optimizerFileBytes,
  readJsonFile,
  readOptimizerFile,
  type CheckpointContents,
} from './checkpoint';
import { checkpointConfigJson, generationConfigJson, readCheckpointConfig } from './checkpointConfig';

export interface LoraCheckpointContents extends CheckpointContents {
  readonly lora: { readonly settings: LoraSettings; readonly base: string };
}

/** The key of config.json's `rlhf_lens` that marks a LoRA stage's checkpoint and names its base. */
export const loraBaseKey = 'lora_base';

/** True when `dir` is a LoRA stage's checkpoint: a PEFT adapter with config.json's `rlhf_lens.lora_base`. */
export function isLoraCheckpoint(dir: string): boolean {
  if (!existsSync(path.join(dir, adapterConfigFile))) return false;
  try {
    const json: unknown = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    return isRecord(json) && isRecord(json.rlhf_lens) && typeof json.rlhf_lens[loraBaseKey] === 'string';
  } catch {
    return false; // not ours: loadCheckpoint names the file and what is wrong with it
  }
}

/** Writes a LoRA stage's checkpoint `dir` (one durable folder): its adapters, heads and optimizer, not the base. */
export async function saveLoraCheckpoint(dir: string, contents: LoraCheckpointContents): Promise<void> {
  const { config, optimizer, lora } = contents;
  const trained: NamedArrays = new Map([...contents.weights].filter(([name]) => isTrainedWeight(name)));
  const advice =
    'the checkpoint was not written. Training diverged: try a lower learning_rate or max_grad_norm, ' +
    'and resume from the last checkpoint.';
  assertFinite(trained, 'weight', path.join(dir, adapterWeightsFile), advice);
  if (optimizer) assertFinite(optimizer.moments, 'optimizer state', path.join(dir, 'optimizer.safetensors'), advice);
  const base = path.resolve(lora.base);
  await writeFolderDurable(dir, async (folder) => {
    writeAdapterFiles(folder, {
      config: config.model,
      settings: lora.settings,
      taskType: config.heads.includes('score') ? 'SEQ_CLS' : 'CAUSAL_LM',
      baseModelNameOrPath: base,
      weights: trained,
    });
    if (optimizer) writeFileDurable(path.join(folder, 'optimizer.safetensors'), optimizerFileBytes(optimizer));
    const json = checkpointConfigJson(config);
    const lens = json.rlhf_lens as Record<string, unknown>;
    writeJsonDurable(path.join(folder, 'config.json'), {
      ...json,
      rlhf_lens: { ...lens, [loraBaseKey]: path.relative(path.resolve(dir), base) },
    });
    writeJsonDurable(path.join(folder, 'generation_config.json'), generationConfigJson(config));
    writeJsonDurable(path.join(folder, 'trainer_state.json'), contents.trainerState);
    await contents.tokenizer.save(folder, { modelMaxLength: config.model.block_size });
  });
}

/** Adapters and heads: what a LoRA stage trains and its checkpoint holds. */
const isTrainedWeight = (name: string) => isLoraWeight(name) || /^(?:v_head|score)\.(?:weight|bias)$/.test(name);

/**
 * Reads LoRA checkpoint `dir` unmerged: the base model's weights (through `readBase`, which merges a base that is
 * itself a LoRA checkpoint), the adapters and heads on top, the optimizer and trainer state, the tokenizer.
 */
export async function loadLoraCheckpoint(
  dir: string,
  readBase: (folder: string, blockSize: number) => Promise<CheckpointContents>,
): Promise<LoraCheckpointContents> {
  const configFile = path.join(dir, 'config.json');
  if (!existsSync(configFile)) throw new Error(`${dir} is not a checkpoint: config.json is missing.`);
  const json = readJsonFile(configFile);
  const config = readCheckpointConfig(json, configFile);
  const adapter = readAdapterFolder(dir, config.model);
  const base = baseFolder(dir, json, adapter.baseModelNameOrPath);
  const baseContents = await readBase(base, config.model.block_size);
  const weights: NamedArrays = new Map(
    [...baseContents.weights].filter(([name]) => !/^(?:v_head|score)\.(?:weight|bias)$/.test(name)),
  );
  for (const [name, tensor] of adapter.adapters) weights.set(name, tensor);
  for (const [name, tensor] of adapter.heads) weights.set(name, tensor);
  const stateFile = path.join(dir, 'trainer_state.json');
  if (!existsSync(stateFile)) throw new Error(`${dir} is not a checkpoint: trainer_state.json is missing.`);
  return {
    config,
    weights,
    optimizer: readOptimizerFile(path.join(dir, 'optimizer.safetensors'), false),
    trainerState: checkTrainerState(readJsonFile(stateFile), stateFile),
    tokenizer: await loadCheckpointTokenizer(dir, config),
    lora: { settings: adapter.settings, base },
  };
}

/** The base folder of checkpoint `dir`: `rlhf_lens.lora_base` relative to it, else the adapter's absolute path. */
function baseFolder(dir: string, json: unknown, absolute: string | null): string {
  const lens = isRecord(json) ? json.rlhf_lens : undefined;
  const relative = isRecord(lens) && typeof lens[loraBaseKey] === 'string' ? lens[loraBaseKey] : undefined;
  const candidates = [
    ...(relative === undefined ? [] : [path.resolve(dir, relative)]),
    ...(absolute === null ? [] : [path.resolve(absolute)]),
  ];
  const found = candidates.find((candidate) => existsSync(path.join(candidate, 'config.json')));
  if (found === undefined) {
    const lensBase = relative === undefined ? '' : `, config.json's rlhf_lens.lora_base ${JSON.stringify(relative)}`;
    throw new Error(
      `${path.join(dir, adapterConfigFile)}: the base model (base_model_name_or_path ${JSON.stringify(absolute)}` +
        `${lensBase}) is not there; put the base model folder back or edit the path.`,
    );
  }
  return found;
}
