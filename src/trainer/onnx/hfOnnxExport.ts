/**
 * A Hugging Face model folder as a transformers.js-style ONNX folder, the layout Optimum writes and
 * transformers.js and onnxruntime-node load: the source's config.json (its model_type names the architecture),
 * generation_config.json and tokenizer files copied when present, and onnx/model.onnx — the KV-cache graph of
 * hfOnnxGraph.ts with the weights in float32. Weights of 2 GiB or more (or past a given threshold) go to
 * onnx/model.onnx_data, ONNX's external data (onnxExternalData.ts), as Optimum writes big models.
 *
 * With a PEFT LoRA adapter folder (lora/peftAdapter.ts), the adapters are merged into the weights as they are read
 * (lora/mergeLora.ts: W₀ + (α/r)·B·A): the export is the merged model, a plain one for any runtime.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable, writeFolderDurable, writeJsonDurable } from '../../shared/durableWrite';
import { isRecord } from '../../shared/isRecord';
import { configFileName, readHfConfig } from '../hf/hfConfig';
import { hfParameterCount } from '../hf/hfModelFolder';
import { chatTemplateFile, tokenizerConfigFile, tokenizerFile } from '../hf/hfTokenizer';
import { openHfWeights, type HfWeights } from '../hf/hfWeights';
import { mergeLora } from '../lora/mergeLora';
import { loraScale } from '../lora/loraTargets';
import { readAdapterFolder, type AdapterFolder } from '../lora/peftAdapter';
import { causalLmConfigOf } from '../model/causalLmConfig';
import { buildHfOnnx } from './hfOnnxGraph';
import { externalDataFileName, protobufLimitBytes, withExternalData } from './onnxExternalData';

/** Files a model folder may have beside its weights that the ONNX folder keeps as they are. */
const copiedFiles = [
  configFileName,
  'generation_config.json',
  tokenizerFile,
  tokenizerConfigFile,
  'special_tokens_map.json',
  chatTemplateFile,
];
export const onnxModelPath = path.join('onnx', 'model.onnx');
export const onnxDataPath = path.join('onnx', externalDataFileName('model.onnx'));
const float32Bytes = 4;
const transformersJsConfigKey = 'transformers.js_config';

export interface HfOnnxExportOptions {
  /** A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) of this model, merged in. */
  readonly adapterFolder?: string;
  /** Weights of at least this many bytes go to onnx/model.onnx_data (default: 2 GiB, protobuf's limit). */
  readonly externalDataThresholdBytes?: number;
}

export interface HfOnnxExport {
  readonly outDir: string;
  /** Bytes of onnx/model.onnx, plus onnx/model.onnx_data when written. */
  readonly bytes: number;
  readonly copied: readonly string[];
  /** True when the weights are in onnx/model.onnx_data. */
  readonly externalData: boolean;
  /** The merged adapter's base weights (`<module>.weight`), when an adapter folder was given. */
  readonly mergedWeights: readonly string[];
}

/** Writes the ONNX folder of `modelFolder` to `outDir` (replaced whole: a reader never sees half a folder). */
export async function exportHfOnnx(
  modelFolder: string,
  outDir: string,
  options: HfOnnxExportOptions = {},
): Promise<HfOnnxExport> {
  const architecture = await readHfConfig(modelFolder);
  let weights = await openHfWeights(modelFolder, architecture);
  let mergedWeights: string[] = [];
  if (options.adapterFolder !== undefined) {
    const adapter = readAdapterFolder(options.adapterFolder, causalLmConfigOf(architecture, modelFolder));
    weights = mergedHfWeights(weights, adapter);
    mergedWeights = adapter.targets.map((t) => t.baseWeight);
  }
  const model = await buildHfOnnx(weights);
  const threshold = options.externalDataThresholdBytes ?? protobufLimitBytes;
  const external = hfParameterCount(architecture) * float32Bytes >= threshold;
  const files = external ? withExternalData(model, path.basename(onnxDataPath)) : { model, data: undefined, moved: 0 };
  const copied = copiedFiles.filter((name) => existsSync(path.join(modelFolder, name)));
  const target = path.resolve(outDir);
  await writeFolderDurable(target, async (temporary) => {
    mkdirSync(path.join(temporary, 'onnx'));
    writeFileDurable(path.join(temporary, onnxModelPath), files.model);
    if (files.data !== undefined) writeFileDurable(path.join(temporary, onnxDataPath), files.data);
    for (const name of copied) {
      const source = path.join(modelFolder, name);
      const bytes = readFileSync(source);
      if (name === configFileName && external)
        writeJsonDurable(path.join(temporary, name), withExternalDataFlag(JSON.parse(bytes.toString('utf8'))));
      else writeFileDurable(path.join(temporary, name), bytes);
    }
  });
  const bytes = files.model.byteLength + (files.data?.byteLength ?? 0);
  return { outDir: target, bytes, copied, externalData: external, mergedWeights };
}

/**
 * config.json telling transformers.js to fetch onnx/model.onnx_data with the graph, as the Hub's ONNX models say it
 * (`"transformers.js_config": {"use_external_data_format": true}`: one data file, named `<model>.onnx_data`).
 */
export function withExternalDataFlag(config: Record<string, unknown>): Record<string, unknown> {
  const previous = config[transformersJsConfigKey];
  return {
    ...config,
    [transformersJsConfigKey]: { ...(isRecord(previous) ? previous : {}), use_external_data_format: true },
  };
}

/** `weights` with each adapted weight read as W₀ + (α/r)·B·A (one tensor at a time: no second copy of the model). */
export function mergedHfWeights(weights: HfWeights, adapter: AdapterFolder): HfWeights {
  const targets = new Map(adapter.targets.map((t) => [t.baseWeight, t]));
  const shapes = new Map(weights.tensors.map((spec) => [spec.name, spec.shape]));
  const scale = loraScale(adapter.settings);
  return {
    folder: weights.folder,
    architecture: weights.architecture,
    files: weights.files,
    tensors: weights.tensors,
    dtypeOf: (name) => weights.dtypeOf(name),
    async read(name) {
      const data = await weights.read(name);
      const target = targets.get(name);
      if (target === undefined) return data;
      const base = new Map([[name, { shape: [...(shapes.get(name) ?? [])], data }]]);
      return (mergeLora(base, adapter.adapters, [target], scale).get(name) as { data: Float32Array }).data;
    },
  };
}
