/**
 * Losses on preference pairs (a chosen and a rejected completion of the same prompt).
 *
 * - Bradley–Terry reward-model loss, −log σ(r_c − r_r) (InstructGPT, https://arxiv.org/abs/2203.02155,
 *   eq. 1). Mirrors TRL's `RewardTrainer.compute_loss` (trl/trainer/reward_trainer.py), optional margin
 *   included.
 * - DPO (https://arxiv.org/abs/2305.18290, eq. 7) and its hinge (SLiC) and IPO
 *   (https://arxiv.org/abs/2310.12036, eq. 17) variants. Mirrors TRL's `DPOTrainer.dpo_loss`
 *   (trl/trainer/dpo_trainer.py up to TRL PR #3906, Feb 2026) and its successor, the loss section of
 *   `DPOTrainer._compute_loss`; see `dpoLoss` for where those two differ and what this follows.
 */
import { type Row, assertFinite, assertSameLength } from './arrays';
import { logSigmoid, softplus } from './sigmoid';
import { mean } from './stats';

/**
 * mean over pairs of −log σ(c − r − margin) = softplus(−(c − r − margin)), stable for any gap.
 * `margins` (optional, one per pair) asks the chosen score to win by at least that much, as the
 * `margin` column of TRL's reward datasets (Llama 2's margin loss).
 */
export function bradleyTerryLoss(chosenScores: Row, rejectedScores: Row, margins?: Row): number {
  assertSameLength(
    'bradleyTerryLoss',
    margins ? { chosenScores, rejectedScores, margins } : { chosenScores, rejectedScores },
  );
  if (chosenScores.length === 0)
    throw new RangeError('bradleyTerryLoss: no pairs; pass at least one chosen/rejected score.');
  const losses = Array.from(chosenScores, (c, i) => softplus(-(c - rejectedScores[i] - (margins ? margins[i] : 0))));
  return mean(losses);
}

export type DpoLossType = 'sigmoid' | 'hinge' | 'ipo';

export interface DpoLossOptions {
  /** β: how far the policy may move from the reference (TRL default 0.1); for IPO this is τ. */
  beta: number;
  lossType: DpoLossType;
  /**
   * cDPO's ε, the believed probability that a label is flipped (sigmoid only; default 0). TRL's
   * `dpo_loss` applied it to "sigmoid"; its refactored trainer keeps it only for "robust" and "exo_pair".
   */
  labelSmoothing?: number;
  /**
   * Completion lengths in tokens, one per pair, for IPO's per-token normalisation (see `dpoLoss`).
   * Ignored by the other loss types.
   */
  chosenLengths?: Row;
  rejectedLengths?: Row;
}

export interface DpoLossResult {
  /** One loss per pair; the training loss is their mean. */
  losses: number[];
  /** β·(log π(y_c) − log π_ref(y_c)), the implicit reward (TRL's `rewards/chosen`). */
  chosenRewards: number[];
  /** β·(log π(y_r) − log π_ref(y_r)) (TRL's `rewards/rejected`). */
  rejectedRewards: number[];
}

/**
 * The DPO family on per-sequence summed log-probabilities. With h = (log π_c − log π_r) −
 * (log π_ref,c − log π_ref,r), TRL's `logits`:
 *   sigmoid: −log σ(β·h)·(1 − ε) − log σ(−β·h)·ε
 *   hinge:   max(0, 1 − β·h)
 *   ipo:     (h − 1/(2β))²
 *
 * IPO normalisation: TRL averages IPO's log-ratios per completion token (the current trainer divides
 * each log-ratio by its completion length, at least 1; the older one divided the log-probs before
 * `dpo_loss`), because summed log-probs make the squared loss grow with length. Pass
 * `chosenLengths` and `rejectedLengths` and this does the same:
 *   h = (log π_c − log π_ref,c)/n_c − (log π_r − log π_ref,r)/n_r.
 * Without them the inputs are used as given (pass per-token means to get TRL's IPO).
 * The rewards are always β times the unnormalised log-ratios, as in TRL's current trainer.
 */
export function dpoLoss(
  policyChosen: Row,
  policyRejected: Row,
  refChosen: Row,
  refRejected: Row,
  options: DpoLossOptions,
): DpoLossResult {
  const { beta, lossType, labelSmoothing = 0, chosenLengths, rejectedLengths } = options;
  assertSameLength('dpoLoss', { policyChosen, policyRejected, refChosen, refRejected });
  if (beta <= 0 || !Number.isFinite(beta))
    throw new RangeError(`dpoLoss: beta must be a finite number > 0, got ${String(beta)}.`);
  assertFinite('dpoLoss', 'labelSmoothing', labelSmoothing, 0);
  if (labelSmoothing > 0.5) {
    throw new RangeError(
      `dpoLoss: labelSmoothing is the probability that a label is flipped and must be in [0, 0.5], got ` +
        `${labelSmoothing}.`,
    );
  }
  let ipoLengths: { chosen: Row; rejected: Row } | undefined;
  if (lossType === 'ipo' && (chosenLengths !== undefined || rejectedLengths !== undefined)) {
    if (chosenLengths === undefined || rejectedLengths === undefined) {
      throw new RangeError('dpoLoss: pass both chosenLengths and rejectedLengths (or neither) for the ipo loss.');
    }
    assertSameLength('dpoLoss', { policyChosen, chosenLengths, rejectedLengths });
    ipoLengths = { chosen: chosenLengths, rejected: rejectedLengths };
  }

  const losses: number[] = [];
  const chosenRewards: number[] = [];
  const rejectedRewards: number[] = [];
  for (let i = 0; i < policyChosen.length; i++) {
    const chosenLogratio = policyChosen[i] - refChosen[i]; // log π(y_c)/π_ref(y_c)
    const rejectedLogratio = policyRejected[i] - refRejected[i]; // log π(y_r)/π_ref(y_r)
    // TRL's logits = (π_c − π_r) − (ref_c − ref_r), computed in that order.
    const logits = policyChosen[i] - policyRejected[i] - (refChosen[i] - refRejected[i]);
    let loss: number;
    switch (lossType) {
      case 'sigmoid':
        loss = -logSigmoid(beta * logits) * (1 - labelSmoothing) - logSigmoid(-beta * logits) * labelSmoothing;
        break;
      case 'hinge':
        loss = Math.max(0, 1 - beta * logits);
        break;
      case 'ipo': {
        const h = ipoLengths
          ? chosenLogratio / Math.max(ipoLengths.chosen[i], 1) - rejectedLogratio / Math.max(ipoLengths.rejected[i], 1)
          : logits;
        loss = (h - 1 / (2 * beta)) ** 2; // IPO eq. 17, τ = β
        break;
      }
      default:
        throw new RangeError(
          `dpoLoss: unknown lossType ${JSON.stringify(lossType satisfies never)}; use 'sigmoid', 'hinge' or 'ipo'.`,
        );
    }
    losses.push(loss);
    chosenRewards.push(beta * chosenLogratio);
    rejectedRewards.push(beta * rejectedLogratio);
  }
  return { losses, chosenRewards, rejectedRewards };
}
