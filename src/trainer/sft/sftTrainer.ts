/**
 * Supervised fine-tuning: next-token cross-entropy on text (or on completions given prompts) with
 * AdamW, linear warmup then cosine (or linear) decay, global-norm gradient clipping, held-out eval
 * loss and perplexity, and checkpoints that resume to the same numbers as an uninterrupted run.
 * Knows nothing of processes or messages: it reports through the callbacks of `StageContext`.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { SftStageConfig } from '../../shared/runConfig';
import {
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointContents,
  type ModelCheckpointConfig,
} from '../checkpoint/checkpoint';
import { maskedNll } from '../engine/tfjs/losses';
import { tf, type Tensor } from '../engine/tfjs/tfRuntime';
import { Gpt } from '../engine/tfjs/gpt';
import { AdamW, clipByGlobalNorm } from '../engine/tfjs/adamW';
import { learningRateAt } from '../optim/schedule';
import { NonFiniteError, yieldToEventLoop, type StageContext, type StageResult } from '../stageContext';
import { BpeTokenizer, trainBpe } from '../tokenizer';
import {
  loadSftExamples,
  makeBatch,
  tokenizeExample,
  type SftBatch,
  type TokenizedExample,
} from '../data/textExamples';
import { batchIndices, splitExamples } from '../data/batching';

const maxEvalExamples = 512;

/** Cross-entropy of a unigram model fitted on the training targets, evaluated on the eval targets: the floor SFT must beat. */
export function unigramBaseline(
  train: readonly TokenizedExample[],
  evaluation: readonly TokenizedExample[],
  vocabSize: number,
): number {
  const counts = new Float64Array(vocabSize).fill(1); // add-one smoothing: every token possible
  let total = vocabSize;
  for (const example of train) {
    for (let t = example.lossStart; t < example.ids.length; t++) {
      counts[example.ids[t]]++;
      total++;
    }
  }
  let nll = 0;
  let n = 0;
  for (const example of evaluation) {
    for (let t = example.lossStart; t < example.ids.length; t++) {
      nll -= Math.log(counts[example.ids[t]] / total);
      n++;
    }
  }
  return n > 0 ? nll / n : NaN;
}

function batchTensors(batch: SftBatch): { inputs: Tensor; targets: Tensor; mask: Tensor } {
  const shape: [number, number] = [batch.batchSize, batch.length];
  return {
    inputs: tf.tensor2d(batch.inputs, shape, 'int32'),
    targets: tf.tensor2d(batch.targets, shape, 'int32'),
    mask: tf.tensor2d(batch.mask, shape, 'float32'),
  };
}

/** Mean NLL per trained token over the eval set (token-weighted, as perplexity needs). */
async function evaluate(
  model: Gpt,
  examples: readonly TokenizedExample[],
  batchSize: number,
  padId: number,
): Promise<number> {
  let nllSum = 0;
  let tokenSum = 0;
  for (let start = 0; start < examples.length; start += batchSize) {
    const batch = makeBatch(examples.slice(start, start + batchSize), model.config.block_size, padId);
    const counted = batch.mask.reduce((a, b) => a + b, 0);
    if (counted === 0) continue;
    const loss = tf.tidy(() => {
      const { inputs, targets, mask } = batchTensors(batch);
      return maskedNll(model.forward(inputs).logits, targets, mask);
    });
    nllSum += (await loss.data())[0] * counted;
    tokenSum += counted;
    loss.dispose();
  }
  return tokenSum > 0 ? nllSum / tokenSum : NaN;
}

