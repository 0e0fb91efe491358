/**
 * `rlhf-lens export <checkpoint> [--out DIR]`: a checkpoint (or a run folder: its latest checkpoint)
 * as a transformers.js-style folder that onnxruntime-node and transformers.js both load:
 *   config.json              GPT-2's config fields (model_type "gpt2"), plus what RLHF Lens needs back
 *   generation_config.json   BOS / EOS / pad ids
 *   tokenizer.json, tokenizer_config.json
 *   onnx/model.onnx          the KV-cache graph (gptOnnxGraph.ts), with the checkpoint's scalar heads as extra outputs
 *   onnx/model.onnx_data     the weights, as ONNX external data, when they reach 2 GiB (or `--external-data`)
 * A policy exports with its value head (`values`), a reward model with its score head (`scores`).
 * The weights come straight from model.safetensors: exporting needs no tfjs. A LoRA checkpoint (a PEFT adapter
 * folder's adapter_config.json + adapter_model.safetensors beside its model.safetensors) exports merged:
 * W₀ + (α/r)·B·A in every adapted layer (lora/mergeLora.ts), so the graph is a plain model's. So does a LoRA
 * stage's checkpoint, an adapter folder naming its base (checkpointExportSource.ts). A Llama-family checkpoint
 * exports through llamaOnnxGraph.ts, its config.json in transformers' keys of its model_type.
 */
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { latestCheckpoint, loadCheckpoint, type CheckpointContents } from '../checkpoint/checkpoint';
import { gptConfigOf } from '../checkpoint/modelLoading';
import { writeFileDurable, writeFolderDurable, writeJsonDurable } from '../../shared/durableWrite';
import { asUserError, parseCommandArgs } from '../cli';
import type { NamedArrays } from '../engine/engine';
import { hasLoraWeights, mergeLora } from '../lora/mergeLora';
import { isLoraWeight, loraScale } from '../lora/loraTargets';
import { adapterConfigFile } from '../lora/peftConfig';
import { readAdapterFolder } from '../lora/peftAdapter';
import { isLlamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import { checkpointConfigJson } from '../checkpoint/checkpointConfig';
import { isLoraCheckpoint } from '../checkpoint/loraCheckpoint';
import { buildLlamaCheckpointOnnx, loraCheckpointSource, type ExportSource } from './checkpointExportSource';
import { buildGptOnnx } from './gptOnnxGraph';
import { withExternalDataFlag } from './hfOnnxExport';
import { externalDataFileName, protobufLimitBytes, withExternalData } from './onnxExternalData';

export interface ExportResult {
  readonly outDir: string;
  readonly checkpointDir: string;
  readonly heads: readonly string[];
  readonly bytes: number;
  /** True when the weights went to onnx/model.onnx_data. */
  readonly externalData: boolean;
  /** The base weights a LoRA adapter was merged into (empty for a plain checkpoint). */
  readonly mergedWeights: readonly string[];
}

export interface ExportOptions {
  /** Weights of at least this many bytes go to onnx/model.onnx_data (default 2 GiB, protobuf's limit; 0: always). */
  readonly externalDataThresholdBytes?: number;
}

/** A checkpoint folder, or a run folder's latest checkpoint. */
export function resolveCheckpointDir(input: string): string {
  const dir = path.resolve(input);
  if (existsSync(path.join(dir, 'model.safetensors')) || isLoraCheckpoint(dir)) return dir;
  const latest = latestCheckpoint(dir);
  if (latest) return latest.dir;
  throw new Error(`${dir} is neither a checkpoint (no model.safetensors) nor a run folder with checkpoints/step-<n>/.`);
}

/** Where an export goes by default: `<run>/onnx/step-<n>` for a run's checkpoint, else `<checkpoint>/onnx-export`. */
export function defaultExportDir(checkpointDir: string): string {
  const parent = path.dirname(checkpointDir);
  return path.basename(parent) === 'checkpoints'
    ? path.join(path.dirname(parent), 'onnx', path.basename(checkpointDir))
    : path.join(checkpointDir, 'onnx-export');
}

/**
 * The checkpoint's weights as a plain model's: with a PEFT adapter folder in `checkpointDir`, its adapters merged
 * into the base weights (and its heads where the checkpoint has none); adapter tensors never reach the graph.
 */
export function mergedCheckpointWeights(checkpointDir: string, config: CausalLmConfig, weights: NamedArrays) {
  if (!existsSync(path.join(checkpointDir, adapterConfigFile))) {
    if (hasLoraWeights(weights))
      throw new Error(
        `${path.join(checkpointDir, 'model.safetensors')} holds LoRA adapter tensors but ${adapterConfigFile} ` +
          'is missing beside it: r and lora_alpha, needed to merge them, are unknown',
      );
    return { weights, mergedWeights: [] as string[] };
  }
  const adapter = readAdapterFolder(checkpointDir, config);
  const merged = mergeLora(weights, adapter.adapters, adapter.targets, loraScale(adapter.settings));
  for (const name of [...merged.keys()]) if (isLoraWeight(name)) merged.delete(name);
  for (const [name, head] of adapter.heads) if (!merged.has(name)) merged.set(name, head);
  return { weights: merged, mergedWeights: adapter.targets.map((t) => t.baseWeight) };
}

export async function exportCheckpoint(
  input: string,
  outDir?: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const checkpointDir = resolveCheckpointDir(input);
  // A LoRA stage's checkpoint is its base + adapters, merged; any other holds its whole model.
  const source = (await loraCheckpointSource(checkpointDir)) ?? (await fullCheckpointSource(checkpointDir));
  const { checkpoint, weights, mergedWeights } = source;
  const heads = checkpoint.config.heads ?? [];
  const model = checkpoint.config.model;
  const modelBytes = isLlamaConfig(model)
    ? await buildLlamaCheckpointOnnx(model, weights, heads)
    : buildGptOnnx(gptConfigOf(checkpoint.config), weights, { heads, kvCache: true });
  const weightBytes = [...weights.values()].reduce((total, w) => total + w.data.byteLength, 0);
  const externalData = weightBytes >= (options.externalDataThresholdBytes ?? protobufLimitBytes);
  const dataFile = externalDataFileName('model.onnx');
  const files = externalData ? withExternalData(modelBytes, dataFile) : { model: modelBytes, data: undefined };
  const target = path.resolve(outDir ?? defaultExportDir(checkpointDir));

  // One durable folder: filled under a temporary name and renamed into place, so a reader never sees half a folder.
  await writeFolderDurable(target, async (temporary) => {
    mkdirSync(path.join(temporary, 'onnx'));
    writeFileDurable(path.join(temporary, 'onnx', 'model.onnx'), files.model);
    if (files.data !== undefined) writeFileDurable(path.join(temporary, 'onnx', dataFile), files.data);
    const hfConfig = exportedConfigJson(checkpoint, weights, checkpointDir);
    writeJsonDurable(path.join(temporary, 'config.json'), externalData ? withExternalDataFlag(hfConfig) : hfConfig);
    const { bos_token_id, eos_token_id, pad_token_id } = checkpoint.config;
    writeJsonDurable(path.join(temporary, 'generation_config.json'), { bos_token_id, eos_token_id, pad_token_id });
    await checkpoint.tokenizer.save(temporary, { modelMaxLength: model.block_size });
  });
  const bytes = files.model.byteLength + (files.data?.byteLength ?? 0);
  return { outDir: target, checkpointDir, heads, bytes, externalData, mergedWeights };
}

/** A checkpoint that holds its whole model, with a PEFT adapter beside it merged. */
async function fullCheckpointSource(checkpointDir: string): Promise<ExportSource> {
  const checkpoint = await loadCheckpoint(checkpointDir);
  return { checkpoint, ...mergedCheckpointWeights(checkpointDir, checkpoint.config.model, checkpoint.weights) };
}

/**
 * The exported config.json: transformers' config of the architecture (GPT-2's keys for our GPT, the Llama family's
 * own), plus what RLHF Lens needs back — the extra outputs and how a reward model's scores are pooled.
 */
function exportedConfigJson(
  checkpoint: CheckpointContents,
  weights: NamedArrays,
  checkpointDir: string,
): Record<string, unknown> {
  const heads = checkpoint.config.heads ?? [];
  const lens = {
    rlhf_lens_heads: heads,
    ...(heads.includes('score') && {
      score_pooling: checkpoint.config.model.score_pooling ?? 'last',
      score_bias: weights.get('score.bias')?.data[0] ?? 0,
    }),
    rlhf_lens_source: checkpointDir,
  };
  if (isLlamaConfig(checkpoint.config.model)) {
    const { rlhf_lens: _ours, ...transformers } = checkpointConfigJson(checkpoint.config);
    return { ...transformers, use_cache: true, ...lens };
  }
  const config = gptConfigOf(checkpoint.config);
  const { bos_token_id, eos_token_id, pad_token_id } = checkpoint.config;
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: config.vocab_size,
    n_positions: config.block_size,
    n_ctx: config.block_size,
    n_embd: config.n_embd,
    n_layer: config.n_layer,
    n_head: config.n_head,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true,
    use_cache: true,
    bos_token_id,
    eos_token_id,
    pad_token_id,
    ...lens,
  };
}

