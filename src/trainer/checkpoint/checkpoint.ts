/**
 * Checkpoints: `checkpoints/step-<n>/`, a Hugging Face model folder transformers loads — `config.json`
 * (checkpointConfig.ts), `generation_config.json`, `model.safetensors` (heads under TRL's and transformers' names,
 * headNames.ts) and the tokenizer's files — plus `optimizer.safetensors` (AdamW's moments under PyTorch's
 * `exp_avg` / `exp_avg_sq` names) and `trainer_state.json`. A checkpoint is written as one durable folder
 * (shared/durableWrite.ts: every file complete and fsynced in a temporary folder, then renamed into place), so a
 * crash or a full disk mid-write leaves the previous checkpoints intact and never a half-written one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { checkTrainerState, parseJsonText } from '../../shared/runFiles';
import { quote } from '../../shared/userError';
import { isRecord } from '../../shared/isRecord';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '../../shared/safetensors';
import { gptWeightShapes } from '../model/gptWeightShapes';
import type { NamedArrays, OptimizerState } from '../engine/engine';
import { expectedHfTensors } from '../hf/hfTensorNames';
import { isLoraWeight, type LoraSettings } from '../lora/loraTargets';
import { adapterConfigFile } from '../lora/peftConfig';
import { isLlamaConfig } from '../model/causalLmConfig';
import type { ScalarHead } from '../model/gptConfig';
import { BpeTokenizer, HfTokenizerAdapter, type Tokenizer } from '../tokenizer';
import {
  checkpointConfigJson,
  generationConfigJson,
  readCheckpointConfig,
  type ModelCheckpointConfig,
} from './checkpointConfig';
import { toCheckpointNames, toEngineNames } from './headNames';
import { writeFileDurable, writeFolderDurable, writeJsonDurable } from '../../shared/durableWrite';

/** The weights of a checkpoint: the seam's named arrays. */
export type WeightMap = NamedArrays;

export type { ModelCheckpointConfig } from './checkpointConfig';

/** What a trainer needs to continue exactly where it stopped. */
export interface TrainerState {
  readonly global_step: number;
  readonly max_steps: number;
  readonly stage: string;
  readonly seed: number;
  readonly [key: string]: unknown;
}

export interface CheckpointContents {
  readonly config: ModelCheckpointConfig;
  readonly weights: WeightMap;
  readonly optimizer?: OptimizerState;
  readonly trainerState: TrainerState;
  readonly tokenizer: Tokenizer;
  /**
   * A LoRA stage's checkpoint read unmerged (loraCheckpoint.ts): `weights` hold the base model's, the adapters and
   * the heads; `base` is the folder the base weights came from.
   */
  readonly lora?: { readonly settings: LoraSettings; readonly base: string };
  /** The folder the contents were read from (modelLoading.ts readModelSource). */
  readonly folder?: string;
}

export function toSafetensors(weights: WeightMap): Record<string, SafetensorsTensor> {
  const out: Record<string, SafetensorsTensor> = {};
  for (const [name, { shape, data }] of weights) out[name] = { dtype: 'F32', shape, data };
  return out;
}

function fromSafetensors(file: string): { weights: WeightMap; metadata: Record<string, string> } {
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(new Uint8Array(readFileSync(file)));
  } catch (error) {
    // The decoder names the field (header size, a tensor's dtype, shape or data_offsets); this names the file.
    throw new Error(
      `${file}: ${(error as Error).message} — the checkpoint is damaged; resume from an earlier one ` +
        "(delete this step's folder) or train again.",
    );
  }
  const weights: WeightMap = new Map();
  for (const [name, tensor] of Object.entries(decoded.tensors)) {
    if (tensor.dtype !== 'F32')
      throw new Error(`${file}: tensor "${name}" is ${tensor.dtype}; RLHF Lens checkpoints hold F32`);
    weights.set(name, { shape: tensor.shape, data: tensor.data });
  }
  return { weights, metadata: decoded.metadata };
}

/** The first NaN or ±Infinity in `weights`, by tensor name and element, or undefined when all are finite. */
export function firstNonFinite(weights: WeightMap): { name: string; index: number; value: number } | undefined {
  for (const [name, { data }] of weights) {
    for (let index = 0; index < data.length; index++)
      if (!Number.isFinite(data[index])) return { name, index, value: data[index] };
  }
  return undefined;
}

/** A checkpoint whose weights are not all finite: never "the last good checkpoint". */
export class NonFiniteCheckpointError extends Error {
  override readonly name = 'NonFiniteCheckpointError';
}

export function assertFinite(weights: WeightMap, what: string, file: string, action: string): void {
  const bad = firstNonFinite(weights);
  if (bad)
    throw new NonFiniteCheckpointError(
      `${file}: ${what} "${bad.name}" holds ${bad.value} at element ${bad.index}; ${action}`,
    );
}

