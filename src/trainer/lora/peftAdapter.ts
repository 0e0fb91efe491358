/**
 * A LoRA run's adapters as the folder PEFT's `PeftModel.save_pretrained` writes, which `PeftModel.from_pretrained`
 * (and TRL) load onto the base model:
 *   adapter_config.json        peftConfig.ts
 *   adapter_model.safetensors  F32, metadata {"format": "pt"}; names as get_peft_model_state_dict saves them, the
 *                              adapter name ("default") removed: `base_model.model.<module>.lora_A.weight` [r, in],
 *                              `…lora_B.weight` [out, r]; a reward model's head (modules_to_save) as
 *                              `base_model.model.score.weight` [1, C], transformers' Linear(C, 1, bias=False)
 *   model.safetensors          a policy's value head only, as TRL's AutoModelForCausalLMWithValueHead keeps it
 *                              next to a PEFT adapter (its state_dict holds v_head alone when the model is a
 *                              PeftModel, and from_pretrained reads it back from model.safetensors):
 *                              `v_head.summary.weight` [1, C], `v_head.summary.bias` [1]
 * transformers' score head has no bias; the trainer's `score.bias` (a constant shift, moved by reward centering)
 * travels in adapter_model.safetensors' metadata as `rlhf_lens_score_bias`, which PEFT ignores.
 *
 * Inside the trainer the same tensors carry the engine's names (loraTargets.ts; heads `v_head.weight` [C, 1],
 * `v_head.bias` [1], `score.weight` [C, 1], `score.bias` [1]).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable, writeFolderDurable } from '../../shared/durableWrite';
import {
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  tensorFromBytes,
  tensorToFloat32,
  type SafetensorsFile,
  type SafetensorsTensor,
} from '../../shared/safetensors';
import type { CausalLmConfig } from '../model/causalLmConfig';
import { isLlamaConfig } from '../model/causalLmConfig';
import { loraAName, loraBName, loraTargets, type LoraSettings, type LoraTarget, type NamedArrays } from './loraTargets';
import {
  adapterConfigFile,
  adapterConfigText,
  parseAdapterConfig,
  type AdapterConfigInput,
  type PeftTaskType,
} from './peftConfig';

export const adapterWeightsFile = 'adapter_model.safetensors';
/** Where TRL keeps a PEFT policy's value head, beside the adapter. */
export const valueHeadFile = 'model.safetensors';
/** PeftModel → LoraModel (`base_model`) → the transformers model (`model`): the prefix of every saved name. */
export const peftPrefix = 'base_model.model.';
export const scoreBiasMetadataKey = 'rlhf_lens_score_bias';
const torchMetadata = { format: 'pt' } as const;
/** The 8-byte little-endian header size that starts a safetensors file. */
const safetensorsSizeBytes = 8;

/** Engine names of the heads, and their names in the files. */
const engineHead = {
  vWeight: 'v_head.weight',
  vBias: 'v_head.bias',
  scoreWeight: 'score.weight',
  scoreBias: 'score.bias',
};
const fileHead = {
  vWeight: 'v_head.summary.weight',
  vBias: 'v_head.summary.bias',
  scoreWeight: `${peftPrefix}score.weight`,
};

export interface AdapterFolderInput extends AdapterConfigInput {
  /** The engine's weights: every target's adapters, and the heads (base weights, if present, are not written). */
  readonly weights: NamedArrays;
}

