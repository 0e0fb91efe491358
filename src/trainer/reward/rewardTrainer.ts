/**
 * Reward modelling (InstructGPT, https://arxiv.org/abs/2203.02155, §3.5): a GPT trunk from an SFT
 * checkpoint with a fresh scalar `score` head, trained on ranked completions with the Bradley–Terry
 * loss −log σ(r(x, y_c) − r(x, y_r)). Every pair of one judgment goes in the same batch, and each
 * completion is scored once per step however many pairs it is in (InstructGPT's K-completion trick).
 * AdamW with linear warmup then cosine decay, global-norm clipping, held-out accuracy (against the
 * labels, and against the task's oracle where it applies), per-eval traces, reward centering at the end,
 * and checkpoints that resume to the same numbers as an uninterrupted run.
 * Knows nothing of processes or messages: it reports through the callbacks of `StageContext`.
 */
import { existsSync } from 'node:fs';
import { mean } from '../../core/stats';
import { formatPreferenceProblem, readPreferenceFile, type PreferenceFileRead } from '../../shared/preferenceFile';
import type { RewardStageConfig } from '../../shared/runConfig';
import type { CheckpointContents } from '../checkpoint/checkpoint';
import { loraBaseOf, loraSettingsFor, readModelSource } from '../checkpoint/modelLoading';
import { resumeCheckpoint, stageCheckpointer } from '../checkpoint/stageCheckpoint';
import { batchIndices, splitExamples } from '../data/batching';
import type { EngineModel, EngineOptimizer } from '../engine/engine';
import { runStageLoop, type StepOutcome } from '../loop/stageLoop';
import { learningRateAt } from '../optim/schedule';
import { writeTrace } from '../run/traceWriter';
import type { StageContext, StageResult } from '../stageContext';
import type { Tokenizer } from '../tokenizer';
import { buildScoringBatch, pairCount, prepareJudgments, scoreBatchOf, type RankedPrompt } from './rewardData';
import { evaluateRewardModel, meanReward } from './rewardEvaluation';

// The stage's schema has no AdamW moments settings: nanoGPT's values, as the SFT defaults.
const adam = { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8 } as const;
/** |mean training reward| above this after centering means the centering failed. */
const centeringTolerance = 1e-3;

/** The model's start: this run's checkpoint (resume), or the init checkpoint's trunk with a fresh score head. */
async function startingPoint(stage: RewardStageConfig, context: StageContext): Promise<CheckpointContents> {
  const { run, log } = context;
  const latest = resumeCheckpoint(context.resume, run, (message) => log('warn', message));
  if (latest) {
    const source = await readModelSource(latest.dir, {
      seed: context.seed,
      blockSize: context.model.block_size,
      keepAdapters: true,
    });
    if (!source.weights.has('score.weight'))
      throw new Error(
        `Cannot resume from ${latest.dir}: it has no score head, so it was not written by a reward stage.`,
      );
    log('info', `resuming from ${latest.dir} (step ${latest.step})`);
    return source;
  }
  const dir = context.resolve(stage.init_from, 'checkpoint');
  if (!existsSync(dir)) throw new Error(`init_from: the checkpoint folder ${dir} does not exist.`);
  // A checkpoint of an earlier stage, or any Hugging Face model folder.
  const loaded = await readModelSource(dir, { seed: context.seed, blockSize: context.model.block_size });
  const trunk = new Map([...loaded.weights].filter(([name]) => !name.startsWith('score.')));
  if (trunk.size < loaded.weights.size)
    log('info', `${dir} has a score head; the reward model starts a fresh one (init_from gives the trunk)`);
  log('info', `initialised the trunk from ${dir}`);
  return { ...loaded, weights: trunk };
}

/**
 * The task's oracle is the ground truth of the demo task: it applies to judgments the simulated annotator
 * ranked (by the oracle, on demo prompts), and to data where it tells most held-out pairs apart (text it
 * knows nothing of scores 0 and ties).
 */
