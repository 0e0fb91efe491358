/**
 * Direct preference optimisation, as TRL's DPOTrainer does it (trl/trainer/dpo_trainer.py): the
 * policy starts from a checkpoint and a frozen copy of that checkpoint is the reference; each step
 * takes a batch of (prompt, chosen, rejected) pairs, sums the log-probabilities of each response's
 * tokens under the policy (chosen and rejected rows in one forward), and minimises the DPO loss
 * (Rafailov et al. 2023, eq. 7) or its hinge (SLiC) or IPO (Azar et al. 2023) variant. The
 * reference's log-probabilities never change, so they are computed once for every pair before
 * training (TRL's `precompute_ref_log_probs`), which halves the forward work of a step.
 *
 * Held-out evaluation, at step 0 (the starting policy), every `eval_steps` and at the end: the same
 * metrics on the held-out judgments' pairs, and fresh generations on held-out prompts scored by the
 * demo task's oracle with their KL to the reference — the two axes of the reward–KL frontier.
 */
import { dpoLoss } from '../../core';
import { formatPreferenceProblem, readPreferenceFile } from '../../shared/preferenceFile';
import { judgmentPairs, type Judgment, type PreferencePair } from '../../shared/preferences';
import type { DpoStageConfig } from '../../shared/runConfig';
import type { DpoTraceRow } from '../../shared/traceFormat';
import { latestCheckpoint } from '../checkpoint/checkpoint';
import { saveStageCheckpoint } from '../checkpoint/stageCheckpoint';
import { heldOutPrompts } from '../data/reviews';
import { tf, type Tensor } from '../engine/tfjs/tfRuntime';
import { dpoLossTensor } from '../engine/tfjs/losses';
import type { Gpt } from '../engine/tfjs/gpt';
import { AdamW, clipByGlobalNorm } from '../engine/tfjs/adamW';
import { learningRateAt } from '../optim/schedule';
import { buildSequenceBatch, padTo, responseValues, type PromptResponse, type SequenceBatch } from '../data/sequences';
import { evalGenerationSeed, evaluateGenerations, isDemoTask } from './dpoEvaluation';
import { writeTrace } from '../run/traceWriter';
import { assertFinite, yieldToEventLoop, type StageContext, type StageResult } from '../stageContext';
import type { BpeTokenizer } from '../tokenizer';
import { loadModel } from '../checkpoint/loadGpt';
import { sequenceLogprobs, sequenceTensors } from '../engine/tfjs/sequenceTensors';
import { batchIndices, splitExamples } from '../data/batching';

/** Pairs (2 × this many sequences) per forward when only reading log-probabilities. */
const readBatchPairs = 32;
/** Held-out pairs written to each eval's trace. */
const maxTraceRows = 256;

const mean = (values: readonly number[]) =>
  values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;

// ---------------------------------------------------------------------------------------------------
// Data

export interface TokenizedPair extends PreferencePair {
  /** BOS and the prompt's tokens. */
  readonly promptIds: readonly number[];
  /** The completion's tokens and EOS, cut to fit the context. */
  readonly chosenIds: readonly number[];
  readonly rejectedIds: readonly number[];
}

/** [BOS, prompt…] and completion + [EOS], cut so prompt + response fits block_size positions (the prompt kept; a prompt too long keeps its end, TRL's keep_end). */
export function tokenizePair(tokenizer: BpeTokenizer, pair: PreferencePair, blockSize: number): TokenizedPair {
  const maxTokens = blockSize + 1; // the last token is a target only
  let promptIds = [tokenizer.bosId, ...tokenizer.encode(pair.prompt)];
  if (promptIds.length > maxTokens - 1) promptIds = promptIds.slice(promptIds.length - (maxTokens - 1));
  const fit = (completion: string) =>
    [...tokenizer.encode(completion), tokenizer.eosId].slice(0, maxTokens - promptIds.length);
  return { ...pair, promptIds, chosenIds: fit(pair.chosen), rejectedIds: fit(pair.rejected) };
}

