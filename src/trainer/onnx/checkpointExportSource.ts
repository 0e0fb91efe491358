/**
 * What `rlhf-lens export` builds its graph from, for every checkpoint a stage writes: a full checkpoint's weights
 * (with a PEFT adapter beside them merged, exportModel.ts mergedCheckpointWeights), or a LoRA stage's checkpoint —
 * an adapter folder naming its base (checkpoint/loraCheckpoint.ts) — read as base + adapters and merged,
 * W = W₀ + (α/r)·B·A; our GPT through gptOnnxGraph.ts, a Llama-family model through llamaOnnxGraph.ts.
 */
import type { CheckpointContents } from '../checkpoint/checkpoint';
import { isLoraCheckpoint } from '../checkpoint/loraCheckpoint';
import { readModelSource } from '../checkpoint/modelLoading';
import type { NamedArrays } from '../engine/engine';
import { hfWeightsInMemory } from '../hf/hfWeights';
import { loraTargets } from '../lora/loraTargets';
import { mergeLoraWeights } from '../lora/mergeLora';
import type { LlamaConfig } from '../model/causalLmConfig';
import type { ScalarHead } from '../model/gptConfig';
import { buildLlamaOnnx } from './llamaOnnxGraph';

export interface ExportSource {
  readonly checkpoint: CheckpointContents;
  /** Plain weights: adapters merged. */
  readonly weights: NamedArrays;
  /** The base weights adapters were merged into (empty when none were). */
  readonly mergedWeights: readonly string[];
}

/** A LoRA stage's checkpoint merged; undefined for a checkpoint that holds its whole model. */
export async function loraCheckpointSource(checkpointDir: string): Promise<ExportSource | undefined> {
  if (!isLoraCheckpoint(checkpointDir)) return undefined;
  const checkpoint = await readModelSource(checkpointDir, { seed: 0, keepAdapters: true });
  const lora = checkpoint.lora;
  if (!lora) return undefined;
  return {
    checkpoint,
    weights: mergeLoraWeights(checkpoint.weights, checkpoint.config.model, lora.settings),
    mergedWeights: loraTargets(checkpoint.config.model, lora.settings).map((t) => t.baseWeight),
  };
}

/** The KV-cache graph of a Llama-family checkpoint's plain weights, with its scalar heads as extra outputs. */
export function buildLlamaCheckpointOnnx(
  config: LlamaConfig,
  weights: NamedArrays,
  heads: readonly ScalarHead[],
): Promise<Uint8Array> {
  return buildLlamaOnnx(hfWeightsInMemory(config.architecture, weights, "the checkpoint's weights"), heads);
}
