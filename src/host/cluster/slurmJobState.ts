/**
 * Slurm job states as the Runs view shows them, parsed from `scontrol show job -o` (one job record a line,
 * `Key=Value` fields). Pure: it takes text, so the unit tests feed it lines captured from a real cluster.
 */

/** The states the Runs view tells apart; every other Slurm state maps onto one of them. */
export const jobPhases = [
  'pending',
  'running',
  'completed',
  'failed',
  'cancelled',
  'timeout',
  'preempted',
  'requeued',
] as const;
export type JobPhase = (typeof jobPhases)[number];

/** One job, or one element of a job array, as the controller reports it. */
export interface SlurmJobState {
  /** The job's own id (an array element has its own, besides the array's). */
  readonly jobId: string;
  /** The array's id, for an array element or an array's unsplit pending elements. */
  readonly arrayJobId?: string;
  /** The array indices this record stands for: one once an element runs, several while they wait together. */
  readonly arrayTaskIds?: readonly number[];
  /** Slurm's own state name (`PENDING`, `RUNNING`, `OUT_OF_MEMORY`, …). */
  readonly state: string;
  readonly phase: JobPhase;
  /** Why it waits (`Resources`, `Priority`, `BeginTime`…); undefined when Slurm says `None`. */
  readonly reason?: string;
  /** The nodes it runs or ran on; undefined while pending. */
  readonly nodes?: string;
  /** The output file with Slurm's patterns resolved. */
  readonly stdOut?: string;
  /** `exit:signal`, e.g. `0:0`, `1:0`, `0:15`. */
  readonly exitCode?: string;
  readonly restarts: number;
}

/** Slurm's state names, grouped by the phase the Runs view shows. */
const phaseOfState: Record<string, JobPhase> = {
  PENDING: 'pending',
  CONFIGURING: 'pending',
  REQUEUE_HOLD: 'requeued',
  REQUEUE_FED: 'requeued',
  REQUEUED: 'requeued',
  RESV_DEL_HOLD: 'pending',
  RUNNING: 'running',
  COMPLETING: 'running',
  SUSPENDED: 'running',
  STOPPED: 'running',
  SIGNALING: 'running',
  STAGE_OUT: 'running',
  RESIZING: 'running',
  COMPLETED: 'completed',
  CANCELLED: 'cancelled',
  REVOKED: 'cancelled',
  DEADLINE: 'timeout',
  TIMEOUT: 'timeout',
  PREEMPTED: 'preempted',
  FAILED: 'failed',
  NODE_FAIL: 'failed',
  BOOT_FAIL: 'failed',
  OUT_OF_MEMORY: 'failed',
  SPECIAL_EXIT: 'failed',
};

/** Phases after which the job does no more (a requeued job runs again; a preempted one may be requeued). */
const finishedPhases: ReadonlySet<JobPhase> = new Set(['completed', 'failed', 'cancelled', 'timeout']);

export function isFinished(phase: JobPhase): boolean {
  return finishedPhases.has(phase);
}

/** The phase of a Slurm state name; an unknown name (a newer Slurm) counts as running, which keeps the polling on. */
export function phaseOf(state: string): JobPhase {
  // `scontrol` may add flags after a `+` (e.g. `CANCELLED+`); the base name decides.
  return phaseOfState[state.split('+')[0].toUpperCase()] ?? 'running';
}

/**
 * The fields of one `scontrol show job -o` line. A value may hold spaces (a command's path), so a field ends
 * only where the next `Key=` starts.
 */
export function parseScontrolRecord(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  const keyPattern = /(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=/g;
  const starts: { key: string; valueStart: number; matchStart: number }[] = [];
  for (let match = keyPattern.exec(line); match; match = keyPattern.exec(line))
    starts.push({ key: match[1], valueStart: match.index + match[0].length, matchStart: match.index });
  starts.forEach((start, index) => {
    const end = index + 1 < starts.length ? starts[index + 1].matchStart : line.length;
    if (!fields.has(start.key)) fields.set(start.key, line.slice(start.valueStart, end).trim());
  });
  return fields;
}

/** `0-2`, `1,3`, `0-9%2` (at most 2 at once), `4` → the indices. */
export function parseArrayTaskIds(text: string): number[] {
  const indices: number[] = [];
  for (const part of text.split('%')[0].split(',')) {
    const range = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (!range) continue;
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    const stride = range[3] === undefined ? 1 : Math.max(1, Number(range[3]));
    for (let index = first; index <= last; index += stride) indices.push(index);
  }
  return indices;
}

const nullValue = (value: string | undefined): string | undefined =>
  value === undefined || value === '' || value === '(null)' || value === 'None' ? undefined : value;

/** Every job record in `scontrol show job -o` output (`No jobs in the system` gives none). */
export function parseScontrolJobs(output: string): SlurmJobState[] {
  const jobs: SlurmJobState[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('JobId=')) continue;
    const fields = parseScontrolRecord(line);
    const state = fields.get('JobState') ?? 'UNKNOWN';
    const restarts = Number(fields.get('Restarts') ?? 0) || 0;
    // A requeued job waits as PENDING (reason BeginTime) with its restart count up: it shows as requeued.
    const phase = phaseOf(state) === 'pending' && restarts > 0 ? 'requeued' : phaseOf(state);
    const arrayJobId = nullValue(fields.get('ArrayJobId'));
    const arrayTasks = nullValue(fields.get('ArrayTaskId'));
    jobs.push({
      jobId: fields.get('JobId') ?? '',
      arrayJobId,
      arrayTaskIds: arrayTasks === undefined ? undefined : parseArrayTaskIds(arrayTasks),
      state,
      phase,
      reason: nullValue(fields.get('Reason')),
      nodes: nullValue(fields.get('NodeList')),
      stdOut: nullValue(fields.get('StdOut')),
      exitCode: nullValue(fields.get('ExitCode')),
      restarts,
    });
  }
  return jobs;
}

/**
 * The record of a submission's job, or of one element of its array (`arrayIndex`), among the controller's jobs;
 * undefined when the controller no longer knows it (finished longer ago than its MinJobAge) or never did.
 */
export function findJobState(
  jobs: readonly SlurmJobState[],
  jobId: string,
  arrayIndex?: number,
): SlurmJobState | undefined {
  if (arrayIndex === undefined) return jobs.find((job) => job.jobId === jobId && job.arrayJobId === undefined);
  return jobs.find((job) => job.arrayJobId === jobId && job.arrayTaskIds?.includes(arrayIndex) === true);
}

/** "pending (Resources)", "running on node1", "completed", "failed (exit 1)", "timeout"… */
export function describeJobState(job: SlurmJobState): string {
  switch (job.phase) {
    case 'pending':
      return job.reason ? `pending (${job.reason})` : 'pending';
    case 'running': {
      const restarted = job.restarts > 0 ? ` (restart ${job.restarts})` : '';
      const doing = job.state === 'RUNNING' ? 'running' : job.state.toLowerCase();
      return `${doing}${job.nodes ? ` on ${job.nodes}` : ''}${restarted}`;
    }
    case 'failed': {
      const detail = job.state === 'FAILED' ? (job.exitCode ? `exit ${job.exitCode.split(':')[0]}` : '') : job.state;
      return detail ? `failed (${detail.toLowerCase()})` : 'failed';
    }
    case 'requeued':
      return job.reason ? `requeued (${job.reason})` : 'requeued';
    default:
      return job.phase;
  }
}
