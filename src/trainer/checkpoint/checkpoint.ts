/**
 * Checkpoints: `checkpoints/step-<n>/` with `model.safetensors`, `optimizer.safetensors` (AdamW's
 * moments under PyTorch's `exp_avg` / `exp_avg_sq` names), `config.json`, `trainer_state.json` and
 * the tokenizer. A checkpoint is written as one durable folder (shared/durableWrite.ts: every file
 * complete and fsynced in a temporary folder, then renamed into place), so a crash or a full disk
 * mid-write leaves the previous checkpoints intact and never a half-written one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '../../shared/safetensors';
import type { GptConfig } from '../model/gptConfig';
import type { ScalarHead } from '../model/gpt';
import type { AdamWState } from '../optim/adamW';
import { BpeTokenizer } from '../tokenizer';
import { writeFileDurable, writeFolderDurable, writeJsonDurable } from '../../shared/durableWrite';

export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

export interface ModelCheckpointConfig extends GptConfig {
  readonly model_type: 'rlhf-lens-gpt';
  readonly heads: readonly ScalarHead[];
  readonly bos_token_id: number;
  readonly eos_token_id: number;
  readonly pad_token_id: number;
}

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
  readonly optimizer?: AdamWState;
  readonly trainerState: TrainerState;
  readonly tokenizer: BpeTokenizer;
}

function toSafetensors(weights: WeightMap): Record<string, SafetensorsTensor> {
  const out: Record<string, SafetensorsTensor> = {};
  for (const [name, { shape, data }] of weights) out[name] = { dtype: 'F32', shape, data };
  return out;
}

function fromSafetensors(file: string): { weights: WeightMap; metadata: Record<string, string> } {
  const decoded = decodeSafetensors(new Uint8Array(readFileSync(file)));
  const weights: WeightMap = new Map();
  for (const [name, tensor] of Object.entries(decoded.tensors)) {
    if (tensor.dtype !== 'F32') throw new Error(`${file}: tensor "${name}" is ${tensor.dtype}; RLHF Lens checkpoints hold F32`);
    weights.set(name, { shape: tensor.shape, data: tensor.data });
  }
  return { weights, metadata: decoded.metadata };
}

export async function saveCheckpoint(dir: string, contents: CheckpointContents): Promise<void> {
  await writeFolderDurable(dir, async (folder) => {
    writeFileDurable(path.join(folder, 'model.safetensors'), encodeSafetensors(toSafetensors(contents.weights), { format: 'pt' }));
    if (contents.optimizer) {
      writeFileDurable(
        path.join(folder, 'optimizer.safetensors'),
        encodeSafetensors(toSafetensors(contents.optimizer.moments), { format: 'pt', optimizer: 'AdamW', step: String(contents.optimizer.step) }),
      );
    }
    writeJsonDurable(path.join(folder, 'config.json'), contents.config);
    writeJsonDurable(path.join(folder, 'trainer_state.json'), contents.trainerState);
    await contents.tokenizer.save(folder, { modelMaxLength: contents.config.block_size });
  });
}

export async function loadCheckpoint(dir: string): Promise<CheckpointContents> {
  const need = (file: string) => {
    const full = path.join(dir, file);
    if (!existsSync(full)) throw new Error(`${dir} is not a checkpoint: ${file} is missing.`);
    return full;
  };
  const config = JSON.parse(readFileSync(need('config.json'), 'utf8')) as ModelCheckpointConfig;
  if (config.model_type !== 'rlhf-lens-gpt') throw new Error(`${path.join(dir, 'config.json')}: model_type is ${JSON.stringify(config.model_type)}, expected "rlhf-lens-gpt"`);
  const { weights } = fromSafetensors(need('model.safetensors'));
  const trainerState = JSON.parse(readFileSync(need('trainer_state.json'), 'utf8')) as TrainerState;
  const tokenizer = await BpeTokenizer.load(dir);
  let optimizer: AdamWState | undefined;
  const optimizerFile = path.join(dir, 'optimizer.safetensors');
  if (existsSync(optimizerFile)) {
    const { weights: moments, metadata } = fromSafetensors(optimizerFile);
    optimizer = { step: Number(metadata.step ?? 0), moments };
  }
  return { config, weights, optimizer, trainerState, tokenizer };
}

/** The newest `step-<n>` folder under a run's checkpoints, or undefined. */
export function latestCheckpoint(runDir: string): { dir: string; step: number } | undefined {
  const root = path.join(runDir, 'checkpoints');
  if (!existsSync(root)) return undefined;
  const steps = readdirSync(root)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => b - a);
  return steps.length > 0 ? { dir: path.join(root, `step-${steps[0]}`), step: steps[0] } : undefined;
}
