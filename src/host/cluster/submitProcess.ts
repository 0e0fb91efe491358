/**
 * `rlhf-lens submit` run from the editor: the trainer CLI in a child process (never in the extension host), its
 * `--json` answer read back. No editor API, so the unit tests run it.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';

/** What `submit --json` printed. */
export interface SubmitResult {
  readonly submission: string;
  readonly job_id: string;
}

/** The `{submission, job_id}` that `submit --json` prints (the whole output, or its last line after log lines). */
export function parseSubmitOutput(stdout: string): SubmitResult | undefined {
  const text = stdout.trim();
  for (const candidate of [text, text.split('\n').at(-1) ?? '']) {
    try {
      const parsed = JSON.parse(candidate) as { submission?: unknown; job_id?: unknown };
      const jobId = parsed.job_id;
      if (typeof parsed.submission === 'string' && (typeof jobId === 'string' || typeof jobId === 'number'))
        return { submission: parsed.submission, job_id: String(jobId) };
    } catch {
      // Not JSON: try the last line.
    }
  }
  return undefined;
}

/** Runs `<trainer> submit <config> --runs-dir <folder> --json` as a child process; rejects with its message. */
export function runSubmit(trainerScript: string, config: string, runsDir: string | undefined): Promise<SubmitResult> {
  const args = [trainerScript, 'submit', config, ...(runsDir ? ['--runs-dir', runsDir] : []), '--json'];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      // The editor's own binary runs as plain Node; the config's relative paths resolve from its folder.
      { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, cwd: path.dirname(config), timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error) {
          // The CLI's message comes first; a usage text after it is cut short for a notification.
          const said = (`${stderr}`.trim() || `${stdout}`.trim() || error.message).slice(0, 2000);
          return reject(new Error(`Could not submit ${path.basename(config)} to the cluster: ${said}`));
        }
        const result = parseSubmitOutput(`${stdout}`);
        if (result) resolve(result);
        else reject(new Error(`submit printed no job id: ${`${stdout}`.trim().slice(0, 500)}`));
      },
    );
  });
}

/**
 * Whether a config's launcher is Slurm (the CodeLens offers Submit then). A pattern, not a parse: the lens must show
 * while the file is being edited and briefly not valid JSON; `submit` checks the config properly.
 */
export function launchesOnSlurm(text: string): boolean {
  return /"launcher"\s*:\s*\{[^{}]*"type"\s*:\s*"slurm"/.test(text);
}
