/**
 * The trainer's side of a Slurm job: what it records in each run.json it writes (`slurm`, so the
 * editor can map runs to jobs), and which run a started-again job continues. A job that is requeued
 * (time limit, preemption, `scontrol requeue`) runs the same command again; the run of its submission
 * and sweep element is then found in the runs folder and resumed, so the job never starts a second run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../../shared/isRecord';

/** run.json's `slurm`: the job that wrote the run. */
export interface SlurmRunRecord {
  readonly job_id: string;
  readonly array_job_id?: string;
  readonly array_task_id?: number;
  /** The submission folder (`.rlhf/jobs/<id>`) holding job.sbatch and submission.json. */
  readonly submission: string;
  /** How many times Slurm started this job again (SLURM_RESTART_COUNT). */
  readonly restarts?: number;
}

/** The job this process runs in, from Slurm's environment; undefined outside a job. */
export function slurmRunRecord(submission: string, env: NodeJS.ProcessEnv = process.env): SlurmRunRecord | undefined {
  const jobId = env.SLURM_JOB_ID;
  if (!jobId) return undefined;
  const taskId = env.SLURM_ARRAY_TASK_ID;
  const restarts = Number(env.SLURM_RESTART_COUNT ?? '0');
  return {
    job_id: jobId,
    ...(env.SLURM_ARRAY_JOB_ID ? { array_job_id: env.SLURM_ARRAY_JOB_ID } : {}),
    ...(taskId !== undefined && taskId !== '' ? { array_task_id: Number(taskId) } : {}),
    submission,
    ...(Number.isInteger(restarts) && restarts > 0 ? { restarts } : {}),
  };
}

interface FoundRun {
  readonly dir: string;
  readonly stageIndex: number;
  readonly startedAt: string;
}

/**
 * The run folder in `runsDir` this submission's element last worked on (the latest stage begun), or
 * undefined when the job has not started a run yet. Folders whose run.json cannot be read are not
 * this job's (a run folder is written whole with its run.json).
 */
export function submissionRun(runsDir: string, submission: string, sweepIndex: number | undefined): string | undefined {
  let names: string[];
  try {
    names = readdirSync(runsDir);
  } catch {
    return undefined; // no runs folder yet: nothing to resume
  }
  const found: FoundRun[] = [];
  for (const name of names) {
    const dir = path.join(runsDir, name);
    let fields: unknown;
    try {
      fields = JSON.parse(readFileSync(path.join(dir, 'run.json'), 'utf8'));
    } catch {
      continue;
    }
    if (!isRecord(fields) || !isRecord(fields.slurm) || fields.slurm.submission !== submission) continue;
    const element = isRecord(fields.sweep) ? fields.sweep.index : undefined;
    if (element !== sweepIndex) continue;
    found.push({
      dir,
      stageIndex: typeof fields.stage_index === 'number' ? fields.stage_index : 0,
      startedAt: typeof fields.started_at === 'string' ? fields.started_at : '',
    });
  }
  found.sort((a, b) => a.stageIndex - b.stageIndex || a.startedAt.localeCompare(b.startedAt));
  return found.at(-1)?.dir;
}
