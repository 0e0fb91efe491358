/**
 * PPO for language models with a per-token KL penalty to a frozen reference, as TRL's PPOTrainer
 * does it (rollout phases in rollout.ts), with the PPO-max options of "Secrets of RLHF in Large
 * Language Models Part I: PPO" (score scaling and clipping, advantage clipping, entropy bonus,
 * critic warm-up, PPO-ptx). The policy and its value head share a trunk (TRL's
 * AutoModelForCausalLMWithValueHead). Every per-token quantity of every rollout is written to
 * `traces/step-<n>.arrow`, including each token's ratio and clip flag at every PPO epoch.
 */
import { Random } from '../../core/random';
import type { PpoStageConfig } from '../../shared/runConfig';
import { latestCheckpoint } from '../checkpoint/checkpoint';
import { saveStageCheckpoint } from '../checkpoint/stageCheckpoint';
import { loadPrompts } from '../data/prompts';
import type { Task } from '../tasks/task';
import { maskedNll } from '../engine/tfjs/losses';
import { tf, type Tensor } from '../engine/tfjs/tfRuntime';
import { AdamW, clipByGlobalNorm } from '../engine/tfjs/adamW';
import { buildSequenceBatch } from '../data/sequences';
import { writeTrace } from '../run/traceWriter';
import { loadSftExamples, makeBatch, tokenizeExample, type TokenizedExample } from '../data/textExamples';
import { seeds } from '../seeds';
import { assertFinite, yieldToEventLoop, type StageContext, type StageResult } from '../stageContext';
import type { BpeTokenizer } from '../tokenizer';
import { KlController } from './klController';
import { computeAdvantages, ppoTraceRows } from './rollout';
import { collectRollout } from '../rollout/engineRollout';
import type { Rollout, RolloutEngine, RolloutModels } from '../rollout/rolloutEngine';
import { TfjsModel } from '../engine/tfjs/tfjsEngine';
import { generate } from '../sampling/sampler';
import { RunningMoments, type MomentsState } from './runningMoments';
import { loadModel } from '../checkpoint/loadGpt';
import { sequenceLogprobs, sequenceTensors } from '../engine/tfjs/sequenceTensors';
import { batchIndices } from '../data/batching';
import { maskedMeanTensor, ppoPolicyLossTensor, ppoValueLossTensor } from '../engine/tfjs/losses';

const mean = (values: readonly number[]) =>
  values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

function sameTokenizer(a: BpeTokenizer, b: BpeTokenizer): boolean {
  return JSON.stringify(a.toJSON().model) === JSON.stringify(b.toJSON().model);
}

/** Held-out evaluation: oracle score, reward-model score and KL to the reference of fresh generations. */
async function evaluate(
  models: RolloutModels,
  tokenizer: BpeTokenizer,
  prompts: readonly string[],
  stage: PpoStageConfig,
  seed: number,
  oracle: Task | null,
): Promise<Record<string, number>> {
  const rollout = await collectRollout(
    models,
    prompts.map((prompt) => [tokenizer.bosId, ...tokenizer.encode(prompt)]),
    {
      temperature: stage.temperature,
      topK: stage.top_k,
      topP: stage.top_p,
      maxNewTokens: stage.max_new_tokens,
      seed,
      eosTokenId: tokenizer.eosId,
      padTokenId: tokenizer.padId,
    },
    tokenizer.eosId,
  );
  const kl = rollout.logprobs.map((row, b) => sum(row.map((logprob, t) => logprob - rollout.refLogprobs[b][t])));
  const metrics: Record<string, number> = {
    'eval/objective/scores': mean(rollout.rawScores),
    'eval/objective/kl': mean(kl),
    'eval/response_length': mean(rollout.logprobs.map((row) => row.length)),
  };
  if (oracle)
    metrics['eval/oracle/score'] = mean(
      rollout.items.map((item, i) =>
        oracle.score(prompts[i] + tokenizer.decode(item.response, { skipSpecialTokens: true })),
      ),
    );
  return metrics;
}