export async function saveCheckpoint(dir: string, contents: CheckpointContents): Promise<void> {
  // Checked before anything is written: a diverged model must not become the newest checkpoint.
  const advice =
    'the checkpoint was not written. Training diverged: try a lower learning_rate or max_grad_norm, ' +
    'and resume from the last checkpoint.';
  assertFinite(contents.weights, 'weight', path.join(dir, 'model.safetensors'), advice);
  if (contents.optimizer)
    assertFinite(contents.optimizer.moments, 'optimizer state', path.join(dir, 'optimizer.safetensors'), advice);
  await writeFolderDurable(dir, async (folder) => {
    writeFileDurable(
      path.join(folder, 'model.safetensors'),
      encodeSafetensors(toSafetensors(toCheckpointNames(contents.weights)), { format: 'pt' }),
    );
    if (contents.optimizer) {
      writeFileDurable(path.join(folder, 'optimizer.safetensors'), optimizerFileBytes(contents.optimizer));
    }
    writeJsonDurable(path.join(folder, 'config.json'), checkpointConfigJson(contents.config));
    writeJsonDurable(path.join(folder, 'generation_config.json'), generationConfigJson(contents.config));
    writeJsonDurable(path.join(folder, 'trainer_state.json'), contents.trainerState);
    await contents.tokenizer.save(folder, { modelMaxLength: contents.config.model.block_size });
  });
}

/** Every weight (engine names) a model of `config` with `heads` has, by shape. */
export function expectedWeightShapes(
  config: ModelCheckpointConfig['model'],
  heads: readonly ScalarHead[],
): Map<string, number[]> {
  if (!isLlamaConfig(config)) return gptWeightShapes(config, heads);
  const shapes = new Map(expectedHfTensors(config.architecture).map((spec) => [spec.name, spec.shape]));
  for (const head of heads) {
    shapes.set(`${head}.weight`, [config.architecture.hiddenSize, 1]);
    shapes.set(`${head}.bias`, [1]);
  }
  return shapes;
}

/**
 * The weights must be the ones config.json describes, by name and shape, checked before a model is
 * built from them (a planted config.json of 1024 layers would otherwise allocate them first).
 */
function checkWeightsMatchConfig(
  weights: WeightMap,
  config: ModelCheckpointConfig,
  modelFile: string,
  configFile: string,
): void {
  const expected = expectedWeightShapes(config.model, config.heads);
  // Heads config.json does not list (a reward model's score head on an SFT trunk) and LoRA adapters may ride along.
  const extraAllowed = (name: string) => isLoraWeight(name) || /^(?:v_head|score)\.(?:weight|bias)$/.test(name);
  for (const name of weights.keys())
    if (!expected.has(name) && !extraAllowed(name))
      throw new Error(
        `${modelFile}: weight "${name}" is not part of the model ${configFile} describes; ` +
          'the two files are not of one checkpoint.',
      );
  for (const [name, shape] of expected) {
    const actual = weights.get(name)?.shape;
    if (actual === undefined)
      throw new Error(
        `${modelFile}: weight "${name}" is missing, though ${configFile} describes it; the checkpoint is damaged.`,
      );
    if (actual.join(',') !== shape.join(','))
      throw new Error(
        `${modelFile}: weight "${name}" has shape [${actual.join(', ')}] but ${configFile} gives ` +
          `[${shape.join(', ')}]; the two files are not of one checkpoint.`,
      );
  }
}

export function readJsonFile(file: string): unknown {
  return parseJsonText(readFileSync(file, 'utf8'), file);
}

/**
 * Reads a checkpoint, every file checked: config.json and trainer_state.json against their schemas
 * (runFiles.ts), the safetensors headers by the decoder, the weights finite, the tokenizer files.
 * A problem throws an Error naming the file and the field.
 */
