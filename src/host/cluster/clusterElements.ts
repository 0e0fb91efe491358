/**
 * What the Runs view shows for each job of a submission: the Slurm state from the controller, the run folder the
 * trainer wrote once it started, and the state the two give together. A job that ended without a run folder died
 * before the trainer started (a missing `node`, an output file Slurm could not open, a broken batch script): it
 * shows as failed, with the end of its output file, which the caller reads (clusterListing.ts) and passes in. Pure,
 * for the unit tests.
 */
import * as path from 'node:path';
import type { RunStatus } from '../../shared/runSummary';
import { describeJobState, findJobState, isFinished, type JobPhase, type SlurmJobState } from './slurmJobState';
import { elementIndices, outputFileOf, type Submission, type SubmissionRun } from './submissions';

export interface ClusterElement {
  readonly submission: Submission;
  /** The array index; undefined for a single job. */
  readonly arrayIndex?: number;
  /** The controller's record; undefined once it forgot the job (MinJobAge) or before the first poll. */
  readonly job?: SlurmJobState;
  /** The run folder, once the trainer wrote run.json; a job still pending has none. */
  readonly run?: SubmissionRun;
  readonly phase: JobPhase;
  /** "pending (Resources)", "running on node1 · step 3/10", "completed"… */
  readonly description: string;
  /** The job's output file (Slurm's when it reports one, else the submission's pattern resolved). */
  readonly outputFile: string;
  /** The sweep settings of this element, `kl_coef=0.05`. */
  readonly settingsText: string;
  /** The job ended and its trainer never wrote run.json: nothing but the output file says why. */
  readonly diedBeforeTrainer: boolean;
  /** The end of the output file, for an element that died before the trainer started, when the caller read it. */
  readonly outputTail?: OutputTail;
}

/** The end of a job's output file. */
export interface OutputTail {
  /** False when the file does not exist (Slurm could not open it, or it was removed). */
  readonly exists: boolean;
  /** Its last lines (up to `outputTailLines`), oldest first; none when it does not exist or is empty. */
  readonly lines: readonly string[];
}

/** How many of an output file's last lines are read for an element that died before the trainer started. */
export const outputTailLines = 40;
/** How many of them a tooltip shows. */
export const shownTailLines = 10;

/** The phase a run's own status implies, when the controller no longer knows its job. */
const phaseOfRunStatus: Record<RunStatus, JobPhase> = {
  created: 'running',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  stopped: 'cancelled',
};

function settingsTextOf(submission: Submission, arrayIndex: number | undefined): string {
  const element = submission.sweep.find((item) => item.index === arrayIndex);
  if (!element) return '';
  return Object.entries(element.settings)
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(', ');
}

/** The Slurm job spec of an element: `123`, or `123_4` for an array element. */
export function elementJobSpec(submission: Submission, arrayIndex: number | undefined): string {
  return arrayIndex === undefined ? submission.jobId : `${submission.jobId}_${arrayIndex}`;
}

/** What Slurm says of a job that ended before the trainer started: `exit 127`, `launch failed, signal 53`… */
function deathDetail(job: SlurmJobState | undefined): string {
  if (!job) return '';
  const [exit = '0', signal = '0'] = (job.exitCode ?? '').split(':');
  const parts = [
    job.reason === 'JobLaunchFailure' ? 'launch failed' : '',
    ['FAILED', 'COMPLETED'].includes(job.state) ? '' : job.state.toLowerCase(),
    exit !== '0' ? `exit ${exit}` : signal !== '0' ? `signal ${signal}` : job.exitCode ? 'exit 0' : '',
  ];
  return parts.filter(Boolean).join(', ');
}

/** A job that ended (or that the controller forgot) with no run folder: its trainer never started. */
function diedBeforeTrainer(job: SlurmJobState | undefined, run: SubmissionRun | undefined, known: boolean): boolean {
  if (run) return false;
  // A cancelled job was stopped by someone (often while pending), and a timeout says itself why it ended.
  if (job) return job.phase === 'failed' || job.phase === 'completed';
  return known;
}

