/**
 * The engine seam. Algorithm code (SFT, reward, PPO, DPO, preferences, evaluation) talks only to these
 * types: a model that gives log-probabilities, entropies, values and scores for token batches and
 * samples with a KV cache; an optimizer whose one `step` runs forward, loss, backward, global-norm
 * clipping and AdamW; weights and optimizer state in and out as named Float32Arrays. Losses are data
 * (`LossSpec`), so an engine implements each one next to the others and the algorithms never hold a
 * tensor. TensorFlow.js is the engine today (engine/tfjs/); another one (ONNX Runtime training) is a
 * second implementation of `TrainingEngine`, with no change to the algorithms.
 *
 * Grids are row-major [B, T] typed arrays: B rows (sequences), T positions; position t predicts token t + 1.
 */
import type { DpoLossType } from '../../core';
import type { LoraSettings } from '../lora/loraTargets';
import type { CausalLmConfig } from '../model/causalLmConfig';
import type { ScalarHead } from '../model/gptConfig';

/** How `EngineModel.generate` samples (temperature, then top-k, then top-p, as Hugging Face warps logits). */
export interface SamplingOptions {
  /** 0 means greedy. */
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 keeps all. */
  readonly topK: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 keeps all. */
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number;
  /** Stop a sequence after this token (it is kept in the output). */
  readonly eosTokenId?: number;
  readonly padTokenId: number;
}

export interface SampledSequence {
  /** The new tokens, EOS included when it was sampled. */
  readonly tokens: number[];
  /** log p of each new token under the sampling distribution's model (before warping). */
  readonly logprobs: number[];
  readonly finishedByEos: boolean;
}

/** Weights (or optimizer moments) by name, each with its shape: what checkpoints store. */
export type NamedArrays = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * Next-token batch, right-padded: `inputs` and `targets` (inputs shifted by one) int32 [B, T], and
 * `mask` float32 [B, T], 1 where a target counts (a trained token, or a response token).
 */
export interface TokenBatch {
  readonly batchSize: number;
  readonly length: number;
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
  readonly mask: Float32Array;
}

/** Whole sequences for the `score` head: right-padded ids int32 [B, T] and each row's length. */
export interface ScoreBatch {
  readonly batchSize: number;
  readonly length: number;
  readonly ids: Int32Array;
  readonly lengths: readonly number[];
}

/**
 * AdamW's settings (Loshchilov & Hutter), the camelCase of the config's `adam_beta1`, `adam_beta2`, `adam_epsilon`,
 * `weight_decay`; `adamEpsilon` is Adam's ε, nothing to do with PPO's `cliprange`.
 */
export interface AdamWOptions {
  readonly adamBeta1: number;
  readonly adamBeta2: number;
  readonly adamEpsilon: number;
  readonly weightDecay: number;
}

/** AdamW's state: `<weight>.exp_avg` and `<weight>.exp_avg_sq` (PyTorch's names for m and v) and its step. */
export interface OptimizerState {
  readonly step: number;
  readonly moments: NamedArrays;
  /** The optimizer.safetensors it was read from, for errors. */
  readonly file?: string;
}

/** What `EngineModel.evaluate` should compute over a TokenBatch (one forward, no gradients). */
export interface EvaluateRequest {
  /** log p(target) at every position [B, T], from logits / temperature (1 when absent). */
  readonly logprobs?: boolean;
  /** The same masked by `mask`, and summed over each row: [B, T] and [B]. */
  readonly maskedLogprobs?: boolean;
  /** Entropy of each position's next-token distribution (at the same temperature) [B, T]. */
  readonly entropy?: boolean;
  /** The `v_head` value at every position [B, T]. */
  readonly values?: boolean;
  /** Sampling temperature the log-probabilities and entropies are read at. */
  readonly temperature?: number;
  /** The language-modelling loss: mean NLL over the masked targets (a scalar). */
  readonly lmLoss?: boolean;
  /**
   * Compute as the base model, LoRA adapters off: the PPO / DPO reference of a LoRA run, with no second copy of
   * the weights. Ignored by a model without adapters.
   */
  readonly adaptersOff?: boolean;
}

