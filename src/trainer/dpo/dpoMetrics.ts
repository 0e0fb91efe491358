/**
 * DPO's metrics under TRL's names (loss/dpo, rewards/chosen, rewards/rejected, rewards/accuracies,
 * rewards/margins, logps/chosen, logps/rejected) from summed log-probabilities, through core's `dpoLoss`
 * (the twin of the tensor loss the engine minimises), and the rows of an eval's trace.
 */
import { dpoLoss, mean, type DpoLossResult } from '../../core';
import type { DpoStageConfig } from '../../shared/runConfig';
import type { DpoTraceRow } from '../../shared/traceFormat';
import type { Task } from '../tasks/task';
import type { Tokenizer } from '../tokenizer';
import type { PairLogps, TokenizedPair } from './dpoData';

/** Held-out pairs written to each eval's trace. */
const maxTraceRows = 256;

export interface PairMetrics {
  readonly metrics: Record<string, number>;
  /** Core's per-pair losses and implicit rewards β·(log π − log π_ref). */
  readonly result: DpoLossResult;
}

/**
 * TRL's metrics of a set of pairs from their summed log-probabilities. Every set has at least one pair,
 * so no mean is of an empty array (core's `mean` would give NaN, as the local one it replaced did).
 */
export function pairMetrics(
  policy: { readonly chosen: ArrayLike<number>; readonly rejected: ArrayLike<number> },
  reference: PairLogps,
  pairs: readonly TokenizedPair[],
  stage: DpoStageConfig,
): PairMetrics {
  const result = dpoLoss(policy.chosen, policy.rejected, reference.chosen, reference.rejected, {
    beta: stage.beta,
    lossType: stage.loss_type,
    labelSmoothing: stage.loss_type === 'sigmoid' ? stage.label_smoothing : 0,
    chosenLengths: pairs.map((pair) => pair.chosenIds.length),
    rejectedLengths: pairs.map((pair) => pair.rejectedIds.length),
  });
  const { chosenRewards: chosen, rejectedRewards: rejected } = result;
  const metrics: Record<string, number> = {
    'loss/dpo': mean(result.losses),
    'rewards/chosen': mean(chosen),
    'rewards/rejected': mean(rejected),
    'rewards/accuracies': mean(chosen.map((reward, i) => (reward > rejected[i] ? 1 : 0))),
    'rewards/margins': mean(chosen.map((reward, i) => reward - rejected[i])),
    'logps/chosen': mean(Array.from(policy.chosen)),
    'logps/rejected': mean(Array.from(policy.rejected)),
  };
  metrics.loss = metrics['loss/dpo'];
  return { metrics, result };
}

/** The trace of an eval after `step` steps: the first held-out pairs, one log-ratio per response token. */
export function dpoTraceRows(
  step: number,
  evaluation: readonly TokenizedPair[],
  logps: { policy: PairLogps; reference: PairLogps },
  result: DpoLossResult,
  tokenizer: Tokenizer,
  oracle: Task | null,
): DpoTraceRow[] {
  const logratios = (policyRows: number[][] | undefined, refRows: number[][] | undefined, i: number) =>
    (policyRows as number[][])[i].map((logp, t) => logp - (refRows as number[][])[i][t]);
  const { policy, reference } = logps;
  return evaluation.slice(0, maxTraceRows).map((pair, i) => ({
    step,
    sample: i,
    prompt: pair.prompt,
    chosen: pair.chosen,
    rejected: pair.rejected,
    chosen_tokens: pair.chosenIds.map((id) => tokenizer.tokenText(id)),
    rejected_tokens: pair.rejectedIds.map((id) => tokenizer.tokenText(id)),
    chosen_logratios: logratios(policy.chosenTokens, reference.chosenTokens, i),
    rejected_logratios: logratios(policy.rejectedTokens, reference.rejectedTokens, i),
    chosen_reward: result.chosenRewards[i],
    rejected_reward: result.rejectedRewards[i],
    loss: result.losses[i],
    chosen_oracle_score: oracle ? oracle.score(pair.prompt + pair.chosen) : null,
    rejected_oracle_score: oracle ? oracle.score(pair.prompt + pair.rejected) : null,
  }));
}
