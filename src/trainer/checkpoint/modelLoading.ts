/**
 * A stage's model from a folder: this project's checkpoint (either config.json format) or any Hugging Face model
 * folder (gpt2, llama, qwen2, mistral: hf/ reads its config, weights and tokenizer). A policy gets a value head, a
 * reward model a score head; a head the folder lacks starts fresh (seeded); trunk weights must all be there.
 *
 * Context: a Hugging Face folder's model runs with block_size = min(the run's model.block_size, the
 * architecture's positions) — a GPT-2 folder keeps the first block_size rows of its position embedding.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { join } from 'node:path';
import { isRecord } from '../../shared/isRecord';
import { UserError } from '../../shared/userError';
import type { EngineModel, NamedArrays, TrainingEngine } from '../engine/engine';
import { configFileName } from '../hf/hfConfig';
import { openHfModelFolder } from '../hf/hfModelFolder';
import type { LoraConfig } from '../../shared/runConfig';
import { loraSettingsOf, type LoraSettings } from '../lora/loraTargets';
import { isLlamaConfig, llamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import type { GptConfig, ScalarHead } from '../model/gptConfig';
import { BpeTokenizer, HfTokenizerAdapter, type Tokenizer } from '../tokenizer';
import { loadCheckpoint, type CheckpointContents } from './checkpoint';
import { isLoraCheckpoint, loadLoraCheckpoint } from './loraCheckpoint';
import { mergeLoraWeights } from '../lora/mergeLora';
import { gptConfigOfGpt2 } from '../model/gpt2Config';
import type { ModelCheckpointConfig } from './checkpointConfig';

export interface LoadedModel {
  readonly model: EngineModel;
  /** The folder's contents; a Hugging Face folder reads as a checkpoint at step 0 without optimizer state. */
  readonly checkpoint: CheckpointContents;
}

export interface StageModelOptions {
  readonly heads: readonly ScalarHead[];
  readonly seed: number;
  /** The stage's `lora` block: train adapters instead of the trunk (PEFT's default targets of the model type). */
  readonly lora?: LoraConfig;
  /** The run's model.block_size: caps a Hugging Face model's context. */
  readonly blockSize?: number;
  /** Dropout of a GPT while training (SFT: the run's model.dropout); absent = 0. The Llama family has none. */
  readonly dropout?: number;
  /**
   * Read a LoRA checkpoint as it was trained — base weights + adapters, with its settings in `lora` — to continue
   * it (`train --resume`); otherwise its adapters are merged into the base weights.
   */
  readonly keepAdapters?: boolean;
}

/** The GptConfig of a checkpoint of our GPT, for tfjs-only tools; a Llama-family checkpoint is refused. */
export function gptConfigOf(config: ModelCheckpointConfig, dropout = 0): GptConfig {
  if (isLlamaConfig(config.model))
    throw new Error(
      `this tool reads GPT checkpoints; this one is a ${config.model.architecture.modelType} model ` +
        '(load it with "model.from" in a stage)',
    );
  return { ...config.model, dropout };
}

/** True when `folder` is one of this project's checkpoints (config.json with `rlhf_lens`, or the older format). */
export function isLensCheckpoint(folder: string): boolean {
  const file = join(folder, configFileName);
  if (!existsSync(file)) return false;
  try {
    const json: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return isRecord(json) && (json.model_type === 'rlhf-lens-gpt' || isRecord(json.rlhf_lens));
  } catch {
    return false; // readHfConfig names the file and what is wrong with it
  }
}

/**
 * The contents of `folder` as a stage starts from them: a checkpoint as it is (its model's dropout set to the run's),
 * or a Hugging Face folder's architecture, weights (F32, widened from F16 / BF16) and tokenizer.
 */
export async function readModelSource(
  folder: string,
  options: Pick<StageModelOptions, 'blockSize' | 'dropout' | 'seed' | 'keepAdapters'>,
): Promise<CheckpointContents> {
  return { ...(await readFolder(folder, options)), folder: path.resolve(folder) };
}

/**
 * The folder a LoRA stage's adapters sit on: a resumed LoRA checkpoint's own base, else the folder the stage's model
 * was read from (merged, when it is itself a LoRA checkpoint).
 */
export const loraBaseOf = (source: CheckpointContents): string | undefined => source.lora?.base ?? source.folder;