export interface Evaluation {
  readonly logprobs?: Float32Array;
  readonly maskedLogprobs?: Float32Array;
  readonly logprobSums?: Float32Array;
  readonly entropy?: Float32Array;
  readonly values?: Float32Array;
  readonly lmLoss?: number;
}

/**
 * A loss the engine can minimise, as data. Each kind has a tensor implementation in the engine and a
 * plain-array twin in src/core that it is tested against.
 */
export type LossSpec = LmLoss | BradleyTerryLoss | PpoLoss | DpoLoss;

/** Next-token cross-entropy, mean over the masked targets (SFT; PPO-ptx's term). */
export interface LmLoss {
  readonly kind: 'lm';
  readonly batch: TokenBatch;
  /** Dropout on, with masks drawn from this seed (only when the model's dropout > 0). */
  readonly dropoutSeed?: number;
}

/**
 * Bradley–Terry (InstructGPT eq. 1): mean over pairs of −log σ(r_chosen − r_rejected). Each row of
 * `scores` is scored once; a pair names its chosen and rejected rows.
 * Outputs: `chosenScores`, `rejectedScores` [P].
 */
export interface BradleyTerryLoss {
  readonly kind: 'bradleyTerry';
  readonly scores: ScoreBatch;
  readonly chosenRows: readonly number[];
  readonly rejectedRows: readonly number[];
}

/**
 * PPO's clipped surrogate and clipped value loss (TRL's PPOTrainer), with the entropy bonus and the
 * PPO-ptx language-modelling term. Grids are on `batch`'s [B, T]; `batch.mask` marks response tokens.
 *   loss = vfCoef·vf_loss + [policyActive] (pg_loss − entropyCoef·entropy) + [ptx] ptx.coef·lm_loss
 * Scalars: approxKl, pgLoss, vfLoss, vfClipFrac, entropy, meanRatio. Outputs: `ratio` [B, T]. The policy's
 * clip fraction is core's `clipFraction` of these ratios (one meaning of "clipped", shared with the trace).
 */
export interface PpoLoss {
  readonly kind: 'ppo';
  readonly batch: TokenBatch;
  readonly temperature: number;
  readonly oldLogprobs: Float32Array;
  readonly oldValues: Float32Array;
  readonly advantages: Float32Array;
  readonly returns: Float32Array;
  readonly cliprange: number;
  readonly cliprangeValue: number;
  readonly vfCoef: number;
  readonly entropyCoef: number;
  /** False during critic warm-up: only the value loss trains. */
  readonly policyActive: boolean;
  readonly ptx?: { readonly batch: TokenBatch; readonly coef: number };
}

/**
 * DPO and its variants (TRL's DPOTrainer): `batch` holds the chosen rows then the rejected rows [2B, T],
 * `batch.mask` their response tokens; the reference's summed response log-probabilities come as numbers.
 * Loss: the mean over pairs. Outputs: `logprobSums` [2B], the policy's summed response log-probabilities.
 */
export interface DpoLoss {
  readonly kind: 'dpo';
  readonly batch: TokenBatch;
  readonly refChosen: readonly number[];
  readonly refRejected: readonly number[];
  readonly beta: number;
  readonly lossType: DpoLossType;
  readonly labelSmoothing?: number;
  /** Response lengths in tokens, for IPO's per-token normalisation. */
  readonly chosenLengths: readonly number[];
  readonly rejectedLengths: readonly number[];
}

export interface StepOptions {
  readonly learningRate: number;
  /** Global-norm clipping threshold; 0 turns clipping off. */
  readonly maxGradNorm: number;
  /**
   * Decides, after seeing the step's scalars, whether the update is applied (PPO skips a minibatch
   * whose mean ratio passes ratio_threshold). Absent: applied.
   */
  readonly shouldApply?: (scalars: Readonly<Record<string, number>>) => boolean;
}

