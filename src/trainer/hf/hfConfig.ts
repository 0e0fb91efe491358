/**
 * config.json of a Hugging Face model folder → {@link HfArchitecture}. Absent keys take the defaults of the
 * model type's configuration class in transformers (GPT2Config, LlamaConfig, Qwen2Config, MistralConfig), because
 * `save_pretrained` writes only the keys that differ from those defaults. Rotary settings are read in both the
 * transformers 4 form (`rope_theta`, `rope_scaling` with `type` or `rope_type`) and the transformers 5 form
 * (`rope_parameters`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quote, UserError, userErrorFromFileSystem } from '../../shared/userError';
import { ConfigReader } from './configReader';
import {
  gpt2Activations,
  supportedModelTypes,
  type Gpt2Architecture,
  type HfArchitecture,
  type HfModelType,
  type HfTorchDtype,
  type LlamaFamilyArchitecture,
  type RopeScaling,
  type RopeSettings,
} from './hfArchitecture';

export const configFileName = 'config.json';

/** PretrainedConfig's default: embeddings tied unless a model's class says otherwise (GPT2Config does not). */
const gpt2TieDefault = true;
const gpt2Defaults = { vocabSize: 50257, positions: 1024, hidden: 768, layers: 12, heads: 12, eps: 1e-5, eos: 50256 };
/** GPT-2's MLP is 4 × the hidden size when `n_inner` is null. */
const gpt2InnerRatio = 4;
/** Every Llama-family class's `rope_theta` default in transformers 4. */
const defaultRopeTheta = 10000;

interface LlamaFamilyDefaults {
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  /** null: as many as attention heads. */
  kvHeads: number | null;
  positions: number;
  bos: number | null;
  eos: number | null;
}

const llamaFamilyDefaults: Record<LlamaFamilyArchitecture['modelType'], LlamaFamilyDefaults> = {
  llama: {
    vocabSize: 32000,
    hidden: 4096,
    intermediate: 11008,
    layers: 32,
    heads: 32,
    kvHeads: null,
    positions: 2048,
    bos: 1,
    eos: 2,
  },
  qwen2: {
    vocabSize: 151936,
    hidden: 4096,
    intermediate: 22016,
    layers: 32,
    heads: 32,
    kvHeads: 32,
    positions: 32768,
    bos: null,
    eos: null,
  },
  mistral: {
    vocabSize: 32000,
    hidden: 4096,
    intermediate: 14336,
    layers: 32,
    heads: 32,
    kvHeads: 8,
    positions: 4096 * 32,
    bos: 1,
    eos: 2,
  },
};
const llamaFamilyRmsEps = 1e-6;
const mistralSlidingWindow = 4096;
const qwen2SlidingWindow = 4096;
const qwen2MaxWindowLayers = 28;

/** Reads and describes `<folder>/config.json`. */
export async function readHfConfig(folder: string): Promise<HfArchitecture> {
  const file = join(folder, configFileName);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw userErrorFromFileSystem(error) ?? error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`is not valid JSON (${(error as Error).message})`, { file });
  }
  return parseHfConfig(json, file);
}

/** Describes a parsed config.json; `file` names it in errors. */
export function parseHfConfig(json: unknown, file: string): HfArchitecture {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UserError(`must be a JSON object, got ${quote(json)}`, { file });
  const config = new ConfigReader(json as Record<string, unknown>, file);
  const modelType = config.required('model_type');
  if (typeof modelType !== 'string' || !(supportedModelTypes as readonly string[]).includes(modelType)) {
    throw config.problem(
      'model_type',
      `${quote(modelType)} is not an architecture the lens loads`,
      `supported: ${supportedModelTypes.join(', ')}`,
    );
  }
  return modelType === 'gpt2' ? gpt2Architecture(config) : llamaFamilyArchitecture(config, modelType as HfModelType);
}

function common(config: ConfigReader) {
  const architectures = config.json.architectures;
  const architectureClass =
    Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : null;
  // transformers 5 writes `dtype`; 4 wrote `torch_dtype`.
  const dtypeKey = config.has('dtype') ? 'dtype' : 'torch_dtype';
  const torchDtype = config.has(dtypeKey)
    ? config.choice<HfTorchDtype>(dtypeKey, ['float32', 'float16', 'bfloat16'], 'float32')
    : null;
  return { architectureClass, torchDtype };
}

function gpt2Architecture(config: ConfigReader): Gpt2Architecture {
  const d = gpt2Defaults;
  const hiddenSize = config.positiveInteger('n_embd', d.hidden);
  const numHeads = config.positiveInteger('n_head', d.heads);
  if (hiddenSize % numHeads !== 0) throw config.problem('n_head', `(${numHeads}) must divide n_embd (${hiddenSize})`);
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    ...common(config),
    vocabSize: config.positiveInteger('vocab_size', d.vocabSize),
    hiddenSize,
    numLayers: config.positiveInteger('n_layer', d.layers),
    numHeads,
    headDim: hiddenSize / numHeads,
    maxPositions: config.positiveInteger('n_positions', d.positions),
    intermediateSize: config.positiveInteger('n_inner', gpt2InnerRatio * hiddenSize),
    layerNormEpsilon: config.positiveNumber('layer_norm_epsilon', d.eps),
    activation: config.choice('activation_function', gpt2Activations, 'gelu_new'),
    scaleAttnWeights: config.boolean('scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: config.boolean('scale_attn_by_inverse_layer_idx', false),
    tieWordEmbeddings: config.boolean('tie_word_embeddings', gpt2TieDefault),
    tokenIds: {
      bos: config.tokenId('bos_token_id', d.eos),
      eos: config.tokenIds('eos_token_id', d.eos),
      pad: config.tokenId('pad_token_id', null),
    },
  };
}

