/**
 * PPO's phase 6 (TRL's PPOTrainer, the "optimization" loop): num_ppo_epochs passes over the rollouts in
 * shuffled minibatches, each one optimizer step of the `ppo` loss through the engine seam:
 *   loss = vf_coef·vf_loss + [policy active] (pg_loss − entropy_coef·entropy) + [ptx] ptx_coef·lm_loss
 * A minibatch whose mean ratio passes ratio_threshold is broken (stale or diverged): its update is skipped.
 * With early_stopping, the epochs stop after one whose minibatch approximate KL passed 1.5 · target_kl.
 * Returns each minibatch's statistics and every token's ratio at every epoch, for the trace.
 */
import { clipFraction, Random } from '../../core';
import type { PpoStageConfig } from '../../shared/runConfig';
import { batchIndices } from '../data/batching';
import { buildSequenceBatch, responseValues, tokenBatchOf, type SequenceBatch } from '../data/sequences';
import { makeBatch, type TokenizedExample } from '../data/textExamples';
import type { EngineOptimizer, PpoLoss, TokenBatch } from '../engine/engine';
import type { Rollout } from '../rollout/rolloutEngine';
import { seeds } from '../seeds';
import { assertFinite } from '../stageContext';
import type { Advantages } from './rollout';

/** TRL's early stopping: the epochs end once a minibatch's approximate KL passes this multiple of target_kl. */
const earlyStopKlMultiple = 1.5;

/** What one PPO update reads. */
export interface PpoUpdateInput {
  readonly stage: PpoStageConfig;
  readonly optimizer: EngineOptimizer;
  readonly rollout: Rollout;
  readonly advantages: Advantages;
  /** The PPO step (0-based): it seeds the minibatch order and the ptx batches. */
  readonly step: number;
  readonly seed: number;
  readonly padId: number;
  readonly blockSize: number;
  /** PPO-ptx's language-modelling examples (empty when ptx_coef is 0). */
  readonly ptxExamples: readonly TokenizedExample[];
}

/** One entry per minibatch update (skipped ones included), averaged into the step's metrics. */
export interface PpoUpdateStats {
  readonly approxKl: number[];
  /** Share of the minibatch's response tokens whose gradient clipping removed (core's clip classes). */
  readonly clipFrac: number[];
  readonly pgLoss: number[];
  readonly vfLoss: number[];
  readonly vfClipFrac: number[];
  readonly entropy: number[];
  /** Mean ratio over the minibatch's response tokens. */
  readonly meanRatio: number[];
  /** Minibatches whose update ratio_threshold skipped. */
  skipped: number;
}

export interface PpoUpdateResult {
  readonly stats: PpoUpdateStats;
  /** [sample][epoch][token]: each response token's ratio π/π_old in every epoch that saw it. */
  readonly ratios: number[][][];
}

export async function ppoUpdate(input: PpoUpdateInput): Promise<PpoUpdateResult> {
  const { stage, rollout } = input;
  const batchSize = rollout.items.length;
  const miniBatchSize = batchSize / stage.num_mini_batches;
  const ratios: number[][][] = rollout.items.map(() => []);
  const stats: PpoUpdateStats = {
    approxKl: [],
    clipFrac: [],
    pgLoss: [],
    vfLoss: [],
    vfClipFrac: [],
    entropy: [],
    meanRatio: [],
    skipped: 0,
  };
  const random = new Random(seeds.minibatchShuffle(input.seed, input.step));
  let stopEpochs = false;
  for (let epoch = 0; epoch < stage.num_ppo_epochs && !stopEpochs; epoch++) {
    const order = random.shuffle(rollout.items.map((_, i) => i));
    for (let start = 0; start < batchSize; start += miniBatchSize) {
      const indices = order.slice(start, start + miniBatchSize);
      const ptxStep = seeds.ptxBatchStep(input.step, epoch, start);
      const approxKl = await updateMinibatch(input, indices, ptxStep, { stats, ratios });
      if (stage.early_stopping && approxKl > earlyStopKlMultiple * stage.target_kl) stopEpochs = true;
    }
  }
  return { stats, ratios };
}