/** Summed (and per-token) response log-probabilities of a set of pairs under one model. */
interface PairLogps {
  /** Σ log π_ref over each response's tokens. */
  readonly chosen: Float64Array;
  readonly rejected: Float64Array;
  /** Per response token (eval pairs only, for the trace). */
  readonly chosenTokens?: number[][];
  readonly rejectedTokens?: number[][];
}

/**
 * Chosen rows then rejected rows, [2B, block_size]. Always padded to the full context so every forward
 * has one shape: the model caches its attention mask per shape, and a fixed shape keeps that cache
 * (and tf.memory) constant from the first step.
 */
function pairBatch(pairs: readonly TokenizedPair[], padId: number, blockSize: number): SequenceBatch {
  const items: PromptResponse[] = [
    ...pairs.map((pair) => ({ prompt: pair.promptIds, response: pair.chosenIds })),
    ...pairs.map((pair) => ({ prompt: pair.promptIds, response: pair.rejectedIds })),
  ];
  return padTo(buildSequenceBatch(items, padId), blockSize, padId);
}

/** Σ over response tokens of log π(token) [2B], and the masked per-token log-probabilities [2B, T]. */
function responseLogps(model: Gpt, batch: SequenceBatch): { sums: Tensor; perToken: Tensor } {
  const { inputs, targets, mask } = sequenceTensors(batch);
  const perToken = tf.mul(sequenceLogprobs(model, inputs, targets).logprobs, mask); // [2B, T]
  return { sums: tf.sum(perToken, 1), perToken };
}

/** Reads summed (and optionally per-token) response log-probabilities of pairs, in batches, without gradients. */
async function readPairLogps(
  model: Gpt,
  pairs: readonly TokenizedPair[],
  padId: number,
  perToken: boolean,
): Promise<PairLogps> {
  const chosen = new Float64Array(pairs.length);
  const rejected = new Float64Array(pairs.length);
  const chosenTokens: number[][] = [];
  const rejectedTokens: number[][] = [];
  for (let start = 0; start < pairs.length; start += readBatchPairs) {
    const slice = pairs.slice(start, start + readBatchPairs);
    const batch = pairBatch(slice, padId, model.config.block_size);
    const [sums, tokens] = tf.tidy(() => {
      const out = responseLogps(model, batch);
      return [out.sums, out.perToken];
    });
    const sumData = await sums.data();
    const tokenData = perToken ? ((await tokens.data()) as Float32Array) : undefined;
    tf.dispose([sums, tokens]);
    slice.forEach((_, i) => {
      chosen[start + i] = sumData[i];
      rejected[start + i] = sumData[slice.length + i];
    });
    if (tokenData) {
      const rows = responseValues(tokenData, batch);
      chosenTokens.push(...rows.slice(0, slice.length));
      rejectedTokens.push(...rows.slice(slice.length));
    }
  }
  return perToken ? { chosen, rejected, chosenTokens, rejectedTokens } : { chosen, rejected };
}

