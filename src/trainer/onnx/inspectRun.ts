/**
 * `rlhf-lens inspect`: an inspection-only run over ONNX models — a user's own exports or ours. The
 * policy samples completions of the prompts; the policy and the reference score every token
 * (log-probabilities, per-token KL), a reward model in ONNX scores each completion if one is given,
 * and each batch is written as a PPO step (traces/step-<n>.arrow in the PPO trace schema, TRL metric
 * names in metrics.jsonl), so the dashboard shows it like a PPO step. Nothing is trained: rewards,
 * advantages and returns are what PPO would compute from these rollouts (−β·KL plus the score at the
 * last token, GAE with the policy's value head if it has one, else V = 0); ratio and clip are empty.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { KlEstimator } from '../../core';
import { parseJsonText, specialTokenIds } from '../../shared/runFiles';
import { defaultRunsFolder } from '../../shared/runsFolder';
import { loadPrompts } from '../data/prompts';
import { sentimentScore } from '../data/sentimentOracle';
import { computeAdvantages, ppoTraceRows } from '../ppo/rollout';
import type { Rollout } from '../rollout/rolloutEngine';
import { buildSequenceBatch, responseValues } from '../data/sequences';
import { newRunId, RunDirectory } from '../run/runDirectory';
import { writeTrace } from '../run/traceWriter';
import type { SamplingOptions } from '../sampling/sampler';
import { BpeTokenizer } from '../tokenizer';
import { quote, UserError } from '../../shared/userError';
import { numberOption, parseCommandArgs, UsageError } from '../cli';
import { OnnxCausalLm } from './onnxCausalLm';
import { generateOnnx } from './onnxSampler';
import { rewardScoresOnnx, sequenceStatsOnnx } from './onnxScoring';

export interface InspectOptions {
  readonly policy: string;
  readonly reference: string;
  readonly reward?: string;
  /** A JSONL file of {"prompt"} lines; the demo prompts (with their sentiment oracle) when omitted. */
  readonly prompts?: string;
  readonly name: string;
  readonly runsRoot: string;
  readonly steps: number;
  readonly batchSize: number;
  readonly klCoef: number;
  readonly klEstimator: KlEstimator;
  readonly sampling: Omit<SamplingOptions, 'seed' | 'eos_token_id' | 'pad_token_id'>;
  readonly seed: number;
}

const mean = (values: readonly number[]) =>
  values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/** The special-token ids a folder's config.json names, else the tokenizer's own. */
function specialIds(dir: string, tokenizer: BpeTokenizer): { bos: number; eos: number; pad: number } {
  const file = path.join(dir, 'config.json');
  return specialTokenIds(
    parseJsonText(readFileSync(file, 'utf8'), file),
    file,
    { bos: tokenizer.bosId, eos: tokenizer.eosId, pad: tokenizer.padId },
    tokenizer.vocabSize,
  );
}

