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
 * the cache.
 *
 * ONNX Runtime: not derived from its gradient graph's tensor sizes but measured. Its sessions run without the
 * CPU memory arena (onnxThreads.ts), so a step's intermediates are freed when the step ends and its planner
 * frees each one after its last use. Peak RSS over the process's baseline of real lm steps (1 thread, one
 * session; graph building, session and weights included) against the tfjs estimate's activations above:
 *   2×64, T 64, b16: 72 MB vs 123 MB;  4×128, T 128, b16: 354 MB vs 840 MB (4 cached sessions);
 *   2×64 (8 heads), T 256, b16: 290 MB vs 1164 MB;  T 512: 775 MB vs 3864 MB.
 * So ONNX Runtime's training activations are taken as onnxActivationShare of tfjs's: the largest measured
 * ratio (0.59) with a margin. Its inference (the KV-cache sampler) is taken as tfjs's, unmeasured.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BackendName, EngineName } from '../shared/backendNames';
import type { ModelConfig, RunConfig, StageConfig } from '../shared/runConfig';
import { UserError } from '../shared/userError';

export interface ModelShape {
  readonly n_layer: number;
  readonly n_head: number;
  readonly n_embd: number;
  readonly block_size: number;
  readonly vocab_size: number;
}

const bytesPerFloat = 4;
/**
 * Floats per token per layer kept for the backward pass (×C): tfjs keeps every elementwise piece
 * of two layer norms, GELU's tanh approximation at 4C, the q/k/v splits and their head-split copies.
 */
export const activationPerLayerWidth = 100;
/** Copies of the attention scores (×H·T per token per layer): q·kᵀ, scaled, masked, softmax, and their gradients. */
export const attentionCopies = 8;
/** Floats per token for the logits and what the loss derives from them (×V). */
export const logitCopies = 8;
/** Intermediate tensors of the backward pass and the allocator's slack, over the kept activations. */
export const backwardFactor = 1.5;
/** What the runtime itself needs besides tensors (wasm module, data, buffers). */
export const baseBytes = 48 * 2 ** 20;
/** wasm32's linear memory. */
export const wasmLimitBytes = 4 * 2 ** 30;
/** ONNX Runtime's training activations as a share of the tfjs estimate (measured; see the header). */
export const onnxActivationShare = 0.75;

/** What a stage is checked against: ONNX Runtime (native memory), or the tfjs backend it runs on. */
export type MemoryTarget = BackendName | 'onnxruntime';

/** The target of a run on `engine` (tfjs runs on `backend`). */
export const memoryTarget = (engine: EngineName, backend: BackendName): MemoryTarget =>
  engine === 'onnxruntime' ? 'onnxruntime' : backend;

export function parameterCount(shape: ModelShape): number {
  const { n_layer: L, n_embd: C, block_size: T, vocab_size: V } = shape;
  // wte, wpe, L × (ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj), ln_f, a scalar head.
  return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + C + 1;
}

/** Bytes autograd needs for one training batch of `batch` sequences of `length` tokens. */
export function trainingActivationBytes(
  shape: ModelShape,
  batch: number,
  length = shape.block_size,
  engine: EngineName = 'tfjs',
): number {
  const { n_layer: L, n_head: H, n_embd: C, vocab_size: V } = shape;
  const perToken = L * (activationPerLayerWidth * C + attentionCopies * H * length) + logitCopies * V;
  const share = engine === 'onnxruntime' ? onnxActivationShare : 1;
  return share * backwardFactor * bytesPerFloat * batch * length * perToken;
}

/** Bytes of sampling or scoring `batch` sequences without gradients (one layer live at a time, plus the KV cache). */
export function inferenceActivationBytes(shape: ModelShape, batch: number, length = shape.block_size): number {
  const { n_layer: L, n_head: H, n_embd: C, vocab_size: V } = shape;
  const perToken = 2 * L * C + 12 * C + 3 * H * length + 3 * V;
  return bytesPerFloat * batch * length * perToken;
}

