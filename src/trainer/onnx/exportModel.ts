/**
 * `rlhf-lens export <checkpoint> [--out DIR]`: a checkpoint (or a run folder: its latest checkpoint)
 * as a transformers.js-style folder that onnxruntime-node and transformers.js both load:
 *   config.json              GPT-2's config fields (model_type "gpt2"), plus what RLHF Lens needs back
 *   generation_config.json   BOS / EOS / pad ids
 *   tokenizer.json, tokenizer_config.json
 *   onnx/model.onnx          the KV-cache graph (gptOnnxGraph.ts), with the checkpoint's scalar heads as extra outputs
 * A policy exports with its value head (`values`), a reward model with its score head (`scores`).
 * The weights come straight from model.safetensors: exporting needs no tfjs.
 */
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { latestCheckpoint, loadCheckpoint } from '../checkpoint/checkpoint';
import { gptConfigOf } from '../checkpoint/modelLoading';
import { writeFileDurable, writeFolderDurable, writeJsonDurable } from '../../shared/durableWrite';
import { asUserError, parseCommandArgs } from '../cli';
import { buildGptOnnx } from './gptOnnxGraph';

export interface ExportResult {
  readonly outDir: string;
  readonly checkpointDir: string;
  readonly heads: readonly string[];
  readonly bytes: number;
}

/** A checkpoint folder, or a run folder's latest checkpoint. */
export function resolveCheckpointDir(input: string): string {
  const dir = path.resolve(input);
  if (existsSync(path.join(dir, 'model.safetensors'))) return dir;
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

export async function exportCheckpoint(input: string, outDir?: string): Promise<ExportResult> {
  const checkpointDir = resolveCheckpointDir(input);
  const checkpoint = await loadCheckpoint(checkpointDir);
  const config = gptConfigOf(checkpoint.config);
  const heads = checkpoint.config.heads ?? [];
  const bytes = buildGptOnnx(config, checkpoint.weights, { heads, kvCache: true });
  const target = path.resolve(outDir ?? defaultExportDir(checkpointDir));

  // One durable folder: filled under a temporary name and renamed into place, so a reader never sees half a folder.
  await writeFolderDurable(target, async (temporary) => {
    mkdirSync(path.join(temporary, 'onnx'));
    writeFileDurable(path.join(temporary, 'onnx', 'model.onnx'), bytes);
    const { bos_token_id, eos_token_id, pad_token_id } = checkpoint.config;
    writeJsonDurable(path.join(temporary, 'config.json'), {
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
      // RLHF Lens' own fields: the extra outputs and how a reward model's scores are pooled.
      rlhf_lens_heads: heads,
      ...(heads.includes('score') && {
        score_pooling: config.score_pooling ?? 'last',
        score_bias: checkpoint.weights.get('score.bias')?.data[0] ?? 0,
      }),
      rlhf_lens_source: checkpointDir,
    });
    writeJsonDurable(path.join(temporary, 'generation_config.json'), { bos_token_id, eos_token_id, pad_token_id });
    await checkpoint.tokenizer.save(temporary, { modelMaxLength: config.block_size });
  });
  return { outDir: target, checkpointDir, heads, bytes: bytes.byteLength };
}

export const exportUsage =
  'Usage: rlhf-lens export <checkpoint-or-run-dir> [--out DIR]   the model as ONNX (config.json, ' +
  'tokenizer.json, onnx/model.onnx) for onnxruntime and transformers.js';

/**
 * The CLI command; prints the folder on stdout (the editor's command reads it). Errors go to the CLI's one error path.
 */
export async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { out: { type: 'string' } }, exportUsage, { min: 1, max: 1 });
  const input = path.resolve(positionals[0]);
  let result: ExportResult;
  try {
    result = await exportCheckpoint(input, values.out);
  } catch (error) {
    throw asUserError(error, {
      file: input,
      hint: 'give a checkpoint folder (with model.safetensors) or a run folder with checkpoints/step-<n>/',
    });
  }
  process.stderr.write(
    `exported ${result.checkpointDir} (heads: ${result.heads.join(', ') || 'none'}; ` +
      `${(result.bytes / 1024).toFixed(0)} KiB) to\n`,
  );
  process.stdout.write(`${result.outDir}\n`);
  return 0;
}
