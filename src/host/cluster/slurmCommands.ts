/**
 * The Slurm client commands the editor runs, each in a child process with a time limit (a hung controller must not
 * hang the Runs view). On a Remote-SSH login node these run there, where the extension host runs.
 */
import { execFile } from 'node:child_process';

/** A Slurm command that could not run or failed, with what it said. */
export class SlurmCommandError extends Error {
  constructor(
    message: string,
    /** `ENOENT` when the command is not installed. */
    readonly code?: string,
  ) {
    super(message);
  }
}

const timeoutMs = 15_000;

export function runSlurmCommand(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        return reject(new SlurmCommandError(`${command} was not found on PATH: is this a Slurm login node?`, code));
      const said = `${stderr}`.trim() || `${stdout}`.trim() || error.message;
      reject(
        new SlurmCommandError(
          `${command} ${args.join(' ')} failed: ${said}`,
          typeof code === 'string' ? code : undefined,
        ),
      );
    });
  });
}

/** Every job the controller knows (one call for all of them), as `scontrol show job -o` prints them. */
export function scontrolShowJobs(): Promise<string> {
  return runSlurmCommand('scontrol', ['show', 'job', '-o']);
}

/** Cancels a job, a whole array (`123`) or one element (`123_4`). */
export async function scancel(jobSpec: string): Promise<void> {
  await runSlurmCommand('scancel', [jobSpec]);
}
