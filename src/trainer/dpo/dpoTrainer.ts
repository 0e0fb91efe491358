/**
 * Direct preference optimisation, as TRL's DPOTrainer does it (trl/trainer/dpo_trainer.py): the
 * policy starts from a checkpoint and a frozen copy of that checkpoint is the reference; each step
 * takes a batch of (prompt, chosen, rejected) pairs, sums the log-probabilities of each response's
 * tokens under the policy (chosen and rejected rows in one forward), and minimises the DPO loss
 * (Rafailov et al. 2023, eq. 7) or its hinge (SLiC) or IPO (Azar et al. 2023) variant — one `dpo`
 * LossSpec step of the engine. The reference's log-probabilities never change, so they are computed
 * once for every pair before training (TRL's `precompute_ref_log_probs`), which halves the forward
 * work of a step. The stage loop (loop/stageLoop.ts) drives the steps, evals, checkpoints and resume.
 *
 * Held-out evaluation, at step 0 (the starting policy), every `eval_steps` and at the end: the same
 * metrics on the held-out judgments' pairs, and fresh generations on held-out prompts scored by the
 * task's oracle with their KL to the reference — the two axes of the reward–KL frontier.
 */
import type { DpoStageConfig } from '../../shared/runConfig';

import { loadEngineModel, loraBaseOf } from '../checkpoint/modelLoading';
import { adaptersOffView } from '../checkpoint/referenceModel';
import { resumeCheckpoint, stageCheckpointer } from '../checkpoint/stageCheckpoint';
import { batchIndices } from '../data/batching';
import { tokenBatchOf } from '../data/sequences';
import type { AdamWOptions, EngineModel, EngineOptimizer } from '../engine/engine';
import { runStageLoop, type StageAlgorithm, type StepOutcome } from '../loop/stageLoop';
import { learningRateAt } from '../optim/schedule';
import { writeTrace } from '../run/traceWriter';
import { seeds } from '../seeds';
import type { StageContext, StageResult } from '../stageContext';
import type { Task } from '../tasks/task';
import type { Tokenizer } from '../tokenizer';
import {
  pairBatch,
  readDpoPairs,
  readPairLogps,
  readTrainReference,
  tokenizePair,
  type PairLogps,
  type TokenizedPair,
  type TrainReference,
} from './dpoData';
import { evalPrompts, evaluateGenerations, isDemoTask } from './dpoEvaluation';
import { dpoTraceRows, pairMetrics } from './dpoMetrics';

/** TRL's AdamW defaults (β₂ 0.999, no weight decay): DPO fine-tunes, it does not train from scratch. */
const dpoAdamW: AdamWOptions = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0 };

/** The policy (trained), its frozen reference and the policy's optimizer. */
interface DpoModels {
  readonly policy: EngineModel;
  readonly reference: EngineModel;
  readonly optimizer: EngineOptimizer;
  readonly tokenizer: Tokenizer;
  /** The checkpoint both start from (the reference, recorded in every checkpoint's trainer state). */
  readonly policyDir: string;
  /** The checkpoint this run resumes from, if it does. */
  readonly resumedFrom?: string;
  /** The step this run resumes at (0 when fresh). */
  readonly startStep: number;
  /** The folder a LoRA policy's adapters sit on (its checkpoints name it). */
  readonly loraBase?: string;
}

/** Everything a step and an eval read: the models, the tokenized pairs and the reference's log-probs of them. */
interface DpoRun extends DpoModels {
  readonly stage: DpoStageConfig;
  readonly context: StageContext;
  readonly totalSteps: number;
  readonly train: readonly TokenizedPair[];
  readonly evaluation: readonly TokenizedPair[];
  readonly trainRef: TrainReference;
  readonly evalRef: PairLogps;
  /** The oracle scoring eval generations and trace rows, when the demo task applies. */
  readonly oracle: Task | null;
  readonly prompts: readonly string[];
}

