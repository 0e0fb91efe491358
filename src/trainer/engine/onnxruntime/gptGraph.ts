/**
 * The language-modelling pieces every model's graphs share (the GPT's forward is gptForward.ts, re-exported here;
 * the Llama family's llamaGraph.ts; either is "a model forward", modelForward.ts). The LM loss is the tfjs
 * engine's maskedNll: Σ −log p(yₜ)·mₜ / max(Σ mₜ, 1), with log p(yₜ) picked by GatherElements.
 *
 * `buildLmLossGraph` appends the backward pass, so one session run gives the loss and every weight's
 * gradient (outputs `loss` and `grad.<weight>`).
 */
import type { ScalarHead } from '../../model/gptConfig';
import { DiffGraph, type FloatType } from './autodiff/graph';
import { gradients } from './autodiff/gradients';
import * as op from './autodiff/ops';
import { forwardOf, modelWeightInputs, trainedWeights, type ModelSource } from './modelForward';

export {
  dropoutMaskInput,
  gpt2Activation,
  gptForward,
  gptWeightInputs,
  type DropoutMaskInput,
  type LinearHook,
} from './gptForward';

export interface BatchShape {
  readonly batchSize: number;
  readonly length: number;
}

/** Graph input names of a training graph besides the weights (each weight's input is its own name). */
export const lmGraphInputs = { ids: 'input_ids', targets: 'targets', mask: 'mask' } as const;
export const gradientOutput = (weight: string) => `grad.${weight}`;

/** A scalar per position from a head (gpt.ts's scalarHead): hidden [B, T, C] → [B, T]. */
export function scalarHead(
  g: DiffGraph,
  weights: ReadonlyMap<string, string>,
  head: ScalarHead,
  hidden: string,
): string {
  const weight = weights.get(`${head}.weight`);
  const bias = weights.get(`${head}.bias`);
  if (!weight || !bias) throw new Error(`gpt graph: no ${head} head`);
  const [batch, length] = g.shape(hidden);
  return op.reshape(g, op.add(g, op.matMul(g, hidden, weight), bias), [batch, length]);
}

/**
 * log p(targets | logits): logits [B, T, V], targets int64 [B, T] → [B, T], each position's target
 * picked from log softmax by GatherElements (its gradient scatters dy back: no [B, T, V] one-hot).
 */
export function tokenLogprobs(g: DiffGraph, logits: string, targets: string): string {
  const picked = op.gatherElements(g, op.logSoftmax(g, logits), op.unsqueeze(g, targets, [-1]), -1); // [B, T, 1]
  return op.squeeze(g, picked, [-1]);
}

/** Mean NLL over the masked positions: Σ −log p · m / max(Σ m, 1) (losses.ts's maskedNll). */
export function maskedNll(g: DiffGraph, logits: string, targets: string, mask: string): string {
  const all = [0, 1];
  const nll = op.reduceSum(g, op.mul(g, op.neg(g, tokenLogprobs(g, logits, targets)), mask), all, false);
  return op.div(g, nll, op.max(g, op.reduceSum(g, mask, all, false), g.scalar(1)));
}

export interface LmLossGraph {
  /** The ONNX model: inputs every weight, `input_ids`, `targets` (int64 [B, T]), `mask` (float [B, T]). */
  readonly model: Uint8Array;
  readonly weightNames: readonly string[];
  /** Forward and backward node counts. */
  readonly forwardNodes: number;
  readonly backwardNodes: number;
}

/**
 * The SFT loss and its gradient w.r.t. every trained weight as one graph, for one batch shape; with
 * `dropoutMaskName`, each dropout site multiplies by an input of that name (float, the site's shape).
 */
export function buildLmLossGraph(
  source: ModelSource,
  shape: BatchShape,
  floatType: FloatType,
  dropoutMaskName?: (site: number) => string,
): LmLossGraph {
  const model = forwardOf(source);
  const g = new DiffGraph(floatType);
  const weights = modelWeightInputs(g, model);
  const dims = [shape.batchSize, shape.length];
  const ids = g.input(lmGraphInputs.ids, dims, 'int64');
  const targets = g.input(lmGraphInputs.targets, dims, 'int64');
  const mask = g.input(lmGraphInputs.mask, dims);
  const dropoutMask =
    dropoutMaskName && ((site: number, siteShape: readonly number[]) => g.input(dropoutMaskName(site), [...siteShape]));
  const { logits } = model.forward(g, weights, ids, dropoutMask && { mask: dropoutMask });
  const loss = maskedNll(g, logits, targets, mask);
  const forwardNodes = g.nodes.length;
  const weightNames = [...weights.keys()];
  const trained = trainedWeights(model, weights);
  const grads = gradients(g, loss, trained);
  g.output(loss, 'loss');
  for (const name of trained) g.output(grads.get(name) as string, gradientOutput(name));
  return {
    model: g.encode('rlhf-lens-lm-loss'),
    weightNames,
    forwardNodes,
    backwardNodes: g.nodes.length - forwardNodes,
  };
}