export interface MemoryEstimate {
  readonly bytes: number;
  /** What the bytes are, for the message and the tests. */
  readonly parts: Readonly<Record<string, number>>;
  /** The setting that scales the activations, and its value. */
  readonly batchField?: string;
  readonly batch: number;
}

/** Sequences per step for a batch setting of `b`, and the setting's name, by stage type. */
function batchShape(
  stage: StageConfig,
  config: RunConfig,
): { field?: string; batch: number; sequences: (b: number) => { train: number; inference: number } } {
  switch (stage.type) {
    case 'sft':
      return {
        field: 'per_device_train_batch_size',
        batch: stage.per_device_train_batch_size,
        sequences: (b) => ({ train: b, inference: 0 }),
      };
    case 'preferences':
      // Prompts are sampled 16 at a time (preferencesStage.ts), K completions each.
      return { batch: 16, sequences: () => ({ train: 0, inference: 16 * stage.completions_per_prompt }) };
    case 'reward': {
      // A step scores every completion of each judgment: K of the preferences stage it reads (4 when it reads a file).
      const source = config.stages.find((other) => (other.name ?? other.type) === stage.preferences);
      const completions = source?.type === 'preferences' ? source.completions_per_prompt : 4;
      return {
        field: 'per_device_train_batch_size',
        batch: stage.per_device_train_batch_size,
        sequences: (b) => ({ train: b * completions, inference: 0 }),
      };
    }
    case 'ppo':
      // Rollouts of the whole batch without gradients; updates on minibatches.
      return {
        field: 'batch_size',
        batch: stage.batch_size,
        sequences: (b) => ({
          train: Math.ceil(b / stage.num_mini_batches) * (stage.ptx_coef > 0 ? 2 : 1),
          inference: b,
        }),
      };
    case 'dpo':
      return {
        field: 'per_device_train_batch_size',
        batch: stage.per_device_train_batch_size,
        sequences: (b) => ({ train: 2 * b, inference: 2 * b }),
      };
  }
}

/** Models a stage holds: trained (4 copies: weights, gradients, two AdamW moments) and frozen. */
function modelCopies(stage: StageConfig): { trained: number; frozen: number } {
  switch (stage.type) {
    case 'sft':
    case 'reward':
      return { trained: 1, frozen: 0 };
    case 'preferences':
      return { trained: 0, frozen: 1 };
    case 'ppo':
      return { trained: 1, frozen: 2 }; // the reference and the reward model
    case 'dpo':
      return { trained: 1, frozen: 1 }; // the reference
  }
}

export function estimateStageMemory(
  stage: StageConfig,
  config: RunConfig,
  shape: ModelShape,
  batch?: number,
  engine: EngineName = 'tfjs',
): MemoryEstimate {
  const { field, batch: configured, sequences } = batchShape(stage, config);
  const b = batch ?? configured;
  const { train, inference } = sequences(b);
  const parameters = parameterCount(shape) * bytesPerFloat;
  const { trained, frozen } = modelCopies(stage);
  const parts = {
    weights: parameters * (trained + frozen),
    'gradients and AdamW state': parameters * 3 * trained,
    activations: Math.max(
      trained > 0 ? trainingActivationBytes(shape, train, shape.block_size, engine) : 0,
      inferenceActivationBytes(shape, inference),
    ),
    runtime: baseBytes,
  };
  return { bytes: Object.values(parts).reduce((a, x) => a + x, 0), parts, batchField: field, batch: b };
}

export interface MemoryBudget {
  readonly bytes: number;
  readonly what: string;
  /** Whose activation model the estimate uses. */
  readonly engine: EngineName;
}

