/**
 * Reward modelling (InstructGPT, https://arxiv.org/abs/2203.02155, §3.5): a GPT trunk from an SFT
 * checkpoint with a fresh scalar `score` head, trained on ranked completions with the Bradley–Terry
 * loss −log σ(r(x, y_c) − r(x, y_r)). Every pair of one judgment goes in the same batch, and each
 * completion is scored once per step however many pairs it is in (InstructGPT's K-completion trick).
 * AdamW with linear warmup then cosine decay, global-norm clipping, held-out accuracy (against the
 * labels, and against the demo oracle where it applies), per-eval traces, reward centering at the end,
 * and checkpoints that resume to the same numbers as an uninterrupted run.
 * Knows nothing of processes or messages: it reports through the callbacks of `StageContext`.
 */
import { existsSync } from 'node:fs';
import { bradleyTerryLoss, rankingToPairs } from '../../core';
import { formatPreferenceProblem, readPreferenceFile } from '../../shared/preferenceFile';
import type { Judgment } from '../../shared/preferences';
import type { RewardStageConfig } from '../../shared/runConfig';
import type { RewardTraceRow } from '../../shared/traceFormat';
import { latestCheckpoint, loadCheckpoint, type CheckpointContents } from '../checkpoint/checkpoint';
import { saveStageCheckpoint } from '../checkpoint/stageCheckpoint';
import { sentimentScore } from '../data/sentimentOracle';
import { tf, type Tensor } from '../engine/tfjs/tfRuntime';
import { bradleyTerryLossTensor } from '../engine/tfjs/losses';
import { Gpt } from '../engine/tfjs/gpt';
import { AdamW, clipByGlobalNorm } from '../engine/tfjs/adamW';
import { learningRateAt } from '../optim/schedule';
import { gptConfigOf } from '../checkpoint/modelLoading';
import { writeTrace } from '../run/traceWriter';
import { assertFinite, yieldToEventLoop, type StageContext, type StageResult } from '../stageContext';
import type { BpeTokenizer } from '../tokenizer';
import { batchIndices, splitExamples } from '../data/batching';

// The stage's schema has no AdamW moments settings: nanoGPT's values, as the SFT defaults.
const adam = { beta1: 0.9, beta2: 0.99, epsilon: 1e-8 } as const;
/** Judgments per forward when only scoring (eval, centering). */
const judgmentsPerForward = 32;
/** Trace rows per eval. */
const maxTraceRows = 256;
/** Prompt-too-long warnings logged one by one before they are only counted. */
const maxSkipWarnings = 5;

/** A judgment ready to score: token ids of its prompt and completions, and its ranked pairs. */
interface RankedPrompt {
  readonly id: string;
  readonly annotator: string;
  readonly prompt: string;
  readonly completions: readonly string[];
  /** [BOS, prompt…]. */
  readonly promptIds: readonly number[];
  /** [completion…, EOS], cut so that prompt + completion fits the context. */
  readonly completionIds: readonly (readonly number[])[];
  /** [winner, loser] indices into `completions`. */
  readonly pairs: readonly (readonly [number, number])[];
  /** The demo oracle's score of prompt + completion. */
  readonly oracle: readonly number[];
}

/** Every completion of some judgments in one padded id matrix, and which rows each pair compares. */
interface ScoringBatch {
  readonly rows: number;
  readonly ids: Int32Array;
  readonly lengths: number[];
  /** Per pair, the rows of its chosen and rejected completion. */
  readonly chosenRow: number[];
  readonly rejectedRow: number[];
  /** Per pair, where it came from. */
  readonly refs: { readonly judgment: RankedPrompt; readonly pair: readonly [number, number] }[];
}

/**
 * Rows are `[BOS, prompt…, completion…, EOS]`, right-padded to `width` (one width for the whole stage,
 * so the model's attention-bias cache holds one shape and the tensor count stays constant).
 */
function buildScoringBatch(judgments: readonly RankedPrompt[], width: number, padId: number): ScoringBatch {
  const sequences: number[][] = [];
  const chosenRow: number[] = [];
  const rejectedRow: number[] = [];
  const refs: ScoringBatch['refs'] = [];
  for (const judgment of judgments) {
    const rowOf = new Map<number, number>();
    const row = (completion: number) => {
      let index = rowOf.get(completion);
      if (index === undefined) {
        index = sequences.push([...judgment.promptIds, ...judgment.completionIds[completion]]) - 1;
        rowOf.set(completion, index);
      }
      return index;
    };
    for (const pair of judgment.pairs) {
      chosenRow.push(row(pair[0]));
      rejectedRow.push(row(pair[1]));
      refs.push({ judgment, pair });
    }
  }
  const ids = new Int32Array(sequences.length * width).fill(padId);
  sequences.forEach((sequence, b) => ids.set(sequence, b * width));
  return {
    rows: sequences.length,
    ids,
    lengths: sequences.map((sequence) => sequence.length),
    chosenRow,
    rejectedRow,
    refs,
  };
}

