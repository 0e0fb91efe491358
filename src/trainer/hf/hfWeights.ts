/**
 * The weights of a Hugging Face model folder: `model.safetensors`, or the shards that
 * `model.safetensors.index.json` maps each tensor to (`weight_map`, as `save_pretrained(max_shard_size=…)` writes
 * it). Opening reads only the headers and checks them against the architecture — every tensor it needs present
 * with its shape and a floating-point dtype, nothing unexpected — and names each problem with its file and tensor.
 * Tensors are read one at a time afterwards, F16 and BF16 widened to F32.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tensorToFloat32, type SafetensorsDtype, type SafetensorsTensorInfo } from '../../shared/safetensors';
import { isRecord } from '../../shared/isRecord';
import { quote, UserError, UserErrors, userErrorFromFileSystem } from '../../shared/userError';
import type { HfArchitecture } from './hfArchitecture';
import { basePrefix, expectedHfTensors, isUnusedHfTensor, lmHeadName, type HfTensorSpec } from './hfTensorNames';
import { openSafetensorsFile, type LazySafetensorsFile } from './safetensorsFile';

export const singleWeightsFile = 'model.safetensors';
export const shardIndexFile = 'model.safetensors.index.json';

/** The most problems one error lists; a wholly wrong model would otherwise print thousands of lines. */
const maxListedProblems = 20;
const floatDtypes: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64'];

export interface HfWeights {
  readonly folder: string;
  readonly architecture: HfArchitecture;
  /** The safetensors files read: one, or the shards in name order. */
  readonly files: readonly string[];
  /** Every tensor the model needs, under its causal-LM name (`transformer.h.0.…`, `model.layers.0.…`). */
  readonly tensors: readonly HfTensorSpec[];
  /** The dtype a needed tensor is stored in. */
  dtypeOf(name: string): SafetensorsDtype;
  /** A needed tensor's values, read from its file now, as F32. */
  read(name: string): Promise<Float32Array>;
}

/**
 * Weights already in memory (a trainer's model, a checkpoint's), named as transformers names them, as the HfWeights
 * graph builders read; `label` stands for the folder in errors.
 */
export function hfWeightsInMemory(
  architecture: HfArchitecture,
  weights: ReadonlyMap<string, { readonly data: Float32Array }>,
  label: string,
): HfWeights {
  return {
    folder: label,
    architecture,
    files: [],
    tensors: expectedHfTensors(architecture),
    dtypeOf: () => 'F32',
    read(name) {
      const value = weights.get(name);
      if (!value) return Promise.reject(new Error(`${label} has no "${name}"`));
      return Promise.resolve(value.data);
    },
  };
}

interface Located {
  shard: LazySafetensorsFile;
  info: SafetensorsTensorInfo;
}

/** Opens the weights of `folder` and checks them against `architecture` (see the file comment). */
export async function openHfWeights(folder: string, architecture: HfArchitecture): Promise<HfWeights> {
  const { shards, listedIn } = await openWeightFiles(folder);
  const byName = new Map<string, Located>();
  for (const shard of shards) for (const info of shard.header.tensors) byName.set(info.name, { shard, info });

  // GPT2LMHeadModel / LlamaForCausalLM save `transformer.` / `model.` names; the base model alone saves none.
  const prefix = basePrefix(architecture);
  const prefixed = [...byName.keys()].some((name) => name.startsWith(prefix));
  const canonical = (name: string) => (prefixed || name === lmHeadName ? name : `${prefix}${name}`);
  const fileName = (name: string) => (prefixed || name === lmHeadName ? name : name.slice(prefix.length));
  const located = new Map<string, Located>();
  for (const [name, place] of byName) located.set(canonical(name), place);

  const problems: string[] = [];
  const expected = expectedHfTensors(architecture);
  const expectedNames = new Set(expected.map((spec) => spec.name));
  for (const spec of expected) {
    const place = located.get(spec.name);
    if (place === undefined) {
      problems.push(`${listedIn}: tensor "${fileName(spec.name)}" is missing (expected shape [${spec.shape}])`);
    } else if (!sameShape(place.info.shape, spec.shape)) {
      problems.push(
        `${place.shard.file}: tensor "${place.info.name}" has shape [${place.info.shape}], expected [${spec.shape}]`,
      );
    } else if (!floatDtypes.includes(place.info.dtype)) {
      problems.push(`${place.shard.file}: tensor "${place.info.name}" is ${place.info.dtype}, not a float type`);
    }
  }
  for (const [name, place] of located) {
    if (!expectedNames.has(name) && !isUnusedHfTensor(architecture, name))
      problems.push(
        `${place.shard.file}: tensor "${place.info.name}" is not part of a ${architecture.modelType} model`,
      );
  }
  if (problems.length > 0) {
    const listed = problems.slice(0, maxListedProblems);
    if (problems.length > listed.length) listed.push(`… and ${problems.length - listed.length} more`);
    throw new UserErrors(listed, `the weights do not match config.json (${describe(architecture)})`, {
      file: folder,
      hint: 'check that config.json and the safetensors files belong to the same model',
    });
  }

  const place = (name: string): Located => {
    const found = expectedNames.has(name) ? located.get(name) : undefined;
    if (found === undefined) throw new Error(`${name} is not a tensor of this ${architecture.modelType} model`);
    return found;
  };
  return {
    folder,
    architecture,
    files: shards.map((shard) => shard.file),
    tensors: expected,
    dtypeOf: (name) => place(name).info.dtype,
    read: async (name) => {
      const { shard, info } = place(name);
      return tensorToFloat32(info.name, await shard.read(info.name));
    },
  };
}

