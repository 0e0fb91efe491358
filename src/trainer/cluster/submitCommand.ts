/**
 * `rlhf-lens submit <config> [--runs-dir D] [--json]`: submits a config to Slurm. It makes a
 * submission folder `.rlhf/jobs/<id>/` next to the runs folder, holding the batch script (job.sbatch,
 * batchScript.ts) and, once `sbatch` took it, submission.json; the job's output files go there too.
 * A sweep is one job array. When anything fails (no sbatch on PATH, a request Slurm refuses) the
 * folder is removed: no half-made submission stays behind.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeJsonDurable } from '../../shared/durableWrite';
import { slurmLauncherSchema, type RunConfig, type SlurmLauncherConfig } from '../../shared/runConfig';
import { validate } from '../../shared/configSchema';
import { defaultRunsFolder } from '../../shared/runsFolder';
import { sanitizeRunName } from '../../shared/runIds';
import { sweepElements, type SweepElement } from '../../shared/sweep';
import { clip, quote, UserError } from '../../shared/userError';
import { parseCommandArgs } from '../cli';
import { loadRunConfig } from '../configLoading';
import { batchScript, outputPattern } from './batchScript';
import { sbatchRefusal } from './sbatchErrors';
import { slurmOutputFile } from '../../shared/slurmOutput';

const submitUsage = [
  'Usage: rlhf-lens submit <config.rlhf.json> [--runs-dir DIR] [--json]',
  '  Submits the config to Slurm with sbatch, as its "launcher" says (a "sweep" is one job array). The',
  '  batch script, submission.json and the job output go to .rlhf/jobs/<id>/ next to the runs folder',
  '  (DIR, default .rlhf/runs); --json prints {"submission", "job_id", "output"} as one line.',
].join('\n');

/** submission.json: what was submitted, for the editor and for people. */
export interface SubmissionRecord {
  readonly id: string;
  readonly config: string;
  readonly runs_dir: string;
  readonly job_id: string;
  readonly array_size: number | null;
  readonly sweep: readonly SweepElement[];
  readonly submitted_at: string;
  readonly script: string;
  readonly output_pattern: string;
}

