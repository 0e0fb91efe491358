/**
 * What the Runs view shows of a run beyond its summary: stage, step of total, the config it came
 * from, and the latest metrics (the last line of metrics.jsonl, read from the file's tail so a long
 * run costs the same as a short one). No `vscode`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from './isRecord';
import { runJsonProblems } from './runFiles';

export interface RunDetails {
  readonly stage?: string;
  /** The last logged step (metrics.jsonl), or run.json's step before the first log line. */
  readonly step?: number;
  readonly maxSteps?: number;
  /** Absolute path of the `*.rlhf.json` the run was started from. */
  readonly configFile?: string;
  readonly lastCheckpoint?: string;
  readonly metrics: Readonly<Record<string, number>>;
}

/** The metrics worth a glance, best first (TRL names); the tree shows the first two present. */
export const keyMetrics = [
  'loss/train',
  'loss/eval',
  'loss/dpo',
  'rewards/accuracies',
  'rewards/accuracy',
  'eval/rewards/oracle_accuracy',
  'objective/kl',
  'objective/scores',
  'oracle/score',
  'eval/oracle/score',
  'preferences/judgments',
];

const tailBytes = 8192;

async function lastMetricsLine(file: string): Promise<Record<string, number>> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const { size } = await handle.stat();
    const start = Math.max(0, size - tailBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    const lines = buffer
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '');
    // The last whole line; one cut by a crash (or by the tail's start) does not parse and is skipped.
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const value = JSON.parse(lines[i]) as unknown;
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          return Object.fromEntries(
            Object.entries(value).filter((entry): entry is [string, number] => typeof entry[1] === 'number'),
          );
        }
      } catch {
        // keep looking
      }
    }
    return {};
  } catch {
    return {};
  } finally {
    await handle?.close();
  }
}

export async function readRunDetails(runDir: string): Promise<RunDetails> {
  let runJson: Record<string, unknown> = {};
  try {
    const value = JSON.parse(await fs.readFile(path.join(runDir, 'run.json'), 'utf8')) as unknown;
    // The same validator as the summary's: a run.json with a wrong field shows no details rather than wrong ones.
    if (isRecord(value) && runJsonProblems(value, { header: 'optional' }).length === 0) runJson = value;
  } catch {
    // The summary already reports an unreadable run.json.
  }
  const metrics = await lastMetricsLine(path.join(runDir, 'metrics.jsonl'));
  const number = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
  const string = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return {
    stage: string(runJson.stage),
    step: number(metrics.step) ?? number(runJson.step),
    maxSteps: number(runJson.max_steps),
    configFile: string(runJson.config_file),
    lastCheckpoint: string(runJson.last_checkpoint),
    metrics,
  };
}

/** "loss/train 2.31 · objective/kl 0.84": the first two key metrics present. */
export function formatKeyMetrics(metrics: Readonly<Record<string, number>>, count = 2): string {
  return keyMetrics
    .filter((key) => key in metrics)
    .slice(0, count)
    .map((key) => `${key} ${formatNumber(metrics[key])}`)
    .join(' · ');
}

function formatNumber(value: number): string {
  const magnitude = Math.abs(value);
  return magnitude >= 100 ? value.toFixed(0) : magnitude >= 1 ? value.toFixed(2) : value.toPrecision(2);
}
