/**
 * The training losses as differentiable-graph nodes: twins of the tfjs engine's losses.ts (and so of
 * src/core's ppoPolicyLoss, ppoValueLoss, bradleyTerryLoss and dpoLoss), op for op where ONNX allows.
 * Every input is a value of the graph; hyperparameters are constants. Reported statistics (clip
 * fractions, approximate KL) sit beside the loss: `gradients` never walks them, as they do not reach it.
 */
import type { DpoLossType } from '../../../core';
import type { DiffGraph } from './autodiff/graph';
import * as op from './autodiff/ops';

/** maskedMean's floor on Σ m (losses.ts): an all-zero mask gives 0, not NaN. */
const MASK_FLOOR = 1e-8;

const allAxes = (g: DiffGraph, x: string) => Array.from(g.shape(x), (_, i) => i);
const sum = (g: DiffGraph, x: string) => op.reduceSum(g, x, allAxes(g, x), false);
const mean = (g: DiffGraph, x: string) => op.reduceMean(g, x, allAxes(g, x), false);
const square = (g: DiffGraph, x: string) => op.mul(g, x, x);

/** Σ x·m / max(Σ m, 1e-8). */
export function maskedMean(g: DiffGraph, x: string, mask: string): string {
  return op.div(g, sum(g, op.mul(g, x, mask)), op.max(g, sum(g, mask), g.scalar(MASK_FLOOR)));
}

/** The masked fraction of positions where `b > a` (a clip fraction), no gradient. */
function fractionGreater(g: DiffGraph, b: string, a: string, mask: string): string {
  return maskedMean(g, op.castToFloat(g, op.compare(g, 'Greater', b, a)), mask);
}

/**
 * PPO's clipped surrogate (TRL's PPOTrainer):
 *   ρ = exp(log π − log π_old),  loss = masked_mean(max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)))
 * with clipFrac (the clipped term won) and approxKl = masked_mean(½(log π − log π_old)²).
 */
export function ppoPolicyLoss(
  g: DiffGraph,
  inputs: { newLogprobs: string; oldLogprobs: string; advantages: string; mask: string },
  cliprange: number,
): { loss: string; clipFrac: string; approxKl: string; ratio: string } {
  const logRatio = op.sub(g, inputs.newLogprobs, inputs.oldLogprobs);
  const ratio = op.exp(g, logRatio);
  const negativeAdvantages = op.neg(g, inputs.advantages);
  const unclipped = op.mul(g, negativeAdvantages, ratio);
  const clippedRatio = op.clip(g, ratio, g.scalar(1 - cliprange), g.scalar(1 + cliprange));
  const clipped = op.mul(g, negativeAdvantages, clippedRatio);
  return {
    loss: maskedMean(g, op.max(g, unclipped, clipped), inputs.mask),
    clipFrac: fractionGreater(g, clipped, unclipped, inputs.mask),
    approxKl: maskedMean(g, op.mul(g, g.scalar(0.5), square(g, logRatio)), inputs.mask),
    ratio,
  };
}

/**
 * PPO's clipped value loss: V_clip = V_old + clip(V − V_old, −ε_v, ε_v),
 *   loss = ½ · masked_mean(max((V − R)², (V_clip − R)²)), and its clip fraction.
 */
export function ppoValueLoss(
  g: DiffGraph,
  inputs: { newValues: string; oldValues: string; returns: string; mask: string },
  cliprangeValue: number,
): { loss: string; clipFrac: string } {
  const change = op.clip(
    g,
    op.sub(g, inputs.newValues, inputs.oldValues),
    g.scalar(-cliprangeValue),
    g.scalar(cliprangeValue),
  );
  const clippedValues = op.add(g, inputs.oldValues, change);
  const unclippedLoss = square(g, op.sub(g, inputs.newValues, inputs.returns));
  const clippedLoss = square(g, op.sub(g, clippedValues, inputs.returns));
  return {
    loss: op.mul(g, g.scalar(0.5), maskedMean(g, op.max(g, unclippedLoss, clippedLoss), inputs.mask)),
    clipFrac: fractionGreater(g, clippedLoss, unclippedLoss, inputs.mask),
  };
}

/** Bradley–Terry (InstructGPT eq. 1): mean over pairs of softplus(r_r − r_c) = −log σ(r_c − r_r). */
export function bradleyTerryLoss(g: DiffGraph, chosenScores: string, rejectedScores: string): string {
  return mean(g, op.softplus(g, op.sub(g, rejectedScores, chosenScores)));
}

export interface DpoGraphOptions {
  readonly beta: number;
  readonly lossType: DpoLossType;
  readonly labelSmoothing?: number;
  /** Response lengths [P] (float values), for IPO's per-token normalisation. */
  readonly chosenLengths?: string;
  readonly rejectedLengths?: string;
}

/**
 * DPO and its variants on per-sequence summed log-probabilities [P], per pair (the training loss is
 * their mean), with h = (log π_c − log π_r) − (log π_ref,c − log π_ref,r):
 *   sigmoid: softplus(−βh)(1 − ε) + softplus(βh)·ε   (cDPO's label smoothing ε)
 *   hinge:   max(0, 1 − βh)                           (SLiC)
 *   ipo:     (h − 1/(2β))², h per token when lengths are given (IPO eq. 17, TRL)
 * Implicit rewards β·(log π − log π_ref) beside them.
 */
export function dpoLosses(
  g: DiffGraph,
  logprobs: { policyChosen: string; policyRejected: string; refChosen: string; refRejected: string },
  options: DpoGraphOptions,
): { losses: string; chosenRewards: string; rejectedRewards: string } {
  const { beta, lossType, labelSmoothing = 0 } = options;
  const chosenLogratios = op.sub(g, logprobs.policyChosen, logprobs.refChosen);
  const rejectedLogratios = op.sub(g, logprobs.policyRejected, logprobs.refRejected);
  const h = op.sub(
    g,
    op.sub(g, logprobs.policyChosen, logprobs.policyRejected),
    op.sub(g, logprobs.refChosen, logprobs.refRejected),
  );
  const scaled = (x: string, factor: number) => op.mul(g, x, g.scalar(factor));
  let losses: string;
  if (lossType === 'sigmoid') {
    losses = op.add(
      g,
      scaled(op.softplus(g, scaled(h, -beta)), 1 - labelSmoothing),
      scaled(op.softplus(g, scaled(h, beta)), labelSmoothing),
    );
  } else if (lossType === 'hinge') {
    losses = op.max(g, op.sub(g, g.scalar(1), scaled(h, beta)), g.scalar(0));
  } else if (lossType === 'ipo') {
    const { chosenLengths, rejectedLengths } = options;
    const perToken = (x: string, n: string) => op.div(g, x, op.max(g, n, g.scalar(1)));
    const hIpo =
      chosenLengths && rejectedLengths
        ? op.sub(g, perToken(chosenLogratios, chosenLengths), perToken(rejectedLogratios, rejectedLengths))
        : h;
    losses = square(g, op.sub(g, hIpo, g.scalar(1 / (2 * beta))));
  } else {
    throw new Error(`unknown loss_type ${JSON.stringify(lossType satisfies never)}`);
  }
  return { losses, chosenRewards: scaled(chosenLogratios, beta), rejectedRewards: scaled(rejectedLogratios, beta) };
}
