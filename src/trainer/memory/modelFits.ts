/**
 * The stage loader's check: {@link checkModelFits} estimates a CausalLmConfig's stage (modelMemory.ts) against the
 * engine's and backend's memory (memoryBudget.ts) and, when it cannot fit, throws a UserError that names the
 * figures and what would fit instead — LoRA with PEFT's default targets, ONNX Runtime or a GPU backend, the
 * largest block_size, the largest batch — each estimated the same way.
 */
import { UserError, type UserErrorDetails } from '../../shared/userError';
import { isLlamaConfig } from '../model/causalLmConfig';
import { formatBytes, isGpuTarget, largest, memoryTarget, webgpuDefaultLimits } from './memoryBudget';
import { defaultLora, estimateModelMemory, type ModelMemoryEstimate, type ModelMemoryRequest } from './modelMemory';
import { describeParts } from './stageMemory';

/** The shortest context the advice offers. */
const shortestContext = 8;

export interface ModelFitsOptions {
  /** Where the refusal points (the config file, the `model.from` or batch setting). */
  readonly details?: UserErrorDetails;
  /** The batch setting's name in the stage's config, for the advice (default "batch size"). */
  readonly batchField?: string;
}

/** The estimate when the stage fits; a UserError naming the figures and what would fit otherwise. */
export function checkModelFits(request: ModelMemoryRequest, options: ModelFitsOptions = {}): ModelMemoryEstimate {
  const refusal = modelFitsRefusal(request, options.batchField);
  if (refusal) throw new UserError(refusal.message, { ...options.details, hint: refusal.hint });
  return estimateModelMemory(request);
}

/** The largest buffer WebGPU gives one tensor: the smaller of its two limits. */
function webgpuBufferLimit(request: ModelMemoryRequest): number {
  const limits = request.webgpuLimits ?? webgpuDefaultLimits;
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
}

const fits = (request: ModelMemoryRequest) => {
  const estimate = estimateModelMemory(request);
  const bufferOk =
    memoryTarget(request.engine, request.backend) !== 'webgpu' ||
    estimate.largestBufferBytes <= webgpuBufferLimit(request);
  return estimate.bytes <= estimate.budget.bytes && bufferOk;
};

function describeModel(request: ModelMemoryRequest, estimate: ModelMemoryEstimate): string {
  const { config } = request;
  const family = isLlamaConfig(config) ? config.architecture.modelType : 'gpt2';
  const millions = (estimate.parameters / 1e6).toFixed(1);
  const blockSize = request.blockSize ?? config.block_size;
  const how = request.lora ? `LoRA r ${request.lora.r}` : 'full';
  const settings = `${how}, block_size ${blockSize}, batch ${request.batchSize}`;
  return `${request.stage} of a ${family} model of ${millions} M parameters (${settings})`;
}

/** Why the request cannot fit, and what would; undefined when it fits. */
export function modelFitsRefusal(
  request: ModelMemoryRequest,
  batchField = 'batch size',
): { message: string; hint: string; estimate: ModelMemoryEstimate } | undefined {
  if (fits(request)) return undefined;
  const estimate = estimateModelMemory(request);
  const { budget } = estimate;
  const problem =
    estimate.bytes > budget.bytes
      ? `needs about ${formatBytes(estimate.bytes)} (${describeParts(estimate.parts)}), more than ${budget.what}`
      : `has a tensor of ${formatBytes(estimate.largestBufferBytes)}, more than the ` +
        `${formatBytes(webgpuBufferLimit(request))} WebGPU gives one buffer (maxStorageBufferBindingSize / ` +
        `maxBufferSize${request.webgpuLimits ? '' : ", the spec's defaults: the adapter's own were not given"})`;
  const message = `${describeModel(request, estimate)} ${problem}`;
  return { message, hint: `what would fit: ${alternatives(request, batchField).join('; or ')}`, estimate };
}

/** Each change that alone makes the request fit, with its estimate; the GPU choice, whose memory is not known. */
function alternatives(request: ModelMemoryRequest, batchField: string): string[] {
  const ways: string[] = [];
  const target = memoryTarget(request.engine, request.backend);
  if (!request.lora && request.stage !== 'preferences' && request.stage !== 'sample') {
    const lora = defaultLora(request.config);
    const withLora = { ...request, lora };
    const estimate = estimateModelMemory(withLora);
    const full = estimateModelMemory(request);
    const state = (e: ModelMemoryEstimate) => formatBytes(e.parts['gradients and AdamW state']);
    const modules = Array.isArray(lora.targetModules) ? lora.targetModules.join(', ') : 'all-linear';
    ways.push(
      `LoRA ("lora": {"r": ${lora.r}, "alpha": ${lora.alpha}}, targets ${modules}): ` +
        `about ${formatBytes(estimate.bytes)}, optimizer state ${state(estimate)} instead of ${state(full)}` +
        (fits(withLora) ? '' : ' — still too much alone'),
    );
  }
  if (target !== 'onnxruntime' && !isGpuTarget(target)) {
    const onnx = { ...request, engine: 'onnxruntime' as const };
    const estimate = estimateModelMemory(onnx);
    if (fits(onnx))
      ways.push(
        `"engine": "onnxruntime" (native memory: about ${formatBytes(estimate.bytes)} of ${estimate.budget.what})`,
      );
  }
  if (!isGpuTarget(target))
    ways.push(
      `a GPU backend ("engine": "tfjs" with "backend": "tfjs-node-gpu" or "webgpu"), if the GPU has ` +
        `${formatBytes(estimateModelMemory({ ...request, engine: 'tfjs', backend: 'tfjs-node-gpu' }).bytes)}`,
    );
  const blockSize = request.blockSize ?? request.config.block_size;
  // fits(n) is monotone in n; the floor is applied to the answer (a predicate false at 1 would stop the search).
  const context = largest(blockSize - 1, (n) => fits({ ...request, blockSize: n }));
  if (context >= shortestContext) ways.push(`block_size ${context}`);
  const batch = largest(request.batchSize - 1, (b) => fits(scaledBatch(request, b)));
  if (batch >= 1) ways.push(`${batchField} ${batch}`);
  return ways;
}

/** The request at a training batch of `b`, its generation batch scaled alike. */
function scaledBatch(request: ModelMemoryRequest, b: number): ModelMemoryRequest {
  const generationBatch =
    request.generationBatch === undefined
      ? undefined
      : Math.max(1, Math.floor((request.generationBatch * b) / request.batchSize));
  return { ...request, batchSize: b, generationBatch };
}