export async function loadCheckpoint(dir: string): Promise<CheckpointContents> {
  const need = (file: string) => {
    const full = path.join(dir, file);
    if (!existsSync(full)) throw new Error(`${dir} is not a checkpoint: ${file} is missing.`);
    return full;
  };
  const configFile = need('config.json');
  const json = readJsonFile(configFile);
  // A LoRA stage's checkpoint (loraCheckpoint.ts) holds adapters, not the model: its base is read with it.
  if (existsSync(path.join(dir, adapterConfigFile)) && isRecord(json) && isRecord(json.rlhf_lens))
    if (json.rlhf_lens.lora_base !== undefined)
      throw new Error(
        `${dir} is a LoRA checkpoint (${adapterConfigFile}): read it with its base model ` +
          '(checkpoint/modelLoading.ts readModelSource), or merge it with "rlhf-lens export".',
      );
  const config = readCheckpointConfig(json, configFile);
  const modelFile = need('model.safetensors');
  const saved = fromSafetensors(modelFile).weights;
  const weights = config.legacy ? saved : toEngineNames(saved);
  assertFinite(
    weights,
    'weight',
    modelFile,
    "this checkpoint cannot be used; resume from an earlier one (delete this step's folder).",
  );
  checkWeightsMatchConfig(weights, config, modelFile, configFile);
  const stateFile = need('trainer_state.json');
  const trainerState: TrainerState = checkTrainerState(readJsonFile(stateFile), stateFile);
  const tokenizer = await loadCheckpointTokenizer(dir, config);
  const vocabSize = config.model.vocab_size;
  // Our BPE's vocabulary is the model's; a Hugging Face model may have more embedding rows than tokens.
  if (config.tokenizer === 'bpe' ? tokenizer.vocabSize !== vocabSize : tokenizer.vocabSize > vocabSize)
    throw new Error(
      `${path.join(dir, 'tokenizer.json')}: the tokenizer has ${tokenizer.vocabSize} tokens but ${configFile} ` +
        `says vocab_size ${vocabSize}; the two files are not of one checkpoint.`,
    );
  const optimizer = readOptimizerFile(path.join(dir, 'optimizer.safetensors'), config.legacy === true);
  return { config, weights, optimizer, trainerState, tokenizer };
}

/** AdamW's state from `optimizerFile` (engine names), or undefined when the checkpoint has none. */
export function readOptimizerFile(optimizerFile: string, legacy: boolean): OptimizerState | undefined {
  if (!existsSync(optimizerFile)) return undefined;
  const read = fromSafetensors(optimizerFile);
  const metadata = read.metadata;
  const moments = legacy ? read.weights : toEngineNames(read.weights);
  const step = Number(metadata.step ?? 0);
  if (!Number.isSafeInteger(step) || step < 0)
    throw new Error(`${optimizerFile}: __metadata__.step must be a whole number ≥ 0, got ${quote(metadata.step)}`);
  assertFinite(
    moments,
    'optimizer state',
    optimizerFile,
    "this checkpoint cannot be resumed; resume from an earlier one (delete this step's folder).",
  );
  return { step, moments, file: optimizerFile };
}

/** optimizer.safetensors' bytes: AdamW's moments under PyTorch's names, its step in the metadata. */
export function optimizerFileBytes(optimizer: OptimizerState): Uint8Array {
  return encodeSafetensors(toSafetensors(toCheckpointNames(optimizer.moments)), {
    format: 'pt',
    optimizer: 'AdamW',
    step: String(optimizer.step),
  });
}

/** A checkpoint's tokenizer: our BPE, or the Hugging Face model's own files it was copied from. */
export async function loadCheckpointTokenizer(dir: string, config: ModelCheckpointConfig): Promise<Tokenizer> {
  if (config.tokenizer === 'bpe') return BpeTokenizer.load(dir);
  const eos = isLlamaConfig(config.model) ? config.model.architecture.tokenIds.eos : [config.eos_token_id];
  return HfTokenizerAdapter.load(dir, { bos: config.bos_token_id ?? null, eos, pad: config.pad_token_id });
}

/**
 * The newest `step-<n>` folder under a run's checkpoints whose weights are all finite, or undefined.
 * A checkpoint holding NaN or Infinity is skipped with a warning naming its file and tensor, so a
 * resume continues from the last good one. A damaged one (a header that does not decode) throws.
 */
export function latestCheckpoint(
  runDir: string,
  warn: (message: string) => void = (message) => process.stderr.write(`warning: ${message}\n`),
): { dir: string; step: number } | undefined {
  const root = path.join(runDir, 'checkpoints');
  if (!existsSync(root)) return undefined;
  const steps = readdirSync(root)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => b - a);
  for (const step of steps) {
    const dir = path.join(root, `step-${step}`);
    // A LoRA checkpoint's trained weights are its adapters (its model.safetensors, if any, TRL's value head).
    const adapterFile = path.join(dir, 'adapter_model.safetensors');
    const modelFile = existsSync(adapterFile) ? adapterFile : path.join(dir, 'model.safetensors');
    if (!existsSync(modelFile)) return { dir, step }; // loadCheckpoint says what is missing
    const bad = firstNonFinite(fromSafetensors(modelFile).weights);
    if (!bad) return { dir, step };
    warn(
      `${modelFile}: weight "${bad.name}" holds ${bad.value} at element ${bad.index}; ` +
        'skipping this checkpoint for the one before',
    );
  }
  return undefined;
}
