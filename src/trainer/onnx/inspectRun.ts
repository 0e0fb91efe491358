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
import { klEstimatorList, klEstimators, type KlEstimator } from '../../core/kl';
import { mean } from '../../core/stats';
import { parseJsonText, specialTokenIds } from '../../shared/runFiles';
import { defaultRunsFolder } from '../../shared/runsFolder';
import { loadPrompts } from '../data/prompts';
import { sentimentScore } from '../data/sentimentOracle';
import { rolloutMetrics } from '../ppo/ppoMetrics';
import { computeAdvantages, ppoTraceRows } from '../ppo/rollout';
import type { Rollout } from '../rollout/rolloutEngine';
import { buildSequenceBatch, responseValues } from '../data/sequences';
import { newRunId, RunDirectory } from '../run/runDirectory';
import { writeTrace } from '../run/traceWriter';
import type { SamplingOptions } from '../sampling/sampler';
import { parseSamplingFlags, samplingFlags } from '../sampling/samplingFlags';
import { seeds } from '../seeds';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';
import { loadFolderTokenizer } from './folderTokenizer';
import { quote, UserError } from '../../shared/userError';
import { numberOption, parseCommandArgs, UsageError } from '../cli';
import { OnnxCausalLm } from './onnxCausalLm';
import { generateOnnx } from './onnxSampler';
import { rewardScoresOnnx, sequenceStatsOnnx } from './onnxScoring';
import { namedAll } from '../../shared/namedAll';

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
  readonly sampling: Omit<SamplingOptions, 'seed' | 'eosTokenId' | 'padTokenId'>;
  readonly seed: number;
}

/** The special-token ids a folder's config.json names, else the tokenizer's own. */
function specialIds(dir: string, tokenizer: Tokenizer): { eos: number; pad: number } {
  const file = path.join(dir, 'config.json');
  return specialTokenIds(
    parseJsonText(readFileSync(file, 'utf8'), file),
    file,
    { bos: tokenizer.bosId ?? tokenizer.eosId, eos: tokenizer.eosId, pad: tokenizer.padId },
    tokenizer.vocabSize,
  );
}

/** A file's text, or undefined when there is none. */
function readOptional(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** The tokenizer and special ids the policy and the reference share. */
interface InspectionTokens {
  readonly tokenizer: Tokenizer;
  readonly ids: { eos: number; pad: number };
}

/** The ONNX models an inspection run scores with; `reward` only when --reward is given. */
interface InspectionModels {
  readonly policy: OnnxCausalLm;
  readonly reference: OnnxCausalLm;
  readonly reward: OnnxCausalLm | undefined;
}

/** What every step of an inspection run reads: the options, models, tokens, prompts and the run folder. */
interface InspectionContext {
  readonly options: InspectOptions;
  readonly models: InspectionModels;
  readonly tokens: InspectionTokens;
  readonly prompts: Awaited<ReturnType<typeof loadPrompts>>;
  readonly allPrompts: readonly string[];
  readonly run: RunDirectory;
  /** The sampling temperature the log-probabilities are taken at (1 when sampling is greedy). */
  readonly temperature: number;
  readonly log: (message: string) => void;
}

/** The policy's tokenizer and special ids, after checking the reference shares the tokenizer. */
async function loadInspectionTokens(options: InspectOptions): Promise<InspectionTokens> {
  const tokenizer = await loadFolderTokenizer(options.policy);
  const sameFile = (name: string) =>
    readOptional(path.join(options.policy, name)) === readOptional(path.join(options.reference, name));
  if (!sameFile('tokenizer.json')) {
    throw new Error(
      `${options.reference}/tokenizer.json differs from ${options.policy}/tokenizer.json: per-token KL needs ` +
        `the policy and the reference to share a tokenizer.`,
    );
  }
  return { tokenizer, ids: specialIds(options.policy, tokenizer) };
}

async function loadInspectionModels(options: InspectOptions): Promise<InspectionModels> {
  return namedAll({
    policy: OnnxCausalLm.fromFolder(options.policy),
    reference: OnnxCausalLm.fromFolder(options.reference),
    reward: options.reward ? OnnxCausalLm.fromFolder(options.reward) : Promise.resolve(undefined),
  });
}

/** The policy and the reference share a vocabulary; a reward model has a "scores" output. */
function checkInspectionModels(options: InspectOptions, { policy, reference, reward }: InspectionModels): void {
  if (policy.info.vocabSize !== reference.info.vocabSize)
    throw new Error(
      `the policy has ${policy.info.vocabSize} tokens and the reference ${reference.info.vocabSize}: they ` +
        `must share a vocabulary.`,
    );
  if (reward && !reward.info.scalarOutputs.includes('scores'))
    throw new Error(
      `${options.reward}/onnx/model.onnx has no "scores" output: export a reward model (a checkpoint with a ` +
        `score head) with rlhf-lens export.`,
    );
}

/** The run folder, its run.json laid out as a training run's with one `inspect` stage. */
function createInspectionRun(options: InspectOptions): RunDirectory {
  return RunDirectory.create(options.runsRoot, {
    id: newRunId(options.name, 'inspect'),
    name: options.name,
    stage: 'inspect',
    stage_index: 0,
    seed: options.seed,
    backend: 'onnxruntime-node',
    backend_reason: 'inspection runs score ONNX models on onnxruntime-node',
    // Laid out as a config with one stage, as training runs record theirs, so readers find the stage's settings the
    // same way.
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
          init_kl_coef: options.klCoef,
          kl_estimator: options.klEstimator,
          // The config's names (TRL's), as a training run's config records them
          temperature: options.sampling.temperature,
          top_k: options.sampling.topK,
          top_p: options.sampling.topP,
          max_new_tokens: options.sampling.maxNewTokens,
        },
      ],
    },
    versions: {
      node: process.version,
      'rlhf-lens': typeof RLHF_LENS_VERSION === 'string' ? RLHF_LENS_VERSION : 'development',
    },
    max_steps: options.steps,
  });
}

