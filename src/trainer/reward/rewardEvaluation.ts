/**
 * Reading a reward model without gradients: the scores of pairs, the mean reward (for centering), and
 * the held-out evaluation against the labels and the task's oracle, with its trace rows.
 */
import { bradleyTerryLoss } from '../../core';
import type { RewardTraceRow } from '../../shared/traceFormat';
import type { EngineModel } from '../engine/engine';
import { buildScoringBatch, scoreBatchOf, type RankedPrompt, type ScoringBatch } from './rewardData';

/** Judgments per forward when only scoring (eval, centering). */
const judgmentsPerForward = 32;
/** Completions per forward when averaging rewards. */
const completionsPerForward = judgmentsPerForward * 4;
/** Trace rows per eval. */
const maxTraceRows = 256;

/** Scores of every pair of `judgments`, scoring `judgmentsPerForward` judgments per forward. */
export async function scorePairs(
  model: EngineModel,
  judgments: readonly RankedPrompt[],
  width: number,
  padId: number,
): Promise<{ chosen: number[]; rejected: number[]; refs: ScoringBatch['refs'] }> {
  const out = { chosen: [] as number[], rejected: [] as number[], refs: [] as ScoringBatch['refs'] };
  for (let start = 0; start < judgments.length; start += judgmentsPerForward) {
    const batch = buildScoringBatch(judgments.slice(start, start + judgmentsPerForward), width, padId);
    if (batch.refs.length === 0) continue;
    const scores = await model.scores(scoreBatchOf(batch, width));
    out.chosen.push(...batch.chosenRow.map((row) => scores[row]));
    out.rejected.push(...batch.rejectedRow.map((row) => scores[row]));
    out.refs.push(...batch.refs);
  }
  return out;
}

/** The mean reward over every completion of `judgments` (each completion once). */
export async function meanReward(
  model: EngineModel,
  judgments: readonly RankedPrompt[],
  width: number,
  padId: number,
): Promise<number> {
  let total = 0;
  let count = 0;
  const rows = judgments.flatMap((judgment) =>
    judgment.completionIds.map((completion) => [...judgment.promptIds, ...completion]),
  );
  for (let start = 0; start < rows.length; start += completionsPerForward) {
    const chunk = rows.slice(start, start + completionsPerForward);
    const ids = new Int32Array(chunk.length * width).fill(padId);
    chunk.forEach((sequence, b) => ids.set(sequence, b * width));
    const lengths = chunk.map((sequence) => sequence.length);
    total += await model.scoreTotal({ batchSize: chunk.length, length: width, ids, lengths });
    count += chunk.length;
  }
  return total / count;
}

export interface EvalResult {
  readonly metrics: Record<string, number>;
  readonly rows: RewardTraceRow[];
}

/** Held-out loss, accuracy and margin against the labels, and accuracy against the oracle's ordering. */
export async function evaluateRewardModel(
  model: EngineModel,
  judgments: readonly RankedPrompt[],
  width: number,
  padId: number,
  step: number,
  oracleApplies: boolean,
): Promise<EvalResult> {
  const { chosen, rejected, refs } = await scorePairs(model, judgments, width, padId);
  let correct = 0;
  let margin = 0;
  let oracleCorrect = 0;
  let oracleCounted = 0;
  const rows: RewardTraceRow[] = [];
  refs.forEach(({ judgment, pair }, i) => {
    const gap = chosen[i] - rejected[i];
    if (gap > 0) correct++;
    margin += gap;
    // Ground truth where labels are noisy: does the model order the pair as the oracle does?
    const oracleGap = judgment.oracle[pair[0]] - judgment.oracle[pair[1]];
    if (oracleGap !== 0) {
      oracleCounted++;
      if (gap !== 0 && Math.sign(gap) === Math.sign(oracleGap)) oracleCorrect++;
    }
    if (rows.length < maxTraceRows) {
      rows.push({
        step,
        sample: i,
        prompt: judgment.prompt,
        chosen: judgment.completions[pair[0]],
        rejected: judgment.completions[pair[1]],
        chosen_score: chosen[i],
        rejected_score: rejected[i],
        margin: gap,
        correct: gap > 0,
        chosen_oracle_score: oracleApplies ? judgment.oracle[pair[0]] : null,
        rejected_oracle_score: oracleApplies ? judgment.oracle[pair[1]] : null,
      });
    }
  });
  const metrics: Record<string, number> = {
    'eval/loss': bradleyTerryLoss(chosen, rejected),
    'eval/rewards/accuracy': correct / refs.length,
    'eval/rewards/margin': margin / refs.length,
  };
  if (oracleApplies && oracleCounted > 0) metrics['eval/rewards/oracle_accuracy'] = oracleCorrect / oracleCounted;
  return { metrics, rows };
}
