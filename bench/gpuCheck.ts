/**
 * The GPU check (scripts/gpu-check.sh runs it from the GPU kit): prints ONE JSON object on stdout with the
 * adapters each engine finds, GPU-against-CPU equality on a small model, train-step times of the 110k, 850k and
 * GPT-2-small shapes on every engine and backend that runs, one PPO iteration, and a PyTorch reference of the
 * same steps (fp32 eager, on CUDA) when python3 has torch. Each part runs in its own process with its own
 * time budget, under one deadline for the whole check, so a slow or crashing part records its error and the
 * others still run. `--dry-run` (or RLHF_GPU_CHECK_DRY_RUN=1): small shapes and short budgets, for a CPU machine
 * (the software adapter, PyTorch on the CPU). Progress goes to stderr.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { adaptersPart } from './gpuCheckAdapters';
import {
  isGpuTarget,
  ortProviderVariable,
  ortStepEqualityPart,
  ppoPart,
  targetName,
  tfjsGradientPart,
  trainPart,
  Unavailable,
  type EngineTarget,
} from './gpuCheckParts';
import { checkPlan, type CheckPlan, type PartPlan } from './gpuCheckPlan';

const secondsSince = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;
/** Kept of a failed part's stderr. */
const stderrTail = 2000;

/** Runs one part in this process (the child side) and writes its record to `resultFile`. */
async function runPartHere(plan: CheckPlan, name: string, resultFile: string): Promise<void> {
  const part = plan.parts.find((candidate) => candidate.name === name);
  if (!part) throw new Error(`no part "${name}"`);
  const { writeFileSync } = await import('node:fs');
  let record: Record<string, unknown>;
  try {
    record = { status: 'ok', result: await runPart(part, plan) };
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    record = error instanceof Unavailable ? { status: 'unavailable', reason: text } : { status: 'failed', error: text };
  }
  writeFileSync(resultFile, JSON.stringify(record));
}

async function runPart(part: PartPlan, plan: CheckPlan): Promise<unknown> {
  switch (part.kind) {
    case 'adapters':
      return adaptersPart();
    case 'gradients':
      return part.target.engine === 'tfjs'
        ? tfjsGradientPart(plan.gradientModel, plan.gradientBatch, part.target.backend)
        : ortStepEqualityPart(plan.gradientModel, plan.gradientBatch, part.target.backend);
    case 'train': {
      const model = plan.models[part.model];
      const spec = { ...model, model: part.model, target: part.target, rounds: plan.rounds, warmup: plan.warmup };
      return trainPart(spec);
    }
    case 'ppo':
      return ppoPart({ ...plan.ppo, target: part.target });
    case 'pytorch':
      throw new Error('the PyTorch part runs python3, not a Node part');
  }
}

interface PartRecord {
  status: 'ok' | 'unavailable' | 'failed' | 'timeout' | 'skipped';
  seconds: number;
  budget_s: number;
  [key: string]: unknown;
}

