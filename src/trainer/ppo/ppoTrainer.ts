/**
 * PPO for language models with a per-token KL penalty to a frozen reference, as TRL's PPOTrainer
 * does it, with the PPO-max options of "Secrets of RLHF in Large Language Models Part I: PPO" (score
 * scaling and clipping, advantage clipping, entropy bonus, critic warm-up, PPO-ptx). The policy and its
 * value head share a trunk (TRL's AutoModelForCausalLMWithValueHead). Every per-token quantity of every
 * rollout is written to `traces/step-<n>.arrow`, including each token's ratio and clip class at every
 * PPO epoch.
 *
 * The stage's parts: this file (models, data, resume, the stage as the stage loop runs it), ppoStep.ts
 * (one step: rollouts → scores → advantages → update → metrics → trace), rollout.ts (rewards and
 * advantages on plain arrays), scores.ts, ppoUpdate.ts (the epochs × minibatches of `ppo` loss steps),
 * ppoEvaluation.ts, ppoMetrics.ts. Models live in the training engine (engine/engine.ts).
 */
import type { PpoStageConfig } from '../../shared/runConfig';
import type { CheckpointContents } from '../checkpoint/checkpoint';
import { loadEngineModel, loraBaseOf } from '../checkpoint/modelLoading';
import { adaptersOffView } from '../checkpoint/referenceModel';
import { resumeCheckpoint, stageCheckpointer } from '../checkpoint/stageCheckpoint';
import { chatFormatterOf, encodePrompt } from '../data/chatTokens';
import { loadPrompts, type PromptSet } from '../data/prompts';
import { loadSftExamples, tokenizeExample, type TokenizedExample } from '../data/textExamples';
import type { EngineModel, EngineOptimizer } from '../engine/engine';
import { runStageLoop } from '../loop/stageLoop';
import type { RolloutEngine, RolloutModels } from '../rollout/rolloutEngine';
import { seeds } from '../seeds';
import type { StageContext, StageResult } from '../stageContext';
import { BpeTokenizer, type Tokenizer } from '../tokenizer';
import { KlController } from './klController';
import { evaluatePolicy } from './ppoEvaluation';
import { ppoStep, type PpoTraining } from './ppoStep';
import { RunningMoments, type MomentsState } from './runningMoments';

// PPO's AdamW (TRL's PPOConfig defaults: Adam's ε 1e-5, no weight decay); the stage's schema has no settings for it.
const adam = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-5, weightDecay: 0 } as const;
/** PPO-ptx's examples when the stage names no ptx_dataset: the demo reviews. */
const defaultPtxDataset = { source: 'demo', num_examples: 20000 } as const;

/** Two tokenizers that give every id the same text (our BPEs: the same vocabulary and merges). */
function sameTokenizer(a: Tokenizer, b: Tokenizer): boolean {
  if (a instanceof BpeTokenizer && b instanceof BpeTokenizer)
    return JSON.stringify(a.toJSON().model) === JSON.stringify(b.toJSON().model);
  if (a.vocabSize !== b.vocabSize || a.eosId !== b.eosId || a.bosId !== b.bosId) return false;
  for (let id = 0; id < a.vocabSize; id++) if (a.tokenText(id) !== b.tokenText(id)) return false;
  return true;
}

/**
 * The stage's three models: the policy + value head (this run's checkpoint when resuming), its frozen
 * reference, the reward model.
 */
export interface PpoModels extends RolloutModels {
  /** The policy's checkpoint: its tokenizer, and when resuming its optimizer and trainer state. */
  readonly policyCheckpoint: CheckpointContents;
  readonly resumedFrom?: string;
}

export async function loadPpoModels(stage: PpoStageConfig, context: StageContext): Promise<PpoModels> {
  const { run, log, seed, engine } = context;
  const policyDir = context.resolve(stage.policy, 'checkpoint');
  const rewardDir = context.resolve(stage.reward_model, 'checkpoint');
  const resumeFrom = resumeCheckpoint(context.resume, run, (message) => log('warn', message));
  // A reference may name a checkpoint or any Hugging Face folder; its context is capped at model.block_size.
  const blockSize = context.model.block_size;
  const policy = await loadEngineModel(engine, resumeFrom?.dir ?? policyDir, ['v_head'], seed, {
    blockSize,
    lora: stage.lora,
    keepAdapters: resumeFrom !== undefined,
  });
  const loaded: EngineModel[] = [policy.model];
  try {
    // A LoRA policy's reference is itself with its adapters off: no second copy of the trunk.
    const reference = policy.model.lora
      ? { model: adaptersOffView(policy.model) }
      : await loadEngineModel(engine, policyDir, [], seed, { blockSize });
    loaded.push(reference.model);
    const reward = await loadEngineModel(engine, rewardDir, ['score'], seed, { blockSize });
    loaded.push(reward.model);
    if (!sameTokenizer(policy.checkpoint.tokenizer, reward.checkpoint.tokenizer))
      throw new Error(
        `The reward model (${rewardDir}) was trained with another tokenizer than the policy (${policyDir}); ` +
          'train both from the same SFT stage.',
      );
    const referenceIs = policy.model.lora ? 'the policy with its LoRA adapters off' : 'its frozen copy';
    log('info', `policy ${policyDir} (+ value head), reference = ${referenceIs}, reward model ${rewardDir}`);
    return {
      policy: policy.model,
      reference: reference.model,
      reward: reward.model,
      policyCheckpoint: policy.checkpoint,
      resumedFrom: resumeFrom?.dir,
    };
  } catch (error) {
    for (const model of loaded) model.dispose();
    throw error;
  }
}