function oracleApplies(evaluation: readonly RankedPrompt[]): boolean {
  const evalPairs = evaluation.flatMap((judgment) =>
    judgment.pairs.map(([a, b]) => judgment.oracle[a] !== judgment.oracle[b]),
  );
  const simulated = evaluation.some((judgment) => judgment.annotator.startsWith('simulated'));
  return evalPairs.length > 0 && (simulated || evalPairs.filter(Boolean).length >= evalPairs.length / 2);
}

/** What a reward step reads: the model, its optimizer and the training judgments padded to `width`. */
interface RewardTraining {
  readonly model: EngineModel;
  readonly optimizer: EngineOptimizer;
  readonly train: readonly RankedPrompt[];
  readonly width: number;
  readonly padId: number;
  readonly seed: number;
}

/** One Bradley–Terry step over a batch of judgments (every pair of each), and TRL's reward metrics. */
async function rewardStep(
  stage: RewardStageConfig,
  training: RewardTraining,
  step: number,
  maxSteps: number,
): Promise<StepOutcome> {
  const { train, width, padId, seed } = training;
  const batchSize = stage.per_device_train_batch_size;
  const t0 = performance.now();
  const lr = learningRateAt(step, stage.learning_rate, maxSteps, stage.warmup_steps, 'cosine');
  const batch = buildScoringBatch(
    batchIndices(step, batchSize, train.length, seed).map((i) => train[i]),
    width,
    padId,
  );
  const loss = {
    kind: 'bradleyTerry',
    scores: scoreBatchOf(batch, width),
    chosenRows: batch.chosenRow,
    rejectedRows: batch.rejectedRow,
  } as const;
  const { scalars, outputs } = await training.optimizer.step(loss, {
    learningRate: lr,
    maxGradNorm: stage.max_grad_norm,
  });
  const seconds = (performance.now() - t0) / 1000;
  const { chosenScores: chosen, rejectedScores: rejected } = outputs;
  const pairs = chosen.length;
  let correct = 0;
  let margin = 0;
  for (let p = 0; p < pairs; p++) {
    if (chosen[p] > rejected[p]) correct++;
    margin += chosen[p] - rejected[p];
  }
  const metrics = {
    'loss/reward': scalars.loss,
    'rewards/accuracy': correct / pairs,
    'rewards/margin': margin / pairs,
    'rewards/chosen': mean(chosen),
    'rewards/rejected': mean(rejected),
    lr,
    grad_norm: scalars.gradNorm,
    epoch: ((step + 1) * batchSize) / train.length,
    pairs_per_s: pairs / seconds,
  };
  return { metrics, checked: { 'loss/reward': scalars.loss, grad_norm: scalars.gradNorm } };
}

/**
 * Reward centering: r ← r − mean over the training completions, by shifting the score head's bias (the
 * score is linear in it). Returns the shift and the mean after it, which must be ≈ 0.
 */
async function centerRewards(
  training: RewardTraining,
  log: StageContext['log'],
): Promise<{ shift: number; after: number }> {
  const { model, train, width, padId } = training;
  const shift = await meanReward(model, train, width, padId);
  model.subtractFromWeight('score.bias', shift);
  const after = await meanReward(model, train, width, padId);
  log(
    'info',
    `centered the rewards: subtracted ${shift.toFixed(5)} from score.bias; the mean reward over ` +
      `the ${train.length} training judgments' completions is now ${after.toExponential(2)}`,
  );
  if (!(Math.abs(after) <= centeringTolerance))
    throw new Error(
      `centering the rewards failed: the mean training reward is ${after} after subtracting ` +
        `${shift} from score.bias (expected ≈ 0).`,
    );
  return { shift, after };
}

/** run.json's summary of a finished stage: data sizes, the centering shift and the last held-out numbers. */
function rewardSummary(
  counts: { train: readonly RankedPrompt[]; evaluation: readonly RankedPrompt[] },
  centering: { shift: number; after?: number },
  lastEval: Readonly<Record<string, number>>,
): Record<string, number> {
  const summary: Record<string, number> = {
    train_judgments: counts.train.length,
    eval_judgments: counts.evaluation.length,
    train_pairs: pairCount(counts.train),
    eval_pairs: pairCount(counts.evaluation),
    reward_mean_shift: centering.shift,
  };
  if (centering.after !== undefined) summary.reward_mean_after_centering = centering.after;
  if ('eval/rewards/accuracy' in lastEval) {
    summary.eval_accuracy = lastEval['eval/rewards/accuracy'];
    summary.eval_loss = lastEval['eval/loss'];
    summary.eval_margin = lastEval['eval/rewards/margin'];
  }
  if ('eval/rewards/oracle_accuracy' in lastEval)
    summary.eval_oracle_accuracy = lastEval['eval/rewards/oracle_accuracy'];
  return summary;
}

