/**
 * Supervised fine-tuning: next-token cross-entropy on text (or on completions given prompts) with
 * AdamW, linear warmup then cosine (or linear) decay, global-norm gradient clipping, held-out eval
 * loss and perplexity, and checkpoints that resume to the same numbers as an uninterrupted run.
 * Knows nothing of processes or messages: it reports through the callbacks of `StageContext`.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { sum } from '../../core/stats';
import type { SftStageConfig } from '../../shared/runConfig';
import type { CheckpointContents } from '../checkpoint/checkpoint';
import { UserError } from '../../shared/userError';
import { describeModel, loraBaseOf, loraSettingsFor, readModelSource } from '../checkpoint/modelLoading';
import { resumeCheckpoint, stageCheckpointer } from '../checkpoint/stageCheckpoint';
import { batchIndices, splitExamples } from '../data/batching';
import type { EngineModel } from '../engine/engine';
import { runStageLoop } from '../loop/stageLoop';
import { isLlamaConfig, type CausalLmConfig } from '../model/causalLmConfig';
import { learningRateAt } from '../optim/schedule';
import { seeds } from '../seeds';
import type { StageContext, StageResult } from '../stageContext';
import { BpeTokenizer, trainBpe, type Tokenizer } from '../tokenizer';
import type { ChatFormatter } from '../data/chatExamples';
import { chatFormatterOf } from '../data/chatTokens';
import { loadSftExamples, makeBatch, tokenizeExample, type TokenizedExample } from '../data/textExamples';

const maxEvalExamples = 512;

/**
 * Cross-entropy of a unigram model fitted on the training targets, evaluated on the eval targets: the
 * floor SFT must beat.
 */
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

/** Mean NLL per trained token over the eval set (token-weighted, as perplexity needs). */
async function evaluate(
  model: EngineModel,
  examples: readonly TokenizedExample[],
  batchSize: number,
  padId: number,
): Promise<number> {
  let nllSum = 0;
  let tokenSum = 0;
  for (let start = 0; start < examples.length; start += batchSize) {
    const batch = makeBatch(examples.slice(start, start + batchSize), model.config.block_size, padId);
    const counted = sum(batch.mask);
    if (counted === 0) continue;
    const { lmLoss } = await model.evaluate(batch, { lmLoss: true });
    nllSum += (lmLoss as number) * counted;
    tokenSum += counted;
  }
  return tokenSum > 0 ? nllSum / tokenSum : NaN;
}

/**
 * Where the weights and tokenizer come from: this run's checkpoint (resume), another checkpoint or model folder
 * (init_from), the run's Hugging Face model folder (model.from), or scratch (a fresh GPT and a BPE trained here).
 */
async function startingPoint(
  stage: SftStageConfig,
  context: StageContext,
  corpus: () => Promise<string[]>,
): Promise<{ source?: CheckpointContents; tokenizer: Tokenizer; modelConfig: CausalLmConfig }> {
  const { run, log } = context;
  const options = { seed: context.seed, blockSize: context.model.block_size, dropout: context.model.dropout };
  let source: CheckpointContents | undefined;
  const latest = resumeCheckpoint(context.resume, run, (message) => log('warn', message));
  if (latest) {
    source = await readModelSource(latest.dir, { ...options, keepAdapters: true });
    log('info', `resuming from ${latest.dir} (step ${latest.step})`);
  } else if (stage.init_from !== 'scratch') {
    const dir = context.resolve(stage.init_from, 'checkpoint');
    if (!existsSync(dir)) throw new Error(`init_from: the checkpoint folder ${dir} does not exist.`);
    source = await readModelSource(dir, options);
    log('info', `initialised from ${dir}`);
  } else if (context.model.from !== undefined) {
    const dir = path.resolve(context.configDir, context.model.from);
    source = await readModelSource(dir, options);
    log('info', `starting from the model folder ${dir} (model.from)`);
  }
  if (source) {
    const model = source.config.model;
    const modelConfig = isLlamaConfig(model) ? model : { ...model, dropout: context.model.dropout };
    return { source, tokenizer: source.tokenizer, modelConfig };
  }
  const texts = await corpus();
  const t0 = performance.now();
  const tokenizer = new BpeTokenizer(trainBpe(texts, { vocabSize: context.vocabSize }));
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  log(
    'info',
    `trained a byte-level BPE tokenizer of ${tokenizer.vocabSize} tokens on ${texts.length} examples in ${seconds} s`,
  );
  return { tokenizer, modelConfig: { ...context.model, vocab_size: tokenizer.vocabSize } };
}

