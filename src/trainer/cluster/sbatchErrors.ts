/**
 * Words for a job `sbatch` refused: its own message quoted, the launcher field it is about when the
 * message says (an unknown partition, account or QOS), and what to do — the partitions that exist,
 * from `sinfo`, for an unknown one.
 */
import { spawnSync } from 'node:child_process';
import type { SlurmLauncherConfig } from '../../shared/runConfig';
import { clip, quote, UserError } from '../../shared/userError';

/** The cluster's partitions (`sinfo`, the default marked `*`), or undefined when sinfo does not answer. */
function partitions(searchPath: string | undefined): string[] | undefined {
  const result = spawnSync('sinfo', ['--noheader', '--format=%P'], {
    encoding: 'utf8',
    timeout: 20_000,
    env: searchPath === undefined ? process.env : { ...process.env, PATH: searchPath },
  });
  if (result.status !== 0 || typeof result.stdout !== 'string') return undefined;
  const names = result.stdout.split('\n').map((line) => line.trim());
  return [...new Set(names.filter(Boolean))];
}

/** The lines sbatch wrote, without its `sbatch: error: ` prefixes, as one quoted text. */
function sbatchWords(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.replace(/^sbatch: error: /, '').trim())
    .filter(Boolean);
  return clip(lines.join('; ') || '(no message)', 1000);
}

export function sbatchRefusal(
  stderr: string,
  launcher: SlurmLauncherConfig,
  configFile: string,
  searchPath: string | undefined,
): UserError {
  const said = sbatchWords(stderr);
  if (/invalid partition/i.test(stderr)) {
    const known = partitions(searchPath);
    return new UserError(
      `${quote(launcher.partition ?? '(the default)')}: Slurm has no such partition (sbatch: ${said})`,
      {
        file: configFile,
        field: 'launcher.partition',
        hint: known ? `use one of the cluster's partitions: ${known.join(', ')} (* marks the default)` : 'see `sinfo`',
      },
    );
  }
  if (/invalid account/i.test(stderr))
    return new UserError(`${quote(launcher.account ?? '(the default)')}: Slurm refused the account (sbatch: ${said})`, {
      file: configFile,
      field: 'launcher.account',
      hint: 'use an account you belong to (`sacctmgr show associations user=$USER`)',
    });
  if (/invalid qos/i.test(stderr))
    return new UserError(`${quote(launcher.qos ?? '(the default)')}: Slurm refused the QOS (sbatch: ${said})`, {
      file: configFile,
      field: 'launcher.qos',
      hint: 'use a QOS of your account (`sacctmgr show associations user=$USER format=qos`)',
    });
  if (/unable to contact slurm controller|connection refused/i.test(stderr))
    return new UserError(`sbatch cannot reach the Slurm controller (sbatch: ${said})`, {
      hint: 'check that the cluster is up (`sinfo`), then submit again',
    });
  return new UserError(`Slurm refused the job (sbatch: ${said})`, {
    file: configFile,
    field: 'launcher',
    hint: 'change the launcher settings Slurm named (partition limits: `sinfo`, `scontrol show partition`)',
  });
}
