/**
 * Each LossSpec of the seam as a tfjs graph over a model's variables: the scalar to minimise and the
 * named tensors the step reports (rank 0 → a scalar, otherwise a per-row or per-token output). Called
 * inside `tf.variableGrads`, which disposes everything but what the optimizer keeps. The tensor losses
 * themselves are in losses.ts, beside each other and tested against their src/core twins.
 */
import type { BradleyTerryLoss, DpoLoss, LmLoss, LossSpec, PpoLoss } from '../engine';
import { bradleyTerryLossTensor, dpoLossTensor, maskedMeanTensor, maskedNll, ppoPolicyLossTensor } from './losses';
import { ppoValueLossTensor, tokenLogprobs } from './losses';
import type { LmForwardOptions, TfjsLm } from './causalLm';
import type { Gpt } from './gpt';
import { asTfjsLm } from './tfjsModels';
import { scoreBatchTensor, tokenBatchTensors } from './sequenceTensors';
import { tf, type Tensor } from './tfRuntime';

export interface LossGraph {
  readonly loss: Tensor;
  readonly reported: Record<string, Tensor>;
}

/** What a training graph's forward takes beyond the spec: LoRA's dropout masks (causalLm.ts). */
export type TrainingForward = Pick<LmForwardOptions, 'loraDropout'>;

/** The graph of `spec` over `model` (our GPT alone is taken as a model without adapters). */
export function lossGraph(lm: TfjsLm | Gpt, spec: LossSpec, training: TrainingForward = {}): LossGraph {
  const model = asTfjsLm(lm);
  switch (spec.kind) {
    case 'lm':
      return { loss: lmLoss(model, spec, training), reported: {} };
    case 'bradleyTerry':
      return bradleyTerryGraph(model, spec, training);
    case 'ppo':
      return ppoGraph(model, spec, training);
    case 'dpo':
      return dpoGraph(model, spec, training);
    default:
      throw new Error(`unknown loss ${JSON.stringify(spec satisfies never)}`);
  }
}

/** Mean NLL of the masked targets; dropout on when the spec gives a seed. */
function lmLoss(model: TfjsLm, spec: LmLoss, training: TrainingForward): Tensor {
  const { inputs, targets, mask } = tokenBatchTensors(spec.batch);
  const forward = model.forward(inputs, { ...training, dropoutSeed: spec.dropoutSeed });
  return maskedNll(forward.logits, targets, mask);
}

/** One forward over every row; each pair's chosen and rejected score selected from it. */
function bradleyTerryGraph(model: TfjsLm, spec: BradleyTerryLoss, training: TrainingForward): LossGraph {
  const rows = spec.scores.batchSize;
  const scores = scoreBatchTensor(model, spec.scores, training).reshape([1, rows]); // [1, N]
  // Selecting rows by a one-hot product rather than tf.gather, whose gradient wasm lacks.
  const select = (picked: readonly number[]) => tf.oneHot(tf.tensor1d([...picked], 'int32'), rows).toFloat(); // [P, N]
  const chosenScores = tf.sum(tf.mul(select(spec.chosenRows), scores), 1); // [P]
  const rejectedScores = tf.sum(tf.mul(select(spec.rejectedRows), scores), 1); // [P]
  return { loss: bradleyTerryLossTensor(chosenScores, rejectedScores), reported: { chosenScores, rejectedScores } };
}

/** log p(target) [B, T] at a sampling temperature (logits / T, as the sampler drew them), and the forward's parts. */
function temperedLogprobs(
  model: TfjsLm,
  inputs: Tensor,
  targets: Tensor,
  temperature: number,
  training: TrainingForward,
) {
  const { logits, hidden } = model.forward(inputs, training);
  const scaled = temperature > 0 && temperature !== 1 ? tf.div(logits, temperature) : logits;
  return { logprobs: tokenLogprobs(scaled, targets), logits: scaled, hidden };
}

/**
 * PPO (TRL's PPOTrainer loss):
 *   loss = vf_coef·vf_loss + [policy active] (pg_loss − entropy_coef·entropy) + [ptx] ptx_coef·lm_loss
 */
function ppoGraph(model: TfjsLm, spec: PpoLoss, training: TrainingForward): LossGraph {
  const { batch } = spec;
  const grid = (values: Float32Array) => tf.tensor2d(values, [batch.batchSize, batch.length]);
  const { inputs, targets, mask } = tokenBatchTensors(batch);
  const { logprobs, logits, hidden } = temperedLogprobs(model, inputs, targets, spec.temperature, training);
  const newValues = model.scalarHead('v_head', hidden);
  const policyLoss = ppoPolicyLossTensor(logprobs, grid(spec.oldLogprobs), grid(spec.advantages), mask, spec.cliprange);
  const valueLoss = ppoValueLossTensor(newValues, grid(spec.oldValues), grid(spec.returns), mask, spec.cliprangeValue);
  const probs = tf.softmax(logits);
  const entropy = maskedMeanTensor(tf.neg(tf.sum(tf.mul(probs, tf.logSoftmax(logits)), -1)), mask);
  let loss = tf.mul(spec.vfCoef, valueLoss.loss);
  if (spec.policyActive) loss = tf.add(loss, tf.sub(policyLoss.loss, tf.mul(spec.entropyCoef, entropy)));
  if (spec.ptx)
    loss = tf.add(loss, tf.mul(spec.ptx.coef, lmLoss(model, { kind: 'lm', batch: spec.ptx.batch }, training)));
  return {
    loss,
    reported: {
      approxKl: policyLoss.approxKl,
      pgLoss: policyLoss.loss,
      vfLoss: valueLoss.loss,
      vfClipFrac: valueLoss.clipFrac,
      entropy,
      meanRatio: maskedMeanTensor(policyLoss.ratio, mask),
      ratio: policyLoss.ratio,
    },
  };
}

/** DPO: one forward over chosen and rejected rows; the loss on their summed response log-probabilities. */
function dpoGraph(model: TfjsLm, spec: DpoLoss, training: TrainingForward): LossGraph {
  const { inputs, targets, mask } = tokenBatchTensors(spec.batch);
  const perToken = tf.mul(temperedLogprobs(model, inputs, targets, 1, training).logprobs, mask); // [2B, T]
  const logprobSums = tf.sum(perToken, 1); // [2B]: chosen then rejected
  const [policyChosen, policyRejected] = tf.split(logprobSums, 2);
  const { losses } = dpoLossTensor(
    policyChosen,
    policyRejected,
    tf.tensor1d([...spec.refChosen]),
    tf.tensor1d([...spec.refRejected]),
    {
      beta: spec.beta,
      lossType: spec.lossType,
      labelSmoothing: spec.labelSmoothing,
      chosenLengths: tf.tensor1d([...spec.chosenLengths]),
      rejectedLengths: tf.tensor1d([...spec.rejectedLengths]),
    },
  );
  return { loss: tf.mean(losses), reported: { logprobSums } };
}