/** The stage's judgments tokenized and split; the common padded width; whether the task's oracle applies. */
function rewardData(
  stage: RewardStageConfig,
  context: StageContext,
  read: PreferenceFileRead,
  preferenceFile: string,
  blockSize: number,
  tokenizer: Tokenizer,
): { train: RankedPrompt[]; evaluation: RankedPrompt[]; width: number; oracle: boolean } {
  const { log, seed } = context;
  const { prepared, truncated } = prepareJudgments(read.judgments, tokenizer, blockSize, context.task, log);
  if (prepared.length === 0)
    throw new Error(
      `${preferenceFile}: no preference pairs to train on (${read.judgments.length} judgments read, ` +
        `${read.problems.length} malformed lines). Each line needs a prompt and a ranking of at least two ` +
        'completions that are not all tied, or TRL\'s {"prompt", "chosen", "rejected"}.',
    );
  const { train, evaluation } = splitExamples(prepared, stage.eval_fraction, seed);
  if (train.length === 0)
    throw new Error(
      `${preferenceFile}: all ${prepared.length} judgments were held out for eval; ` +
        'lower eval_fraction or add judgments.',
    );
  if (truncated > 0)
    log(
      'info',
      `${truncated} completions were cut to fit the context of ${blockSize} tokens ` +
        '(their score is read at the last token kept)',
    );
  const width = Math.max(
    ...prepared.flatMap((judgment) =>
      judgment.completionIds.map((completion) => judgment.promptIds.length + completion.length),
    ),
  );
  return { train, evaluation, width, oracle: oracleApplies(evaluation) };
}

/** The stage's preference file, read: every good line kept, every malformed one reported as file:line. */
async function readJudgments(
  stage: RewardStageConfig,
  context: StageContext,
): Promise<{ preferenceFile: string; read: PreferenceFileRead }> {
  const preferenceFile = context.resolve(stage.preferences, 'preferences');
  if (!existsSync(preferenceFile)) throw new Error(`preferences: the file ${preferenceFile} does not exist.`);
  const read = await readPreferenceFile(preferenceFile);
  for (const problem of read.problems) context.log('warn', formatPreferenceProblem(problem));
  const retracted = read.retracted > 0 ? ` (${read.retracted} retracted)` : '';
  context.log(
    'info',
    `${preferenceFile}: ${read.judgments.length} judgments${retracted}, ${read.problems.length} problem lines`,
  );
  return { preferenceFile, read };
}

/** The reward model in the engine: a resumed run keeps the pooling its checkpoint was trained with. */
function rewardModel(stage: RewardStageConfig, context: StageContext, source: CheckpointContents): EngineModel {
  const scorePooling = context.resume ? (source.config.model.score_pooling ?? 'last') : stage.score_pooling;
  if (context.resume && scorePooling !== stage.score_pooling)
    context.log(
      'warn',
      `the checkpoint was trained with score_pooling "${scorePooling}"; resuming with it, ` +
        `not the config's "${stage.score_pooling}"`,
    );
  return context.engine.createModel(
    { ...source.config.model, dropout: 0, score_pooling: scorePooling },
    {
      heads: ['score'],
      weights: source.weights,
      keepMissingHeads: true,
      seed: context.seed,
      ...(stage.lora && { lora: source.lora?.settings ?? loraSettingsFor(stage.lora, source.config.model) }),
    },
  );
}

function logFinish(log: StageContext['log'], steps: number, seconds: number, summary: Record<string, number>): void {
  const accuracy = summary.eval_accuracy !== undefined ? `; held-out accuracy ${summary.eval_accuracy.toFixed(3)}` : '';
  const oracleAccuracy =
    summary.eval_oracle_accuracy !== undefined ? `, against the oracle ${summary.eval_oracle_accuracy.toFixed(3)}` : '';
  log('info', `reward model finished ${steps} steps in ${seconds.toFixed(1)} s${accuracy}${oracleAccuracy}`);
}

