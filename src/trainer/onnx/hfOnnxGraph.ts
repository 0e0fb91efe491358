/**
 * The ONNX graph (KV-cache form, Optimum's inputs and outputs) of a Hugging Face model folder's weights, for
 * rollouts and scoring on onnxruntime-node and for transformers.js: the Llama family through llamaOnnxGraph.ts;
 * `gpt2` through the exporter of the trainer's own GPT (gptOnnxGraph.ts), whose weights already have GPT-2's
 * names and Conv1D [in, out] layout — so a GPT-2 folder is accepted where its settings are the ones that graph
 * computes, and refused naming the setting otherwise.
 */
import type { Gpt2Architecture } from '../hf/hfArchitecture';
import type { HfWeights } from '../hf/hfWeights';
import { hfParameterCount } from '../hf/hfModelFolder';
import type { GptConfig } from '../model/gptConfig';
import { gptWeightShapes } from '../model/gptWeightShapes';
import { buildGptOnnx, type WeightValues } from './gptOnnxGraph';
import { buildLlamaOnnx } from './llamaOnnxGraph';

/** What gptOnnxGraph.ts computes: LayerNorm ε, the tanh GELU, a 4× MLP, scores scaled by 1/√d only. */
const gptGraphLayerNormEpsilon = 1e-5;
const gptGraphActivations: readonly string[] = ['gelu_new', 'gelu_pytorch_tanh'];
const gptGraphMlpRatio = 4;
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
  const config = gpt2AsGptConfig(a);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of gptWeightShapes(config, [])) values.set(name, { shape, data: await weights.read(name) });
  return buildGptOnnx(config, values satisfies WeightValues, { heads: [], kvCache: true });
}

/** A GPT-2 architecture as the trainer's GPT shape, or an error naming the setting gptOnnxGraph.ts lacks. */
export function gpt2AsGptConfig(a: Gpt2Architecture): GptConfig {
  const unsupported: string[] = [];
  if (a.layerNormEpsilon !== gptGraphLayerNormEpsilon)
    unsupported.push(`layer_norm_epsilon ${a.layerNormEpsilon} (the graph uses ${gptGraphLayerNormEpsilon})`);
  if (!gptGraphActivations.includes(a.activation))
    unsupported.push(`activation_function "${a.activation}" (the graph computes ${gptGraphActivations.join(' / ')})`);
  if (a.intermediateSize !== gptGraphMlpRatio * a.hiddenSize)
    unsupported.push(`n_inner ${a.intermediateSize} (the graph's MLP is ${gptGraphMlpRatio} × n_embd)`);
  if (!a.scaleAttnWeights) unsupported.push('scale_attn_weights false');
  if (a.scaleAttnByInverseLayerIdx) unsupported.push('scale_attn_by_inverse_layer_idx true');
  if (a.headDim * a.numHeads !== a.hiddenSize) unsupported.push(`head_dim ${a.headDim} × n_head ≠ n_embd`);
  if (unsupported.length > 0)
    throw new Error(`cannot build the ONNX graph of this gpt2 model: ${unsupported.join('; ')}`);
  return {
    vocab_size: a.vocabSize,
    block_size: a.maxPositions,
    n_layer: a.numLayers,
    n_head: a.numHeads,
    n_embd: a.hiddenSize,
    dropout: 0,
  };
}