export async function runInspection(
  options: InspectOptions,
  log: (message: string) => void = () => undefined,
): Promise<{ runDir: string }> {
  const tokenizer = await BpeTokenizer.load(options.policy);
  const referenceTokenizer = await BpeTokenizer.load(options.reference);
  if (JSON.stringify(tokenizer.toModel()) !== JSON.stringify(referenceTokenizer.toModel())) {
    throw new Error(
      `${options.reference}/tokenizer.json differs from ${options.policy}/tokenizer.json: per-token KL needs the policy and the reference to share a tokenizer.`,
    );
  }
  const ids = specialIds(options.policy, tokenizer);
  const [policy, reference, reward] = await Promise.all([
    OnnxCausalLm.fromFolder(options.policy),
    OnnxCausalLm.fromFolder(options.reference),
    options.reward ? OnnxCausalLm.fromFolder(options.reward) : undefined,
  ]);
  try {
    if (policy.info.vocabSize !== reference.info.vocabSize)
      throw new Error(
        `the policy has ${policy.info.vocabSize} tokens and the reference ${reference.info.vocabSize}: they must share a vocabulary.`,
      );
    if (reward && !reward.info.scalarOutputs.includes('scores'))
      throw new Error(
        `${options.reward}/onnx/model.onnx has no "scores" output: export a reward model (a checkpoint with a score head) with rlhf-lens export.`,
      );
    const prompts = await loadPrompts(
      options.prompts ? { source: 'jsonl', path: options.prompts } : { source: 'demo' },
      process.cwd(),
      options.steps * options.batchSize,
      options.prompts ? Infinity : 1,
      options.seed,
    );
    for (const message of prompts.messages) log(message);
    // Nothing trains here, so a user's file is used whole (loadPrompts holds its last tenth out for evaluation).
    const allPrompts = options.prompts ? [...prompts.train, ...prompts.heldOut] : prompts.train;
    const run = RunDirectory.create(options.runsRoot, {
      id: newRunId(options.name, 'inspect'),
      name: options.name,
      stage: 'inspect',
      stage_index: 0,
      seed: options.seed,
      backend: 'onnxruntime-node',
      backend_reason: 'inspection runs score ONNX models on onnxruntime-node',
      // Laid out as a config with one stage, as training runs record theirs, so readers find the stage's settings the same way.
      config: {
        name: options.name,
        seed: options.seed,
        stages: [
          {
            type: 'inspect',
            policy: options.policy,
            reference: options.reference,
            reward_model: options.reward ?? null,
            prompts: options.prompts ?? 'demo',
            batch_size: options.batchSize,
            steps: options.steps,
            kl_coef: options.klCoef,
            kl_estimator: options.klEstimator,
            ...options.sampling,
          },
        ],
      },
      versions: {
        node: process.version,
        'rlhf-lens': typeof RLHF_LENS_VERSION === 'string' ? RLHF_LENS_VERSION : 'development',
      },
      max_steps: options.steps,
    });
    log(`inspection run ${run.id} in ${run.dir}`);
    const temperature = options.sampling.temperature > 0 ? options.sampling.temperature : 1;
    for (let step = 1; step <= options.steps; step++) {
      const texts = allPrompts.slice((step - 1) * options.batchSize, step * options.batchSize);
      if (texts.length === 0) break;
      const encoded = texts.map((text) => [ids.bos, ...tokenizer.encode(text)]);
      const sampled = await generateOnnx(policy, encoded, {
        ...options.sampling,
        seed: options.seed * 1_000_003 + step,
        eos_token_id: ids.eos,
        pad_token_id: ids.pad,
      });
      const items = sampled.map((sequence, i) => ({
        prompt: encoded[i],
        response: sequence.tokens.length > 0 ? sequence.tokens : [ids.pad],
      }));
      const batch = buildSequenceBatch(items, ids.pad);
      const policyStats = await sequenceStatsOnnx(policy, batch, temperature);
      const referenceStats = await sequenceStatsOnnx(reference, batch, temperature);
      const rawScores = reward ? await rewardScoresOnnx(reward, items, ids.pad) : items.map(() => 0);
      const values = policyStats.scalars.values ?? new Float32Array(batch.batchSize * batch.length);
      const rollout: Rollout = {
        items,
        batch,
        logprobs: responseValues(policyStats.logprobs, batch),
        refLogprobs: responseValues(referenceStats.logprobs, batch),
        values: responseValues(values, batch),
        entropy: responseValues(policyStats.entropy, batch),
        rawScores,
        endedWithEos: sampled.map((sequence) => sequence.finishedByEos),
        timings: { generate: 0, score: 0 },
      };
      const estimate = computeAdvantages(rollout, rawScores, {
        klCoef: options.klCoef,
        klEstimator: options.klEstimator,
        whitenRewards: false,
        whitenAdvantages: false,
        gamma: 1,
        lam: 0.95,
      });
      const responses = items.map((item) => tokenizer.decode(item.response, { skipSpecialTokens: true }));
      const oracle = prompts.hasOracle ? responses.map((response, i) => sentimentScore(texts[i] + response)) : [];
      // Nothing trains: no ratios, so ratio and clip are empty lists.
      const rows = ppoTraceRows(rollout, estimate, tokenizer, {
        step,
        prompts: texts,
        responses,
        oracleScores: prompts.hasOracle ? oracle : null,
        ratios: null,
        cliprange: 0,
      });
      writeTrace(run.dir, step, 'ppo', rows);
      const klSums = estimate.kl.map(sum);
      const metrics: Record<string, number> = {
        step,
        time: Date.now() / 1000,
        episode: step * options.batchSize,
        'objective/kl': mean(klSums),
        'objective/entropy': mean(rollout.logprobs.map((row) => -sum(row))),
        'objective/non_score_reward': mean(estimate.nonScoreReward.map(sum)),
        'objective/scores': mean(rawScores),
        'objective/rlhf_reward': mean(estimate.nonScoreReward.map(sum)) + mean(rawScores),
        'objective/kl_coef': options.klCoef,
        response_length: mean(items.map((item) => item.response.length)),
        'val/num_eos_tokens': rollout.endedWithEos.filter(Boolean).length,
      };
      if (prompts.hasOracle) metrics['oracle/score'] = mean(oracle);
      run.appendMetrics(metrics);
      run.update({ step });
      log(
        `step ${step}: KL ${metrics['objective/kl'].toFixed(3)}${reward ? `, score ${metrics['objective/scores'].toFixed(3)}` : ''}`,
      );
    }
    run.update({ status: 'completed', ended_at: new Date().toISOString() });
    return { runDir: run.dir };
  } finally {
    await Promise.all([policy.release(), reference.release(), reward?.release()]);
  }
}

