/**
 * The preference losses and their gradients as graphs (the tfjs engine's bradleyTerryGraph and
 * dpoGraph): a reward model's Bradley–Terry loss over a score batch, and DPO / IPO / hinge over a
 * policy's summed response log-probabilities. Outputs `loss`, the reported values and `grad.<weight>`.
 */
import type { DpoLossType } from '../../../core';
import { DiffGraph, type FloatType } from './autodiff/graph';
import { gradients } from './autodiff/gradients';
import * as op from './autodiff/ops';
import { gradientOutput, scalarHead, tokenLogprobs, type BatchShape } from './gptGraph';
import { forwardOf, modelWeightInputs, trainedWeights, type ModelForward, type ModelSource } from './modelForward';
import { bradleyTerryLoss, dpoLosses } from './losses';

export interface PreferenceGraph {
  readonly model: Uint8Array;
  readonly weightNames: readonly string[];
}

/** Appends the gradient of `loss` w.r.t. every trained weight, marks the outputs and encodes the model. */
function finish(
  g: DiffGraph,
  name: string,
  loss: string,
  model: ModelForward,
  weights: Map<string, string>,
  reported: object,
) {
  const weightNames = [...weights.keys()];
  const trained = trainedWeights(model, weights);
  const grads = gradients(g, loss, trained);
  g.output(loss, 'loss');
  for (const [outputName, value] of Object.entries(reported)) g.output(value as string, outputName);
  for (const weight of trained) g.output(grads.get(weight) as string, gradientOutput(weight));
  return { model: g.encode(name), weightNames };
}

/**
 * Inputs of the Bradley–Terry graph: ids int64 [N, T]; `score_pick` [N, T] and `score_bias_count` [N]
 * express the pooling (gpt.ts's score): 'last' is a one-hot of position n − 1 and a count of 0; 'sum' is
 * the mask of the first n positions and a count of n − 1 (the bias once per sequence). `chosen_select`
 * and `rejected_select` [P, N] are one-hot rows naming each pair's sequences.
 */
export const bradleyTerryGraphInputs = {
  ids: 'input_ids',
  pick: 'score_pick',
  biasCount: 'score_bias_count',
  chosen: 'chosen_select',
  rejected: 'rejected_select',
} as const;

export function buildBradleyTerryGraph(
  source: ModelSource,
  shape: BatchShape,
  pairs: number,
  floatType: FloatType,
): PreferenceGraph {
  const model = forwardOf(source);
  const g = new DiffGraph(floatType);
  const weights = modelWeightInputs(g, model, ['score']);
  const rows = shape.batchSize;
  const ids = g.input(bradleyTerryGraphInputs.ids, [rows, shape.length], 'int64');
  const pick = g.input(bradleyTerryGraphInputs.pick, [rows, shape.length]);
  const biasCount = g.input(bradleyTerryGraphInputs.biasCount, [rows]);
  const perPosition = scalarHead(g, weights, 'score', model.forward(g, weights, ids).hidden); // [N, T]
  const bias = weights.get('score.bias') as string; // [1]
  const scores = op.sub(g, op.reduceSum(g, op.mul(g, perPosition, pick), [1], false), op.mul(g, bias, biasCount));
  const select = (name: string) =>
    op.reduceSum(g, op.mul(g, g.input(name, [pairs, rows]), op.reshape(g, scores, [1, rows])), [1], false);
  const chosenScores = select(bradleyTerryGraphInputs.chosen);
  const rejectedScores = select(bradleyTerryGraphInputs.rejected);
  const loss = bradleyTerryLoss(g, chosenScores, rejectedScores);
  return finish(g, 'rlhf-lens-bradley-terry', loss, model, weights, { chosenScores, rejectedScores });
}

/** Inputs of the DPO graph: the chosen rows then the rejected rows [2B, T], and per-pair numbers [B]. */
export const dpoGraphInputs = {
  ids: 'input_ids',
  targets: 'targets',
  mask: 'mask',
  refChosen: 'ref_chosen',
  refRejected: 'ref_rejected',
  chosenLengths: 'chosen_lengths',
  rejectedLengths: 'rejected_lengths',
} as const;

export interface DpoGraphSettings {
  readonly beta: number;
  readonly lossType: DpoLossType;
  readonly labelSmoothing?: number;
}

export function buildDpoGraph(
  source: ModelSource,
  shape: BatchShape,
  settings: DpoGraphSettings,
  floatType: FloatType,
): PreferenceGraph {
  if (shape.batchSize % 2 !== 0) throw new Error('dpo graph: the batch holds chosen then rejected rows (even size)');
  const model = forwardOf(source);
  const g = new DiffGraph(floatType);
  const weights = modelWeightInputs(g, model);
  const dims = [shape.batchSize, shape.length];
  const pairs = shape.batchSize / 2;
  const ids = g.input(dpoGraphInputs.ids, dims, 'int64');
  const targets = g.input(dpoGraphInputs.targets, dims, 'int64');
  const mask = g.input(dpoGraphInputs.mask, dims);
  const perToken = op.mul(g, tokenLogprobs(g, model.forward(g, weights, ids).logits, targets), mask);
  const logprobSums = op.reduceSum(g, perToken, [1], false); // [2B]: chosen then rejected
  const [policyChosen, policyRejected] = op.split(g, logprobSums, [pairs, pairs], 0);
  const perPair = (name: string) => g.input(name, [pairs]);
  const { losses } = dpoLosses(
    g,
    {
      policyChosen,
      policyRejected,
      refChosen: perPair(dpoGraphInputs.refChosen),
      refRejected: perPair(dpoGraphInputs.refRejected),
    },
    {
      ...settings,
      chosenLengths: perPair(dpoGraphInputs.chosenLengths),
      rejectedLengths: perPair(dpoGraphInputs.rejectedLengths),
    },
  );
  const loss = op.reduceMean(g, losses, [0], false);
  return finish(g, 'rlhf-lens-dpo', loss, model, weights, { logprobSums });
}
