/**
 * The submissions `rlhf-lens submit` recorded (`.rlhf/jobs/<id>/submission.json`) and the run folders their jobs
 * wrote (run.json's `slurm.submission` names the submission folder). No editor API, so the unit tests read real
 * folders with it.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../../shared/isRecord';
import { parseRunJson, type RunSummary } from '../../shared/runSummary';
import { slurmOutputFile } from '../../shared/slurmOutput';

export interface SweepElement {
  readonly index: number;
  readonly settings: Readonly<Record<string, unknown>>;
}

export interface Submission {
  /** The submission folder (absolute). */
  readonly folder: string;
  readonly id: string;
  /** The config file (absolute). */
  readonly config: string;
  /** Where its runs are written (absolute). */
  readonly runsDir: string;
  readonly jobId: string;
  /** The job array's size; undefined for a single job. */
  readonly arraySize?: number;
  readonly sweep: readonly SweepElement[];
  readonly submittedAt: string;
  readonly script: string;
  /** Slurm's output pattern (`%A`, `%a`, `%j`), absolute. */
  readonly outputPattern: string;
}

export interface SubmissionProblem {
  readonly file: string;
  readonly message: string;
}

/** A run folder a submission's job wrote, with the array index it ran (undefined for a single job). */
export interface SubmissionRun {
  readonly runDir: string;
  readonly run: RunSummary;
  readonly arrayIndex?: number;
  readonly restarts?: number;
}

/** `<root>/.rlhf/jobs`: where submissions of the workspace folder `root` are. */
export function jobsFolderOf(root: string): string {
  return path.join(root, '.rlhf', 'jobs');
}

function field<T>(file: string, record: Record<string, unknown>, name: string, ok: (value: unknown) => value is T): T {
  const value = record[name];
  if (!ok(value)) throw new Error(`${file}: field "${name}" is missing or has the wrong type`);
  return value;
}
const isString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isJobId = (value: unknown): value is string | number =>
  (typeof value === 'string' && /^\d+$/.test(value)) || (typeof value === 'number' && Number.isInteger(value));

/** Parses one submission.json; relative paths in it are relative to the workspace folder that holds `.rlhf`. */
export function parseSubmission(file: string, text: string): Submission {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`);
  }
  if (!isRecord(parsed)) throw new Error(`${file}: not a JSON object`);
  const folder = path.dirname(file);
  const root = path.resolve(folder, '..', '..', '..');
  const absolute = (value: string) => path.resolve(root, value);
  const arraySize = parsed.array_size;
  if (arraySize !== null && arraySize !== undefined && !(Number.isInteger(arraySize) && (arraySize as number) > 0))
    throw new Error(`${file}: field "array_size" must be a positive integer or null`);
  const sweep = Array.isArray(parsed.sweep) ? parsed.sweep : [];
  return {
    folder,
    id: field(file, parsed, 'id', isString),
    config: absolute(field(file, parsed, 'config', isString)),
    runsDir: absolute(field(file, parsed, 'runs_dir', isString)),
    jobId: String(field(file, parsed, 'job_id', isJobId)),
    arraySize: typeof arraySize === 'number' ? arraySize : undefined,
    sweep: sweep.filter(isRecord).map((element, position) => ({
      index: Number.isInteger(element.index) ? (element.index as number) : position,
      settings: isRecord(element.settings) ? element.settings : {},
    })),
    submittedAt: typeof parsed.submitted_at === 'string' ? parsed.submitted_at : '',
    script: absolute(typeof parsed.script === 'string' ? parsed.script : path.join(folder, 'job.sbatch')),
    outputPattern: absolute(
      typeof parsed.output_pattern === 'string' ? parsed.output_pattern : path.join(folder, 'slurm-%j.out'),
    ),
  };
}

/** Every submission under `jobsFolder`, newest first, and the submission.json files that could not be read. */
export async function readSubmissions(
  jobsFolder: string,
): Promise<{ submissions: Submission[]; problems: SubmissionProblem[] }> {
  const entries = await fs.readdir(jobsFolder, { withFileTypes: true }).catch(() => []);
  const submissions: Submission[] = [];
  const problems: SubmissionProblem[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const file = path.join(jobsFolder, entry.name, 'submission.json');
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      continue; // `submit` writes the folder first and submission.json last: not one yet.
    }
    try {
      submissions.push(parseSubmission(file, text));
    } catch (error) {
      problems.push({ file, message: (error as Error).message });
    }
  }
  submissions.sort((a, b) => b.submittedAt.localeCompare(a.submittedAt) || b.id.localeCompare(a.id));
  return { submissions, problems };
}

/** The run folders under the submission's runs folder whose run.json names this submission. */
export async function readSubmissionRuns(submission: Submission): Promise<SubmissionRun[]> {
  const entries = await fs.readdir(submission.runsDir, { withFileTypes: true }).catch(() => []);
  const runs: SubmissionRun[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const runDir = path.join(submission.runsDir, entry.name);
    const text = await fs.readFile(path.join(runDir, 'run.json'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let slurm: unknown;
    try {
      slurm = (JSON.parse(text) as { slurm?: unknown }).slurm;
    } catch {
      continue; // A run.json being rewritten: the next poll reads it.
    }
    if (!isRecord(slurm) || typeof slurm.submission !== 'string') continue;
    // A relative path is relative to the workspace folder, as in submission.json.
    if (path.resolve(submission.folder, '..', '..', '..', slurm.submission) !== submission.folder) continue;
    const parsed = parseRunJson(text, entry.name);
    if (!parsed.ok) continue;
    const task = slurm.array_task_id;
    runs.push({
      runDir,
      run: parsed.run,
      arrayIndex: task === undefined || task === null ? undefined : Number(task),
      restarts: typeof slurm.restarts === 'number' ? slurm.restarts : undefined,
    });
  }
  return runs;
}

/** The indices of a submission's jobs: 0…size-1 for an array, `[undefined]` for one job. */
export function elementIndices(submission: Submission): (number | undefined)[] {
  if (submission.arraySize === undefined) return [undefined];
  return Array.from({ length: submission.arraySize }, (_, index) => index);
}

/** The output file of a job or array element (`%A`, `%a`, `%j`, `%%` of the submission's pattern filled in). */
export function outputFileOf(submission: Submission, arrayIndex?: number, elementJobId?: string): string {
  return slurmOutputFile(submission.outputPattern, { jobId: submission.jobId, arrayIndex, elementJobId });
}

/** The last `count` lines of a job's output file (what a job that died before the trainer started printed). */
export async function readOutputTail(file: string, count = 12): Promise<string | undefined> {
  const handle = await fs.open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 16 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-count).join('\n');
  } finally {
    await handle.close();
  }
}