export interface StepResult {
  /** `loss`, `gradNorm` (before clipping) and the loss kind's named scalars. */
  readonly scalars: Readonly<Record<string, number>>;
  /** The loss kind's named per-row or per-token outputs. */
  readonly outputs: Readonly<Record<string, Float32Array>>;
  /**
   * Whether the update was applied. Never when `loss` or `gradNorm` is NaN or infinite (the stage loop
   * then stops the run with NonFiniteError), nor when `shouldApply` said no.
   */
  readonly applied: boolean;
}

export interface EngineOptimizer {
  /** One update: forward, loss, backward, global-norm clipping, AdamW. */
  step(loss: LossSpec, options: StepOptions): Promise<StepResult>;
  readState(): Promise<OptimizerState>;
  loadState(state: OptimizerState): void;
  dispose(): void;
}

/** A causal LM (our GPT-2, or a Llama-family model) with optional scalar heads, living in an engine. */
export interface EngineModel {
  readonly config: CausalLmConfig;
  /** The LoRA adapters it trains (only those and the heads train then), when it has any. */
  readonly lora?: LoraSettings;
  readonly heads: readonly ScalarHead[];
  readonly parameterCount: number;
  /** Per-token quantities of a batch, without gradients. */
  evaluate(batch: TokenBatch, request: EvaluateRequest): Promise<Evaluation>;
  /** The `score` head's reward of each sequence [B] (pooled as config.score_pooling says). */
  scores(batch: ScoreBatch): Promise<Float32Array>;
  /** Σ of the scores of a batch, summed in the engine. */
  scoreTotal(batch: ScoreBatch): Promise<number>;
  /** Samples continuations of `prompts` (token ids, BOS first) with a KV cache. */
  generate(prompts: readonly (readonly number[])[], sampling: SamplingOptions): Promise<SampledSequence[]>;
  /** w ← w − amount for one weight (reward centering moves score.bias). */
  subtractFromWeight(name: string, amount: number): void;
  readWeights(): Promise<NamedArrays>;
  createOptimizer(options: AdamWOptions): EngineOptimizer;
  dispose(): void;
}

export interface CreateModelOptions {
  readonly heads: readonly ScalarHead[];
  /** Seed of the initial weights (and of heads `weights` lacks). */
  readonly seed: number;
  /** Start from these weights (a checkpoint) instead of a fresh initialisation. */
  readonly weights?: NamedArrays;
  /** Keep the fresh weights of heads `weights` has none for (a value or score head on an SFT trunk). */
  readonly keepMissingHeads?: boolean;
  /**
   * Train LoRA adapters (lora/loraTargets.ts names and shapes) instead of the trunk: the base weights are frozen;
   * the optimizer updates only the adapters and the heads. Adapters `weights` lacks start as PEFT starts them
   * (A ~ U(−1/√in, 1/√in) from `seed`, B = 0); `readWeights` returns base weights, adapters and heads.
   */
  readonly lora?: LoraSettings;
}

/** A GPU adapter in words: the full line (run.json, the log, the tooltip) and a short label (the status bar). */
export interface AdapterNaming {
  readonly line: string;
  readonly label: string;
}

/** One per process: creates models. */
export interface TrainingEngine {
  readonly name: string;
  /** The compute backend under the engine (tfjs: wasm, cpu, tensorflow, …; ONNX Runtime: its execution provider). */
  readonly backend: string;
  /**
   * Why that backend and how it is set up, when the engine decides it itself (ONNX Runtime: the execution
   * provider and its threads). Absent for tfjs, whose backend and reason come from selectBackend.
   */
  readonly backendReason?: string;
  /** The GPU adapter that backend computes on, when the engine names it itself (absent for tfjs: see selectBackend). */
  readonly backendAdapter?: AdapterNaming;
  /**
   * Why the GPU under the engine can no longer be trusted, once that happened: its device was lost (driver
   * reset, GPU fault, `device.destroy()`), or an operation failed validation (its result is garbage).
   * Undefined while it works, and on the CPU. The stage loop stops the run cleanly when it says so.
   */
  gpuFailure?(): string | undefined;
  createModel(config: CausalLmConfig, options: CreateModelOptions): EngineModel;
}
