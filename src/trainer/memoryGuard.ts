/**
 * Memory guard: before a stage starts (and before any run folder is written), estimates the bytes
 * the stage needs — parameters, gradients, AdamW's two moments, the frozen reference and reward
 * models it loads, and the activations autograd keeps for one batch — and refuses a config that
 * cannot fit: wasm's 4 GiB linear memory, or the machine's free memory for the other backends and for
 * ONNX Runtime (native memory). The refusal gives the estimate and the largest batch (or model) that fits.
 *
 * The activation model (float32, no activation checkpointing, as tfjs's tape keeps every
 * intermediate of the forward pass until the backward pass has used it), per sequence of T tokens:
 *   per layer  a·T·C   (layer norms, q/k/v and their head-split copies, MLP at 4C with GELU's pieces)
 *            + b·H·T²  (attention scores: q·kᵀ, scaled, masked, softmax, and their gradients)
 *   top        c·T·V   (logits, log-softmax, their gradients)
 * with a, b, c calibrated against the wasm heap real SFT stages grew to (bench/memoryCalibration.ts):
 *   2×64, T 64, batch 16              estimate 181 MB, heap 181 MB
 *   4×128, T 128, batch 16            estimate 945 MB, heap 1181 MB
 *   2×64 (8 heads), T 256, batch 16   estimate 1273 MB, heap 1305 MB (memoryGuard.test.ts, one step)
 *   2×64 (8 heads), T 512, batch 16   estimate 4105 MB, heap 3758 MB
 *   4×256, T 256, b16 and 6×384, T 128, b32: estimates over 4 GiB; both ran out of wasm memory.
 * Inference (sampling with a KV cache, scoring without grads) keeps one layer's intermediates at a time plus
 * the cache. The same model covers the Llama family (GQA's narrower k/v, SwiGLU, rotary; memory/activations.ts),
 * checked on a real one (memoryGuardLlama.test.ts: a BF16 folder, hidden 256, 4 layers, 8 heads, 2 kv heads,
 * MLP 688, vocabulary 4096, 3.8 M parameters, two full SFT steps at batch 8, T 128 on wasm):
 *   estimate 975 MiB, heap 1124 MiB, RSS growth 1094 MiB;  batch 4, T 256: estimate 1167 MiB, heap 1317 MiB.
 *
 * ONNX Runtime: not derived from its gradient graph's tensor sizes but measured. Its sessions run without the
 * CPU memory arena (onnxThreads.ts), so a step's intermediates are freed when the step ends and its planner
 * frees each one after its last use. Peak RSS over the process's baseline of real lm steps (1 thread, one
 * session; graph building, session and weights included) against the tfjs estimate's activations above:
 *   2×64, T 64, b16: 72 MB vs 123 MB;  4×128, T 128, b16: 354 MB vs 840 MB (4 cached sessions);
 *   2×64 (8 heads), T 256, b16: 290 MB vs 1164 MB;  T 512: 775 MB vs 3864 MB.
 * So ONNX Runtime's training activations are taken as onnxActivationShare of tfjs's: the largest measured
 * ratio (0.59) with a margin. Its inference (the KV-cache sampler) is taken as tfjs's, unmeasured.
 *
 * The pieces live in memory/: modelSize (dimensions, parameter counts), activations, memoryBudget (per engine and
 * backend), stageMemory and stageGuard (a run config's GPT, checked by the pipeline), modelMemory and modelFits
 * (any CausalLmConfig — our GPT, a gpt2 or Llama-family folder — with LoRA, checked by the stage loader).
 */
import type { EngineName } from '../shared/backendNames';
import {
  inferenceActivationBytes as dimsInferenceActivationBytes,
  kvCacheBytes,
  trainingActivationBytes as dimsTrainingActivationBytes,
} from './memory/activations';
import { shapeDims, type ModelShape } from './memory/modelSize';

export {
  activationPerLayerWidth,
  attentionCopies,
  backwardFactor,
  kvCacheBytes,
  logitCopies,
  onnxActivationShare,
} from './memory/activations';
export {
  baseBytes,
  formatBytes,
  isGpuTarget,
  memoryBudget,
  memoryTarget,
  wasmLimitBytes,
  webgpuDefaultLimits,
  type MemoryBudget,
  type MemoryTarget,
  type WebGpuBufferLimits,
} from './memory/memoryBudget';
export {
  causalLmDims,
  parameterCount,
  shapeDims,
  transformerParameters,
  type ModelDims,
  type ModelShape,
} from './memory/modelSize';
export {
  checkStageMemory,
  estimateStageMemory,
  stageBatchShape,
  type MemoryEstimate,
  type MemoryRefusal,
} from './memory/stageMemory';
export { assertStageFits, configShape, likelyBackend, stageModelShape } from './memory/stageGuard';
export {
  defaultLora,
  estimateModelMemory,
  loraParameters,
  type ModelMemoryEstimate,
  type ModelMemoryRequest,
  type StageKind,
} from './memory/modelMemory';
export { checkModelFits, modelFitsRefusal, type ModelFitsOptions } from './memory/modelFits';

/** Bytes autograd needs for one training batch of our GPT's `shape` (see memory/activations.ts). */
export const trainingActivationBytes = (
  shape: ModelShape,
  batch: number,
  length = shape.block_size,
  engine: EngineName = 'tfjs',
): number => dimsTrainingActivationBytes(shapeDims(shape), batch, length, engine);

/** Bytes of sampling or scoring `batch` sequences of our GPT's `shape` without gradients, its KV cache included. */
export const inferenceActivationBytes = (shape: ModelShape, batch: number, length = shape.block_size): number =>
  dimsInferenceActivationBytes(shapeDims(shape), batch, length) + kvCacheBytes(shapeDims(shape), batch, length);