/** Old log-probs, values, advantages or returns of `indices` laid out on the batch's [B, T] response positions. */
function responseGrid(rows: readonly number[][], indices: readonly number[], batch: SequenceBatch): Float32Array {
  const grid = new Float32Array(batch.batchSize * batch.length);
  indices.forEach((sample, b) =>
    rows[sample].forEach((value, t) => (grid[b * batch.length + batch.responseStart[b] + t] = value)),
  );
  return grid;
}

/** PPO-ptx's language-modelling batch for batch number `ptxStep`, as large as the minibatch. */
function ptxBatch(input: PpoUpdateInput, size: number, ptxStep: number): TokenBatch {
  const { ptxExamples, seed } = input;
  const picked = batchIndices(ptxStep, size, ptxExamples.length, seed).map((i) => ptxExamples[i]);
  return makeBatch(picked, input.blockSize, input.padId);
}

/** The `ppo` loss of the rollouts `indices` (laid out as `batch`), with PPO-ptx's batch number `ptxStep`. */
function minibatchLoss(
  input: PpoUpdateInput,
  indices: readonly number[],
  batch: SequenceBatch,
  ptxStep: number,
): PpoLoss {
  const { stage, rollout, advantages } = input;
  return {
    kind: 'ppo',
    batch: tokenBatchOf(batch),
    temperature: stage.temperature > 0 ? stage.temperature : 1,
    oldLogprobs: responseGrid(rollout.logprobs, indices, batch),
    oldValues: responseGrid(rollout.values, indices, batch),
    advantages: responseGrid(advantages.advantages, indices, batch),
    returns: responseGrid(advantages.returns, indices, batch),
    cliprange: stage.cliprange,
    cliprangeValue: stage.cliprange_value,
    vfCoef: stage.vf_coef,
    entropyCoef: stage.entropy_coef,
    policyActive: input.step >= stage.critic_warmup_steps,
    ...(stage.ptx_coef > 0 && { ptx: { batch: ptxBatch(input, indices.length, ptxStep), coef: stage.ptx_coef } }),
  };
}

/** One optimizer step on the rollouts `indices`; records its statistics and ratios and returns its approx KL. */
async function updateMinibatch(
  input: PpoUpdateInput,
  indices: readonly number[],
  ptxStep: number,
  into: { readonly stats: PpoUpdateStats; readonly ratios: number[][][] },
): Promise<number> {
  const { stage, rollout, advantages } = input;
  const { stats, ratios } = into;
  const batch = buildSequenceBatch(
    indices.map((sample) => rollout.items[sample]),
    input.padId,
  );
  const { scalars, outputs, applied } = await input.optimizer.step(minibatchLoss(input, indices, batch, ptxStep), {
    learningRate: stage.learning_rate,
    maxGradNorm: stage.max_grad_norm,
    shouldApply: (s) => s.meanRatio <= stage.ratio_threshold,
  });
  // The engine applied nothing if these are not finite: the run stops here, with its last good checkpoint.
  assertFinite({ 'loss/total': scalars.loss, grad_norm: scalars.gradNorm }, input.step + 1);
  if (!applied) stats.skipped++;
  responseValues(outputs.ratio, batch).forEach((row, b) => ratios[indices[b]].push(row));
  // policy/clipfrac_avg: the share of this minibatch's response tokens whose gradient clipping removed —
  // core's classifyClip of the same ratios and float32 advantages the trace stores, so metric and trace agree.
  const minibatchRatios = indices.map((sample) => ratios[sample][ratios[sample].length - 1]);
  const minibatchAdvantages = indices.map((sample) => Float32Array.from(advantages.advantages[sample]));
  const responseTokens = minibatchRatios.map((row) => new Array<number>(row.length).fill(1));
  stats.clipFrac.push(Math.fround(clipFraction(minibatchRatios, minibatchAdvantages, responseTokens, stage.cliprange)));
  stats.approxKl.push(scalars.approxKl);
  stats.pgLoss.push(scalars.pgLoss);
  stats.vfLoss.push(scalars.vfLoss);
  stats.vfClipFrac.push(scalars.vfClipFrac);
  stats.entropy.push(scalars.entropy);
  stats.meanRatio.push(scalars.meanRatio);
  return scalars.approxKl;
}