export async function runDpoStage(stage: DpoStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  const started = performance.now();

  // 1. Preferences: every pair of every judgment, held out by judgment
  const data = await readDpoPairs(context.resolve(stage.preferences, 'preferences'), stage.eval_fraction, seed, log);
  const batchSize = stage.per_device_train_batch_size;
  const totalSteps =
    stage.max_steps ?? Math.max(1, Math.ceil((stage.num_train_epochs * data.trainPairs.length) / batchSize));
  run.update({ max_steps: totalSteps, train_examples: data.trainPairs.length, eval_examples: data.evalPairs.length });

  // 2. Models: the policy (from this run's checkpoint when resuming) and the frozen reference, both from `policy`
  const models = await loadDpoModels(stage, context);
  const { policy, tokenizer, policyDir } = models;
  try {
    const blockSize = policy.config.block_size;
    const train = data.trainPairs.map((pair) => tokenizePair(tokenizer, pair, blockSize));
    const evaluation = data.evalPairs.map((pair) => tokenizePair(tokenizer, pair, blockSize));
    run.update({ parameters: policy.parameterCount });
    const { counts } = data;
    log(
      'info',
      `${counts.judgments} judgments (${counts.retracted} retracted, ${counts.problems} malformed lines) → ` +
        `${train.length} training and ${evaluation.length} held-out pairs; ${totalSteps} steps of ${batchSize} pairs`,
    );
    if (stage.label_smoothing > 0 && stage.loss_type !== 'sigmoid')
      log(
        'warn',
        `label_smoothing applies to the sigmoid loss only; it is ignored with loss_type "${stage.loss_type}".`,
      );

    const demo = isDemoTask(stage, context, policyDir);
    const prompts = evalPrompts(demo, data.judgments, stage.num_eval_prompts);
    log(
      'info',
      demo
        ? `eval generations: ${prompts.length} held-out demo prompts, scored by the ${context.task.name} oracle`
        : `eval generations: ${prompts.length} prompts of held-out judgments (no oracle: not the demo task)`,
    );

    // 3. The reference's log-probabilities, once (TRL's precompute_ref_log_probs)
    const referenceStart = performance.now();
    const schedule = { totalSteps, batchSize, seed };
    const trainRef = await readTrainReference(models.reference, train, schedule, tokenizer.padId);
    const evalRef = await readPairLogps(models.reference, evaluation, tokenizer.padId, true);
    const referenceSeconds = ((performance.now() - referenceStart) / 1000).toFixed(1);
    const pairsRead = trainRef.pairsRead + evaluation.length;
    log('info', `reference log-probabilities of ${pairsRead} pairs in ${referenceSeconds} s`);

    if (models.resumedFrom) log('info', `resuming from ${models.resumedFrom} (step ${models.startStep})`);
    run.update({ step: models.startStep });

    // 4. Train
    const dpo: DpoRun = {
      ...models,
      stage,
      context,
      totalSteps,
      train,
      evaluation,
      trainRef,
      evalRef,
      oracle: demo ? context.task : null,
      prompts,
    };
    const result = await runStageLoop(dpoAlgorithm(dpo), context);
    if (result.status === 'completed') {
      const summary = Object.entries(result.lastMetrics).filter(([key]) => key.startsWith('eval/'));
      run.update({ summary: Object.fromEntries(summary) });
      log('info', `DPO finished ${totalSteps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    return result;
  } finally {
    models.optimizer.dispose();
    policy.dispose();
    models.reference.dispose();
  }
}

/**
 * The policy from this run's latest checkpoint when resuming (with its optimizer state), else from
 * `policy`; the reference always from `policy`. Dropout is off in both (TRL's disable_dropout=True): the
 * reference's log-probs must be the policy's at step 0.
 */
async function loadDpoModels(stage: DpoStageConfig, context: StageContext): Promise<DpoModels> {
  const { run, log, seed, engine } = context;
  const policyDir = context.resolve(stage.policy, 'checkpoint');
  const resumeFrom = resumeCheckpoint(context.resume, run, (message) => log('warn', message));
  const blockSize = context.model.block_size;
  const { model: policy, checkpoint } = await loadEngineModel(engine, resumeFrom?.dir ?? policyDir, [], seed, {
    blockSize,
    lora: stage.lora,
    keepAdapters: resumeFrom !== undefined,
  });
  // A LoRA policy's reference is itself with its adapters off: no second copy of the trunk.
  const reference = policy.lora
    ? adaptersOffView(policy)
    : await loadEngineModel(engine, policyDir, [], seed, { blockSize }).then(
        (loaded) => loaded.model,
        (error: unknown) => {
          policy.dispose();
          throw error;
        },
      );
  const optimizer = policy.createOptimizer(dpoAdamW);
  if (resumeFrom && checkpoint.optimizer) optimizer.loadState(checkpoint.optimizer);
  const startStep = resumeFrom ? checkpoint.trainerState.global_step : 0;
  const { tokenizer } = checkpoint;
  const loraBase = loraBaseOf(checkpoint);
  return { policy, reference, optimizer, tokenizer, policyDir, resumedFrom: resumeFrom?.dir, startStep, loraBase };
}

/** DPO as the stage loop drives it. A resumed run has no step-0 baseline: its first run wrote one. */
function dpoAlgorithm(dpo: DpoRun): StageAlgorithm {
  const { stage, context, totalSteps, startStep } = dpo;
  const batchSize = stage.per_device_train_batch_size;
  return {
    startStep,
    maxSteps: totalSteps,
    evalSteps: stage.eval_steps,
    saveSteps: stage.save_steps,
    step: (step) => dpoStep(dpo, step),
    evaluate: (done) => evaluateDpo(dpo, done),
    // The starting policy's held-out numbers: the frontier's origin (KL 0) and every chart's baseline.
    baseline: dpo.resumedFrom === undefined ? () => evaluateDpo(dpo, 0) : undefined,
    checkpoint: stageCheckpointer(
      context.run,
      { model: dpo.policy, optimizer: dpo.optimizer, tokenizer: dpo.tokenizer, loraBase: dpo.loraBase },
      (step) => ({
        global_step: step,
        max_steps: totalSteps,
        stage: 'dpo',
        seed: context.seed,
        epoch: (step * batchSize) / dpo.train.length,
        reference: dpo.policyDir,
      }),
    ),
  };
}

/** One update on step `step`'s pairs: the engine's `dpo` loss on the policy's summed response log-probs. */
async function dpoStep(dpo: DpoRun, step: number): Promise<StepOutcome> {
  const { stage, train, trainRef, tokenizer } = dpo;
  const stepStart = performance.now();
  const done = step + 1;
  const batchSize = stage.per_device_train_batch_size;
  const lr = learningRateAt(step, stage.learning_rate, dpo.totalSteps, stage.warmup_steps, 'cosine');
  // Epochs of seeded shuffles: the batch is a pure function of (seed, step), so a resumed run sees the same ones.
  const indices = batchIndices(step, batchSize, train.length, dpo.context.seed);
  const pairs = indices.map((i) => train[i]);
  const ref = {
    chosen: indices.map((i) => trainRef.chosen[i]),
    rejected: indices.map((i) => trainRef.rejected[i]),
  };
  const { scalars, outputs } = await dpo.optimizer.step(
    {
      kind: 'dpo',
      batch: tokenBatchOf(pairBatch(pairs, tokenizer.padId, dpo.policy.config.block_size)),
      refChosen: ref.chosen,
      refRejected: ref.rejected,
      beta: stage.beta,
      lossType: stage.loss_type,
      labelSmoothing: stage.label_smoothing,
      chosenLengths: pairs.map((pair) => pair.chosenIds.length),
      rejectedLengths: pairs.map((pair) => pair.rejectedIds.length),
    },
    { learningRate: lr, maxGradNorm: stage.max_grad_norm },
  );
  const { loss, gradNorm } = scalars;
  const policySums = outputs.logprobSums; // [2B]: chosen then rejected
  const { metrics: pairStats } = pairMetrics(
    { chosen: policySums.subarray(0, batchSize), rejected: policySums.subarray(batchSize) },
    { chosen: Float64Array.from(ref.chosen), rejected: Float64Array.from(ref.rejected) },
    pairs,
    stage,
  );
  // The tensor loss is what was minimised; the core twin gives the per-pair rewards.
  const metrics: Record<string, number> = {
    ...pairStats,
    'loss/dpo': loss,
    loss,
    lr,
    grad_norm: gradNorm,
    epoch: (done * batchSize) / train.length,
  };
  metrics.step_time = (performance.now() - stepStart) / 1000;
  return { metrics, checked: { 'loss/dpo': loss, grad_norm: gradNorm } };
}

/**
 * Held-out pairs and generations after `step` steps; writes the trace of `step` (not of the starting
 * policy's step 0).
 */
async function evaluateDpo(dpo: DpoRun, step: number): Promise<Record<string, number>> {
  const { stage, context, evaluation, tokenizer, oracle } = dpo;
  const metrics: Record<string, number> = {};
  if (evaluation.length > 0) {
    const logps = await readPairLogps(dpo.policy, evaluation, tokenizer.padId, step > 0);
    const { metrics: pairs, result } = pairMetrics(logps, dpo.evalRef, evaluation, stage);
    for (const [key, value] of Object.entries(pairs)) metrics[`eval/${key}`] = value;
    if (step > 0) {
      const rows = dpoTraceRows(step, evaluation, { policy: logps, reference: dpo.evalRef }, result, tokenizer, oracle);
      writeTrace(context.run.dir, step, 'dpo', rows);
    }
  }
  const generations = await evaluateGenerations(dpo.policy, dpo.reference, tokenizer, dpo.prompts, {
    maxNewTokens: stage.max_new_tokens,
    seed: seeds.evalGeneration(context.seed),
    oracle,
  });
  if (generations.score !== undefined) metrics['eval/oracle/score'] = generations.score;
  metrics['eval/objective/kl'] = generations.kl;
  metrics['eval/response_length'] = generations.responseLength;
  return metrics;
}
