/**
 * The memory one stage needs for a CausalLmConfig — our GPT, an HF gpt2 folder or a Llama-family folder — computed
 * from the architecture alone (config.json is enough), so a model that cannot fit is refused before a weight is read:
 *
 *   weights      the policy in F32 (the engines compute in F32; a folder's F16/BF16 tensors are widened on load),
 *                its LoRA adapters and scalar heads
 *   optimizer    gradients and AdamW's two moments of the TRAINABLE weights only: everything in a full fine-tune;
 *                with LoRA the adapters (r·(in + out) per target) and the heads
 *   activations  the peak of the training step (activations.ts) and of generation, whichever is larger
 *   KV cache     generation's K and V: 2 × kv heads × head_dim × layers × positions × batch
 *   reference    PPO's and DPO's frozen copy of the policy; none with LoRA (the base model is the policy with its
 *                adapters off)
 *   reward model PPO's, frozen, with its score head
 *   read buffer  one tensor at a time in transit from a folder: its bytes in the file's dtype and its F32 copy
 */
import type { BackendName, EngineName } from '../../shared/backendNames';
import type { HfTorchDtype } from '../hf/hfArchitecture';
import { defaultTargetModules, loraTargets, type LoraSettings } from '../lora/loraTargets';
import { isLlamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import {
  bytesPerFloat,
  inferenceActivationBytes,
  kvCacheBytes,
  largestActivationElements,
  trainingActivationBytes,
} from './activations';
import { baseBytes, memoryBudget, memoryTarget, type MemoryBudget, type WebGpuBufferLimits } from './memoryBudget';
import { causalLmDims, largestTensorElements, scalarHeadParameters, transformerParameters } from './modelSize';

/** What a stage does with its model: trains it (and which heads), or only samples and scores. */
export type StageKind = 'sft' | 'reward' | 'ppo' | 'dpo' | 'preferences' | 'sample';

export interface ModelMemoryRequest {
  /** The model the stage trains or samples (for `reward`, the reward model). */
  readonly config: CausalLmConfig;
  /** Train LoRA adapters only (the trunk frozen). */
  readonly lora?: LoraSettings;
  readonly stage: StageKind;
  /** Sequences one training step runs forward and backward (sampling stages: sequences sampled at once). */
  readonly batchSize: number;
  /** Sequences sampled or scored without gradients at once (PPO's rollouts, DPO's reference); default batchSize. */
  readonly generationBatch?: number;
  /** The context fed to the model; default config.block_size. */
  readonly blockSize?: number;
  readonly engine: EngineName;
  readonly backend: BackendName;
  /** PPO's reward model, when it is not the policy's architecture. */
  readonly rewardConfig?: CausalLmConfig;
  /** The dtype of the folder's weight files (a read buffer is counted); default: config.json's torch_dtype. */
  readonly fileDtype?: HfTorchDtype;
  /** The machine's free memory (default: os.freemem()). */
  readonly freeBytes?: number;
  /** The WebGPU adapter's limits, when known (default: the spec's). */
  readonly webgpuLimits?: WebGpuBufferLimits;
}

export interface ModelMemoryEstimate {
  readonly bytes: number;
  /** Bytes by what they hold; they sum to `bytes`. */
  readonly parts: Readonly<Record<string, number>>;
  /** The policy's weights: transformer, adapters, heads. */
  readonly parameters: number;
  /** What the optimizer updates. */
  readonly trainableParameters: number;
  /** The largest single buffer: a weight or one activation (WebGPU gives each tensor one buffer). */
  readonly largestBufferBytes: number;
  readonly budget: MemoryBudget;
}

/** PEFT's LoRA defaults (LoraConfig: r 8, lora_alpha 8 in PEFT; 16 is the common choice), targets per model type. */
export function defaultLora(config: CausalLmConfig): LoraSettings {
  const modelType = isLlamaConfig(config) ? config.architecture.modelType : 'gpt2';
  return { r: 8, alpha: 16, dropout: 0.05, targetModules: defaultTargetModules[modelType] };
}

/** Adapter parameters: A [r, in] and B [out, r] per target. */
export function loraParameters(config: CausalLmConfig, lora: LoraSettings): number {
  return loraTargets(config, lora).reduce((sum, t) => sum + lora.r * (t.inFeatures + t.outFeatures), 0);
}

/** The scalar heads a stage trains on the policy: PPO's value head, the reward model's score head. */
const headsOf = (stage: StageKind) => (stage === 'ppo' || stage === 'reward' ? 1 : 0);
const trains = (stage: StageKind) => stage !== 'preferences' && stage !== 'sample';
const generates = (stage: StageKind) => stage === 'ppo' || stage === 'preferences' || stage === 'sample';
const hasReference = (stage: StageKind) => stage === 'ppo' || stage === 'dpo';

const fileBytesPerElement: Record<HfTorchDtype, number> = { float32: 4, float16: 2, bfloat16: 2 };

function folderDtype(request: ModelMemoryRequest): HfTorchDtype | undefined {
  if (request.fileDtype) return request.fileDtype;
  return isLlamaConfig(request.config) ? (request.config.architecture.torchDtype ?? 'float32') : undefined;
}

const rewardModelParameters = (reward: CausalLmConfig) =>
  transformerParameters(reward) + scalarHeadParameters(causalLmDims(reward).hidden);

export function estimateModelMemory(request: ModelMemoryRequest): ModelMemoryEstimate {
  const { stage, lora } = request;
  const config = { ...request.config, block_size: request.blockSize ?? request.config.block_size };
  const dims = causalLmDims(config);
  const transformer = transformerParameters(config);
  const heads = headsOf(stage) * scalarHeadParameters(dims.hidden);
  const adapters = lora ? loraParameters(config, lora) : 0;
  const trainable = trains(stage) ? (lora ? adapters : transformer) + heads : 0;
  const train = trains(stage) ? request.batchSize : 0;
  const generation = stage === 'sft' || stage === 'reward' ? 0 : (request.generationBatch ?? request.batchSize);
  const target = memoryTarget(request.engine, request.backend);
  const budget = memoryBudget(target, request.freeBytes);
  const kvCache = generates(stage) ? kvCacheBytes(dims, generation) : 0;
  // The KV cache lives while rollouts run; during the update the training activations take its place.
  const peak = Math.max(
    trainingActivationBytes(dims, train, dims.blockSize, budget.engine),
    inferenceActivationBytes(dims, generation) + kvCache,
  );
  const reward = request.rewardConfig ?? config;
  const dtype = folderDtype(request);
  const largestWeight = largestTensorElements(config);
  const parts = {
    weights: bytesPerFloat * (transformer + adapters + heads),
    'gradients and AdamW state': 3 * bytesPerFloat * trainable,
    activations: peak - kvCache,
    'KV cache': kvCache,
    reference: hasReference(stage) && !lora ? bytesPerFloat * transformer : 0,
    'reward model': stage === 'ppo' ? bytesPerFloat * rewardModelParameters(reward) : 0,
    'read buffer': dtype ? largestWeight * (fileBytesPerElement[dtype] + bytesPerFloat) : 0,
    runtime: baseBytes,
  };
  const largestActivation = largestActivationElements(dims, Math.max(train, generation));
  return {
    bytes: Object.values(parts).reduce((sum, bytes) => sum + bytes, 0),
    parts,
    parameters: transformer + adapters + heads,
    trainableParameters: trainable,
    largestBufferBytes: bytesPerFloat * Math.max(largestWeight, largestActivation),
    budget,
  };
}