export async function runPpoStage(stage: PpoStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  if (stage.batch_size % stage.num_mini_batches !== 0)
    throw new Error(`num_mini_batches (${stage.num_mini_batches}) must divide batch_size (${stage.batch_size}).`);
  const totalSteps = Math.max(1, Math.floor(stage.total_episodes / stage.batch_size));
  run.update({ max_steps: totalSteps });

  // Models: the policy with a value head (from this run's checkpoint when resuming), the frozen
  // reference (the starting policy), and the reward model.
  const policyDir = context.resolve(stage.policy, 'checkpoint');
  const rewardDir = context.resolve(stage.reward_model, 'checkpoint');
  const resumeFrom = context.resume ? latestCheckpoint(run.dir, (message) => log('warn', message)) : undefined;
  if (context.resume && !resumeFrom)
    throw new Error(
      `${run.dir} has no checkpoint to resume from yet; start the stage afresh ("rlhf-lens train --resume" does that by itself).`,
    );
  const { model: policy, checkpoint: policyCheckpoint } = await loadModel(
    resumeFrom?.dir ?? policyDir,
    ['v_head'],
    seed,
  );
  const { model: reference } = await loadModel(policyDir, [], seed);
  const { model: reward, checkpoint: rewardCheckpoint } = await loadModel(rewardDir, ['score'], seed);
  const tokenizer = policyCheckpoint.tokenizer;
  const optimizer = new AdamW(policy.weights, { beta1: 0.9, beta2: 0.999, epsilon: 1e-5, weightDecay: 0 });
  // Until PPO's update runs through the seam too, its tfjs models are wrapped as seam models for rollouts.
  const models: RolloutModels = {
    policy: new TfjsModel(policy, generate),
    reference: new TfjsModel(reference, generate),
    reward: new TfjsModel(reward, generate),
  };
  let rolloutEngine: RolloutEngine | undefined;
  try {
    if (!sameTokenizer(tokenizer, rewardCheckpoint.tokenizer))
      throw new Error(
        `The reward model (${rewardDir}) was trained with another tokenizer than the policy (${policyDir}); train both from the same SFT stage.`,
      );
    log('info', `policy ${policyDir} (+ value head), reference = its frozen copy, reward model ${rewardDir}`);

    const prompts = await loadPrompts(
      stage.prompts,
      context.configDir,
      stage.total_episodes,
      stage.num_eval_prompts,
      seed,
    );
    for (const message of prompts.messages) log('warn', message);
    const encodedPrompts = prompts.train.map((prompt) => [tokenizer.bosId, ...tokenizer.encode(prompt)]);
    const longest = Math.max(...encodedPrompts.map((ids) => ids.length));
    if (longest + 1 > policy.config.block_size)
      throw new Error(
        `A prompt of ${longest} tokens leaves no room for a response in the context of ${policy.config.block_size}.`,
      );

    // PPO-ptx: language-modelling batches from the SFT data, mixed into each update.
    let ptxExamples: TokenizedExample[] = [];
    if (stage.ptx_coef > 0) {
      const loaded = await loadSftExamples(
        stage.ptx_dataset ?? { source: 'demo', num_examples: 20000 },
        context.configDir,
        seed,
      );
      ptxExamples = loaded.examples.map((example) =>
        tokenizeExample(tokenizer, example, false, policy.config.block_size + 1),
      );
    }

    const klController = new KlController(
      stage.init_kl_coef,
      stage.adap_kl_ctrl ? { target: stage.target, horizon: stage.horizon } : undefined,
    );
    const scoreMoments = new RunningMoments();
    let startStep = 0;
    if (resumeFrom) {
      const state = policyCheckpoint.trainerState;
      if (policyCheckpoint.optimizer) optimizer.loadState(policyCheckpoint.optimizer);
      klController.value = state.kl_coef as number;
      scoreMoments.state = state.score_moments as MomentsState;
      startStep = state.global_step;
      run.truncateMetricsAfter(startStep);
      log('info', `resuming from ${resumeFrom.dir} (step ${startStep}, β = ${klController.value})`);
    }

    const checkpoint = (step: number) =>
      saveStageCheckpoint(run, step, {
        model: policy,
        optimizer,
        tokenizer,
        trainerState: {
          global_step: step,
          max_steps: totalSteps,
          stage: 'ppo',
          seed,
          kl_coef: klController.value,
          score_moments: scoreMoments.state,
          episode: step * stage.batch_size,
        },
      });
    const evalNow = async () =>
      evaluate(
        models,
        tokenizer,
        prompts.heldOut,
        stage,
        seeds.evalGeneration(seed),
        prompts.hasOracle ? context.task : null,
      );

    if (startStep === 0) {
      // The starting policy's held-out numbers, so every chart has its step-0 baseline.
      const baseline = { step: 0, time: Date.now() / 1000, ...(await evalNow()) };
      run.appendMetrics(baseline);
      context.onStep?.(baseline);
    }

    const variables = policy.trainableVariables;
    const names = [...policy.weights.keys()];
    let lastCheckpoint = resumeFrom?.dir ?? '';
    let lastMetrics: Record<string, number> = {};
    const stageStarted = performance.now();

    for (let step = startStep; step < totalSteps; step++) {
      await yieldToEventLoop();
      if (context.shouldStop?.()) {
        lastCheckpoint = await checkpoint(step);
        log('info', `stopped at step ${step} on request; checkpoint ${lastCheckpoint}`);
        return { status: 'stopped', step, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
      }
      const times: Record<string, number> = {};
      let t0 = performance.now();
      const done = step + 1;

      // 1–2. rollouts, their log-probabilities, values and scores
      const promptIndices = batchIndices(step, stage.batch_size, encodedPrompts.length, seed);
      const stepPrompts = promptIndices.map((i) => encodedPrompts[i]);
      rolloutEngine ??= await context.createRolloutEngine(stage.rollout_engine, models);
      const rollout: Rollout = await rolloutEngine.collect(
        stepPrompts,
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
      times['time/rollout'] = (performance.now() - t0) / 1000;
      times['time/rollout_generate'] = rollout.timings.generate;
      times['time/rollout_score'] = rollout.timings.score;
      t0 = performance.now();

      // 3. scores: missing-EOS penalty, running scaling / normalisation, clipping (PPO-max)
      let scores = rollout.rawScores.map((score, i) =>
        stage.missing_eos_penalty !== undefined && !rollout.endedWithEos[i] ? score - stage.missing_eos_penalty : score,
      );
      if (stage.use_score_scaling) {
        scoreMoments.update(scores);
        const factor = scoreMoments.std + Number.EPSILON;
        scores = scores.map((score) => (stage.use_score_norm ? (score - scoreMoments.mean) / factor : score / factor));
      }
      if (stage.score_clip !== undefined)
        scores = scores.map((score) =>
          Math.min(stage.score_clip as number, Math.max(-(stage.score_clip as number), score)),
        );
      assertFinite({ 'objective/scores': mean(scores) }, done);

      // 4–5. per-token rewards, advantages and returns
      const estimate = computeAdvantages(rollout, scores, {
        klCoef: klController.value,
        klEstimator: stage.kl_estimator,
        whitenRewards: stage.whiten_rewards,
        whitenAdvantages: stage.whiten_advantages,
        advantageClip: stage.advantage_clip,
        gamma: stage.gamma,
        lam: stage.lam,
      });
      times['time/advantages'] = (performance.now() - t0) / 1000;
      t0 = performance.now();

      // 6. PPO epochs over shuffled minibatches
      const batchSize = rollout.items.length;
      const miniBatchSize = batchSize / stage.num_mini_batches;
      const ratios: number[][][] = rollout.items.map(() => []); // [sample][epoch][token]
      const stats = {
        approxKl: [] as number[],
        clipFrac: [] as number[],
        pgLoss: [] as number[],
        vfLoss: [] as number[],
        vfClipFrac: [] as number[],
        entropy: [] as number[],
        ratio: [] as number[],
        skipped: 0,
      };
      const policyActive = step >= stage.critic_warmup_steps;
      const random = new Random(seeds.minibatchShuffle(seed, step));
      let stopEpochs = false;
      for (let epoch = 0; epoch < stage.num_ppo_epochs && !stopEpochs; epoch++) {
        const order = random.shuffle(rollout.items.map((_, i) => i));
        for (let start = 0; start < batchSize; start += miniBatchSize) {
          const indices = order.slice(start, start + miniBatchSize);
          const items = indices.map((i) => rollout.items[i]);
          const batch = buildSequenceBatch(items, tokenizer.padId);
          // Old log-probs, values, advantages and returns laid out on the batch's [B, T] grid at the response positions.
          const grid = (rows: number[][]) => {
            const out = new Float32Array(batch.batchSize * batch.length);
            indices.forEach((sample, b) =>
              rows[sample].forEach((value, t) => (out[b * batch.length + batch.responseStart[b] + t] = value)),
            );
            return tf.tensor2d(out, [batch.batchSize, batch.length]);
          };
          const temperature = stage.temperature > 0 ? stage.temperature : 1;
          const ptx =
            stage.ptx_coef > 0
              ? makeBatch(
                  batchIndices(seeds.ptxBatchStep(step, epoch, start), miniBatchSize, ptxExamples.length, seed).map(
                    (i) => ptxExamples[i],
                  ),
                  policy.config.block_size,
                  tokenizer.padId,
                )
              : undefined;
          let kept: Tensor[] = [];
          const { value, grads } = tf.variableGrads(() => {
            const { inputs, targets, mask } = sequenceTensors(batch);
            const { logprobs, logits, hidden } = sequenceLogprobs(policy, inputs, targets, temperature);
            const newValues = policy.scalarHead('v_head', hidden);
            const policyLoss = ppoPolicyLossTensor(
              logprobs,
              grid(rollout.logprobs),
              grid(estimate.advantages),
              mask,
              stage.cliprange,
            );
            const valueLoss = ppoValueLossTensor(
              newValues,
              grid(rollout.values),
              grid(estimate.returns),
              mask,
              stage.cliprange_value,
            );
            const probs = tf.softmax(logits);
            const entropy = maskedMeanTensor(tf.neg(tf.sum(tf.mul(probs, tf.logSoftmax(logits)), -1)), mask);
            let loss = tf.mul(stage.vf_coef, valueLoss.loss);
            if (policyActive) loss = tf.add(loss, tf.sub(policyLoss.loss, tf.mul(stage.entropy_coef, entropy)));
            if (ptx) {
              const shape: [number, number] = [ptx.batchSize, ptx.length];
              const lm = maskedNll(
                policy.forward(tf.tensor2d(ptx.inputs, shape, 'int32')).logits,
                tf.tensor2d(ptx.targets, shape, 'int32'),
                tf.tensor2d(ptx.mask, shape),
              );
              loss = tf.add(loss, tf.mul(stage.ptx_coef, lm));
            }
            kept = [
              policyLoss.approxKl,
              policyLoss.clipFrac,
              policyLoss.loss,
              valueLoss.loss,
              valueLoss.clipFrac,
              entropy,
              maskedMeanTensor(policyLoss.ratio, mask),
              policyLoss.ratio,
            ].map((t) => tf.keep(t));
            return loss as never;
          }, variables);
          const [approxKl, clipFrac, pgLoss, vfLoss, vfClipFrac, entropy, meanRatio] = await Promise.all(
            kept.slice(0, 7).map(async (t) => (await t.data())[0]),
          );
          const ratioGrid = (await kept[7].data()) as Float32Array;
          const lossValue = (await value.data())[0];
          const named: Record<string, Tensor> = {};
          variables.forEach((variable, i) => (named[names[i]] = grads[variable.name]));
          const { clipped, norm } = clipByGlobalNorm(named, stage.max_grad_norm);
          const gradNorm = (await norm.data())[0];
          assertFinite({ 'loss/total': lossValue, grad_norm: gradNorm }, done);
          // A minibatch whose mean ratio is far from 1 is broken (stale or diverged): skip its update.
          if (meanRatio > stage.ratio_threshold) stats.skipped++;
          else optimizer.apply(clipped, stage.learning_rate);
          tf.dispose([value, norm, ...kept, ...Object.values(grads), ...Object.values(clipped)]);
          indices.forEach((sample, b) =>
            ratios[sample].push(
              Array.from(
                { length: rollout.items[sample].response.length },
                (_, t) => ratioGrid[b * batch.length + batch.responseStart[b] + t],
              ),
            ),
          );
          stats.approxKl.push(approxKl);
          stats.clipFrac.push(clipFrac);
          stats.pgLoss.push(pgLoss);
          stats.vfLoss.push(vfLoss);
          stats.vfClipFrac.push(vfClipFrac);
          stats.entropy.push(entropy);
          stats.ratio.push(meanRatio);
          if (stage.early_stopping && approxKl > 1.5 * stage.target_kl) stopEpochs = true;
        }
      }
      times['time/update'] = (performance.now() - t0) / 1000;
      t0 = performance.now();
      await rolloutEngine.syncPolicy();
      times['time/weight_sync'] = (performance.now() - t0) / 1000;

      // Metrics with TRL's names
      const klSums = estimate.kl.map(sum);
      const nonScore = estimate.nonScoreReward.map(sum);
      const meanKl = mean(klSums);
      const responses = rollout.items.map((item) => tokenizer.decode(item.response, { skipSpecialTokens: true }));
      const oracleScores = prompts.hasOracle
        ? rollout.items.map((_, i) => context.task.score(prompts.train[promptIndices[i]] + responses[i]))
        : [];
      const metrics: Record<string, number> = {
        step: done,
        time: Date.now() / 1000,
        episode: done * stage.batch_size,
        'objective/kl': meanKl,
        'objective/entropy': mean(rollout.logprobs.map((row) => -sum(row))),
        'objective/non_score_reward': mean(nonScore),
        'objective/rlhf_reward': mean(nonScore) + mean(scores),
        'objective/scores': mean(scores),
        'objective/raw_scores': mean(rollout.rawScores),
        'objective/kl_coef': klController.value,
        'policy/approxkl_avg': mean(stats.approxKl),
        'policy/clipfrac_avg': mean(stats.clipFrac),
        'loss/policy_avg': mean(stats.pgLoss),
        'loss/value_avg': mean(stats.vfLoss),
        'val/clipfrac_avg': mean(stats.vfClipFrac),
        'policy/entropy_avg': mean(stats.entropy),
        'val/ratio': mean(stats.ratio),
        'val/ratio_var': mean(stats.ratio.map((r) => (r - mean(stats.ratio)) ** 2)),
        'val/num_eos_tokens': rollout.endedWithEos.filter(Boolean).length,
        'val/skipped_minibatches': stats.skipped,
        response_length: mean(rollout.items.map((item) => item.response.length)),
        lr: stage.learning_rate,
        ...times,
        eps: ((done - startStep) * stage.batch_size) / ((performance.now() - stageStarted) / 1000),
      };
      if (prompts.hasOracle) metrics['oracle/score'] = mean(oracleScores);
      klController.update(meanKl, stage.batch_size);

      // Trace: every per-token quantity of every rollout of this step
      const rows = ppoTraceRows(rollout, estimate, tokenizer, {
        step: done,
        prompts: promptIndices.map((index) => prompts.train[index]),
        responses,
        oracleScores: prompts.hasOracle ? oracleScores : null,
        ratios,
        cliprange: stage.cliprange,
      });
      writeTrace(run.dir, done, 'ppo', rows);

      if (done % stage.eval_steps === 0 || done === totalSteps) Object.assign(metrics, await evalNow());
      run.appendMetrics(metrics);
      context.onStep?.(metrics);
      lastMetrics = metrics;
      if (done % stage.save_steps === 0 || done === totalSteps) lastCheckpoint = await checkpoint(done);
    }
    run.update({
      summary: Object.fromEntries(
        Object.entries(lastMetrics).filter(
          ([key]) => key.startsWith('eval/') || key === 'objective/kl' || key === 'oracle/score',
        ),
      ),
    });
    log('info', `PPO finished ${totalSteps} steps in ${((performance.now() - stageStarted) / 1000).toFixed(1)} s`);
    return { status: 'completed', step: totalSteps, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
  } finally {
    await rolloutEngine?.release();
    optimizer.dispose();
    policy.dispose();
    reference.dispose();
    reward.dispose();
  }
}
