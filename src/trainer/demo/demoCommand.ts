/**
 * `rlhf-lens demo [--quick]` (`npm run demo`): runs the embedded demo pipeline, evaluates every
 * policy on the same held-out prompts, prints a table, and writes `.rlhf/demo/report.json` and the
 * reward–KL frontier `.rlhf/demo/frontier.svg`.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileDurable, writeJsonDurable } from '../../shared/durableWrite';
import { defaultRunsFolder } from '../../shared/runsFolder';
import type { BackendChoice } from '../engine/tfjs/backend';
import { createChosenEngine, runBackend } from '../engineFactory';
import { runPipeline, type PipelineCallbacks } from '../pipeline';
import { formatSeconds } from '../progressBar';
import { demoEvaluationSeed } from '../seeds';
import { sentimentTask } from '../tasks/sentimentTask';
import {
  demoBetas,
  demoConfig,
  demoKlCoefficients,
  demoSeed,
  demoScales,
  dpoStageNames,
  ppoStageNames,
  type DemoScale,
} from './demoConfig';
import { evaluatePolicy, type PolicyEvaluation } from './evaluatePolicies';
import { dominates, frontierSvg, type FrontierPoint } from './frontierChart';

/**
 * The engine the demo's policies are evaluated on, whichever trained them: one engine for all, so every policy is
 * sampled and scored the same way (ONNX Runtime: its KV-cache sampler is the faster one).
 */
const evaluationEngine = 'onnxruntime';

export interface DemoReport {
  readonly mode: 'full' | 'quick';
  readonly date: string;
  readonly backend: string;
  readonly total_seconds: number;
  /** `engine`: the training engine of the stage (the evaluation's: `evaluationEngine`). */
  readonly stages: { stage: string; run_id: string; engine: string; backend: string; seconds: number }[];
  readonly reward_model: { eval_accuracy: number; eval_oracle_accuracy: number };
  readonly policies: {
    policy: string;
    family: 'SFT' | 'PPO' | 'DPO';
    coefficient?: number;
    oracle_score: number;
    oracle_stderr: number;
    kl: number;
    kl_stderr: number;
    response_length: number;
  }[];
  readonly verdict: string;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(rows[0]), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join('\n');
}

/** A policy the demo evaluated: SFT, or a PPO or DPO policy with its β. */
interface EvaluatedPolicy {
  policy: string;
  family: 'SFT' | 'PPO' | 'DPO';
  coefficient?: number;
  evaluation: PolicyEvaluation;
}

/** What training the demo pipeline left: its result, each stage's timing, and the backend it ran on. */
interface DemoTraining {
  readonly result: Awaited<ReturnType<typeof runPipeline>>;
  readonly stages: DemoReport['stages'];
  readonly backend: string;
  readonly backendChoice: BackendChoice | undefined;
}

/** Trains the demo pipeline; its stages are timed and its backend noted for the report. */
async function trainDemoPipeline(configFile: string, runsRoot: string, base: PipelineCallbacks): Promise<DemoTraining> {
  // Stage timings and backend, around the usual terminal reporting.
  const stages: DemoReport['stages'] = [];
  let stageStart = 0;
  let backend = '';
  let engine = '';
  let backendChoice: BackendChoice | undefined;
  let stageName = '';
  const callbacks: PipelineCallbacks = {
    ...base,
    onStageStart: (info) => {
      stageStart = performance.now();
      backend = info.backend.name;
      engine = info.engine.name;
      backendChoice = info.tfjsBackend;
      stageName = info.stage;
      base.onStageStart?.(info);
    },
    onStageEnd: (info) => {
      base.onStageEnd?.(info);
      const seconds = (performance.now() - stageStart) / 1000;
      stages.push({ stage: stageName, run_id: info.runId, engine, backend, seconds });
    },
  };
  const result = await runPipeline({ configFile, runsRoot }, callbacks);
  return { result, stages, backend, backendChoice };
}

/** The SFT policy and every PPO and DPO policy on the same held-out prompts; the evaluation's time joins `stages`. */
async function evaluateDemoPolicies(
  training: DemoTraining,
  scale: DemoScale,
  checkpointOf: (stage: string) => string,
  sft: string,
  base: PipelineCallbacks,
): Promise<EvaluatedPolicy[]> {
  const { stages, backend, backendChoice } = training;
  // The SFT starting point, then each PPO and DPO policy with its β (PPO's KL coefficient, DPO's beta)
  const trained = [
    ...ppoStageNames.map((stage, i) => ({ stage, family: 'PPO' as const, coefficient: demoKlCoefficients[i] })),
    ...dpoStageNames.map((stage, i) => ({ stage, family: 'DPO' as const, coefficient: demoBetas[i] })),
  ];
  base.log('info', `evaluating ${1 + trained.length} policies on ${scale.evalPrompts} held-out prompts`);
  const evalStart = performance.now();
  const settings = { prompts: scale.evalPrompts, maxNewTokens: scale.maxNewTokens, seed: demoEvaluationSeed };
  // One engine whichever trained (evaluationEngine), with the demo task's oracle scoring every policy.
  const engine = await createChosenEngine(backendChoice as BackendChoice, evaluationEngine);
  const evaluator = { engine, task: sentimentTask };
  const evaluations: EvaluatedPolicy[] = [
    { policy: 'SFT', family: 'SFT', evaluation: await evaluatePolicy(evaluator, sft, sft, settings) },
  ];
  for (const { stage, family, coefficient } of trained)
    evaluations.push({
      policy: `${family} β=${coefficient}`,
      family,
      coefficient,
      evaluation: await evaluatePolicy(evaluator, checkpointOf(stage), sft, settings),
    });
  const seconds = (performance.now() - evalStart) / 1000;
  stages.push({
    stage: 'evaluation',
    run_id: '',
    engine: evaluationEngine,
    backend: backendChoice ? runBackend(engine, backendChoice).name : backend,
    seconds,
  });
  return evaluations;
}

