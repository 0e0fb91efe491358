/**
 * config.json of a checkpoint, written as transformers' config of the model's architecture so transformers,
 * TRL and PEFT load the folder as it is: our GPT as `gpt2` (GPT2Config's keys), a Llama-family model as its
 * source folder's `model_type` (one writer for llama, qwen2, mistral). What transformers has no key for (the heads,
 * score pooling, the run's context, which tokenizer) is kept under `rlhf_lens`, which transformers ignores.
 * The format before (`model_type: "rlhf-lens-gpt"`) is still read, so older runs resume.
 */
import { isLegacyCheckpointConfig, type CheckpointTokenizerKind, type ScalarHead } from '../../shared/gptShape';
import { checkCheckpointConfig } from '../../shared/runFiles';
import { UserError } from '../../shared/userError';
import type { LlamaFamilyArchitecture } from '../hf/hfArchitecture';
import { parseHfConfig } from '../hf/hfConfig';
import { isLlamaConfig, llamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import { gptConfigOfGpt2 } from '../model/gpt2Config';

/** A checkpoint's config.json in the trainer's terms, whichever format it was written in. */
export interface ModelCheckpointConfig {
  readonly model: CausalLmConfig;
  readonly heads: readonly ScalarHead[];
  /** undefined: the model's prompts start without BOS (Qwen2). */
  readonly bos_token_id: number | undefined;
  readonly eos_token_id: number;
  readonly pad_token_id: number;
  readonly tokenizer: CheckpointTokenizerKind;
  /** Written before checkpoints were Hugging Face folders: heads under the engine's names. */
  readonly legacy?: boolean;
}

/** GPT2Config's defaults our GPT has always used (GptConfig leaves them absent). */
export const gpt2LayerNormEpsilon = 1e-5;
export const gpt2Activation = 'gelu_new';

/** transformers' class name prefix of each model_type. */
const classPrefix: Record<LlamaFamilyArchitecture['modelType'], string> = {
  llama: 'Llama',
  qwen2: 'Qwen2',
  mistral: 'Mistral',
};

/** transformers' id2label / label2id of a one-label sequence classifier (a reward model). */
const oneLabel = { num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } };

/** The config.json a checkpoint of `config` is written with. */
export function checkpointConfigJson(config: ModelCheckpointConfig): Record<string, unknown> {
  const { model, heads } = config;
  const scoring = heads.includes('score');
  const rlhfLens = {
    heads,
    ...(scoring && { score_pooling: model.score_pooling ?? 'last' }),
    block_size: model.block_size,
    tokenizer: config.tokenizer,
  };
  const tokenIds = { bos_token_id: config.bos_token_id ?? null, pad_token_id: config.pad_token_id };
  if (isLlamaConfig(model)) {
    const a = model.architecture;
    const eos = a.tokenIds.eos.length > 0 ? a.tokenIds.eos : [config.eos_token_id];
    return {
      architectures: [`${classPrefix[a.modelType]}For${scoring ? 'SequenceClassification' : 'CausalLM'}`],
      ...llamaFamilyKeys(a),
      ...tokenIds,
      bos_token_id: a.tokenIds.bos,
      eos_token_id: eos.length === 1 ? eos[0] : eos,
      torch_dtype: 'float32',
      ...(scoring && oneLabel),
      rlhf_lens: rlhfLens,
    };
  }
  return {
    architectures: [scoring ? 'GPT2ForSequenceClassification' : 'GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: model.vocab_size,
    n_positions: model.block_size,
    n_ctx: model.block_size,
    n_embd: model.n_embd,
    n_layer: model.n_layer,
    n_head: model.n_head,
    n_inner: null,
    activation_function: model.activation_function ?? gpt2Activation,
    layer_norm_epsilon: model.layer_norm_epsilon ?? gpt2LayerNormEpsilon,
    resid_pdrop: model.dropout,
    embd_pdrop: model.dropout,
    attn_pdrop: model.dropout,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    ...tokenIds,
    eos_token_id: config.eos_token_id,
    torch_dtype: 'float32',
    ...(scoring && oneLabel),
    rlhf_lens: rlhfLens,
  };
}

/** The standard keys of a Llama-family config.json (what hf/hfConfig.ts reads back to the same architecture). */
function llamaFamilyKeys(a: LlamaFamilyArchitecture): Record<string, unknown> {
  const scaling = a.rope.scaling;
  const ropeScaling =
    scaling.type === 'default'
      ? null
      : scaling.type === 'linear'
        ? { rope_type: 'linear', factor: scaling.factor }
        : {
            rope_type: 'llama3',
            factor: scaling.factor,
            low_freq_factor: scaling.lowFreqFactor,
            high_freq_factor: scaling.highFreqFactor,
            original_max_position_embeddings: scaling.originalMaxPositions,
          };
  const window = a.slidingWindow;
  return {
    model_type: a.modelType,
    vocab_size: a.vocabSize,
    hidden_size: a.hiddenSize,
    intermediate_size: a.intermediateSize,
    num_hidden_layers: a.numLayers,
    num_attention_heads: a.numHeads,
    num_key_value_heads: a.numKeyValueHeads,
    head_dim: a.headDim,
    max_position_embeddings: a.maxPositions,
    rms_norm_eps: a.rmsNormEps,
    hidden_act: a.hiddenAct,
    rope_theta: a.rope.theta,
    rope_scaling: ropeScaling,
    attention_dropout: 0,
    tie_word_embeddings: a.tieWordEmbeddings,
    ...(a.modelType === 'llama' && { attention_bias: a.qkvBias, mlp_bias: a.mlpBias }),
    ...(a.modelType === 'mistral' && { sliding_window: window?.size ?? null }),
    ...(a.modelType === 'qwen2' && {
      use_sliding_window: window !== null,
      ...(window !== null && { sliding_window: window.size, max_window_layers: window.fromLayer }),
    }),
  };
}

/** generation_config.json as transformers writes it from a model's config. */
export function generationConfigJson(config: ModelCheckpointConfig): Record<string, unknown> {
  const bos = isLlamaConfig(config.model) ? config.model.architecture.tokenIds.bos : config.bos_token_id;
  const eos = isLlamaConfig(config.model) ? config.model.architecture.tokenIds.eos : [config.eos_token_id];
  return {
    _from_model_config: true,
    ...(bos !== null && bos !== undefined && { bos_token_id: bos }),
    eos_token_id: eos.length === 1 ? eos[0] : eos,
    pad_token_id: config.pad_token_id,
  };
}

/** Reads a checkpoint's parsed config.json (`file` names it in errors), in either format. */
export function readCheckpointConfig(json: unknown, file: string): ModelCheckpointConfig {
  const checked = checkCheckpointConfig(json, file);
  if (isLegacyCheckpointConfig(checked)) {
    const { vocab_size, block_size, n_layer, n_head, n_embd, dropout, score_pooling } = checked;
    return {
      model: { vocab_size, block_size, n_layer, n_head, n_embd, dropout, ...(score_pooling && { score_pooling }) },
      heads: checked.heads,
      bos_token_id: checked.bos_token_id,
      eos_token_id: checked.eos_token_id,
      pad_token_id: checked.pad_token_id,
      tokenizer: 'bpe',
      legacy: true,
    };
  }
  const lens = checked.rlhf_lens;
  const architecture = parseHfConfig(json, file);
  const options = { blockSize: lens.block_size, scorePooling: lens.score_pooling };
  const model: CausalLmConfig =
    architecture.family === 'gpt2'
      ? gptConfigOfGpt2(architecture, file, { ...options, dropout: Number(checked.resid_pdrop ?? 0) })
      : llamaConfig(architecture, options);
  const eos = architecture.tokenIds.eos[0];
  if (eos === undefined) throw new UserError('is missing', { file, field: 'eos_token_id' });
  return {
    model,
    heads: lens.heads,
    bos_token_id: typeof checked.bos_token_id === 'number' ? checked.bos_token_id : undefined,
    eos_token_id: eos,
    pad_token_id: checked.pad_token_id as number,
    tokenizer: lens.tokenizer,
  };
}