/** Writes the adapter's files into the existing folder `dir` (each file whole or not at all); returns their names. */
export function writeAdapterFiles(dir: string, input: AdapterFolderInput): string[] {
  const { config, settings, taskType, weights } = input;
  const hidden = hiddenSize(config);
  const withValueHead = taskType === 'CAUSAL_LM' && weights.has(engineHead.vWeight);
  // TRL's file name is a model folder's weights file too: never replace a model's weights with a value head.
  if (withValueHead && existsSync(path.join(dir, valueHeadFile)))
    throw new Error(
      `${path.join(dir, valueHeadFile)} exists: TRL keeps a PEFT policy's value head under that name, so the ` +
        'adapter of a policy with a value head needs a folder of its own, not a model (or checkpoint) folder',
    );
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const t of loraTargets(config, settings)) {
    tensors[peftPrefix + loraAName(t.module)] = f32(weightOf(weights, loraAName(t.module), [settings.r, t.inFeatures]));
    tensors[peftPrefix + loraBName(t.module)] = f32(
      weightOf(weights, loraBName(t.module), [t.outFeatures, settings.r]),
    );
  }
  const metadata: Record<string, string> = { ...torchMetadata };
  if (taskType === 'SEQ_CLS') {
    tensors[fileHead.scoreWeight] = {
      dtype: 'F32',
      shape: [1, hidden],
      data: weightOf(weights, engineHead.scoreWeight, [hidden, 1]).data,
    };
    const bias = weights.get(engineHead.scoreBias)?.data[0] ?? 0;
    metadata[scoreBiasMetadataKey] = String(bias);
  }
  writeFileDurable(path.join(dir, adapterConfigFile), adapterConfigText(input));
  writeFileDurable(path.join(dir, adapterWeightsFile), encodeSafetensors(tensors, metadata));
  const written = [adapterConfigFile, adapterWeightsFile];
  if (withValueHead) {
    const valueHead: Record<string, SafetensorsTensor> = {
      [fileHead.vWeight]: {
        dtype: 'F32',
        shape: [1, hidden],
        data: weightOf(weights, engineHead.vWeight, [hidden, 1]).data,
      },
      [fileHead.vBias]: f32(weightOf(weights, engineHead.vBias, [1])),
    };
    writeFileDurable(path.join(dir, valueHeadFile), encodeSafetensors(valueHead, { ...torchMetadata }));
    written.push(valueHeadFile);
  }
  return written;
}

/** The adapter folder `folder`, made whole or not at all (a previous one is replaced). */
export async function writeAdapterFolder(folder: string, input: AdapterFolderInput): Promise<void> {
  await writeFolderDurable(folder, (temporary) => void writeAdapterFiles(temporary, input));
}

/** A PEFT LoRA folder read and checked against the base model's architecture, under the engine's names. */
export interface AdapterFolder {
  readonly settings: LoraSettings;
  readonly taskType: PeftTaskType;
  readonly baseModelNameOrPath: string | null;
  readonly targets: readonly LoraTarget[];
  /** `<module>.lora_A.weight` [r, in] and `<module>.lora_B.weight` [out, r] for every target. */
  readonly adapters: NamedArrays;
  /** `score.weight` [C, 1] and `score.bias` [1] (SEQ_CLS); `v_head.weight`, `v_head.bias` when saved (CAUSAL_LM). */
  readonly heads: NamedArrays;
}

/** Reads `folder` as a LoRA adapter of a model of `config`; errors name the file and the field or tensor. */
export function readAdapterFolder(folder: string, config: CausalLmConfig): AdapterFolder {
  const configPath = path.join(folder, adapterConfigFile);
  if (!existsSync(configPath))
    throw new Error(`${folder}: no ${adapterConfigFile}, so not a PEFT adapter folder (save_pretrained writes one)`);
  const parsed = parseAdapterConfig(readFileSync(configPath, 'utf8'), configPath, config);
  const { settings, taskType } = parsed;
  let targets: LoraTarget[];
  try {
    targets = loraTargets(config, settings);
  } catch (error) {
    throw new Error(`${configPath}: field "target_modules": ${(error as Error).message}`);
  }
  const weightsPath = path.join(folder, adapterWeightsFile);
  const file = readSafetensors(weightsPath);
  const remaining = new Set(Object.keys(file.tensors));
  const take = (name: string, shape: readonly number[]) => {
    const tensor = file.tensors[name];
    if (tensor === undefined) throw new Error(`${weightsPath}: tensor "${name}" is missing`);
    if (tensor.shape.join(',') !== shape.join(','))
      throw new Error(
        `${weightsPath}: tensor "${name}" has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`,
      );
    remaining.delete(name);
    return floats(weightsPath, name, tensor);
  };

  const adapters: NamedArrays = new Map();
  for (const t of targets) {
    adapters.set(loraAName(t.module), {
      shape: [settings.r, t.inFeatures],
      data: take(peftPrefix + loraAName(t.module), [settings.r, t.inFeatures]),
    });
    adapters.set(loraBName(t.module), {
      shape: [t.outFeatures, settings.r],
      data: take(peftPrefix + loraBName(t.module), [t.outFeatures, settings.r]),
    });
  }
  const hidden = hiddenSize(config);
  const heads: NamedArrays = new Map();
  if (taskType === 'SEQ_CLS') {
    heads.set(engineHead.scoreWeight, { shape: [hidden, 1], data: take(fileHead.scoreWeight, [1, hidden]) });
    heads.set(engineHead.scoreBias, { shape: [1], data: Float32Array.of(scoreBias(weightsPath, file.metadata)) });
  }
  if (remaining.size > 0)
    throw new Error(
      `${weightsPath}: tensor "${[...remaining][0]}" belongs to no module the adapter_config.json targets ` +
        `(${remaining.size} such tensor(s))`,
    );
  if (taskType === 'CAUSAL_LM')
    for (const [name, head] of readValueHead(path.join(folder, valueHeadFile), hidden)) heads.set(name, head);
  return { settings, taskType, baseModelNameOrPath: parsed.baseModelNameOrPath, targets, adapters, heads };
}

