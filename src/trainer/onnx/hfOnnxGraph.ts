/**
 * The ONNX graph (KV-cache form, Optimum's inputs and outputs) of a Hugging Face model folder's weights, for
 * rollouts and scoring on onnxruntime-node and for transformers.js: the Llama family through llamaOnnxGraph.ts;
 * `gpt2` through the exporter of the trainer's own GPT (gptOnnxGraph.ts), whose weights already have GPT-2's
 * names and Conv1D [in, out] layout — a GPT-2 folder is a GptConfig (hf/gpt2Config.ts), its layer_norm_epsilon
 * and activation_function included; settings our GPT does not compute are refused naming the field.
 */
import { gptConfigOfGpt2 } from '../model/gpt2Config';
import type { HfWeights } from '../hf/hfWeights';
import { hfParameterCount } from '../hf/hfModelFolder';
import { gptWeightShapes } from '../model/gptWeightShapes';
import { buildGptOnnx, type WeightValues } from './gptOnnxGraph';
import { buildLlamaOnnx } from './llamaOnnxGraph';

/** A protobuf message, hence an ONNX model with its weights inside, cannot exceed 2 GiB. */
const protobufLimitBytes = 2 ** 31;
const float32Bytes = 4;

/** The model bytes of `weights`' folder: the full-sequence and decode graph in one (a past may be empty). */
export async function buildHfOnnx(weights: HfWeights): Promise<Uint8Array> {
  const a = weights.architecture;
  const bytes = hfParameterCount(a) * float32Bytes;
  if (bytes >= protobufLimitBytes)
    throw new Error(
      `cannot build the ONNX graph of this ${a.modelType} model: its float32 weights take ` +
        `${(bytes / 2 ** 30).toFixed(1)} GiB, above the 2 GiB an ONNX file holds without external data`,
    );
  if (a.family === 'llama') return buildLlamaOnnx(weights);
  const config = gptConfigOfGpt2(a, weights.folder);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of gptWeightShapes(config, [])) values.set(name, { shape, data: await weights.read(name) });
  return buildGptOnnx(config, values satisfies WeightValues, { heads: [], kvCache: true });
}
