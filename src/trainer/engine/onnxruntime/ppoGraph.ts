/**
 * PPO's update loss (TRL's PPOTrainer; the tfjs engine's ppoGraph) and its gradient as one graph:
 *   loss = vf_coef·vf_loss + [policy active] (pg_loss − entropy_coef·entropy) + [ptx] ptx_coef·lm_loss
 * over a policy with a v_head. The rollout's numbers (old log-probs and values, advantages, returns) are
 * float inputs [B, T]; the hyperparameters are constants of the graph (one graph per shape and setting).
 * Outputs: `loss`, the reported scalars (`pgLoss`, `vfLoss`, `entropy`, `approxKl`, `vfClipFrac`,
 * `meanRatio`), `ratio` [B, T] and `grad.<weight>` for every weight.
 */
import { DiffGraph, type FloatType } from './autodiff/graph';
import { gradients } from './autodiff/gradients';
import * as op from './autodiff/ops';
import { forwardOf, modelWeightInputs, trainedWeights, type ModelSource } from './modelForward';
import { gradientOutput, maskedNll, scalarHead, tokenLogprobs, type BatchShape } from './gptGraph';
import { maskedMean, ppoPolicyLoss, ppoValueLoss } from './losses';

export interface PpoGraphSettings {
  readonly temperature: number;
  readonly cliprange: number;
  readonly cliprangeValue: number;
  readonly vfCoef: number;
  readonly entropyCoef: number;
  readonly policyActive: boolean;
  /** PPO-ptx: an LM batch of its own shape, weighted by `coef`. */
  readonly ptx?: { readonly shape: BatchShape; readonly coef: number };
}

/** The graph's inputs besides the weights. */
export const ppoGraphInputs = {
  ids: 'input_ids',
  targets: 'targets',
  mask: 'mask',
  oldLogprobs: 'old_logprobs',
  oldValues: 'old_values',
  advantages: 'advantages',
  returns: 'returns',
  ptxIds: 'ptx_input_ids',
  ptxTargets: 'ptx_targets',
  ptxMask: 'ptx_mask',
} as const;

export interface PpoLossGraph {
  readonly model: Uint8Array;
  readonly weightNames: readonly string[];
  readonly reported: readonly string[];
}

/** Entropy of each position's distribution, masked mean: −Σᵥ p log p with p = softmax(logits). */
function meanEntropy(g: DiffGraph, logits: string, mask: string): string {
  const perPosition = op.neg(
    g,
    op.reduceSum(g, op.mul(g, op.softmax(g, logits), op.logSoftmax(g, logits)), [-1], false),
  );
  return maskedMean(g, perPosition, mask);
}

export function buildPpoLossGraph(
  source: ModelSource,
  shape: BatchShape,
  settings: PpoGraphSettings,
  floatType: FloatType,
): PpoLossGraph {
  const model = forwardOf(source);
  const g = new DiffGraph(floatType);
  const weights = modelWeightInputs(g, model, ['v_head']);
  const dims = [shape.batchSize, shape.length];
  const grid = (name: string) => g.input(name, dims);
  const ids = g.input(ppoGraphInputs.ids, dims, 'int64');
  const targets = g.input(ppoGraphInputs.targets, dims, 'int64');
  const mask = grid(ppoGraphInputs.mask);
  const { logits: rawLogits, hidden } = model.forward(g, weights, ids);
  const { temperature } = settings;
  const logits = temperature > 0 && temperature !== 1 ? op.div(g, rawLogits, g.scalar(temperature)) : rawLogits;
  const newLogprobs = tokenLogprobs(g, logits, targets);
  const oldLogprobs = grid(ppoGraphInputs.oldLogprobs);
  const advantages = grid(ppoGraphInputs.advantages);
  const policy = ppoPolicyLoss(g, { newLogprobs, oldLogprobs, advantages, mask }, settings.cliprange);
  const newValues = scalarHead(g, weights, 'v_head', hidden);
  const oldValues = grid(ppoGraphInputs.oldValues);
  const returns = grid(ppoGraphInputs.returns);
  const value = ppoValueLoss(g, { newValues, oldValues, returns, mask }, settings.cliprangeValue);
  const entropy = meanEntropy(g, logits, mask);

  let loss = op.mul(g, g.scalar(settings.vfCoef), value.loss);
  if (settings.policyActive) {
    // Without an entropy bonus the entropy is only reported: left out of the loss, no backward pass goes
    // through its softmax over [B, T, V] (its gradient would be 0·∂entropy).
    const bonus = settings.entropyCoef === 0 ? undefined : op.mul(g, g.scalar(settings.entropyCoef), entropy);
    loss = op.add(g, loss, bonus ? op.sub(g, policy.loss, bonus) : policy.loss);
  }
  if (settings.ptx) {
    const ptxDims = [settings.ptx.shape.batchSize, settings.ptx.shape.length];
    const ptxIds = g.input(ppoGraphInputs.ptxIds, ptxDims, 'int64');
    const ptxTargets = g.input(ppoGraphInputs.ptxTargets, ptxDims, 'int64');
    const ptxMask = g.input(ppoGraphInputs.ptxMask, ptxDims);
    const ptxLoss = maskedNll(g, model.forward(g, weights, ptxIds).logits, ptxTargets, ptxMask);
    loss = op.add(g, loss, op.mul(g, g.scalar(settings.ptx.coef), ptxLoss));
  }
  const weightNames = [...weights.keys()];
  const trained = trainedWeights(model, weights);
  const grads = gradients(g, loss, trained);
  const reported: Record<string, string> = {
    pgLoss: policy.loss,
    vfLoss: value.loss,
    entropy,
    approxKl: policy.approxKl,
    vfClipFrac: value.clipFrac,
    meanRatio: maskedMean(g, policy.ratio, mask),
    ratio: policy.ratio,
  };
  g.output(loss, 'loss');
  for (const [name, valueName] of Object.entries(reported)) g.output(valueName, name);
  for (const name of trained) g.output(grads.get(name) as string, gradientOutput(name));
  return { model: g.encode('rlhf-lens-ppo-loss'), weightNames, reported: Object.keys(reported) };
}