/**
 * TRL's value head from `file` (model.safetensors beside the adapter), under the engine's names; nothing when the
 * file is absent or holds no `v_head.summary.*` (then it is a model's weights, e.g. a checkpoint's, not TRL's file).
 * Only the header and the two head tensors are read.
 */
function readValueHead(file: string, hidden: number): NamedArrays {
  const heads: NamedArrays = new Map();
  if (!existsSync(file)) return heads;
  const descriptor = openSync(file, 'r');
  try {
    const fileLength = fstatSync(descriptor).size;
    const sizeBytes = new Uint8Array(safetensorsSizeBytes);
    readSync(descriptor, sizeBytes, 0, sizeBytes.length, 0);
    const headerBytes = new Uint8Array(safetensorsSizeBytes + safetensorsHeaderSize(sizeBytes));
    readSync(descriptor, headerBytes, 0, headerBytes.length, 0);
    const header = parseSafetensorsHeader(headerBytes, fileLength);
    const byName = new Map(header.tensors.map((info) => [info.name, info]));
    if (!byName.has(fileHead.vWeight) && !byName.has(fileHead.vBias)) return heads;
    for (const [name, shape, engineName, engineShape] of [
      [fileHead.vWeight, [1, hidden], engineHead.vWeight, [hidden, 1]],
      [fileHead.vBias, [1], engineHead.vBias, [1]],
    ] as const) {
      const info = byName.get(name);
      if (info === undefined) throw new Error(`tensor "${name}" (TRL's value head) is missing`);
      if (info.shape.join(',') !== shape.join(','))
        throw new Error(`tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`);
      const raw = new Uint8Array(info.end - info.begin);
      readSync(descriptor, raw, 0, raw.length, header.dataStart + info.begin);
      heads.set(engineName, { shape: [...engineShape], data: tensorToFloat32(name, tensorFromBytes(info, raw, true)) });
    }
    return heads;
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  } finally {
    closeSync(descriptor);
  }
}

function readSafetensors(file: string): SafetensorsFile {
  if (!existsSync(file)) throw new Error(`${file}: missing (a PEFT adapter folder holds its tensors there)`);
  try {
    return decodeSafetensors(new Uint8Array(readFileSync(file)));
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

function floats(file: string, name: string, tensor: SafetensorsTensor): Float32Array {
  try {
    return tensorToFloat32(name, tensor);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

function scoreBias(file: string, metadata: Record<string, string>): number {
  const text = metadata[scoreBiasMetadataKey];
  if (text === undefined) return 0; // PEFT's own files: transformers' score head has no bias
  const value = Number(text);
  if (!Number.isFinite(value))
    throw new Error(`${file}: metadata "${scoreBiasMetadataKey}" must be a finite number, got ${JSON.stringify(text)}`);
  return value;
}

const hiddenSize = (config: CausalLmConfig) => (isLlamaConfig(config) ? config.architecture.hiddenSize : config.n_embd);

const f32 = (tensor: { shape: number[]; data: Float32Array }): SafetensorsTensor => ({
  dtype: 'F32',
  shape: [...tensor.shape],
  data: tensor.data,
});

/** The engine's tensor `name`, checked to have `shape` before it is written. */
function weightOf(
  weights: NamedArrays,
  name: string,
  shape: readonly number[],
): { shape: number[]; data: Float32Array } {
  const tensor = weights.get(name);
  if (tensor === undefined) throw new Error(`cannot write the PEFT adapter: the weight "${name}" is missing`);
  const elements = shape.reduce((product, size) => product * size, 1);
  if (tensor.shape.join(',') !== shape.join(',') || tensor.data.length !== elements)
    throw new Error(
      `cannot write the PEFT adapter: "${name}" has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`,
    );
  return tensor;
}
