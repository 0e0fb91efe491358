/**
 * What the Runs view shows for each job of a submission: the Slurm state from the controller, the run folder the
 * trainer wrote once it started, and the state the two give together. Pure, for the unit tests.
 */
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
}

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

/**
 * The elements of `submission`: `jobs` is the controller's latest listing (undefined before the first poll or when
 * `scontrol` failed), `runs` the run folders its jobs wrote.
 */
export function clusterElements(
  submission: Submission,
  runs: readonly SubmissionRun[],
  jobs: readonly SlurmJobState[] | undefined,
  /** Why the controller could not be asked (no `scontrol`, no controller), when `jobs` is undefined. */
  slurmProblem?: string,
): ClusterElement[] {
  return elementIndices(submission).map((arrayIndex) => {
    const job = jobs === undefined ? undefined : findJobState(jobs, submission.jobId, arrayIndex);
    const run = runs
      .filter((item) => item.arrayIndex === arrayIndex)
      .sort((a, b) => b.run.startedAt.localeCompare(a.run.startedAt))[0];
    let phase: JobPhase;
    let description: string;
    if (job) {
      phase = job.phase;
      description = describeJobState(job);
    } else if (run) {
      phase = phaseOfRunStatus[run.run.status];
      description = run.run.status;
    } else if (jobs !== undefined) {
      // Neither the controller nor a run folder knows it: it ended long enough ago to be purged, before the trainer
      // wrote anything.
      phase = 'failed';
      description = 'ended before the trainer started';
    } else {
      phase = 'pending';
      description = slurmProblem ? `state unknown: ${slurmProblem}` : 'pending';
    }
    // An array's unsplit pending record names `<pattern with %a = 4294967294>`: an element's file is the pattern's.
    const outputFile =
      arrayIndex === undefined && job?.stdOut ? job.stdOut : outputFileOf(submission, arrayIndex, job?.jobId);
    return {
      submission,
      arrayIndex,
      job,
      run,
      phase,
      description,
      outputFile,
      settingsText: settingsTextOf(submission, arrayIndex),
    };
  });
}

/** Whether the controller should be asked again: some element may still change state. */
export function needsPolling(elements: readonly ClusterElement[]): boolean {
  return elements.some((element) => !isFinished(element.phase));
}
