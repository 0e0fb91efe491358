/**
 * Forward-only graphs for `EngineModel.evaluate` and `scores`: the autodiff's graph layer without the
 * backward pass, one graph per batch shape and request. The quantities are the tfjs engine's
 * (tfjsEngine.ts's evaluate, gpt.ts's score): log p(target) at logits / temperature, the same masked and
 * summed per row, each position's entropy −Σ p log p, the v_head's values, the masked mean NLL.
 */
import type { EvaluateRequest } from '../engine';
import type { ScalarHead } from '../../model/gptConfig';
import { DiffGraph } from './autodiff/graph';
import * as op from './autodiff/ops';
import { lmGraphInputs, maskedNll, scalarHead, tokenLogprobs } from './gptGraph';
import { forwardOf, modelWeightInputs, type ModelSource } from './modelForward';
import type { BatchShape } from './gptGraph';
import { bradleyTerryGraphInputs } from './preferenceGraphs';

export interface ForwardGraph {
  readonly model: Uint8Array;
  readonly weightNames: readonly string[];
}

/** Outputs named as the seam's Evaluation fields; inputs every weight, `input_ids`, `targets`, `mask`. */
export function buildEvaluateGraph(
  source: ModelSource,
  heads: readonly ScalarHead[],
  shape: BatchShape,
  request: EvaluateRequest,
): ForwardGraph {
  const model = forwardOf(source);
  const g = new DiffGraph('float32');
  const weights = modelWeightInputs(g, model, heads);
  const dims = [shape.batchSize, shape.length];
  const ids = g.input(lmGraphInputs.ids, dims, 'int64');
  const targets = g.input(lmGraphInputs.targets, dims, 'int64');
  const mask = g.input(lmGraphInputs.mask, dims);
  const { logits, hidden } = model.forward(g, weights, ids);
  const temperature = request.temperature ?? 1;
  const scaled = temperature > 0 && temperature !== 1 ? op.div(g, logits, g.scalar(temperature)) : logits;
  const outputs: Record<string, string> = {};
  if (request.lmLoss) outputs.lmLoss = maskedNll(g, logits, targets, mask);
  if (request.logprobs || request.maskedLogprobs) {
    const logprobs = tokenLogprobs(g, scaled, targets);
    if (request.logprobs) outputs.logprobs = logprobs;
    if (request.maskedLogprobs) {
      outputs.maskedLogprobs = op.mul(g, logprobs, mask);
      outputs.logprobSums = op.reduceSum(g, outputs.maskedLogprobs, [1], false);
    }
  }
  if (request.values) outputs.values = scalarHead(g, weights, 'v_head', hidden);
  if (request.entropy) {
    const logProbs = op.logSoftmax(g, scaled);
    outputs.entropy = op.neg(g, op.reduceSum(g, op.mul(g, op.exp(g, logProbs), logProbs), [-1], false));
  }
  for (const [name, value] of Object.entries(outputs)) g.output(value, name);
  return { model: g.encode('rlhf-lens-evaluate'), weightNames: [...weights.keys()] };
}

/**
 * The score head's reward of each row [N] (gpt.ts's score): Σₜ pick·(w·hₜ + b) − bias·count, with the
 * pooling expressed by the `score_pick` and `score_bias_count` inputs as in the Bradley–Terry graph.
 */
export function buildScoreGraph(source: ModelSource, heads: readonly ScalarHead[], shape: BatchShape): ForwardGraph {
  const model = forwardOf(source);
  const g = new DiffGraph('float32');
  const weights = modelWeightInputs(g, model, heads);
  const rows = shape.batchSize;
  const ids = g.input(bradleyTerryGraphInputs.ids, [rows, shape.length], 'int64');
  const pick = g.input(bradleyTerryGraphInputs.pick, [rows, shape.length]);
  const biasCount = g.input(bradleyTerryGraphInputs.biasCount, [rows]);
  const perPosition = scalarHead(g, weights, 'score', model.forward(g, weights, ids).hidden); // [N, T]
  const bias = weights.get('score.bias') as string;
  const scores = op.sub(g, op.reduceSum(g, op.mul(g, perPosition, pick), [1], false), op.mul(g, bias, biasCount));
  g.output(scores, 'scores');
  return { model: g.encode('rlhf-lens-scores'), weightNames: [...weights.keys()] };
}