/** "failed before the trainer started (exit 127)", and "· no output file" when Slurm could not write one. */
function diedDescription(job: SlurmJobState | undefined, tail: OutputTail | undefined): string {
  const detail = deathDetail(job);
  const missing = tail && !tail.exists ? ' · no output file' : '';
  return `failed before the trainer started${detail ? ` (${detail})` : ''}${missing}`;
}

/** The output line that most likely says why the job died: the last one naming an error, else the last one. */
export function reasonLine(lines: readonly string[]): string | undefined {
  const nonEmpty = lines.map((line) => line.trim()).filter(Boolean);
  const errorLike = /error|no such file|not found|cannot|could not|couldn't|denied|killed|fatal/i;
  return nonEmpty.filter((line) => errorLike.test(line)).at(-1) ?? nonEmpty.at(-1);
}

/**
 * The warning for an element that died before its trainer started: "Job 12 (sft) failed before the trainer
 * started: <the line that says why>".
 */
export function diedBeforeTrainerMessage(element: ClusterElement): string {
  const configName = path.basename(element.submission.config).replace(/\.rlhf\.json$/, '');
  const tail = element.outputTail;
  const why = !tail
    ? 'see its output file'
    : !tail.exists
      ? `its output file ${element.outputFile} does not exist`
      : (reasonLine(tail.lines) ?? 'its output file is empty');
  const spec = elementJobSpec(element.submission, element.arrayIndex);
  return `Job ${spec} (${configName}) failed before the trainer started: ${why}`;
}

/**
 * The elements of `submission`: `jobs` is the controller's latest listing (undefined before the first poll or when
 * `scontrol` failed), `runs` the run folders its jobs wrote, `outputTails` the ends of the output files (by path)
 * of the elements that died before their trainer started (see `diedBeforeTrainer` of a first call without them).
 */
export function clusterElements(
  submission: Submission,
  runs: readonly SubmissionRun[],
  jobs: readonly SlurmJobState[] | undefined,
  /** Why the controller could not be asked (no `scontrol`, no controller), when `jobs` is undefined. */
  slurmProblem?: string,
  outputTails?: ReadonlyMap<string, OutputTail>,
): ClusterElement[] {
  return elementIndices(submission).map((arrayIndex) => {
    const job = jobs === undefined ? undefined : findJobState(jobs, submission.jobId, arrayIndex);
    const run = runs
      .filter((item) => item.arrayIndex === arrayIndex)
      .sort((a, b) => b.run.startedAt.localeCompare(a.run.startedAt))[0];
    // An array's unsplit pending record names `<pattern with %a = 4294967294>`: an element's file is the pattern's.
    const outputFile =
      arrayIndex === undefined && job?.stdOut ? job.stdOut : outputFileOf(submission, arrayIndex, job?.jobId);
    // Neither the controller nor a run folder knows a purged job: it ended before the trainer wrote anything.
    const died = diedBeforeTrainer(job, run, jobs !== undefined);
    const outputTail = died ? outputTails?.get(outputFile) : undefined;
    let phase: JobPhase;
    let description: string;
    if (died) {
      phase = 'failed';
      description = diedDescription(job, outputTail);
    } else if (job) {
      phase = job.phase;
      description = describeJobState(job);
    } else if (run) {
      phase = phaseOfRunStatus[run.run.status];
      description = run.run.status;
    } else {
      phase = 'pending';
      description = slurmProblem ? `state unknown: ${slurmProblem}` : 'pending';
    }
    return {
      submission,
      arrayIndex,
      job,
      run,
      phase,
      description,
      outputFile,
      settingsText: settingsTextOf(submission, arrayIndex),
      diedBeforeTrainer: died,
      ...(outputTail ? { outputTail } : {}),
    };
  });
}

/** Whether the controller should be asked again: some element may still change state. */
export function needsPolling(elements: readonly ClusterElement[]): boolean {
  return elements.some((element) => !isFinished(element.phase));
}