/** Which method's reward–KL frontier dominates the other's, if either does. */
function frontierVerdict(points: FrontierPoint[]): string {
  const ppo = points.filter((p) => p.family === 'PPO');
  const dpo = points.filter((p) => p.family === 'DPO');
  return dominates(dpo, ppo)
    ? "DPO's frontier dominates PPO's here: for every PPO policy some DPO policy reaches at least its oracle " +
        'score at no more KL.'
    : dominates(ppo, dpo)
      ? "PPO's frontier dominates DPO's here: for every DPO policy some PPO policy reaches at least its oracle " +
        'score at no more KL.'
      : 'Neither frontier dominates the other here: each method has a policy the other does not match at equal ' +
        'or lower KL.';
}

/** The report's tables, the reward model's accuracy and the verdict on stdout. */
function printDemoReport(report: DemoReport, outDir: string, runsRoot: string): void {
  const { mode, backend, stages, verdict } = report;
  const out = process.stdout;
  out.write(`\nRLHF Lens demo (${mode}) — ${formatSeconds(report.total_seconds)} on backend ${backend}\n\n`);
  const stageRows = stages.map((s) => [s.stage, s.backend, formatSeconds(s.seconds)]);
  out.write(`${table([['stage', 'backend', 'wall time'], ...stageRows])}\n\n`);
  const policyRows = report.policies.map((p) => [
    p.policy,
    `${p.oracle_score.toFixed(3)} ± ${p.oracle_stderr.toFixed(3)}`,
    `${p.kl.toFixed(2)} ± ${p.kl_stderr.toFixed(2)}`,
    p.response_length.toFixed(1),
  ]);
  out.write(
    `${table([['policy', 'oracle score (held-out)', 'KL to SFT (nats)', 'response tokens'], ...policyRows])}\n\n`,
  );
  out.write(
    `Reward model held-out accuracy: ${(report.reward_model.eval_accuracy * 100).toFixed(1)}% against the ` +
      `annotator's labels, ${(report.reward_model.eval_oracle_accuracy * 100).toFixed(1)}% against the oracle's ` +
      `ordering.\n`,
  );
  out.write(
    `${verdict}\n\nWrote ${path.join(outDir, 'report.json')} and ${path.join(outDir, 'frontier.svg')}; the ` +
      `runs are in ${runsRoot} (open them with "RLHF: Open Dashboard").\n`,
  );
}

export async function runDemo(args: string[], makeCallbacks: () => PipelineCallbacks): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      seed: { type: 'string' },
      'runs-dir': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const seed = values.seed === undefined ? demoSeed : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`--seed must be a whole number ≥ 0, got "${values.seed}"`);
  const mode = values.quick ? 'quick' : 'full';
  const scale = demoScales[mode];
  const outDir = path.resolve(values.out ?? path.join('.rlhf', 'demo'));
  const runsRoot = path.resolve(values['runs-dir'] ?? defaultRunsFolder);
  mkdirSync(outDir, { recursive: true });
  const configFile = path.join(outDir, `demo-${mode}.rlhf.json`);
  writeJsonDurable(configFile, demoConfig(scale, mode === 'quick' ? 'demo-quick' : 'demo', seed));
  const started = performance.now();

  const base = makeCallbacks();
  const training = await trainDemoPipeline(configFile, runsRoot, base);
  const { result, stages, backend } = training;
  if (result.stopped) {
    base.log('info', 'demo stopped before the end; no report written');
    return 0;
  }
  const byStage = new Map(result.runs.map((run, i) => [stages[i].stage, run]));
  const checkpointOf = (stage: string) => byStage.get(stage)?.result.outputs.checkpoint as string;
  const sft = checkpointOf('sft');
  const reward = byStage.get('reward')?.result.lastMetrics ?? {};
  const evaluations = await evaluateDemoPolicies(training, scale, checkpointOf, sft, base);

  const points: FrontierPoint[] = evaluations.map((e) => ({
    label: e.policy,
    family: e.family,
    kl: e.evaluation.kl,
    score: e.evaluation.oracleScore,
  }));
  const verdict = frontierVerdict(points);

  const report: DemoReport = {
    mode,
    date: new Date().toISOString(),
    backend,
    total_seconds: (performance.now() - started) / 1000,
    stages,
    reward_model: {
      eval_accuracy: reward['eval/rewards/accuracy'],
      eval_oracle_accuracy: reward['eval/rewards/oracle_accuracy'],
    },
    policies: evaluations.map((e) => ({
      policy: e.policy,
      family: e.family,
      coefficient: e.coefficient,
      oracle_score: e.evaluation.oracleScore,
      oracle_stderr: e.evaluation.oracleStderr,
      kl: e.evaluation.kl,
      kl_stderr: e.evaluation.klStderr,
      response_length: e.evaluation.responseLength,
    })),
    verdict,
  };
  writeJsonDurable(path.join(outDir, 'report.json'), report);
  writeFileDurable(
    path.join(outDir, 'frontier.svg'),
    frontierSvg(points, `Reward–KL frontier (${mode} demo, ${scale.evalPrompts} held-out prompts)`),
  );
  printDemoReport(report, outDir, runsRoot);
  return 0;
}
