/**
 * Writes a step's trace, `traces/step-<n>.arrow` in the run directory (DESIGN.md, "The run directory:
 * the contract"), durably (whole or not at all): the dashboard may read the folder while the trainer writes it.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { encodeTrace, TraceFormatError, type TraceKind, type TraceRows } from '../../shared/traceFormat';
import { writeFileDurable } from '../../shared/durableWrite';

/** The trace file of `step` in `runDir`. */
export function traceFile(runDir: string, step: number): string {
  return path.join(runDir, 'traces', `step-${step}.arrow`);
}

/** Encodes `rows` (all of optimizer step `step`) and writes them to `traces/step-<step>.arrow`; returns the path. */
export function writeTrace<K extends TraceKind>(
  runDir: string,
  step: number,
  kind: K,
  rows: readonly TraceRows[K][],
): string {
  if (!Number.isInteger(step) || step < 0)
    throw new TraceFormatError(`A trace's step must be a non-negative integer, got ${step}.`);
  const stray = rows.findIndex((row) => row.step !== step);
  if (stray >= 0) {
    throw new TraceFormatError(
      `Trace row ${stray} (sample ${rows[stray].sample}) has step ${rows[stray].step} but is being written to ` +
        `the file of step ${step}.`,
    );
  }
  const bytes = encodeTrace(kind, rows);
  const file = traceFile(runDir, step);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileDurable(file, bytes);
  return file;
}