async function readFolder(
  folder: string,
  options: Pick<StageModelOptions, 'blockSize' | 'dropout' | 'seed' | 'keepAdapters'>,
): Promise<CheckpointContents> {
  if (!existsSync(join(folder, configFileName)))
    throw new UserError(existsSync(folder) ? `has no ${configFileName}` : 'does not exist', {
      file: folder,
      hint:
        "give a checkpoint folder written by rlhf-lens (a run's checkpoints/step-<n>) or a Hugging Face model " +
        'folder (gpt2, llama, qwen2, mistral): config.json, model.safetensors (or shards) and tokenizer.json',
    });
  if (isLensCheckpoint(folder)) {
    const checkpoint = isLoraCheckpoint(folder) ? await loraSource(folder, options) : await loadCheckpoint(folder);
    const model = checkpoint.config.model;
    if (isLlamaConfig(model)) return checkpoint;
    // A checkpoint's dropout is its training run's; the stage decides its own (off unless it trains with it).
    return { ...checkpoint, config: { ...checkpoint.config, model: { ...model, dropout: options.dropout ?? 0 } } };
  }
  const opened = await openHfModelFolder(folder);
  const { architecture } = opened;
  const file = join(folder, configFileName);
  const model: CausalLmConfig =
    architecture.family === 'gpt2'
      ? gptConfigOfGpt2(architecture, file, { blockSize: options.blockSize, dropout: options.dropout ?? 0 })
      : llamaConfig(architecture, { blockSize: options.blockSize });
  const weights: NamedArrays = new Map();
  for (const spec of opened.weights.tensors) {
    let data = await opened.weights.read(spec.name);
    let shape = spec.shape;
    if (spec.name === 'transformer.wpe.weight' && shape[0] > model.block_size) {
      shape = [model.block_size, shape[1]];
      data = data.slice(0, model.block_size * shape[1]);
    }
    weights.set(spec.name, { shape, data });
  }
  const tokenizer = new HfTokenizerAdapter(opened.tokenizer, architecture.tokenIds);
  const config: ModelCheckpointConfig = {
    model,
    heads: [],
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
    tokenizer: 'hf',
  };
  const trainerState = { global_step: 0, max_steps: 0, stage: 'pretrained', seed: options.seed };
  return { config, weights, tokenizer, trainerState };
}

/**
 * A LoRA checkpoint: kept as base + adapters to resume it; otherwise merged, W = W₀ + (α/r)·B·A (mergeLoraWeights),
 * so a later stage starts from the model the LoRA stage trained. This is TRL's merge-then-train flow
 * (merge_and_unload, then a new LoRA): a stage with its own `lora` puts fresh adapters on the merged weights, and
 * the merged model is the PPO / DPO reference.
 */
async function loraSource(
  folder: string,
  options: Pick<StageModelOptions, 'blockSize' | 'dropout' | 'seed' | 'keepAdapters'>,
): Promise<CheckpointContents> {
  // The base of a base is always merged: only the adapters of `folder` itself are trained on.
  const read = (base: string, blockSize: number) =>
    readModelSource(base, { seed: options.seed, dropout: options.dropout, blockSize });
  const checkpoint = await loadLoraCheckpoint(folder, read);
  if (options.keepAdapters) return checkpoint;
  const weights = mergeLoraWeights(checkpoint.weights, checkpoint.config.model, checkpoint.lora.settings);
  return { ...checkpoint, weights, optimizer: undefined, lora: undefined };
}

/** Loads `folder` (a checkpoint or a Hugging Face model folder) into the engine as a model with `heads`. */
export async function loadStageModel(
  engine: TrainingEngine,
  folder: string,
  options: StageModelOptions,
): Promise<LoadedModel> {
  const checkpoint = await readModelSource(folder, options);
  const model = engine.createModel(checkpoint.config.model, {
    heads: options.heads,
    weights: checkpoint.weights,
    keepMissingHeads: true,
    seed: options.seed,
    ...(options.lora && { lora: checkpoint.lora?.settings ?? loraSettingsFor(options.lora, checkpoint.config.model) }),
  });
  return { model, checkpoint };
}

/** Loads checkpoint (or Hugging Face folder) `dir` into the engine as a model with `heads`. */
export async function loadEngineModel(
  engine: TrainingEngine,
  dir: string,
  heads: readonly ScalarHead[],
  seed: number,
  options: Omit<StageModelOptions, 'heads' | 'seed'> = {},
): Promise<LoadedModel> {
  return loadStageModel(engine, dir, { ...options, heads, seed });
}

/** The checkpoint config a stage writes for a model it trained. */
export function checkpointConfig(
  model: { readonly config: CausalLmConfig; readonly heads: readonly ScalarHead[] },
  tokenizer: Tokenizer,
): ModelCheckpointConfig {
  const scoring = model.heads.includes('score');
  const config = scoring ? { ...model.config, score_pooling: model.config.score_pooling ?? 'last' } : model.config;
  return {
    model: config,
    heads: model.heads,
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
    tokenizer: tokenizer instanceof BpeTokenizer ? 'bpe' : 'hf',
  };
}

/** One line describing a model for the log. */
export function describeModel(config: CausalLmConfig): string {
  if (isLlamaConfig(config)) {
    const a = config.architecture;
    return (
      `${a.modelType}: ${a.numLayers} layers, ${a.numHeads} heads (${a.numKeyValueHeads} key/value), ` +
      `width ${a.hiddenSize}, context ${config.block_size}, vocabulary ${config.vocab_size}`
    );
  }
  return (
    `${config.n_layer} layers, ${config.n_head} heads, width ${config.n_embd}, context ${config.block_size}, ` +
    `vocabulary ${config.vocab_size}`
  );
}

/** A stage's `lora` block as the engine's settings for `config` (PEFT's default targets of its model type). */
export function loraSettingsFor(lora: LoraConfig, config: CausalLmConfig): LoraSettings {
  return loraSettingsOf(lora, isLlamaConfig(config) ? config.architecture.modelType : 'gpt2');
}