/** The policy samples completions of one batch of prompts; the policy, reference and reward model score them. */
async function inspectionRollout(context: InspectionContext, step: number, texts: readonly string[]): Promise<Rollout> {
  const { options, tokens, temperature } = context;
  const { policy, reference, reward } = context.models;
  const { tokenizer, ids } = tokens;
  const encoded = texts.map((text) => encodePrompt(tokenizer, text));
  const sampled = await generateOnnx(policy, encoded, {
    ...options.sampling,
    // PPO's per-step stream, with the 1-based step number (PPO passes its 0-based step index)
    seed: seeds.rolloutSampling(options.seed, step),
    eosTokenId: ids.eos,
    padTokenId: ids.pad,
  });
  const items = sampled.map((sequence, i) => ({
    prompt: encoded[i],
    response: sequence.tokens.length > 0 ? sequence.tokens : [ids.pad],
  }));
  const batch = buildSequenceBatch(items, ids.pad);
  const policyStats = await sequenceStatsOnnx(policy, batch, temperature);
  const referenceStats = await sequenceStatsOnnx(reference, batch, temperature, false);
  const rawScores = reward ? await rewardScoresOnnx(reward, items, ids.pad) : items.map(() => 0);
  const values = policyStats.scalars.values ?? new Float32Array(batch.batchSize * batch.length);
  return {
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
}

/** One step: a batch's rollout, PPO's advantages of it, its trace and its metrics line. */
async function inspectStep(context: InspectionContext, step: number, texts: readonly string[]): Promise<void> {
  const { options, prompts, run } = context;
  const { tokenizer } = context.tokens;
  const rollout = await inspectionRollout(context, step, texts);
  const { items, rawScores } = rollout;
  const advantages = computeAdvantages(rollout, rawScores, {
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
  const rows = ppoTraceRows(rollout, advantages, tokenizer, {
    step,
    prompts: texts,
    responses,
    oracleScores: prompts.hasOracle ? oracle : null,
    ratios: null,
    cliprange: 0,
  });
  writeTrace(run.dir, step, 'ppo', rows);
  const metrics: Record<string, number> = {
    step,
    time: Date.now() / 1000,
    episode: step * options.batchSize,
    // Nothing scales the scores here: the reward is built from the raw scores.
    ...rolloutMetrics({ rollout, advantages, scores: rawScores, klCoef: options.klCoef }),
  };
  if (prompts.hasOracle) metrics['oracle/score'] = mean(oracle);
  run.appendMetrics(metrics);
  run.update({ step });
  const score = context.models.reward ? `, score ${metrics['objective/scores'].toFixed(3)}` : '';
  context.log(`step ${step}: KL ${metrics['objective/kl'].toFixed(3)}${score}`);
}

/** After the models load: check them, load the prompts, create the run folder and run every step. */
async function inspectWithModels(
  options: InspectOptions,
  tokens: InspectionTokens,
  models: InspectionModels,
  log: (message: string) => void,
): Promise<{ runDir: string }> {
  checkInspectionModels(options, models);
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
  const run = createInspectionRun(options);
  log(`inspection run ${run.id} in ${run.dir}`);
  const temperature = options.sampling.temperature > 0 ? options.sampling.temperature : 1;
  const context: InspectionContext = { options, models, tokens, prompts, allPrompts, run, temperature, log };
  for (let step = 1; step <= options.steps; step++) {
    const texts = allPrompts.slice((step - 1) * options.batchSize, step * options.batchSize);
    if (texts.length === 0) break;
    await inspectStep(context, step, texts);
  }
  run.update({ status: 'completed', ended_at: new Date().toISOString() });
  return { runDir: run.dir };
}

export async function runInspection(
  options: InspectOptions,
  log: (message: string) => void = () => undefined,
): Promise<{ runDir: string }> {
  const tokens = await loadInspectionTokens(options);
  const models = await loadInspectionModels(options);
  try {
    return await inspectWithModels(options, tokens, models, log);
  } finally {
    const { policy, reference, reward } = models;
    await Promise.all([policy.release(), reference.release(), reward?.release()]);
  }
}

declare const RLHF_LENS_VERSION: string | undefined;

/** Continuation lines of the usage start here, as `rlhf-lens sample`'s do. */
const usageIndent = ' '.repeat(24);
export const inspectUsage = [
  'Usage: rlhf-lens inspect --policy <onnx-folder> --reference <onnx-folder> [--reward <onnx-folder>]',
  `${usageIndent}[--prompts FILE.jsonl] [--steps N] [--batch-size N] [--init-kl-coef B]` +
    ` [--kl-estimator ${klEstimators.join('|')}]`,
  `${usageIndent}[--temperature T] [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S]` +
    ' [--name NAME] [--runs-dir DIR]',
].join('\n');

/** Tokens per completion when --max-new-tokens is not given. */
const defaultMaxNewTokens = 32;
const klCoefFlag = 'init-kl-coef';
const oldKlCoefFlag = 'kl-coef';
/** β when neither flag is given: the config's `init_kl_coef` default. */
const defaultKlCoef = '0.05';

/** β from `--init-kl-coef` or its old name `--kl-coef` (not both). */
function klCoefOption(value: string | undefined, oldValue: string | undefined): number {
  if (value !== undefined && oldValue !== undefined)
    throw new UsageError(`give β once: --${klCoefFlag} (--${oldKlCoefFlag} is its old name)`, inspectUsage);
  if (oldValue !== undefined) return numberOption(oldKlCoefFlag, oldValue);
  return numberOption(klCoefFlag, value ?? defaultKlCoef);
}

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
      [klCoefFlag]: { type: 'string' },
      // The flag's name before it took the config's (`init_kl_coef`); kept so that existing scripts run.
      [oldKlCoefFlag]: { type: 'string' },
      'kl-estimator': { type: 'string', default: 'k1' },
      ...samplingFlags(defaultMaxNewTokens),
      name: { type: 'string', default: 'onnx' },
      'runs-dir': { type: 'string', default: defaultRunsFolder },
    },
    inspectUsage,
    { min: 0, max: 0 },
  );
  if (!values.policy || !values.reference)
    throw new UsageError(`missing ${!values.policy ? '--policy' : '--reference'}`, inspectUsage);
  const estimator = values['kl-estimator'] as KlEstimator;
  if (!klEstimators.includes(estimator))
    throw new UserError(`must be ${klEstimatorList()}, got ${quote(estimator)}`, {
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
    klCoef: klCoefOption(values[klCoefFlag], values[oldKlCoefFlag]),
    klEstimator: estimator,
    ...parseSamplingFlags(values),
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
