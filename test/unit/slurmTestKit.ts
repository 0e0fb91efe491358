// What the Slurm tests share: the cluster check (skip only when `sinfo` does not answer), a tiny SFT
// config whose job is named rlhf-lens-<name>, a project folder for it, and the trainer's CLI.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const trainer = path.join(__dirname, '..', '..', 'dist', 'trainer.js');

export const sinfo = spawnSync('sinfo', ['--noheader'], { encoding: 'utf8', timeout: 15_000 });
export const clusterProblem =
  sinfo.error || sinfo.status !== 0 || !sinfo.stdout.trim()
    ? 'no Slurm cluster answers on this machine ' +
      `(sinfo: ${sinfo.error?.message ?? (sinfo.stderr.trim() || 'no partitions')})`
    : undefined;
export const onCluster = { skip: clusterProblem ?? false, timeout: 120_000 };

export { sftConfig } from '../fixtures/slurm/slurmConfigs';

/** A folder with the config written in it; runs go to <folder>/.rlhf/runs, submissions to .rlhf/jobs. */
export function project(
  workDir: string,
  name: string,
  config: unknown,
): { dir: string; configFile: string; runsDir: string } {
  const dir = path.join(workDir, name);
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'run.rlhf.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { dir, configFile, runsDir: path.join(dir, '.rlhf', 'runs') };
}

export function cli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(process.execPath, [trainer, ...args], { encoding: 'utf8', env, timeout: 90_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