export async function runSftStage(stage: SftStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  const started = performance.now();
  // LoRA adapts a pretrained model's frozen weights; a fresh GPT's random trunk has nothing to adapt, and its
  // checkpoint would have no base folder for the adapter to name.
  if (stage.lora && stage.init_from === 'scratch' && context.model.from === undefined)
    throw new UserError('"lora" trains adapters on a pretrained model, but this SFT starts from scratch', {
      field: 'lora',
      hint: 'give "model": {"from": "<model folder>"} or an init_from checkpoint, or remove "lora"',
    });
  // The examples are rendered with the model folder's chat template, so a model that brings its tokenizer is
  // loaded first; a BPE trained here is trained on the examples, so they come first then.
  const readExamples = async (chat?: ChatFormatter) => {
    const loaded = await loadSftExamples(stage.dataset, context.configDir, seed, chat);
    for (const message of loaded.messages)
      log(message.includes(': ') && /line \d+|:\d+:/.test(message) ? 'warn' : 'info', message);
    return splitExamples(loaded.examples, stage.eval_fraction, seed);
  };
  let examples: Awaited<ReturnType<typeof readExamples>> | undefined;
  const { source, tokenizer, modelConfig } = await startingPoint(stage, context, async () => {
    examples = await readExamples();
    return examples.train.map((example) => (example.prompt ?? '') + example.completion);
  });
  const split = examples ?? (await readExamples(chatFormatterOf(tokenizer)));
  const model = context.engine.createModel(modelConfig, {
    heads: [],
    seed,
    weights: source?.weights,
    ...(stage.lora && { lora: source?.lora?.settings ?? loraSettingsFor(stage.lora, modelConfig) }),
  });
  const optimizer = model.createOptimizer({
    adamBeta1: stage.adam_beta1,
    adamBeta2: stage.adam_beta2,
    adamEpsilon: stage.adam_epsilon,
    weightDecay: stage.weight_decay,
  });
  if (context.resume && source?.optimizer) optimizer.loadState(source.optimizer);
  const startStep = context.resume && source ? source.trainerState.global_step : 0;
  const { block_size } = modelConfig;
  const loraBase = source && loraBaseOf(source);
  log('info', `model: ${model.parameterCount.toLocaleString('en-US')} parameters (${describeModel(modelConfig)})`);
  try {
    const tokenize = (example: (typeof split.train)[number]) =>
      tokenizeExample(tokenizer, example, stage.completion_only_loss, block_size + 1);
    const train = split.train.map(tokenize);
    const evaluation = split.evaluation.slice(0, maxEvalExamples).map(tokenize);
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
      `${train.length} training and ${evaluation.length} eval examples; ` +
        `unigram baseline eval loss ${baseline.toFixed(3)}`,
    );
    const trainerState = { max_steps: stage.max_steps, stage: 'sft', seed, unigram_eval_loss: baseline };
    const result = await runStageLoop(
      {
        startStep,
        maxSteps: stage.max_steps,
        loggingSteps: stage.logging_steps,
        evalSteps: stage.eval_steps,
        saveSteps: stage.save_steps,
        step: async (step) => {
          const t0 = performance.now();
          const lr = learningRateAt(
            step,
            stage.learning_rate,
            stage.max_steps,
            stage.warmup_steps,
            stage.lr_scheduler_type,
          );
          const indices = batchIndices(step, stage.per_device_train_batch_size, train.length, seed);
          const batch = makeBatch(
            indices.map((i) => train[i]),
            block_size,
            tokenizer.padId,
          );
          const loss = { kind: 'lm', batch, dropoutSeed: seeds.sftDropout(seed, step) } as const;
          const { scalars } = await optimizer.step(loss, { learningRate: lr, maxGradNorm: stage.max_grad_norm });
          const tokensPerSecond = batch.tokens / ((performance.now() - t0) / 1000);
          return {
            metrics: { 'loss/train': scalars.loss, lr, grad_norm: scalars.gradNorm, tokens_per_s: tokensPerSecond },
            checked: { 'loss/train': scalars.loss, grad_norm: scalars.gradNorm },
          };
        },
        evaluate: async () => {
          const evalLoss = await evaluate(model, evaluation, stage.per_device_train_batch_size * 2, tokenizer.padId);
          return { 'loss/eval': evalLoss, perplexity: Math.exp(evalLoss) };
        },
        checkpoint: stageCheckpointer(run, { model, optimizer, tokenizer, loraBase }, (step) => ({
          global_step: step,
          ...trainerState,
        })),
      },
      context,
    );
    if (result.status === 'completed')
      log('info', `SFT finished ${stage.max_steps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return result;
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