async function openWeightFiles(folder: string): Promise<{ shards: LazySafetensorsFile[]; listedIn: string }> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    throw userErrorFromFileSystem(error) ?? error;
  }
  if (names.includes(shardIndexFile)) {
    const indexFile = join(folder, shardIndexFile);
    const weightMap = await readWeightMap(indexFile);
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    const shards = await Promise.all(shardNames.map((name) => openSafetensorsFile(join(folder, name))));
    const problems: string[] = [];
    const shardOf = new Map(shards.map((shard, i) => [shardNames[i], shard]));
    for (const [tensor, shardName] of Object.entries(weightMap)) {
      if (!shardOf.get(shardName)?.infos.has(tensor))
        problems.push(`${indexFile}: weight_map puts tensor "${tensor}" in ${shardName}, which does not hold it`);
    }
    for (const [shardName, shard] of shardOf) {
      for (const tensor of shard.infos.keys())
        if (weightMap[tensor] !== shardName)
          problems.push(`${shard.file}: tensor "${tensor}" is not in ${shardIndexFile}'s weight_map for this shard`);
    }
    if (problems.length > 0)
      throw new UserErrors(problems.slice(0, maxListedProblems), 'the shards do not match their index', {
        file: indexFile,
        hint: 'download or save the model again',
      });
    return { shards, listedIn: indexFile };
  }
  if (names.includes(singleWeightsFile)) {
    const file = join(folder, singleWeightsFile);
    return { shards: [await openSafetensorsFile(file)], listedIn: file };
  }
  const pickle = names.find((name) => /^pytorch_model.*\.bin$/.test(name));
  throw new UserError(`has no ${singleWeightsFile} and no ${shardIndexFile}`, {
    file: folder,
    hint:
      pickle === undefined
        ? 'point "model.from" at a folder saved by save_pretrained'
        : `${pickle} (PyTorch pickle) is not read; save the model again with safe_serialization=True`,
  });
}

/** `weight_map` of a shard index: tensor name → shard file name (a plain name inside the folder). */
async function readWeightMap(indexFile: string): Promise<Record<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexFile, 'utf8'));
  } catch (error) {
    throw (
      userErrorFromFileSystem(error) ??
      new UserError(`is not valid JSON (${(error as Error).message})`, {
        file: indexFile,
      })
    );
  }
  const weightMap = isRecord(json) ? json.weight_map : undefined;
  if (!isRecord(weightMap) || Object.keys(weightMap).length === 0)
    throw new UserError('must have a non-empty "weight_map" object (tensor name → shard file)', {
      file: indexFile,
      field: 'weight_map',
    });
  const result: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [tensor, shard] of Object.entries(weightMap)) {
    // A shard name with a path in it could point outside the model folder.
    if (typeof shard !== 'string' || !/^[^/\\]+\.safetensors$/.test(shard) || shard.startsWith('.'))
      throw new UserError(`names shard ${quote(shard)}, not a .safetensors file name in the folder`, {
        file: indexFile,
        field: `weight_map[${JSON.stringify(tensor)}]`,
      });
    result[tensor] = shard;
  }
  return result;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

function describe(architecture: HfArchitecture): string {
  const a = architecture;
  return `${a.modelType}, ${a.numLayers} layers, hidden size ${a.hiddenSize}, vocabulary ${a.vocabSize}`;
}