/** TRL's metrics of a set of pairs from their summed log-probabilities (core's `dpoLoss`, the tensor loss's twin). */
function pairMetrics(
  policy: { chosen: ArrayLike<number>; rejected: ArrayLike<number> },
  reference: PairLogps,
  pairs: readonly TokenizedPair[],
  stage: DpoStageConfig,
) {
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

// ---------------------------------------------------------------------------------------------------
// The stage

export async function runDpoStage(stage: DpoStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  const started = performance.now();

  // 1. Preferences: every pair of every judgment, held out by judgment
  const preferenceFile = context.resolve(stage.preferences, 'preferences');
  const read = await readPreferenceFile(preferenceFile);
  for (const problem of read.problems) log('warn', formatPreferenceProblem(problem));
  const split = splitExamples<Judgment>(read.judgments, stage.eval_fraction, seed);
  const trainPairs = split.train.flatMap(judgmentPairs);
  const evalPairs = split.evaluation.flatMap(judgmentPairs);
  if (trainPairs.length + evalPairs.length === 0) {
    throw new Error(
      `${preferenceFile}: no preference pairs (${read.judgments.length} judgments, ${read.problems.length} malformed lines). ` +
        'Each line must be a judgment {"prompt", "completions", "ranking"} ranking at least two completions apart, or a TRL pair {"prompt", "chosen", "rejected"}.',
    );
  }
  if (trainPairs.length === 0)
    throw new Error(
      `${preferenceFile}: all ${evalPairs.length} pairs were held out for eval; lower eval_fraction or add judgments.`,
    );
  const batchSize = stage.per_device_train_batch_size;
  const totalSteps =
    stage.max_steps ?? Math.max(1, Math.ceil((stage.num_train_epochs * trainPairs.length) / batchSize));
  run.update({ max_steps: totalSteps, train_examples: trainPairs.length, eval_examples: evalPairs.length });

  // 2. Models: the policy (from this run's checkpoint when resuming) and the frozen reference, both from `policy`
  const policyDir = context.resolve(stage.policy, 'checkpoint');
  const resumeFrom = context.resume ? latestCheckpoint(run.dir, (message) => log('warn', message)) : undefined;
  if (context.resume && !resumeFrom)
    throw new Error(
      `${run.dir} has no checkpoint to resume from yet; start the stage afresh ("rlhf-lens train --resume" does that by itself).`,
    );
  // Dropout off in both (TRL's disable_dropout=True): the reference's log-probs must be the policy's at step 0.
  const { model: policy, checkpoint: policyCheckpoint } = await loadModel(resumeFrom?.dir ?? policyDir, [], seed);
  const reference = await loadModel(policyDir, [], seed).then(
    (loaded) => loaded.model,
    (error: unknown) => {
      policy.dispose();
      throw error;
    },
  );
  const tokenizer = policyCheckpoint.tokenizer;
  // TRL's AdamW defaults (β₂ 0.999, no weight decay): DPO fine-tunes, it does not train from scratch.
  const optimizer = new AdamW(policy.weights, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  try {
    const blockSize = policy.config.block_size;
    const train = trainPairs.map((pair) => tokenizePair(tokenizer, pair, blockSize));
    const evaluation = evalPairs.map((pair) => tokenizePair(tokenizer, pair, blockSize));
    run.update({ parameters: policy.parameterCount });
    log(
      'info',
      `${read.judgments.length} judgments (${read.retracted} retracted, ${read.problems.length} malformed lines) → ${train.length} training and ${evaluation.length} held-out pairs; ${totalSteps} steps of ${batchSize} pairs`,
    );
    if (stage.label_smoothing > 0 && stage.loss_type !== 'sigmoid')
      log(
        'warn',
        `label_smoothing applies to the sigmoid loss only; it is ignored with loss_type "${stage.loss_type}".`,
      );

    const demo = isDemoTask(stage, context, policyDir);
    const evalPrompts = demo
      ? heldOutPrompts(stage.num_eval_prompts)
      : [
          ...new Set((split.evaluation.length > 0 ? split.evaluation : split.train).map((judgment) => judgment.prompt)),
        ].slice(0, stage.num_eval_prompts);
    log(
      'info',
      demo
        ? `eval generations: ${evalPrompts.length} held-out demo prompts, scored by the sentiment oracle`
        : `eval generations: ${evalPrompts.length} prompts of held-out judgments (no oracle: not the demo task)`,
    );

    // 3. The reference's log-probabilities, once (TRL's precompute_ref_log_probs)
    let t0 = performance.now();
    // Only the pairs the run will train on (max_steps may stop it short of an epoch).
    const used = [
      ...new Set(
        Array.from({ length: totalSteps }, (_, step) => batchIndices(step, batchSize, train.length, seed)).flat(),
      ),
    ].sort((a, b) => a - b);
    const usedRef = await readPairLogps(
      reference,
      used.map((i) => train[i]),
      tokenizer.padId,
      false,
    );
    const trainRef = {
      chosen: new Float64Array(train.length).fill(Number.NaN),
      rejected: new Float64Array(train.length).fill(Number.NaN),
    };
    used.forEach((index, k) => {
      trainRef.chosen[index] = usedRef.chosen[k];
      trainRef.rejected[index] = usedRef.rejected[k];
    });
    const evalRef = await readPairLogps(reference, evaluation, tokenizer.padId, true);
    log(
      'info',
      `reference log-probabilities of ${used.length + evaluation.length} pairs in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    let startStep = 0;
    if (resumeFrom) {
      if (policyCheckpoint.optimizer) optimizer.loadState(policyCheckpoint.optimizer);
      startStep = policyCheckpoint.trainerState.global_step;
      run.truncateMetricsAfter(startStep);
      log('info', `resuming from ${resumeFrom.dir} (step ${startStep})`);
    }
    run.update({ step: startStep });

    const checkpoint = (step: number) =>
      saveStageCheckpoint(run, step, {
        model: policy,
        optimizer,
        tokenizer,
        trainerState: {
          global_step: step,
          max_steps: totalSteps,
          stage: 'dpo',
          seed,
          epoch: (step * batchSize) / train.length,
          reference: policyDir,
        },
      });

    /** Held-out pairs and generations; writes the trace of `step` (not of the starting policy's step 0). */
    const evaluate = async (step: number): Promise<Record<string, number>> => {
      const metrics: Record<string, number> = {};
      if (evaluation.length > 0) {
        const logps = await readPairLogps(policy, evaluation, tokenizer.padId, step > 0);
        const { metrics: pairs, result } = pairMetrics(logps, evalRef, evaluation, stage);
        for (const [key, value] of Object.entries(pairs)) metrics[`eval/${key}`] = value;
        if (step > 0) {
          const logratios = (policyRows: number[][] | undefined, refRows: number[][] | undefined, i: number) =>
            (policyRows as number[][])[i].map((logp, t) => logp - (refRows as number[][])[i][t]);
          const rows: DpoTraceRow[] = evaluation.slice(0, maxTraceRows).map((pair, i) => ({
            step,
            sample: i,
            prompt: pair.prompt,
            chosen: pair.chosen,
            rejected: pair.rejected,
            chosen_tokens: pair.chosenIds.map((id) => tokenizer.tokenText(id)),
            rejected_tokens: pair.rejectedIds.map((id) => tokenizer.tokenText(id)),
            chosen_logratios: logratios(logps.chosenTokens, evalRef.chosenTokens, i),
            rejected_logratios: logratios(logps.rejectedTokens, evalRef.rejectedTokens, i),
            chosen_reward: result.chosenRewards[i],
            rejected_reward: result.rejectedRewards[i],
            loss: result.losses[i],
            chosen_oracle_score: demo ? context.task.score(pair.prompt + pair.chosen) : null,
            rejected_oracle_score: demo ? context.task.score(pair.prompt + pair.rejected) : null,
          }));
          writeTrace(run.dir, step, 'dpo', rows);
        }
      }
      const generations = await evaluateGenerations(policy, reference, tokenizer, evalPrompts, {
        maxNewTokens: stage.max_new_tokens,
        seed: evalGenerationSeed(seed),
        oracle: demo ? context.task : null,
      });
      if (generations.score !== undefined) metrics['eval/oracle/score'] = generations.score;
      metrics['eval/objective/kl'] = generations.kl;
      metrics['eval/response_length'] = generations.responseLength;
      return metrics;
    };

    if (!resumeFrom) {
      // The starting policy's held-out numbers: the frontier's origin (KL 0) and every chart's baseline.
      const baseline = { step: 0, time: Date.now() / 1000, ...(await evaluate(0)) };
      run.appendMetrics(baseline);
      context.onStep?.(baseline);
    }

    // 4. Train
    const variables = policy.trainableVariables;
    const names = [...policy.weights.keys()];
    let lastMetrics: Record<string, number> = {};
    let lastCheckpoint = resumeFrom?.dir ?? '';
    for (let step = startStep; step < totalSteps; step++) {
      await yieldToEventLoop();
      if (context.shouldStop?.()) {
        lastCheckpoint = await checkpoint(step);
        log('info', `stopped at step ${step} on request; checkpoint ${lastCheckpoint}`);
        return { status: 'stopped', step, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
      }
      t0 = performance.now();
      const done = step + 1;
      const lr = learningRateAt(step, stage.learning_rate, totalSteps, stage.warmup_steps, 'cosine');
      // Epochs of seeded shuffles: the batch is a pure function of (seed, step), so a resumed run sees the same ones.
      const indices = batchIndices(step, batchSize, train.length, seed);
      const pairs = indices.map((i) => train[i]);
      const batch = pairBatch(pairs, tokenizer.padId, blockSize);
      const ref = {
        chosen: indices.map((i) => trainRef.chosen[i]),
        rejected: indices.map((i) => trainRef.rejected[i]),
      };

      // One forward over chosen and rejected rows; the loss on their summed log-probabilities
      let sums: Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const policySums = tf.keep(responseLogps(policy, batch).sums); // [2B]: chosen then rejected
        sums = policySums;
        const [policyChosen, policyRejected] = tf.split(policySums, 2);
        const { losses } = dpoLossTensor(
          policyChosen,
          policyRejected,
          tf.tensor1d(ref.chosen),
          tf.tensor1d(ref.rejected),
          {
            beta: stage.beta,
            lossType: stage.loss_type,
            labelSmoothing: stage.label_smoothing,
            chosenLengths: tf.tensor1d(pairs.map((pair) => pair.chosenIds.length)),
            rejectedLengths: tf.tensor1d(pairs.map((pair) => pair.rejectedIds.length)),
          },
        );
        return tf.mean(losses) as never;
      }, variables);
      const named: Record<string, Tensor> = {};
      variables.forEach((variable, i) => (named[names[i]] = grads[variable.name]));
      const { clipped, norm } = clipByGlobalNorm(named, stage.max_grad_norm);
      let metrics: Record<string, number>;
      try {
        const [loss, gradNorm] = [(await value.data())[0], (await norm.data())[0]];
        assertFinite({ 'loss/dpo': loss, grad_norm: gradNorm }, done);
        const policySums = await (sums as Tensor).data();
        const { metrics: pairStats } = pairMetrics(
          { chosen: policySums.subarray(0, batchSize), rejected: policySums.subarray(batchSize) },
          { chosen: Float64Array.from(ref.chosen), rejected: Float64Array.from(ref.rejected) },
          pairs,
          stage,
        );
        optimizer.apply(clipped, lr);
        // The tensor loss is what was minimised; the core twin gives the per-pair rewards.
        metrics = {
          step: done,
          time: Date.now() / 1000,
          ...pairStats,
          'loss/dpo': loss,
          loss,
          lr,
          grad_norm: gradNorm,
          epoch: (done * batchSize) / train.length,
        };
      } finally {
        tf.dispose([value, norm, ...(sums ? [sums] : []), ...Object.values(grads), ...Object.values(clipped)]);
      }
      metrics.step_time = (performance.now() - t0) / 1000;

      if (done % stage.eval_steps === 0 || done === totalSteps) Object.assign(metrics, await evaluate(done));
      run.appendMetrics(metrics);
      context.onStep?.(metrics);
      lastMetrics = metrics;
      if (done % stage.save_steps === 0 || done === totalSteps) lastCheckpoint = await checkpoint(done);
    }
    run.update({ summary: Object.fromEntries(Object.entries(lastMetrics).filter(([key]) => key.startsWith('eval/'))) });
    log('info', `DPO finished ${totalSteps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { status: 'completed', step: totalSteps, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
  } finally {
    optimizer.dispose();
    policy.dispose();
    reference.dispose();
  }
}
