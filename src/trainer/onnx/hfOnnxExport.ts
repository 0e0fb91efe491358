/**
 * A Hugging Face model folder as a transformers.js-style ONNX folder, the layout Optimum writes and
 * transformers.js and onnxruntime-node load: the source's config.json (its model_type names the architecture),
 * generation_config.json and tokenizer files copied when present, and onnx/model.onnx — the KV-cache graph of
 * hfOnnxGraph.ts with the weights in float32.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable, writeFolderDurable } from '../../shared/durableWrite';
import { configFileName, readHfConfig } from '../hf/hfConfig';
import { chatTemplateFile, tokenizerConfigFile, tokenizerFile } from '../hf/hfTokenizer';
import { openHfWeights } from '../hf/hfWeights';
import { buildHfOnnx } from './hfOnnxGraph';

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

export interface HfOnnxExport {
  readonly outDir: string;
  readonly bytes: number;
  readonly copied: readonly string[];
}

/** Writes the ONNX folder of `modelFolder` to `outDir` (replaced whole: a reader never sees half a folder). */
export async function exportHfOnnx(modelFolder: string, outDir: string): Promise<HfOnnxExport> {
  const architecture = await readHfConfig(modelFolder);
  const model = await buildHfOnnx(await openHfWeights(modelFolder, architecture));
  const copied = copiedFiles.filter((name) => existsSync(path.join(modelFolder, name)));
  const target = path.resolve(outDir);
  await writeFolderDurable(target, async (temporary) => {
    mkdirSync(path.join(temporary, 'onnx'));
    writeFileDurable(path.join(temporary, onnxModelPath), model);
    for (const name of copied) writeFileDurable(path.join(temporary, name), readFileSync(path.join(modelFolder, name)));
  });
  return { outDir: target, bytes: model.byteLength, copied };
}
