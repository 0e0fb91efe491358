/**
 * The guard that records in run.json why a trainer process ended while a stage was running, so that a
 * run folder is not left `running` (pipeline.ts sets it around each stage).
 */
import * as path from 'node:path';
import type { RunDirectory } from './runDirectory';

/**
 * While a stage runs, a process that ends without finishing it still records why in run.json instead
 * of leaving it `running`: an uncaught error is recorded as it is thrown (the wasm runtime's handler
 * then ends the process without an `exit` event), a `process.exit` anywhere on exit. Only a kill -9 or
 * a crash of the runtime itself leaves `running`. A quit by a second Ctrl+C (exit code 130) is
 * `stopped`. Returns the function that removes the guard once the stage has ended.
 */
export function recordExitWhileRunning(run: RunDirectory): () => void {
  const record = (reason: string, status: 'failed' | 'stopped' = 'failed') => {
    if (run.runJson.status !== 'running') return;
    const failure =
      status === 'stopped'
        ? attempt(() => run.update({ status, ended_at: new Date().toISOString() }))
        : run.markFailed(reason);
    if (failure)
      process.stderr.write(`could not record the failure in ${path.join(run.dir, 'run.json')}: ${failure.message}\n`);
  };
  const onUncaught = (error: unknown) => record(messageOf(error));
  const onExit = (code: number) =>
    record(`the trainer exited with code ${code} before the stage finished`, code === 130 ? 'stopped' : 'failed');
  process.on('uncaughtExceptionMonitor', onUncaught);
  process.on('exit', onExit);
  return () => {
    process.off('uncaughtExceptionMonitor', onUncaught);
    process.off('exit', onExit);
  };
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

function attempt(write: () => void): Error | undefined {
  try {
    write();
    return undefined;
  } catch (error) {
    return error as Error;
  }
}