export const exportUsage =
  'Usage: rlhf-lens export <checkpoint-or-run-dir> [--out DIR] [--external-data]   the model as ONNX ' +
  '(config.json, tokenizer.json, onnx/model.onnx; onnx/model.onnx_data for weights of 2 GiB or more, or always ' +
  'with --external-data) for onnxruntime and transformers.js; a LoRA checkpoint exports merged';

/**
 * The CLI command; prints the folder on stdout (the editor's command reads it). Errors go to the CLI's one error path.
 */
export async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { out: { type: 'string' }, 'external-data': { type: 'boolean' } },
    exportUsage,
    { min: 1, max: 1 },
  );
  const input = path.resolve(positionals[0]);
  let result: ExportResult;
  try {
    const always = values['external-data'] === true;
    result = await exportCheckpoint(input, values.out, always ? { externalDataThresholdBytes: 0 } : {});
  } catch (error) {
    throw asUserError(error, {
      file: input,
      hint: 'give a checkpoint folder (with model.safetensors) or a run folder with checkpoints/step-<n>/',
    });
  }
  process.stderr.write(
    `exported ${result.checkpointDir} (heads: ${result.heads.join(', ') || 'none'}; ` +
      (result.mergedWeights.length > 0 ? `LoRA merged into ${result.mergedWeights.length} weights; ` : '') +
      (result.externalData ? 'weights in onnx/model.onnx_data; ' : '') +
      `${(result.bytes / 1024).toFixed(0)} KiB) to\n`,
  );
  process.stdout.write(`${result.outDir}\n`);
  return 0;
}