declare const RLHF_LENS_VERSION: string | undefined;

export const inspectUsage = `Usage: rlhf-lens inspect --policy <onnx-folder> --reference <onnx-folder> [--reward <onnx-folder>]
                        [--prompts FILE.jsonl] [--steps N] [--batch-size N] [--kl-coef B] [--kl-estimator k1|k2|k3|abs]
                        [--temperature T] [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S] [--name NAME] [--runs-dir DIR]`;

/** The CLI command; prints the run folder on stdout. Errors go to the CLI's one error path. */
export async function inspectCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    args,
    {
      policy: { type: 'string' },
      reference: { type: 'string' },
      reward: { type: 'string' },
      prompts: { type: 'string' },
      steps: { type: 'string', default: '1' },
      'batch-size': { type: 'string', default: '16' },
      'kl-coef': { type: 'string', default: '0.05' },
      'kl-estimator': { type: 'string', default: 'k1' },
      temperature: { type: 'string', default: '1' },
      'top-k': { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      'max-new-tokens': { type: 'string', default: '32' },
      seed: { type: 'string', default: '0' },
      name: { type: 'string', default: 'onnx' },
      'runs-dir': { type: 'string', default: defaultRunsFolder },
    },
    inspectUsage,
    { min: 0, max: 0 },
  );
  if (!values.policy || !values.reference)
    throw new UsageError(`missing ${!values.policy ? '--policy' : '--reference'}`, inspectUsage);
  const estimator = values['kl-estimator'] as KlEstimator;
  if (!['k1', 'k2', 'k3', 'abs'].includes(estimator))
    throw new UserError(`must be k1, k2, k3 or abs, got ${quote(estimator)}`, {
      field: '--kl-estimator',
      hint: 'leave it out for k1',
    });
  const options: InspectOptions = {
    policy: path.resolve(values.policy),
    reference: path.resolve(values.reference),
    reward: values.reward ? path.resolve(values.reward) : undefined,
    prompts: values.prompts ? path.resolve(values.prompts) : undefined,
    name: values.name as string,
    runsRoot: path.resolve(values['runs-dir'] as string),
    steps: numberOption('steps', values.steps, 'positive integer'),
    batchSize: numberOption('batch-size', values['batch-size'], 'positive integer'),
    klCoef: numberOption('kl-coef', values['kl-coef']),
    klEstimator: estimator,
    sampling: {
      temperature: numberOption('temperature', values.temperature),
      top_k: numberOption('top-k', values['top-k'], 'non-negative integer'),
      top_p: numberOption('top-p', values['top-p']),
      max_new_tokens: numberOption('max-new-tokens', values['max-new-tokens'], 'positive integer'),
    },
    seed: numberOption('seed', values.seed, 'non-negative integer'),
  };
  for (const [option, folder] of [
    ['--policy', options.policy],
    ['--reference', options.reference],
    ['--reward', options.reward],
  ] as const) {
    if (folder !== undefined && !existsSync(path.join(folder, 'onnx', 'model.onnx')))
      throw new UserError('is not an ONNX model folder (no onnx/model.onnx)', {
        file: folder,
        field: option,
        hint: 'give a folder written by rlhf-lens export, or a transformers.js-style export',
      });
  }
  if (options.prompts !== undefined && !existsSync(options.prompts))
    throw new UserError('does not exist', {
      file: options.prompts,
      field: '--prompts',
      hint: 'give a JSONL file of {"prompt": "..."} lines',
    });
  const { runDir } = await runInspection(options, (message) => process.stderr.write(`${message}\n`));
  process.stdout.write(`${runDir}\n`);
  return 0;
}