function llamaFamilyArchitecture(config: ConfigReader, modelType: HfModelType): LlamaFamilyArchitecture {
  const type = modelType as LlamaFamilyArchitecture['modelType'];
  const d = llamaFamilyDefaults[type];
  const hiddenSize = config.positiveInteger('hidden_size', d.hidden);
  const numHeads = config.positiveInteger('num_attention_heads', d.heads);
  const numKeyValueHeads = config.positiveInteger('num_key_value_heads', d.kvHeads ?? numHeads);
  if (!config.has('head_dim') && hiddenSize % numHeads !== 0)
    throw config.problem('num_attention_heads', `(${numHeads}) must divide hidden_size (${hiddenSize})`);
  if (numHeads % numKeyValueHeads !== 0)
    throw config.problem('num_key_value_heads', `(${numKeyValueHeads}) must divide num_attention_heads (${numHeads})`);
  const numLayers = config.positiveInteger('num_hidden_layers', d.layers);
  // Only llama has `attention_bias`; qwen2 always has q/k/v biases and no o_proj bias; mistral has none.
  const attentionBias = type === 'llama' && config.boolean('attention_bias', false);
  return {
    family: 'llama',
    modelType: type,
    ...common(config),
    vocabSize: config.positiveInteger('vocab_size', d.vocabSize),
    hiddenSize,
    intermediateSize: config.positiveInteger('intermediate_size', d.intermediate),
    numLayers,
    numHeads,
    numKeyValueHeads,
    headDim: config.positiveInteger('head_dim', Math.floor(hiddenSize / numHeads)),
    maxPositions: config.positiveInteger('max_position_embeddings', d.positions),
    rmsNormEps: config.positiveNumber('rms_norm_eps', llamaFamilyRmsEps),
    hiddenAct: config.choice('hidden_act', ['silu'], 'silu', { swish: 'silu' }),
    rope: ropeSettings(config),
    qkvBias: type === 'qwen2' || attentionBias,
    outputBias: attentionBias,
    mlpBias: type === 'llama' && config.boolean('mlp_bias', false),
    slidingWindow: slidingWindow(config, type, numLayers),
    tieWordEmbeddings: config.boolean('tie_word_embeddings', false),
    tokenIds: {
      bos: config.tokenId('bos_token_id', d.bos),
      eos: config.tokenIds('eos_token_id', d.eos),
      pad: config.tokenId('pad_token_id', null),
    },
  };
}

function slidingWindow(
  config: ConfigReader,
  type: LlamaFamilyArchitecture['modelType'],
  numLayers: number,
): LlamaFamilyArchitecture['slidingWindow'] {
  if (type === 'mistral') {
    // Mistral's default window is 4096; an explicit null (Mistral 7B v0.2+) means full attention.
    if (Object.hasOwn(config.json, 'sliding_window') && config.json.sliding_window === null) return null;
    return { size: config.positiveInteger('sliding_window', mistralSlidingWindow), fromLayer: 0 };
  }
  if (type === 'qwen2' && config.boolean('use_sliding_window', false)) {
    const fromLayer = config.positiveInteger('max_window_layers', qwen2MaxWindowLayers);
    const size = config.positiveInteger('sliding_window', qwen2SlidingWindow);
    // Qwen2 slides only in layers at or past max_window_layers.
    return fromLayer < numLayers ? { size, fromLayer } : null;
  }
  return null;
}

const supportedRopeTypes = ['default', 'linear', 'llama3'];

function ropeSettings(config: ConfigReader): RopeSettings {
  // transformers 5: everything in rope_parameters; transformers 4: rope_theta beside an optional rope_scaling.
  const parameters = config.object('rope_parameters');
  if (parameters !== undefined)
    return { theta: parameters.positiveNumber('rope_theta', defaultRopeTheta), scaling: ropeScaling(parameters) };
  const theta = config.positiveNumber('rope_theta', defaultRopeTheta);
  const scaling = config.object('rope_scaling');
  return { theta, scaling: scaling === undefined ? { type: 'default' } : ropeScaling(scaling) };
}

function ropeScaling(scaling: ConfigReader): RopeScaling {
  // Older files say `type`; transformers renamed it `rope_type`.
  const key = scaling.has('rope_type') ? 'rope_type' : 'type';
  const type = scaling.has(key) ? scaling.json[key] : 'default';
  switch (type) {
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: scaling.requiredPositiveNumber('factor') };
    case 'llama3': {
      scaling.required('original_max_position_embeddings');
      const lowFreqFactor = scaling.requiredPositiveNumber('low_freq_factor');
      const highFreqFactor = scaling.requiredPositiveNumber('high_freq_factor');
      // The ramp between the two wavelength bounds divides by their difference.
      if (highFreqFactor <= lowFreqFactor)
        throw scaling.problem(
          'high_freq_factor',
          `(${highFreqFactor}) must be above low_freq_factor (${lowFreqFactor})`,
        );
      return {
        type: 'llama3',
        factor: scaling.requiredPositiveNumber('factor'),
        lowFreqFactor,
        highFreqFactor,
        originalMaxPositions: scaling.positiveInteger('original_max_position_embeddings', Number.NaN),
      };
    }
    default:
      throw scaling.problem(
        key,
        `${quote(type)} rotary scaling is not supported`,
        `supported: ${supportedRopeTypes.join(', ')}`,
      );
  }
}