export async function runRewardStage(stage: RewardStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  const started = performance.now();

  // 1. Judgments: every good line kept, every malformed one reported as file:line
  const { preferenceFile, read } = await readJudgments(stage, context);

  // 2. Model: this run's checkpoint (resume), or the init checkpoint's trunk with a fresh score head
  const source = await startingPoint(stage, context);
  const tokenizer = source.tokenizer;
  const model = rewardModel(stage, context, source);
  const optimizer = model.createOptimizer({ ...adam, weightDecay: stage.weight_decay });

  try {
    // 3. Pairs, tokenized once; held-out by judgment so no prompt's pairs straddle the split
    const blockSize = model.config.block_size;
    const { train, evaluation, width, oracle } = rewardData(stage, context, read, preferenceFile, blockSize, tokenizer);
    const batchSize = stage.per_device_train_batch_size;
    const maxSteps = Math.max(1, Math.ceil((stage.num_train_epochs * train.length) / batchSize));
    const startStep = context.resume ? source.trainerState.global_step : 0;
    if (context.resume) {
      if (source.optimizer) optimizer.loadState(source.optimizer);
      if (source.trainerState.max_steps !== maxSteps)
        log(
          'warn',
          `the checkpoint planned ${source.trainerState.max_steps} steps but the data now gives ${maxSteps}; the ` +
            'preference file changed since, so the resumed run differs from an uninterrupted one',
        );
      if (startStep >= maxSteps) {
        run.truncateMetricsAfter(startStep);
        log('info', `${run.dir} already finished its ${maxSteps} steps; nothing to resume`);
        const outputs = { checkpoint: run.checkpointDir(startStep) };
        return { status: 'completed', step: startStep, outputs, lastMetrics: {} };
      }
    }
    const counts = { train_examples: pairCount(train), eval_examples: pairCount(evaluation) };
    run.update({ step: startStep, max_steps: maxSteps, parameters: model.parameterCount, ...counts });
    log(
      'info',
      `${train.length} training judgments (${pairCount(train)} pairs) and ${evaluation.length} held-out ` +
        `(${pairCount(evaluation)} pairs); ${maxSteps} steps of ${batchSize} judgments; sequences padded to ` +
        `${width} tokens; oracle ${oracle ? 'applies' : 'does not apply'}`,
    );

    const training: RewardTraining = { model, optimizer, train, width, padId: tokenizer.padId, seed };
    let lastEval: Record<string, number> = {};
    const centering: { shift: number; after?: number } = { shift: 0 };
    const trainerState = {
      max_steps: maxSteps,
      stage: 'reward',
      seed,
      preferences: preferenceFile,
      train_judgments: train.length,
      eval_judgments: evaluation.length,
    };
    const result = await runStageLoop(
      {
        startStep,
        maxSteps,
        evalSteps: stage.eval_steps,
        saveSteps: stage.save_steps,
        step: (step) => rewardStep(stage, training, step, maxSteps),
        // At the end: center the rewards, so that PPO sees rewards around 0.
        afterLastStep: async () => {
          if (stage.center_rewards) Object.assign(centering, await centerRewards(training, log));
        },
        evaluate:
          evaluation.length > 0
            ? async (done) => {
                const evaluated = await evaluateRewardModel(model, evaluation, width, tokenizer.padId, done, oracle);
                lastEval = evaluated.metrics;
                writeTrace(run.dir, done, 'reward', evaluated.rows);
                return evaluated.metrics;
              }
            : undefined,
        checkpoint: stageCheckpointer(run, { model, optimizer, tokenizer, loraBase: loraBaseOf(source) }, (step) => ({
          global_step: step,
          ...trainerState,
        })),
      },
      context,
    );
    if (result.status === 'stopped') return result;

    const summary = rewardSummary({ train, evaluation }, centering, lastEval);
    run.update({ summary });
    logFinish(log, maxSteps, (performance.now() - started) / 1000, summary);
    return result;
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