/** An executable named `name` in a PATH-like list of folders, or undefined. */
export function findOnPath(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const folder of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The Node.js the job runs the trainer with, as an absolute path (the job's PATH may differ): this
 * process's own, unless it is an editor's Electron started as Node (VS Code desktop forks its
 * extensions' children so), which runs as Node only with ELECTRON_RUN_AS_NODE set: then `node` on PATH.
 */
function jobNodeExecutable(searchPath: string | undefined): string {
  if (process.versions.electron === undefined) return process.execPath;
  const node = findOnPath('node', searchPath);
  if (!node)
    throw new UserError('no `node` on PATH for the job to run the trainer with', {
      hint: 'install Node.js 20 or later where the cluster finds it, or run `rlhf-lens submit` from a terminal',
    });
  return node;
}

/** The config's Slurm settings, defaults filled; a UserError naming the field when it asks to run locally. */
function slurmLauncher(config: RunConfig, configFile: string): SlurmLauncherConfig {
  const launcher = config.launcher;
  if (launcher?.type === 'local')
    throw new UserError('is "local": this config runs on this machine', {
      file: configFile,
      field: 'launcher.type',
      hint: 'set "launcher": {"type": "slurm", …} to submit it to Slurm, or run it with `rlhf-lens train`',
    });
  // A config without a launcher is submitted with the cluster's defaults (and this schema's).
  return launcher ?? (validate(slurmLauncherSchema, {}).value as SlurmLauncherConfig);
}

/** `<config name>-<yyyymmdd-hhmmss>`, made in `jobsDir` exclusively (a taken one gets a suffix). */
function makeSubmissionFolder(jobsDir: string, configName: string): { id: string; dir: string } {
  mkdirSync(jobsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const base = `${sanitizeRunName(configName).slice(0, 80)}-${stamp}`;
  for (let n = 1; ; n++) {
    const id = n === 1 ? base : `${base}-${n}`;
    const dir = path.join(jobsDir, id);
    try {
      mkdirSync(dir);
      return { id, dir };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

export interface SubmitResult {
  readonly submission: string;
  readonly jobId: string;
  readonly record: SubmissionRecord;
}

/**
 * Submits `configFile`; returns the submission folder and the job id. `trainerScript` is the
 * trainer CLI the job runs (this process's own by default), `searchPath` where sbatch is looked for.
 */
export function submit(options: {
  configFile: string;
  runsDir?: string;
  trainerScript?: string;
  searchPath?: string;
}): SubmitResult {
  const configFile = path.resolve(options.configFile);
  const config = loadRunConfig(configFile);
  const launcher = slurmLauncher(config, configFile);
  const sbatch = findOnPath('sbatch', options.searchPath);
  if (!sbatch)
    throw new UserError('sbatch is not on PATH: this machine has no Slurm client commands', {
      hint: "submit from a machine of the cluster (its login node, over Remote-SSH), or add Slurm's bin folder to PATH",
    });
  const runsDir = path.resolve(options.runsDir ?? defaultRunsFolder);
  const elements = sweepElements(config.sweep);
  const arraySize = elements.length > 0 ? elements.length : undefined;
  const { id, dir } = makeSubmissionFolder(path.join(path.dirname(runsDir), 'jobs'), config.name);
  try {
    const script = path.join(dir, 'job.sbatch');
    writeFileSync(
      script,
      batchScript({
        jobName: `rlhf-lens-${config.name}`,
        launcher,
        nodeExecutable: jobNodeExecutable(options.searchPath),
        trainerScript: path.resolve(options.trainerScript ?? process.argv[1]),
        configFile,
        runsDir,
        submissionDir: dir,
        arraySize,
      }),
      { mode: 0o755 },
    );
    const jobId = runSbatch(sbatch, launcher, script, configFile, options.searchPath);
    const record: SubmissionRecord = {
      id,
      config: configFile,
      runs_dir: runsDir,
      job_id: jobId,
      array_size: arraySize ?? null,
      sweep: elements,
      submitted_at: new Date().toISOString(),
      script,
      output_pattern: outputPattern(dir, arraySize),
    };
    writeJsonDurable(path.join(dir, 'submission.json'), record);
    return { submission: dir, jobId, record };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** `sbatch --parsable`: the job id, or a UserError quoting sbatch's own words. */
function runSbatch(
  sbatch: string,
  launcher: SlurmLauncherConfig,
  script: string,
  configFile: string,
  searchPath: string | undefined,
): string {
  const result = spawnSync(sbatch, ['--parsable', ...(launcher.extra_args ?? []), script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: searchPath === undefined ? process.env : { ...process.env, PATH: searchPath },
  });
  if (result.error)
    throw new UserError(`sbatch could not be run: ${result.error.message}`, { hint: 'check the Slurm installation' });
  const stderr = result.stderr.trim();
  if (result.status !== 0) throw sbatchRefusal(stderr, launcher, configFile, searchPath);
  // --parsable prints `<job id>` or `<job id>;<cluster>`.
  const jobId = result.stdout.trim().split(';')[0];
  if (!/^[0-9]+$/.test(jobId))
    throw new UserError(`sbatch answered ${quote(clip(result.stdout.trim()))}, not a job id`, {
      hint: 'check the Slurm installation',
    });
  return jobId;
}

export async function submitCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { 'runs-dir': { type: 'string' }, json: { type: 'boolean' } },
    submitUsage,
    { min: 1, max: 1 },
  );
  const { submission, jobId, record } = submit({ configFile: positionals[0], runsDir: values['runs-dir'] });
  const output = jobOutputFile(record);
  if (values.json) process.stdout.write(`${JSON.stringify({ submission, job_id: jobId, output })}\n`);
  else {
    const runs = record.array_size === null ? '' : ` (a job array of ${record.array_size} runs)`;
    const elements = record.array_size === null ? '' : ` (%a: the run's index, 0-${record.array_size - 1})`;
    // The output file is where a job that dies before the trainer starts (no run folder) says why.
    process.stdout.write(
      `submitted job ${jobId}${runs}\n  batch script ${record.script}\n  output ${output}${elements}\n`,
    );
  }
  return 0;
}

/** The job's output file (an array's keeps `%a`: one file per element). */
export function jobOutputFile(record: Pick<SubmissionRecord, 'output_pattern' | 'job_id'>): string {
  return slurmOutputFile(record.output_pattern, { jobId: record.job_id });
}