/** The training prompts (as token ids) and the held-out ones; PPO-ptx's examples when ptx_coef > 0. */
async function ppoData(
  stage: PpoStageConfig,
  context: StageContext,
  tokenizer: Tokenizer,
  blockSize: number,
): Promise<{ prompts: PromptSet; encodedPrompts: number[][]; ptxExamples: TokenizedExample[] }> {
  const { seed, log } = context;
  const prompts = await loadPrompts(
    stage.prompts,
    context.configDir,
    stage.total_episodes,
    stage.num_eval_prompts,
    seed,
    chatFormatterOf(tokenizer),
  );
  for (const message of prompts.messages) log('warn', message);
  const encodedPrompts = prompts.train.map((prompt) => encodePrompt(tokenizer, prompt, prompts.chatFormatted));
  const longest = Math.max(...encodedPrompts.map((ids) => ids.length));
  if (longest + 1 > blockSize)
    throw new Error(`A prompt of ${longest} tokens leaves no room for a response in the context of ${blockSize}.`);
  // PPO-ptx: language-modelling batches from the SFT data, mixed into each update.
  let ptxExamples: TokenizedExample[] = [];
  if (stage.ptx_coef > 0) {
    const dataset = stage.ptx_dataset ?? defaultPtxDataset;
    const loaded = await loadSftExamples(dataset, context.configDir, seed, chatFormatterOf(tokenizer));
    ptxExamples = loaded.examples.map((example) => tokenizeExample(tokenizer, example, false, blockSize + 1));
  }
  return { prompts, encodedPrompts, ptxExamples };
}

/** The KL controller and score moments, restored from the checkpoint when resuming; the step to start at. */
function trainerState(
  stage: PpoStageConfig,
  context: StageContext,
  models: PpoModels,
  optimizer: EngineOptimizer,
): { klController: KlController; scoreMoments: RunningMoments; startStep: number } {
  const klController = new KlController(
    stage.init_kl_coef,
    stage.adap_kl_ctrl ? { target: stage.target, horizon: stage.horizon } : undefined,
  );
  const scoreMoments = new RunningMoments();
  if (!models.resumedFrom) return { klController, scoreMoments, startStep: 0 };
  const { trainerState: state, optimizer: optimizerState } = models.policyCheckpoint;
  if (optimizerState) optimizer.loadState(optimizerState);
  klController.klCoef = state.kl_coef as number;
  scoreMoments.state = state.score_moments as MomentsState;
  const startStep = state.global_step;
  context.log('info', `resuming from ${models.resumedFrom} (step ${startStep}, β = ${klController.klCoef})`);
  return { klController, scoreMoments, startStep };
}

export async function runPpoStage(stage: PpoStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  if (stage.batch_size % stage.num_mini_batches !== 0)
    throw new Error(`num_mini_batches (${stage.num_mini_batches}) must divide batch_size (${stage.batch_size}).`);
  const totalSteps = Math.max(1, Math.floor(stage.total_episodes / stage.batch_size));
  run.update({ max_steps: totalSteps });

  const models = await loadPpoModels(stage, context);
  const { policy, policyCheckpoint } = models;
  const tokenizer = policyCheckpoint.tokenizer;
  const loraBase = loraBaseOf(policyCheckpoint);
  const optimizer = policy.createOptimizer(adam);
  let rolloutEngine: RolloutEngine | undefined;
  try {
    const blockSize = policy.config.block_size;
    const data = await ppoData(stage, context, tokenizer, blockSize);
    const { klController, scoreMoments, startStep } = trainerState(stage, context, models, optimizer);
    const training: PpoTraining = {
      stage,
      context,
      optimizer,
      rolloutEngine: async () => (rolloutEngine ??= await context.createRolloutEngine(stage.rollout_engine, models)),
      tokenizer,
      blockSize,
      ...data,
      klController,
      scoreMoments,
      startStep,
      // Reset when the first step begins (after the step-0 baseline): episodes per second count training only.
      started: { at: performance.now() },
    };
    const evaluate = () =>
      evaluatePolicy(
        models,
        tokenizer,
        data.prompts.heldOut,
        stage,
        seeds.evalGeneration(seed),
        data.prompts.hasOracle ? context.task : null,
      );
    const result = await runStageLoop(
      {
        startStep,
        maxSteps: totalSteps,
        evalSteps: stage.eval_steps,
        saveSteps: stage.save_steps,
        // The starting policy's held-out numbers, so every chart has its step-0 baseline.
        baseline: evaluate,
        step: (step) => {
          if (step === startStep) training.started.at = performance.now();
          return ppoStep(training, step);
        },
        evaluate,
        checkpoint: stageCheckpointer(run, { model: policy, optimizer, tokenizer, loraBase }, (step) => ({
          global_step: step,
          max_steps: totalSteps,
          stage: 'ppo',
          seed,
          kl_coef: klController.klCoef,
          score_moments: scoreMoments.state,
          episode: step * stage.batch_size,
        })),
      },
      context,
    );
    if (result.status === 'completed') {
      const summaryKeys = (key: string) => key.startsWith('eval/') || key === 'objective/kl' || key === 'oracle/score';
      run.update({
        summary: Object.fromEntries(Object.entries(result.lastMetrics).filter(([key]) => summaryKeys(key))),
      });
      const seconds = ((performance.now() - training.started.at) / 1000).toFixed(1);
      log('info', `PPO finished ${totalSteps} steps in ${seconds} s`);
    }
    return result;
  } finally {
    await rolloutEngine?.release();
    optimizer.dispose();
    models.policy.dispose();
    models.reference.dispose();
    models.reward.dispose();
  }
}