/** A child process with a hard timeout; resolves with its exit and its stdout/stderr tails. */
function runChild(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutS: number, input?: string) {
  return new Promise<{ code: number | null; timedOut: boolean; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-stderrTail);
      process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, timedOut, stdout, stderr: `${stderr}\n${error.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** The part's process: this script again (`--part`), or python3 with the PyTorch reference. */
async function runPartProcess(plan: CheckPlan, part: PartPlan, timeoutS: number, dir: string) {
  if (part.kind === 'pytorch') {
    const script = path.join(__dirname, 'torch', 'cudaReference.py');
    const spec = JSON.stringify(plan.pytorch);
    const run = await runChild(plan.python, [script], process.env, timeoutS, spec);
    if (run.timedOut) return { status: 'timeout' as const };
    const last = run.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(last) as Record<string, unknown>;
    } catch {
      return { status: 'failed' as const, error: `exit ${run.code}: ${run.stderr.trim().slice(-stderrTail)}` };
    }
  }
  const resultFile = path.join(dir, `${part.name.replace(/[^\w.-]/g, '_')}.json`);
  const env = { ...process.env };
  if ('target' in part && part.target.engine === 'onnxruntime') env[ortProviderVariable] = part.target.backend;
  const args = [__filename, '--part', part.name, '--result', resultFile, ...(plan.dryRun ? ['--dry-run'] : [])];
  const run = await runChild(process.execPath, args, env, timeoutS);
  if (run.timedOut) return { status: 'timeout' as const };
  try {
    return JSON.parse(readFileSync(resultFile, 'utf8')) as Record<string, unknown>;
  } catch {
    return { status: 'failed' as const, error: `exit ${run.code}: ${run.stderr.trim().slice(-stderrTail)}` };
  }
}

/** Step-time comparisons the issue asks for, from the measured parts (absent where a side is missing). */
function summary(parts: Record<string, PartRecord>, plan: CheckPlan) {
  const trainMs = (target: EngineTarget, model: string) => {
    const record = parts[`train:${targetName(target)}:${model}`];
    const result = record?.result as { step_ms?: { median: number } } | undefined;
    return record?.status === 'ok' ? result?.step_ms?.median : undefined;
  };
  const best = (targets: readonly EngineTarget[], model: string) =>
    targets
      .map((target) => ({ target: targetName(target), ms: trainMs(target, model) }))
      .filter((entry): entry is { target: string; ms: number } => entry.ms !== undefined)
      .sort((a, b) => a.ms - b.ms)[0];
  const gpuTargets = plan.targets.filter(isGpuTarget);
  const cpuTargets = plan.targets.filter((target) => !isGpuTarget(target));
  const largest = plan.largestModel;
  const bestGpuLarge = best(gpuTargets, largest);
  const torch = parts.pytorch?.status === 'ok' ? (parts.pytorch.result as { train?: TorchTrainRow[] }) : undefined;
  const torchLarge = torch?.train?.find((row) => row.model === largest)?.step_ms.median;
  const comparisonModel = plan.cpuComparisonModel;
  const bestGpuCompared = best(gpuTargets, comparisonModel);
  const bestCpuCompared = best(cpuTargets, comparisonModel);
  return {
    [`best_gpu_on_${largest}`]: bestGpuLarge ?? null,
    [`pytorch_on_${largest}_ms`]: torchLarge ?? null,
    [`best_gpu_over_pytorch_on_${largest}`]: bestGpuLarge && torchLarge ? bestGpuLarge.ms / torchLarge : null,
    [`best_cpu_on_${comparisonModel}`]: bestCpuCompared ?? null,
    [`cpu_over_best_gpu_on_${comparisonModel}`]:
      bestGpuCompared && bestCpuCompared ? bestCpuCompared.ms / bestGpuCompared.ms : null,
  };
}

interface TorchTrainRow {
  model: string;
  step_ms: { median: number };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dryRun = args.includes('--dry-run') || process.env.RLHF_GPU_CHECK_DRY_RUN === '1';
  const plan = checkPlan(dryRun);
  const partIndex = args.indexOf('--part');
  if (partIndex >= 0) return runPartHere(plan, args[partIndex + 1], args[args.indexOf('--result') + 1]);

  const started = performance.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-gpu-check-'));
  const parts: Record<string, PartRecord> = {};
  for (const part of plan.parts) {
    const left = plan.deadlineS - secondsSince(started);
    const budget = Math.min(part.budgetS, Math.floor(left));
    if (budget < plan.minimumPartS) {
      parts[part.name] = { status: 'skipped', seconds: 0, budget_s: part.budgetS, reason: 'the check ran out of time' };
      continue;
    }
    process.stderr.write(`gpu-check: ${part.name} (budget ${budget} s)\n`);
    const t0 = performance.now();
    const record = await runPartProcess(plan, part, budget, dir);
    parts[part.name] = { status: 'failed', ...record, seconds: secondsSince(t0), budget_s: budget } as PartRecord;
  }
  rmSync(dir, { recursive: true, force: true });
  const report = {
    check: 'rlhf-lens gpu-check',
    dry_run: dryRun,
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    seconds: secondsSince(started),
    deadline_s: plan.deadlineS,
    shapes: plan.shapes,
    summary: summary(parts, plan),
    parts,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

void main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ check: 'rlhf-lens gpu-check', error: String(error) })}\n`);
  process.exitCode = 1;
});