export async function runSftStage(stage: SftStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  const started = performance.now();

  // 1. Data
  const loaded = await loadSftExamples(stage.dataset, context.configDir, seed);
  for (const message of loaded.messages)
    log(message.includes(': ') && /line \d+|:\d+:/.test(message) ? 'warn' : 'info', message);
  const split = splitExamples(loaded.examples, stage.eval_fraction, seed);

  // 2. Where the weights and tokenizer come from: this run's checkpoint, another checkpoint, or scratch
  let source: CheckpointContents | undefined;
  if (context.resume) {
    const latest = latestCheckpoint(run.dir, (message) => log('warn', message));
    if (!latest)
      throw new Error(
        `${run.dir} has no checkpoint to resume from yet; start the stage afresh ("rlhf-lens train --resume" does that by itself).`,
      );
    source = await loadCheckpoint(latest.dir);
    log('info', `resuming from ${latest.dir} (step ${latest.step})`);
  } else if (stage.init_from !== 'scratch') {
    const dir = context.resolve(stage.init_from, 'checkpoint');
    if (!existsSync(dir)) throw new Error(`init_from: the checkpoint folder ${dir} does not exist.`);
    source = await loadCheckpoint(dir);
    log('info', `initialised from ${dir}`);
  }
  let tokenizer: BpeTokenizer;
  if (source) {
    tokenizer = source.tokenizer;
  } else {
    const t0 = performance.now();
    const corpus = split.train.map((example) => (example.prompt ?? '') + example.completion);
    tokenizer = new BpeTokenizer(trainBpe(corpus, { vocabSize: context.vocabSize }));
    log(
      'info',
      `trained a byte-level BPE tokenizer of ${tokenizer.vocabSize} tokens on ${corpus.length} examples in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  const modelConfig = source
    ? {
        vocab_size: source.config.vocab_size,
        block_size: source.config.block_size,
        n_layer: source.config.n_layer,
        n_head: source.config.n_head,
        n_embd: source.config.n_embd,
        dropout: context.model.dropout,
      }
    : { ...context.model, vocab_size: tokenizer.vocabSize };
  const model = source ? Gpt.fromWeights(modelConfig, [], source.weights) : Gpt.create(modelConfig, { seed });
  const optimizer = new AdamW(model.weights, {
    beta1: stage.adam_beta1,
    beta2: stage.adam_beta2,
    epsilon: stage.adam_epsilon,
    weightDecay: stage.weight_decay,
  });
  if (context.resume && source?.optimizer) optimizer.loadState(source.optimizer);
  const startStep = context.resume && source ? source.trainerState.global_step : 0;
  if (context.resume) run.truncateMetricsAfter(startStep);
  log(
    'info',
    `model: ${model.parameterCount.toLocaleString('en-US')} parameters (${modelConfig.n_layer} layers, ${modelConfig.n_head} heads, width ${modelConfig.n_embd}, context ${modelConfig.block_size}, vocabulary ${modelConfig.vocab_size})`,
  );

  try {
    // 3. Tokenize once
    const maxTokens = modelConfig.block_size + 1;
    const train = split.train.map((example) =>
      tokenizeExample(tokenizer, example, stage.completion_only_loss, maxTokens),
    );
    const evaluation = split.evaluation
      .slice(0, maxEvalExamples)
      .map((example) => tokenizeExample(tokenizer, example, stage.completion_only_loss, maxTokens));
    if (train.length === 0)
      throw new Error('No training examples left after the eval split; lower eval_fraction or add data.');
    const baseline = unigramBaseline(train, evaluation, tokenizer.vocabSize);
    run.update({
      step: startStep,
      max_steps: stage.max_steps,
      parameters: model.parameterCount,
      train_examples: train.length,
      eval_examples: evaluation.length,
      unigram_eval_loss: baseline,
    });
    log(
      'info',
      `${train.length} training and ${evaluation.length} eval examples; unigram baseline eval loss ${baseline.toFixed(3)}`,
    );

    const checkpointConfig: ModelCheckpointConfig = {
      model_type: 'rlhf-lens-gpt',
      ...modelConfig,
      heads: [],
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
      pad_token_id: tokenizer.padId,
    };
    const checkpoint = async (step: number) => {
      const dir = run.checkpointDir(step);
      await saveCheckpoint(dir, {
        config: checkpointConfig,
        weights: await model.readWeights(),
        optimizer: await optimizer.readState(),
        trainerState: {
          global_step: step,
          max_steps: stage.max_steps,
          stage: 'sft',
          seed,
          unigram_eval_loss: baseline,
        },
        tokenizer,
      });
      run.update({ step, last_checkpoint: path.relative(run.dir, dir) });
      return dir;
    };

    let lastMetrics: Record<string, number> = {};
    let lastCheckpoint = startStep > 0 ? run.checkpointDir(startStep) : '';
    const variables = model.trainableVariables;
    const names = [...model.weights.keys()];

    // 4. Train
    for (let step = startStep; step < stage.max_steps; step++) {
      await yieldToEventLoop();
      if (context.shouldStop?.()) {
        lastCheckpoint = await checkpoint(step);
        log('info', `stopped at step ${step} on request; checkpoint ${lastCheckpoint}`);
        return { status: 'stopped', step, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
      }
      const t0 = performance.now();
      const lr = learningRateAt(
        step,
        stage.learning_rate,
        stage.max_steps,
        stage.warmup_steps,
        stage.lr_scheduler_type,
      );
      const batch = makeBatch(
        batchIndices(step, stage.per_device_train_batch_size, train.length, seed).map((i) => train[i]),
        modelConfig.block_size,
        tokenizer.padId,
      );
      const { inputs, targets, mask } = batchTensors(batch);
      const { value, grads } = tf.variableGrads(
        () =>
          maskedNll(
            model.forward(inputs, { training: true, dropoutSeed: seed * 7919 + step }).logits,
            targets,
            mask,
          ) as never,
        variables,
      );
      const named: Record<string, Tensor> = {};
      variables.forEach((variable, i) => (named[names[i]] = grads[variable.name]));
      const { clipped, norm } = clipByGlobalNorm(named, stage.max_grad_norm);
      const [loss, gradNorm] = [(await value.data())[0], (await norm.data())[0]];
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        tf.dispose([inputs, targets, mask, value, norm, ...Object.values(grads), ...Object.values(clipped)]);
        throw new NonFiniteError(
          Number.isFinite(loss) ? 'grad_norm' : 'loss/train',
          step + 1,
          Number.isFinite(loss) ? gradNorm : loss,
        );
      }
      optimizer.apply(clipped, lr);
      tf.dispose([inputs, targets, mask, value, norm, ...Object.values(grads), ...Object.values(clipped)]);
      const seconds = (performance.now() - t0) / 1000;

      const done = step + 1;
      const metrics: Record<string, number> = {
        step: done,
        time: Date.now() / 1000,
        'loss/train': loss,
        lr,
        grad_norm: gradNorm,
        tokens_per_s: batch.tokens / seconds,
      };
      if (done % stage.eval_steps === 0 || done === stage.max_steps) {
        const evalLoss = await evaluate(model, evaluation, stage.per_device_train_batch_size * 2, tokenizer.padId);
        metrics['loss/eval'] = evalLoss;
        metrics.perplexity = Math.exp(evalLoss);
      }
      if (done % stage.logging_steps === 0 || 'loss/eval' in metrics || done === stage.max_steps) {
        run.appendMetrics(metrics);
        context.onStep?.(metrics);
      }
      lastMetrics = metrics;
      if (done % stage.save_steps === 0 || done === stage.max_steps) lastCheckpoint = await checkpoint(done);
    }
    log('info', `SFT finished ${stage.max_steps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { status: 'completed', step: stage.max_steps, outputs: { checkpoint: lastCheckpoint }, lastMetrics };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
