/**
 * One PPO step, TRL's PPOTrainer training loop in order: rollouts (phases 1–2, on the rollout engine),
 * scores (3: penalty, scaling, clipping), per-token rewards, advantages and returns (3–5), the PPO update
 * (6), then the metrics with TRL's names, the adaptive KL controller's update and the step's trace.
 * Its NaN checks are inside the step, not in the stage loop's `checked`: the mean score before any update,
 * each minibatch's loss and gradient norm before the next one (ppoUpdate.ts), so no update follows a NaN.
 */
import { mean } from '../../core/stats';
import type { PpoStageConfig } from '../../shared/runConfig';
import { batchIndices } from '../data/batching';
import type { PromptSet } from '../data/prompts';
import type { TokenizedExample } from '../data/textExamples';
import type { EngineOptimizer } from '../engine/engine';
import type { StepOutcome } from '../loop/stageLoop';
import type { Rollout, RolloutEngine } from '../rollout/rolloutEngine';
import { writeTrace } from '../run/traceWriter';
import { seeds } from '../seeds';
import { assertFinite, type StageContext } from '../stageContext';
import type { Tokenizer } from '../tokenizer';
import type { KlController } from './klController';
import { rolloutMetrics } from './ppoMetrics';
import { ppoUpdate, type PpoUpdateStats } from './ppoUpdate';
import { computeAdvantages, ppoTraceRows, type Advantages } from './rollout';
import type { RunningMoments } from './runningMoments';
import { shapeScores } from './scores';

/** What every step of a PPO stage reads and updates. */
export interface PpoTraining {
  readonly stage: PpoStageConfig;
  readonly context: StageContext;
  readonly optimizer: EngineOptimizer;
  /** The stage's rollout engine, created on first use. */
  readonly rolloutEngine: () => Promise<RolloutEngine>;
  readonly tokenizer: Tokenizer;
  readonly blockSize: number;
  readonly prompts: PromptSet;
  /** The training prompts as token ids, BOS first. */
  readonly encodedPrompts: readonly number[][];
  readonly ptxExamples: readonly TokenizedExample[];
  readonly klController: KlController;
  readonly scoreMoments: RunningMoments;
  /** The step the stage started (or resumed) at, and when its first step began: episodes per second. */
  readonly startStep: number;
  readonly started: { at: number };
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/** Trains PPO step `step` (0-based) and writes its trace; returns its metrics line. */
export async function ppoStep(training: PpoTraining, step: number): Promise<StepOutcome> {
  const { stage, context, tokenizer, prompts } = training;
  const { seed } = context;
  const done = step + 1;
  const times: Record<string, number> = {};
  let t0 = performance.now();

  // 1–2. rollouts, their log-probabilities, values and scores
  const promptIndices = batchIndices(step, stage.batch_size, training.encodedPrompts.length, seed);
  const rolloutEngine = await training.rolloutEngine();
  const rollout = await rolloutEngine.collect(
    promptIndices.map((i) => training.encodedPrompts[i]),
    {
      temperature: stage.temperature,
      topK: stage.top_k,
      topP: stage.top_p,
      maxNewTokens: stage.max_new_tokens,
      seed: seeds.rolloutSampling(seed, step),
      eosTokenId: stage.stop_token === 'eos' ? tokenizer.eosId : undefined,
      padTokenId: tokenizer.padId,
    },
    tokenizer.eosId,
  );
  times['time/rollout'] = seconds(t0);
  times['time/rollout_generate'] = rollout.timings.generate;
  times['time/rollout_score'] = rollout.timings.score;
  t0 = performance.now();

  // 3. scores: missing-EOS penalty, running scaling / normalisation, clipping (PPO-max)
  const scores = shapeScores(rollout.rawScores, rollout.endedWithEos, stage, training.scoreMoments);
  assertFinite({ 'objective/scores': mean(scores) }, done);

  // 4–5. per-token rewards, advantages and returns
  const advantages = computeAdvantages(rollout, scores, {
    klCoef: training.klController.klCoef,
    klEstimator: stage.kl_estimator,
    whitenRewards: stage.whiten_rewards,
    whitenAdvantages: stage.whiten_advantages,
    advantageClip: stage.advantage_clip,
    gamma: stage.gamma,
    lam: stage.lam,
  });
  times['time/advantages'] = seconds(t0);
  t0 = performance.now();

  // 6. PPO epochs over shuffled minibatches
  const { stats, ratios } = await ppoUpdate({
    stage,
    optimizer: training.optimizer,
    rollout,
    advantages,
    step,
    seed,
    padId: tokenizer.padId,
    blockSize: training.blockSize,
    ptxExamples: training.ptxExamples,
  });
  times['time/update'] = seconds(t0);
  t0 = performance.now();
  await rolloutEngine.syncPolicy();
  times['time/weight_sync'] = seconds(t0);

  const responses = rollout.items.map((item) => tokenizer.decode(item.response, { skipSpecialTokens: true }));
  const stepPrompts = promptIndices.map((index) => prompts.train[index]);
  const oracleScores = prompts.hasOracle
    ? responses.map((response, i) => context.task.score(stepPrompts[i] + response))
    : null;
  const metrics = stepMetrics(training, { done, rollout, advantages, scores, stats, times });
  if (oracleScores) metrics['oracle/score'] = mean(oracleScores);
  training.klController.update(metrics['objective/kl'], stage.batch_size);

  // Trace: every per-token quantity of every rollout of this step
  const rows = ppoTraceRows(rollout, advantages, tokenizer, {
    step: done,
    prompts: stepPrompts,
    responses,
    oracleScores,
    ratios,
    cliprange: stage.cliprange,
  });
  writeTrace(context.run.dir, done, 'ppo', rows);
  return { metrics };
}

/** A step's metrics with TRL's names, in the order metrics.jsonl has always had them. */
function stepMetrics(
  training: PpoTraining,
  step: {
    readonly done: number;
    readonly rollout: Rollout;
    readonly advantages: Advantages;
    readonly scores: readonly number[];
    readonly stats: PpoUpdateStats;
    readonly times: Readonly<Record<string, number>>;
  },
): Record<string, number> {
  const { stage } = training;
  const { done, rollout, stats } = step;
  // The KL coefficient the rewards were built with (the controller updates after these metrics).
  const klCoef = training.klController.klCoef;
  const fromRollouts = rolloutMetrics({ ...step, rawScores: rollout.rawScores, klCoef });
  // The two counts go after the update statistics, where metrics.jsonl has always had them.
  const { 'val/num_eos_tokens': eosCount, response_length: responseLength, ...objective } = fromRollouts;
  const meanRatio = mean(stats.meanRatio);
  return {
    episode: done * stage.batch_size,
    ...objective,
    'policy/approxkl_avg': mean(stats.approxKl),
    'policy/clipfrac_avg': mean(stats.clipFrac),
    'loss/policy_avg': mean(stats.pgLoss),
    'loss/value_avg': mean(stats.vfLoss),
    'val/clipfrac_avg': mean(stats.vfClipFrac),
    'policy/entropy_avg': mean(stats.entropy),
    'val/ratio': meanRatio,
    'val/ratio_var': mean(stats.meanRatio.map((ratio) => (ratio - meanRatio) ** 2)),
    'val/num_eos_tokens': eosCount,
    'val/skipped_minibatches': stats.skipped,
    response_length: responseLength,
    lr: stage.learning_rate,
    ...step.times,
    eps: ((done - training.startStep) * stage.batch_size) / seconds(training.started.at),
  };
}