/** What a target can use: wasm's 4 GiB linear memory, or the machine's free memory (ONNX Runtime, native tfjs). */
export function memoryBudget(target: MemoryTarget, freeBytes = os.freemem()): MemoryBudget {
  const engine = target === 'onnxruntime' ? 'onnxruntime' : 'tfjs';
  if (target === 'wasm')
    return {
      bytes: Math.min(wasmLimitBytes, freeBytes),
      what:
        wasmLimitBytes <= freeBytes
          ? "the wasm backend's 4 GiB of memory"
          : `this machine's free memory (${formatBytes(freeBytes)})`,
      engine,
    };
  return { bytes: freeBytes, what: `this machine's free memory (${formatBytes(freeBytes)})`, engine };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 40) return `${(bytes / 2 ** 40).toFixed(1)} TiB`;
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  return `${Math.max(1, Math.round(bytes / 2 ** 20))} MiB`;
}

/** The largest value in [1, upTo] for which `fits` holds (it is monotone), or 0. */
function largest(upTo: number, fits: (n: number) => boolean): number {
  if (!fits(1)) return 0;
  let low = 1;
  let high = Math.max(1, upTo);
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle - 1;
  }
  return low;
}

export interface MemoryRefusal {
  /** Path of the setting to point at in the config. */
  readonly path: (string | number)[];
  readonly message: string;
  readonly hint: string;
  readonly estimate: MemoryEstimate;
}

/** Why `stage` cannot fit `budget`, with the largest batch (or model) that does; undefined when it fits. */
export function checkStageMemory(
  config: RunConfig,
  stageIndex: number,
  shape: ModelShape,
  budget: MemoryBudget,
): MemoryRefusal | undefined {
  const stage = config.stages[stageIndex];
  const { engine } = budget;
  const estimate = estimateStageMemory(stage, config, shape, undefined, engine);
  if (estimate.bytes <= budget.bytes) return undefined;
  const parts = Object.entries(estimate.parts)
    .map(([name, bytes]) => `${name} ${formatBytes(bytes)}`)
    .join(', ');
  const message = `needs about ${formatBytes(estimate.bytes)} (${parts}), more than ${budget.what}`;
  const fitsBatch = (b: number) => estimateStageMemory(stage, config, shape, b, engine).bytes <= budget.bytes;
  if (estimate.batchField) {
    const batch = largest(estimate.batch, fitsBatch);
    // PPO's batch must stay a multiple of its minibatches.
    const fitting = stage.type === 'ppo' ? batch - (batch % stage.num_mini_batches) : batch;
    if (fitting >= (stage.type === 'ppo' ? Math.max(2, stage.num_mini_batches) : 1)) {
      return {
        path: ['stages', stageIndex, estimate.batchField],
        message: `stage "${stage.name ?? stage.type}" ${message}`,
        hint: `the largest ${estimate.batchField} that fits is ${fitting}; lower it (or the model's size)`,
        estimate,
      };
    }
  }
  // Not even the smallest batch fits: the model is too big. The largest n_layer at this width, else a narrower width.
  const smallest = estimate.batchField
    ? stage.type === 'ppo'
      ? Math.max(2, stage.num_mini_batches)
      : 1
    : estimate.batch;
  const fitsShape = (changed: Partial<ModelShape>) =>
    estimateStageMemory(stage, config, { ...shape, ...changed }, smallest, engine).bytes <= budget.bytes;
  const layers = largest(shape.n_layer, (n) => fitsShape({ n_layer: n }));
  const context = largest(shape.block_size, (n) => n >= 8 && fitsShape({ block_size: n }));
  const ways = [
    ...(layers > 0 ? [`n_layer ${layers} (at n_embd ${shape.n_embd}, block_size ${shape.block_size})`] : []),
    ...(context >= 8 ? [`block_size ${context} (at n_layer ${shape.n_layer})`] : []),
  ];
  const hint =
    ways.length > 0
      ? `even at the smallest batch the model is too big; what fits: ${ways.join(', or ')}`
      : `even one layer of width ${shape.n_embd} does not fit; lower n_embd`;
  return { path: ['model'], message: `stage "${stage.name ?? stage.type}" ${message}`, hint, estimate };
}

/** A config's model shape (the tokenizer's vocabulary is at most vocab_size). */
export function configShape(model: ModelConfig, vocabSize: number): ModelShape {
  return {
    n_layer: model.n_layer,
    n_head: model.n_head,
    n_embd: model.n_embd,
    block_size: model.block_size,
    vocab_size: vocabSize,
  };
}

