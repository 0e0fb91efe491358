/**
 * Every loss the trainer minimises, as tfjs tensors, next to each other. Each is the twin of a
 * plain-array function in src/core and tested against it to 1e-5 (test/unit/losses.test.ts and the
 * stage tests): maskedNll ↔ the LM loss, ppoPolicyLossTensor / ppoValueLossTensor ↔ core's
 * ppoPolicyLoss / ppoValueLoss, bradleyTerryLossTensor ↔ bradleyTerryLoss, dpoLossTensor ↔ dpoLoss.
 *
 * Token-level log-probabilities: `tf.gather` along the vocabulary would need `UnsortedSegmentSum` for
 * its gradient on wasm, so the target's log-probability is read with a one-hot product instead:
 * log p(yₜ) = Σᵥ onehot(yₜ)ᵥ · log_softmax(zₜ)ᵥ.
 */
import type { DpoLossType } from '../../../core';
import { tf, type Tensor } from './tfRuntime';

/** log p(targets | logits): logits [B, T, V], targets int32 [B, T] → [B, T]. */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  const vocabSize = logits.shape[2] as number;
  const logProbs = tf.logSoftmax(logits, -1); // [B, T, V]
  return tf.sum(tf.mul(logProbs, tf.oneHot(targets, vocabSize).toFloat()), -1); // [B, T]
}

/** Mean negative log-likelihood over the positions where mask is 1: Σ −log p · m / Σ m. */
export function maskedNll(logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  const nll = tf.neg(tokenLogprobs(logits, targets)); // [B, T]
  return tf.div(tf.sum(tf.mul(nll, mask)), tf.maximum(tf.sum(mask), 1));
}

/** Entropy of each position's next-token distribution: −Σ p log p, [B, T, V] → [B, T]. */
export function entropyFromLogits(logits: Tensor): Tensor {
  const logProbs = tf.logSoftmax(logits, -1);
  return tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), -1));
}

// ---------------------------------------------------------------------------------------------------
/**
 * PPO's losses as tensors, for the update; twins of `ppoPolicyLoss` and `ppoValueLoss` in src/core
 * (tested to agree). Following TRL's PPOTrainer and cleanrl's ppo.py:
 *   ratio = exp(log π_new − log π_old)
 *   pg_loss1 = −A · ratio,  pg_loss2 = −A · clip(ratio, 1 − ε, 1 + ε)
 *   pg_loss = masked_mean(max(pg_loss1, pg_loss2))
 *   v_clipped = V_old + clip(V_new − V_old, −ε_v, ε_v)
 *   vf_loss = ½ · masked_mean(max((V_new − R)², (v_clipped − R)²))
 */

export function maskedMeanTensor(x: Tensor, mask: Tensor): Tensor {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1e-8));
}

export interface PolicyLossTensors {
  readonly loss: Tensor;
  readonly clipFrac: Tensor;
  readonly approxKl: Tensor;
  /** [B, T] */
  readonly ratio: Tensor;
}

export function ppoPolicyLossTensor(
  newLogprobs: Tensor,
  oldLogprobs: Tensor,
  advantages: Tensor,
  mask: Tensor,
  clipRange: number,
): PolicyLossTensors {
  const logRatio = tf.sub(newLogprobs, oldLogprobs);
  const ratio = tf.exp(logRatio);
  const pgLoss1 = tf.mul(tf.neg(advantages), ratio);
  const pgLoss2 = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipRange, 1 + clipRange));
  return {
    loss: maskedMeanTensor(tf.maximum(pgLoss1, pgLoss2), mask),
    clipFrac: maskedMeanTensor(tf.cast(tf.greater(pgLoss2, pgLoss1), 'float32'), mask),
    approxKl: maskedMeanTensor(tf.mul(0.5, tf.square(logRatio)), mask),
    ratio,
  };
}

export function ppoValueLossTensor(
  newValues: Tensor,
  oldValues: Tensor,
  returns: Tensor,
  mask: Tensor,
  clipRangeValue: number,
): { loss: Tensor; clipFrac: Tensor } {
  const clipped = tf.add(oldValues, tf.clipByValue(tf.sub(newValues, oldValues), -clipRangeValue, clipRangeValue));
  const losses1 = tf.square(tf.sub(newValues, returns));
  const losses2 = tf.square(tf.sub(clipped, returns));
  return {
    loss: tf.mul(0.5, maskedMeanTensor(tf.maximum(losses1, losses2), mask)),
    clipFrac: maskedMeanTensor(tf.cast(tf.greater(losses2, losses1), 'float32'), mask),
  };
}