/** Scores of each pair's chosen and rejected completion, [P] each: one forward over the batch's completions. */
function pairScores(model: Gpt, batch: ScoringBatch, width: number): { chosen: Tensor; rejected: Tensor } {
  const ids = tf.tensor2d(batch.ids, [batch.rows, width], 'int32');
  const scores = model.score(ids, batch.lengths).reshape([1, batch.rows]); // [1, N]
  // Selecting rows by a one-hot product rather than tf.gather, whose gradient wasm lacks.
  const select = (rows: number[]) => tf.oneHot(tf.tensor1d(rows, 'int32'), batch.rows).toFloat(); // [P, N]
  return {
    chosen: tf.sum(tf.mul(select(batch.chosenRow), scores), 1),
    rejected: tf.sum(tf.mul(select(batch.rejectedRow), scores), 1),
  }; // [P] each
}

/** Scores of every pair of `judgments`, read out, scoring `judgmentsPerForward` judgments per forward. */
async function scorePairs(
  model: Gpt,
  judgments: readonly RankedPrompt[],
  width: number,
  padId: number,
): Promise<{ chosen: number[]; rejected: number[]; refs: ScoringBatch['refs'] }> {
  const out = { chosen: [] as number[], rejected: [] as number[], refs: [] as ScoringBatch['refs'] };
  for (let start = 0; start < judgments.length; start += judgmentsPerForward) {
    const batch = buildScoringBatch(judgments.slice(start, start + judgmentsPerForward), width, padId);
    if (batch.refs.length === 0) continue;
    const { chosen, rejected } = tf.tidy(() => pairScores(model, batch, width));
    out.chosen.push(...(await chosen.data()));
    out.rejected.push(...(await rejected.data()));
    out.refs.push(...batch.refs);
    tf.dispose([chosen, rejected]);
  }
  return out;
}

/** The mean reward over every completion of `judgments` (each completion once). */
async function meanReward(
  model: Gpt,
  judgments: readonly RankedPrompt[],
  width: number,
  padId: number,
): Promise<number> {
  let sum = 0;
  let count = 0;
  const rows = judgments.flatMap((judgment) =>
    judgment.completionIds.map((completion) => [...judgment.promptIds, ...completion]),
  );
  for (let start = 0; start < rows.length; start += judgmentsPerForward * 4) {
    const chunk = rows.slice(start, start + judgmentsPerForward * 4);
    const ids = new Int32Array(chunk.length * width).fill(padId);
    chunk.forEach((sequence, b) => ids.set(sequence, b * width));
    const total = tf.tidy(() =>
      tf.sum(
        model.score(
          tf.tensor2d(ids, [chunk.length, width], 'int32'),
          chunk.map((sequence) => sequence.length),
        ),
      ),
    );
    sum += (await total.data())[0];
    count += chunk.length;
    total.dispose();
  }
  return sum / count;
}

/** Tokenizes judgments for the reward model; a judgment whose prompt alone fills the context is skipped. */
function prepareJudgments(
  judgments: readonly Judgment[],
  tokenizer: BpeTokenizer,
  blockSize: number,
  log: StageContext['log'],
): { prepared: RankedPrompt[]; truncated: number } {
  const prepared: RankedPrompt[] = [];
  let skipped = 0;
  let noPairs = 0;
  let truncated = 0;
  for (const judgment of judgments) {
    // Every (winner, loser) of the ranking, ties skipped (InstructGPT's K·(K−1)/2 comparisons); a text
    // ranked twice cannot beat itself.
    const pairs = rankingToPairs(judgment.ranking).filter(
      ([winner, loser]) => judgment.completions[winner] !== judgment.completions[loser],
    );
    if (pairs.length === 0) {
      noPairs++;
      continue;
    }
    const promptIds = [tokenizer.bosId, ...tokenizer.encode(judgment.prompt)];
    if (promptIds.length >= blockSize) {
      if (skipped++ < maxSkipWarnings)
        log(
          'warn',
          `judgment "${judgment.id}": its prompt alone is ${promptIds.length} tokens, which leaves no room for a completion in the model's context of ${blockSize}; its ${pairs.length} pairs are skipped.`,
        );
      continue;
    }
    const room = blockSize - promptIds.length;
    const completionIds = judgment.completions.map((completion) => {
      const ids = [...tokenizer.encode(completion), tokenizer.eosId];
      if (ids.length > room) truncated++;
      return ids.slice(0, room);
    });
    prepared.push({
      id: judgment.id,
      annotator: judgment.annotator,
      prompt: judgment.prompt,
      completions: judgment.completions,
      promptIds,
      completionIds,
      pairs,
      oracle: judgment.completions.map((completion) => sentimentScore(judgment.prompt + completion)),
    });
  }
  if (skipped > maxSkipWarnings)
    log(
      'warn',
      `${skipped} judgments in all were skipped because their prompt alone fills the context of ${blockSize} tokens.`,
    );
  if (noPairs > 0) log('info', `${noPairs} judgments rank all their completions as tied and give no pair.`);
  return { prepared, truncated };
}