/** Throws a UserError when stage `stageIndex` cannot fit the memory of `target` (see checkStageMemory). */
export function assertStageFits(
  config: RunConfig,
  stageIndex: number,
  target: MemoryTarget,
  options: {
    configDir?: string;
    freeBytes?: number;
    locate?: (at: (string | number)[]) => { file: string; line?: number; column?: number };
  } = {},
): void {
  // A resumed run's config comes from its run.json; when that lacks the model's shape, the run
  // folder's validator reports it, not this guard.
  const { model, tokenizer } = (config ?? {}) as Partial<RunConfig>;
  if (!config.stages?.[stageIndex] || typeof model?.n_layer !== 'number' || typeof tokenizer?.vocab_size !== 'number')
    return;
  const configDir = options.configDir ?? process.cwd();
  const shape = stageModelShape(config, stageIndex, (reference) =>
    readCheckpointShape(path.resolve(configDir, reference)),
  );
  const refusal = checkStageMemory(config, stageIndex, shape, memoryBudget(target, options.freeBytes));
  if (refusal)
    throw new UserError(refusal.message, {
      ...options.locate?.(refusal.path),
      field: formatField(refusal.path),
      hint: refusal.hint,
    });
}

function readCheckpointShape(dir: string): Partial<ModelShape> | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Partial<ModelShape>;
  } catch {
    return undefined; // not a checkpoint (yet): the config's shape stands; the stage's own checks say what is wrong
  }
}

/**
 * The backend "auto" will most likely pick, for checking a config before the backend starts: a
 * native tfjs package when one is installed, else wasm. Each stage is checked again against the
 * backend actually chosen.
 */
export function likelyBackend(requested: BackendName | 'auto'): BackendName {
  if (requested !== 'auto') return requested;
  for (const [packageName, backend] of [
    ['@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu'],
    ['@tensorflow/tfjs-node', 'tfjs-node'],
  ] as const) {
    try {
      require.resolve(packageName);
      return backend;
    } catch {
      // not installed
    }
  }
  return 'wasm';
}

function formatField(at: readonly (string | number)[]): string {
  return at.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}

/** The stage (or path) a stage's model comes from: its policy, or the checkpoint it starts from. */
function modelSource(stage: StageConfig): string | undefined {
  switch (stage.type) {
    case 'sft':
      return stage.init_from === 'scratch' ? undefined : stage.init_from;
    case 'reward':
      return stage.init_from;
    default:
      return stage.policy;
  }
}

/**
 * The shape of the model stage `stageIndex` trains or samples: the config's, unless it comes (through
 * earlier stages) from a checkpoint folder, whose config.json has the shape.
 */
export function stageModelShape(
  config: RunConfig,
  stageIndex: number,
  checkpointConfig: (reference: string) => Partial<ModelShape> | undefined,
): ModelShape {
  const base = configShape(config.model, config.tokenizer.vocab_size);
  const names = config.stages.map((stage) => stage.name ?? stage.type);
  let index = stageIndex;
  for (let hops = 0; hops < config.stages.length; hops++) {
    const source = modelSource(config.stages[index]);
    if (source === undefined) return base;
    const earlier = names.indexOf(source);
    if (earlier >= 0 && earlier < index) {
      index = earlier;
      continue;
    }
    const found = checkpointConfig(source);
    const valid = (value: unknown): value is number =>
      typeof value === 'number' && Number.isInteger(value) && value > 0;
    if (
      !found ||
      !valid(found.n_layer) ||
      !valid(found.n_head) ||
      !valid(found.n_embd) ||
      !valid(found.block_size) ||
      !valid(found.vocab_size)
    )
      return base;
    return {
      n_layer: found.n_layer,
      n_head: found.n_head,
      n_embd: found.n_embd,
      block_size: found.block_size,
      vocab_size: found.vocab_size,
    };
  }
  return base;
}