// ---------------------------------------------------------------------------------------------------
/**
 * Bradley–Terry loss on score tensors [P] (InstructGPT eq. 1), the twin of core's `bradleyTerryLoss`:
 *   loss = −1/P Σₚ log σ(r_c − r_r) = 1/P Σₚ softplus(r_r − r_c)
 * softplus keeps large gaps finite where log(sigmoid(·)) would underflow to log 0.
 */
export function bradleyTerryLossTensor(chosenScores: Tensor, rejectedScores: Tensor): Tensor {
  return tf.mean(tf.softplus(tf.sub(rejectedScores, chosenScores)));
}

// ---------------------------------------------------------------------------------------------------
// DPO, in tfjs (its plain-array twin is `dpoLoss` in src/core/preferenceLosses.ts)

export interface DpoLossTensorOptions {
  readonly beta: number;
  readonly lossType: DpoLossType;
  readonly labelSmoothing?: number;
  /** Response lengths in tokens [B], for IPO's per-token normalisation (as TRL); ignored by the others. */
  readonly chosenLengths?: Tensor;
  readonly rejectedLengths?: Tensor;
}

/** Per-pair losses and implicit rewards from per-sequence summed log-probabilities, all [B]. */
export function dpoLossTensor(
  policyChosen: Tensor,
  policyRejected: Tensor,
  refChosen: Tensor,
  refRejected: Tensor,
  options: DpoLossTensorOptions,
): { losses: Tensor; chosenRewards: Tensor; rejectedRewards: Tensor } {
  const { beta, lossType, labelSmoothing = 0 } = options;
  const chosenLogratios = tf.sub(policyChosen, refChosen); // log π(y_c)/π_ref(y_c)
  const rejectedLogratios = tf.sub(policyRejected, refRejected); // log π(y_r)/π_ref(y_r)
  // TRL's logits: h = (log π_c − log π_r) − (log π_ref,c − log π_ref,r)
  const h = tf.sub(tf.sub(policyChosen, policyRejected), tf.sub(refChosen, refRejected));
  let losses: Tensor;
  switch (lossType) {
    case 'sigmoid':
      // −log σ(β·h)·(1 − ε) − log σ(−β·h)·ε   (cDPO's label smoothing ε),
      // as softplus(−β·h)·(1 − ε) + softplus(β·h)·ε: −log σ(z) = softplus(−z) is stable, and tf.logSigmoid's
      // custom gradient reads a tensor the forward pass disposed.
      losses = tf.add(
        tf.mul(tf.softplus(tf.mul(-beta, h)), 1 - labelSmoothing),
        tf.mul(tf.softplus(tf.mul(beta, h)), labelSmoothing),
      );
      break;
    case 'hinge':
      // max(0, 1 − β·h)   (SLiC)
      losses = tf.relu(tf.sub(1, tf.mul(beta, h)));
      break;
    case 'ipo': {
      // (h − 1/(2β))², IPO eq. 17 with τ = β; TRL averages each log-ratio over its response tokens:
      // h = (log π_c − log π_ref,c)/n_c − (log π_r − log π_ref,r)/n_r
      const { chosenLengths, rejectedLengths } = options;
      const hIpo =
        chosenLengths && rejectedLengths
          ? tf.sub(
              tf.div(chosenLogratios, tf.maximum(chosenLengths, 1)),
              tf.div(rejectedLogratios, tf.maximum(rejectedLengths, 1)),
            )
          : h;
      losses = tf.square(tf.sub(hIpo, 1 / (2 * beta)));
      break;
    }
    default:
      throw new Error(
        `unknown loss_type ${JSON.stringify(lossType satisfies never)}; use "sigmoid", "hinge" or "ipo".`,
      );
  }
  // Implicit rewards β·log π/π_ref, unnormalised for every loss type (TRL's rewards/chosen, rewards/rejected)
  return { losses, chosenRewards: tf.mul(beta, chosenLogratios), rejectedRewards: tf.mul(beta, rejectedLogratios) };
}
