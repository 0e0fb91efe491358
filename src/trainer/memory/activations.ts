/**
 * What one batch costs besides the weights: the activations autograd keeps for the backward pass, the
 * intermediates of inference, and the KV cache of generation. Float32, no activation checkpointing: tfjs's tape
 * keeps every intermediate of the forward pass until the backward pass has used it, and ONNX Runtime's training
 * graph keeps the forward values its gradient graph reads (measured at onnxActivationShare of tfjs's; see
 * memoryGuard.ts's header for the calibration).
 *
 * Training, per sequence of T tokens, per layer (C hidden, I the MLP width, q/kv the query and key/value widths,
 * H query heads):
 *   normCopies·C + qkvCopies·(q + 2·kv) + mlpCopies·I          (norms and residuals, q/k/v and their head-split
 *                                                                copies, the MLP's pieces)
 *   + ropeCopies·(q + kv)                                       (rotary: rotate-half, cos/sin products; Llama family)
 *   + kvRepeatCopies·2·q  when kv < q                           (grouped-query attention's K and V tiled to H heads)
 *   + attentionCopies·H·T                                       (scores: q·kᵀ, scaled, masked, softmax, gradients)
 * and once, on top, logitCopies·V (logits, log-softmax, their gradients). For our GPT (q = kv = C, I = 4C) the
 * first line is 16C + 24C + 60C = 100C, the calibrated per-layer width. SwiGLU's gate, up, SiLU and product are
 * given the same budget per unit of I as GELU's tanh pieces (both ~5 tensors and their gradients): an assumption,
 * checked against a real Llama-family model's RSS in memoryLlama.test.ts.
 */
import type { EngineName } from '../../shared/backendNames';
import type { ModelDims } from './modelSize';

export const bytesPerFloat = 4;
/** Copies of the hidden state per layer per token (two norms' pieces, residual sums, the attention output). */
export const normCopies = 16;
/** Copies of the q/k/v projections per layer (projection, bias, split, head-split transposes, gradients). */
export const qkvCopies = 8;
/** Copies of the MLP's width per layer (GELU's tanh approximation or SwiGLU's gate·up, and their gradients). */
export const mlpCopies = 15;
/** Rotary embedding's copies of q and k (rotate-half's slices and concat, the cos and sin products, the sum). */
export const ropeCopies = 6;
/** Grouped-query attention's tiled K and V (forward and gradient). */
export const kvRepeatCopies = 2;
/** Copies of the attention scores (×H·T per token per layer). */
export const attentionCopies = 8;
/** Floats per token for the logits and what the loss derives from them (×V). */
export const logitCopies = 8;
/** Intermediate tensors of the backward pass and the allocator's slack, over the kept activations. */
export const backwardFactor = 1.5;
/** ONNX Runtime's training activations as a share of the tfjs estimate (measured; see memoryGuard.ts). */
export const onnxActivationShare = 0.75;
/** The GPT's per-layer width of kept activations, in units of C (normCopies + 3·qkvCopies + 4·mlpCopies). */
export const activationPerLayerWidth = normCopies + 3 * qkvCopies + 4 * mlpCopies;
/** MLP tensors alive at once in inference, in units of I: GELU's input and output; SwiGLU's gate, up, product. */
const inferenceMlpCopies = { gelu: 2, swiglu: 3 } as const;

const queryWidth = (d: ModelDims) => d.heads * d.headDim;
const keyValueWidth = (d: ModelDims) => d.keyValueHeads * d.headDim;

/** Floats kept per token for one layer's backward pass, attention scores aside. */
function keptPerLayer(d: ModelDims): number {
  const q = queryWidth(d);
  const kv = keyValueWidth(d);
  const rope = d.rotary ? ropeCopies * (q + kv) : 0;
  const repeat = kv < q ? kvRepeatCopies * 2 * q : 0;
  return normCopies * d.hidden + qkvCopies * (q + 2 * kv) + mlpCopies * d.intermediate + rope + repeat;
}

/** Bytes autograd needs for one training batch of `batch` sequences of `length` tokens. */
export function trainingActivationBytes(
  d: ModelDims,
  batch: number,
  length = d.blockSize,
  engine: EngineName = 'tfjs',
): number {
  const perToken = d.layers * (keptPerLayer(d) + attentionCopies * d.heads * length) + logitCopies * d.vocab;
  const share = engine === 'onnxruntime' ? onnxActivationShare : 1;
  return share * backwardFactor * bytesPerFloat * batch * length * perToken;
}

/** The KV cache of generating `batch` sequences up to `length` positions: K and V × kv heads × head_dim × layers. */
export function kvCacheBytes(d: ModelDims, batch: number, length = d.blockSize): number {
  return bytesPerFloat * 2 * d.layers * keyValueWidth(d) * length * batch;
}

/** Bytes of sampling or scoring `batch` sequences without gradients: one layer live at a time, the KV cache aside. */
export function inferenceActivationBytes(d: ModelDims, batch: number, length = d.blockSize): number {
  const liveLayer = queryWidth(d) + 2 * keyValueWidth(d) + inferenceMlpCopies[d.mlp] * d.intermediate + d.hidden;
  const perToken = liveLayer + 3 * d.heads * length + 3 * d.vocab;
  return bytesPerFloat * batch * length * perToken;
}

/** Elements of the largest single activation of a batch: the logits, the attention scores or the MLP's input. */
export function largestActivationElements(d: ModelDims, batch: number, length = d.blockSize): number {
  return batch * length * Math.max(d.vocab, d.heads * length, d.intermediate);
}