interface EvalResult {
  readonly metrics: Record<string, number>;
  readonly rows: RewardTraceRow[];
}

/** Held-out loss, accuracy and margin against the labels, and accuracy against the oracle's ordering. */
async function evaluate(
  model: Gpt,
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

export async function runRewardStage(stage: RewardStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  const started = performance.now();

  // 1. Judgments: every good line kept, every malformed one reported as file:line
  const preferenceFile = context.resolve(stage.preferences, 'preferences');
  if (!existsSync(preferenceFile)) throw new Error(`preferences: the file ${preferenceFile} does not exist.`);
  const read = await readPreferenceFile(preferenceFile);
  for (const problem of read.problems) log('warn', formatPreferenceProblem(problem));
  log(
    'info',
    `${preferenceFile}: ${read.judgments.length} judgments${read.retracted > 0 ? ` (${read.retracted} retracted)` : ''}, ${read.problems.length} problem lines`,
  );

  // 2. Model: this run's checkpoint (resume), or the init checkpoint's trunk with a fresh score head
  let source: CheckpointContents;
  if (context.resume) {
    const latest = latestCheckpoint(run.dir, (message) => log('warn', message));
    if (!latest)
      throw new Error(
        `${run.dir} has no checkpoint to resume from yet; start the stage afresh ("rlhf-lens train --resume" does that by itself).`,
      );
    source = await loadCheckpoint(latest.dir);
    if (!source.weights.has('score.weight'))
      throw new Error(
        `Cannot resume from ${latest.dir}: it has no score head, so it was not written by a reward stage.`,
      );
    log('info', `resuming from ${latest.dir} (step ${latest.step})`);
  } else {
    const dir = context.resolve(stage.init_from, 'checkpoint');
    if (!existsSync(dir)) throw new Error(`init_from: the checkpoint folder ${dir} does not exist.`);
    const loaded = await loadCheckpoint(dir);
    const trunk = new Map([...loaded.weights].filter(([name]) => !name.startsWith('score.')));
    if (trunk.size < loaded.weights.size)
      log('info', `${dir} has a score head; the reward model starts a fresh one (init_from gives the trunk)`);
    source = { ...loaded, weights: trunk };
    log('info', `initialised the trunk from ${dir}`);
  }
  const tokenizer = source.tokenizer;
  // A resumed run keeps the pooling its checkpoint was trained with; a new one takes the stage's.
  const scorePooling = context.resume ? (source.config.score_pooling ?? 'last') : stage.score_pooling;
  if (context.resume && scorePooling !== stage.score_pooling)
    log(
      'warn',
      `the checkpoint was trained with score_pooling "${scorePooling}"; resuming with it, not the config's "${stage.score_pooling}"`,
    );
  const model = Gpt.fromWeights(
    { ...gptConfigOf(source.config), score_pooling: scorePooling },
    ['score'],
    source.weights,
    { keepMissingHeads: true, seed },
  );
  const optimizer = new AdamW(model.weights, { ...adam, weightDecay: stage.weight_decay });

  try {
    // 3. Pairs, tokenized once; held-out by judgment so no prompt's pairs straddle the split
    const blockSize = model.config.block_size;
    const { prepared, truncated } = prepareJudgments(read.judgments, tokenizer, blockSize, log);
    const pairCount = (judgments: readonly RankedPrompt[]) =>
      judgments.reduce((sum, judgment) => sum + judgment.pairs.length, 0);
    if (prepared.length === 0) {
      throw new Error(
        `${preferenceFile}: no preference pairs to train on (${read.judgments.length} judgments read, ${read.problems.length} malformed lines). ` +
          'Each line needs a prompt and a ranking of at least two completions that are not all tied, or TRL\'s {"prompt", "chosen", "rejected"}.',
      );
    }
    const split = splitExamples(prepared, stage.eval_fraction, seed);
    const train = split.train;
    const evaluation = split.evaluation;
    if (train.length === 0)
      throw new Error(
        `${preferenceFile}: all ${prepared.length} judgments were held out for eval; lower eval_fraction or add judgments.`,
      );
    if (truncated > 0)
      log(
        'info',
        `${truncated} completions were cut to fit the context of ${blockSize} tokens (their score is read at the last token kept)`,
      );
    const width = Math.max(
      ...prepared.flatMap((judgment) =>
        judgment.completionIds.map((completion) => judgment.promptIds.length + completion.length),
      ),
    );
    // The demo oracle is the ground truth of the demo task: it applies to judgments the simulated annotator
    // ranked (by the oracle, on demo prompts), and to data where it tells most held-out pairs apart (text
    // it knows nothing of scores 0 and ties).
    const evalPairs = evaluation.flatMap((judgment) =>
      judgment.pairs.map(([a, b]) => judgment.oracle[a] !== judgment.oracle[b]),
    );
    const simulated = evaluation.some((judgment) => judgment.annotator.startsWith('simulated'));
    const oracleApplies =
      evalPairs.length > 0 && (simulated || evalPairs.filter(Boolean).length >= evalPairs.length / 2);

    const batchSize = stage.per_device_train_batch_size;
    const maxSteps = Math.max(1, Math.ceil((stage.num_train_epochs * train.length) / batchSize));
    const startStep = context.resume ? source.trainerState.global_step : 0;
    if (context.resume) {
      if (source.optimizer) optimizer.loadState(source.optimizer);
      if (source.trainerState.max_steps !== maxSteps)
        log(
          'warn',
          `the checkpoint planned ${source.trainerState.max_steps} steps but the data now gives ${maxSteps}; the preference file changed since, so the resumed run differs from an uninterrupted one`,
        );
      run.truncateMetricsAfter(startStep);
      if (startStep >= maxSteps) {
        log('info', `${run.dir} already finished its ${maxSteps} steps; nothing to resume`);
        return {
          status: 'completed',
          step: startStep,
          outputs: { checkpoint: run.checkpointDir(startStep) },
          lastMetrics: {},
        };
      }
    }
    run.update({
      step: startStep,
      max_steps: maxSteps,
      parameters: model.parameterCount,
      train_examples: pairCount(train),
      eval_examples: pairCount(evaluation),
    });
    log(
      'info',
      `${train.length} training judgments (${pairCount(train)} pairs) and ${evaluation.length} held-out (${pairCount(evaluation)} pairs); ${maxSteps} steps of ${batchSize} judgments; sequences padded to ${width} tokens; oracle ${oracleApplies ? 'applies' : 'does not apply'}`,
    );

    const checkpoint = (step: number) =>
      saveStageCheckpoint(run, step, {
        model: model,
        optimizer,
        tokenizer,
        trainerState: {
          global_step: step,
          max_steps: maxSteps,
          stage: 'reward',
          seed,
          preferences: preferenceFile,
          train_judgments: train.length,
          eval_judgments: evaluation.length,
        },
      });

    let lastMetrics: Record<string, number> = {};
    let lastCheckpoint = startStep > 0 ? run.checkpointDir(startStep) : '';
    let lastEval: Record<string, number> = {};
    let meanShift = 0;
    let meanAfter: number | undefined;
    const variables = model.trainableVariables;
    const names = [...model.weights.keys()];

    // 4. Train
    for (let step = startStep; step < maxSteps; step++) {
      await yieldToEventLoop();
      if (context.shouldStop?.()) {
        lastCheckpoint = await checkpoint(step);
        log('info', `stopped at step ${step} on request; checkpoint ${lastCheckpoint}`);
        return { status: 'stopped', step, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
      }
      const t0 = performance.now();
      const lr = learningRateAt(step, stage.learning_rate, maxSteps, stage.warmup_steps, 'cosine');
      const batch = buildScoringBatch(
        batchIndices(step, batchSize, train.length, seed).map((i) => train[i]),
        width,
        tokenizer.padId,
      );
      let kept: Tensor[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const { chosen, rejected } = pairScores(model, batch, width);
        kept = [tf.keep(chosen), tf.keep(rejected)];
        return bradleyTerryLossTensor(chosen, rejected) as never;
      }, variables);
      const named: Record<string, Tensor> = {};
      variables.forEach((variable, i) => (named[names[i]] = grads[variable.name]));
      const { clipped, norm } = clipByGlobalNorm(named, stage.max_grad_norm);
      let loss: number, gradNorm: number, chosen: Float32Array, rejected: Float32Array;
      try {
        [loss, gradNorm] = [(await value.data())[0], (await norm.data())[0]];
        [chosen, rejected] = [(await kept[0].data()) as Float32Array, (await kept[1].data()) as Float32Array];
        assertFinite({ 'loss/reward': loss, grad_norm: gradNorm }, step + 1);
        optimizer.apply(clipped, lr);
      } finally {
        tf.dispose([value, norm, ...kept, ...Object.values(grads), ...Object.values(clipped)]);
      }
      const seconds = (performance.now() - t0) / 1000;

      const done = step + 1;
      const pairs = chosen.length;
      let correct = 0;
      let margin = 0;
      for (let p = 0; p < pairs; p++) {
        if (chosen[p] > rejected[p]) correct++;
        margin += chosen[p] - rejected[p];
      }
      const metrics: Record<string, number> = {
        step: done,
        time: Date.now() / 1000,
        'loss/reward': loss,
        'rewards/accuracy': correct / pairs,
        'rewards/margin': margin / pairs,
        'rewards/chosen': chosen.reduce((a, b) => a + b, 0) / pairs,
        'rewards/rejected': rejected.reduce((a, b) => a + b, 0) / pairs,
        lr,
        grad_norm: gradNorm,
        epoch: (done * batchSize) / train.length,
        pairs_per_s: pairs / seconds,
      };

      // 5. At the end: center the rewards, r ← r − mean over the training completions, by shifting the
      // score head's bias (the score is linear in it), so that PPO sees rewards around 0.
      if (done === maxSteps && stage.center_rewards) {
        meanShift = await meanReward(model, train, width, tokenizer.padId);
        const bias = model.weights.get('score.bias');
        if (!bias) throw new Error('the reward model has no score.bias');
        tf.tidy(() => bias.assign(tf.sub(bias, meanShift)));
        meanAfter = await meanReward(model, train, width, tokenizer.padId);
        log(
          'info',
          `centered the rewards: subtracted ${meanShift.toFixed(5)} from score.bias; the mean reward over the ${train.length} training judgments' completions is now ${meanAfter.toExponential(2)}`,
        );
        if (!(Math.abs(meanAfter) <= 1e-3))
          throw new Error(
            `centering the rewards failed: the mean training reward is ${meanAfter} after subtracting ${meanShift} from score.bias (expected ≈ 0).`,
          );
      }

      if (evaluation.length > 0 && (done % stage.eval_steps === 0 || done === maxSteps)) {
        const result = await evaluate(model, evaluation, width, tokenizer.padId, done, oracleApplies);
        Object.assign(metrics, result.metrics);
        lastEval = result.metrics;
        writeTrace(run.dir, done, 'reward', result.rows);
      }
      run.appendMetrics(metrics);
      context.onStep?.(metrics);
      lastMetrics = metrics;
      if (done % stage.save_steps === 0 || done === maxSteps) lastCheckpoint = await checkpoint(done);
    }

    const summary: Record<string, number> = {
      train_judgments: train.length,
      eval_judgments: evaluation.length,
      train_pairs: pairCount(train),
      eval_pairs: pairCount(evaluation),
      reward_mean_shift: meanShift,
    };
    if (meanAfter !== undefined) summary.reward_mean_after_centering = meanAfter;
    if ('eval/rewards/accuracy' in lastEval) {
      summary.eval_accuracy = lastEval['eval/rewards/accuracy'];
      summary.eval_loss = lastEval['eval/loss'];
      summary.eval_margin = lastEval['eval/rewards/margin'];
    }
    if ('eval/rewards/oracle_accuracy' in lastEval)
      summary.eval_oracle_accuracy = lastEval['eval/rewards/oracle_accuracy'];
    run.update({ summary });
    log(
      'info',
      `reward model finished ${maxSteps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s${summary.eval_accuracy !== undefined ? `; held-out accuracy ${summary.eval_accuracy.toFixed(3)}` : ''}${summary.eval_oracle_accuracy !== undefined ? `, against the oracle ${summary.eval_oracle_accuracy.toFixed(3)}` : ''}`,
    );
    return { status: 'completed', step: maxSteps, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
