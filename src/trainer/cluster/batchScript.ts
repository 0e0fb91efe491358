/**
 * The batch script `rlhf-lens submit` writes and hands to `sbatch`: #SBATCH lines from the config's
 * launcher, then the trainer CLI on the compute node against the same runs folder (a shared file
 * system, as on clusters). Written to be read: it is what the user submitted.
 *
 * Time limits and preemption: `--signal=B:USR1@<s>` makes Slurm signal the batch shell (only the
 * shell: `B:`) that many seconds before the time limit. The shell forwards the signal to the trainer,
 * which finishes its step, checkpoints, records the run `stopped` and exits with `requeueExitStatus`;
 * the shell then runs `scontrol requeue` (an exit status alone requeues nothing on Slurm 22.05 unless
 * the cluster sets RequeueExit). The requeued job runs the same command, and `train --submission`
 * resumes this submission's run (run.json's `slurm.submission`) instead of starting a new one.
 * `scancel` and preemption send SIGTERM to every process of the job: the trainer stops as on Ctrl+C.
 */
import type { SlurmLauncherConfig } from '../../shared/runConfig';

/** The trainer's exit status after stopping on Slurm's early signal: the batch script requeues the job. */
export const requeueExitStatus = 75;

export interface BatchScriptInput {
  readonly jobName: string;
  readonly launcher: SlurmLauncherConfig;
  /** Absolute paths: the job runs wherever Slurm starts it. */
  readonly nodeExecutable: string;
  readonly trainerScript: string;
  readonly configFile: string;
  readonly runsDir: string;
  readonly submissionDir: string;
  /** Elements of the sweep (a job array 0..n-1), or undefined for one job. */
  readonly arraySize: number | undefined;
}

/** A word for bash: single-quoted, a quote inside written as '\''. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The output file pattern of the job: `%A_%a` (array job and task) or `%j` (the job). */
export function outputPattern(submissionDir: string, arraySize: number | undefined): string {
  return `${submissionDir}/slurm-${arraySize === undefined ? '%j' : '%A_%a'}.out`;
}

function sbatchLines(input: BatchScriptInput): string[] {
  const { launcher } = input;
  const optional: [string, string | number | undefined][] = [
    ['partition', launcher.partition],
    ['gres', launcher.gres],
    ['cpus-per-task', launcher.cpus_per_task],
    ['mem', launcher.mem],
    ['time', launcher.time],
    ['account', launcher.account],
    ['qos', launcher.qos],
  ];
  return [
    `--job-name=${input.jobName}`,
    ...optional.filter(([, value]) => value !== undefined).map(([name, value]) => `--${name}=${value}`),
    ...(input.arraySize === undefined ? [] : [`--array=0-${input.arraySize - 1}`]),
    `--signal=B:USR1@${launcher.signal_before_end_s}`,
    launcher.requeue ? '--requeue' : '--no-requeue',
    '--open-mode=append',
    `--output=${outputPattern(input.submissionDir, input.arraySize)}`,
  ].map((option) => `#SBATCH ${option}`);
}

export function batchScript(input: BatchScriptInput): string {
  const command = [
    input.nodeExecutable,
    input.trainerScript,
    'train',
    input.configFile,
    '--runs-dir',
    input.runsDir,
    '--submission',
    input.submissionDir,
  ].map(shellQuote);
  if (input.arraySize !== undefined) command.push('--sweep-index', '"$SLURM_ARRAY_TASK_ID"');
  const extra = input.launcher.extra_args ?? [];
  // An array task is named <array job>_<task>: the array job's own id would requeue every task of the array.
  const thisJob = input.arraySize === undefined ? '$SLURM_JOB_ID' : '${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}';
  const requeue = input.launcher.requeue
    ? [
        `if [ "$status" -eq ${requeueExitStatus} ]; then`,
        `  echo "rlhf-lens: stopped before the time limit; requeueing job ${thisJob} to resume the run"`,
        `  scontrol requeue "${thisJob}"`,
        'fi',
      ]
    : [];
  return [
    '#!/bin/bash',
    ...sbatchLines(input),
    ...(extra.length > 0 ? [`# sbatch was also given: ${extra.map(shellQuote).join(' ')}`] : []),
    '',
    '# Written by `rlhf-lens submit`. Slurm signals this shell (USR1) before the time limit; the trainer',
    '# gets it, finishes its step, checkpoints and exits with status ' +
      `${requeueExitStatus}${input.launcher.requeue ? '; the job then requeues itself' : ''}.`,
    "# Started again (requeued, preempted), the same command resumes this submission's run.",
    'set -u',
    'trainer=',
    'trap \'if [ -n "$trainer" ]; then kill -USR1 "$trainer"; fi\' USR1',
    'echo "rlhf-lens: job ${SLURM_JOB_ID} on $(hostname), restart ${SLURM_RESTART_COUNT:-0}"',
    `${command.join(' ')} &`,
    'trainer=$!',
    'wait "$trainer"',
    'status=$?',
    "# Above 128: a trapped signal ended the wait (the next wait gives the trainer's status), or the trainer",
    '# died of a signal (the next wait has nothing left to report: 127).',
    'while [ "$status" -gt 128 ]; do',
    '  wait "$trainer" 2>/dev/null',
    '  next=$?',
    '  if [ "$next" -eq 127 ]; then break; fi',
    '  status=$next',
    'done',
    ...requeue,
    'exit "$status"',
    '',
  ].join('\n');
}
