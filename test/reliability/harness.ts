/**
 * The reliability suite's shared tools: run the real CLI (`node dist/trainer.js …`) as a user would,
 * kill it with SIGKILL at a moment or when the files on disk say it is inside a chosen operation,
 * check that every file a run folder holds can be read back, and print one summary line per family.
 * Nothing here mocks the trainer: the processes, files, file systems and signals are real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeSafetensors } from '../../src/shared/safetensors';
import { decodeTrace } from '../../src/shared/traceFormat';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const trainerJs = path.join(repoRoot, 'dist', 'trainer.js');

/** Fails early with the command to run, rather than 50 confusing case failures. */
export function requireBuild(): void {
  if (!existsSync(trainerJs))
    throw new Error(`${trainerJs} is missing: run npm run build (npm run test:reliability builds first)`);
}

/** A fresh folder under the system temp folder; the caller removes it. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `rlhf-reliability-${prefix}-`));
}

/** An integer from the environment, else the default: counts the suite's families may be asked to scale. */
export function envCount(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Bytes written to stderr in all, even when `stderr` keeps only its first megabyte. */
  readonly stderrBytes: number;
  readonly ms: number;
  readonly timedOut: boolean;
}

const keptOutputBytes = 1 << 20;

/**
 * Runs `rlhf-lens <args>` to its end (or SIGKILL at `timeoutMs`), collecting what it prints through pipes as a terminal
 * user would see it.
 */
export function runCli(
  args: readonly string[],
  options: { cwd: string; timeoutMs?: number; env?: NodeJS.ProcessEnv },
): Promise<CliResult> {
  const started = performance.now();
  const child = spawn(process.execPath, [trainerJs, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env, RLHF_LENS_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outBytes = 0;
  let errBytes = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    if (outBytes < keptOutputBytes) out.push(chunk);
    outBytes += chunk.length;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    if (errBytes < keptOutputBytes) err.push(chunk);
    errBytes += chunk.length;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 120_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stderrBytes: errBytes,
        ms: performance.now() - started,
        timedOut,
      });
    });
  });
}

/** Starts the trainer with its output going to a file (a pipe nobody reads while we poll would block it). */
export function startTrainer(args: readonly string[], options: { cwd: string; logFile: string }): ChildProcess {
  const fd = openSync(options.logFile, 'a');
  try {
    return spawn(process.execPath, [trainerJs, ...args], {
      cwd: options.cwd,
      env: { ...process.env, RLHF_LENS_DEBUG: '' },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread for `ms` (fractions allowed): the poll below must not wait for the event loop. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** The state letter of a process in /proc (R, S, T stopped, Z exited), or undefined once it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

export type KillOutcome =
  { readonly landed: true; readonly atMs: number } | { readonly landed: false; readonly why: string };

/**
 * Polls the files a trainer writes (every ~0.1 ms, blocking) until `isInside()` says it is inside the
 * operation we want to interrupt, then freezes it with SIGSTOP, asks `isInside()` again on the frozen
 * files (so the kill provably lands there, not a moment after) and sends SIGKILL; a false alarm gets
 * SIGCONT and the poll goes on. A point too brief to catch by polling (between two stages) names an
 * `isNear()` state just before it: from there the trainer is run in slices (SIGCONT, a moment,
 * SIGSTOP) and the files checked after each. Gives up when the trainer exits or `deadlineMs` passes.
 */
export function killWhen(
  child: ChildProcess,
  isInside: () => boolean,
  deadlineMs: number,
  isNear?: () => boolean,
): KillOutcome {
  const pid = child.pid;
  if (pid === undefined) return { landed: false, why: 'the trainer did not start' };
  const started = performance.now();
  const freeze = () => {
    process.kill(pid, 'SIGSTOP');
    for (let wait = 0; wait < 500; wait++) {
      const state = processState(pid);
      if (state === 'T' || state === 't' || state === 'Z' || state === undefined) return;
      sleepSync(0.05);
    }
  };
  for (let polls = 0; performance.now() - started < deadlineMs; polls++) {
    if (polls % 64 === 0) {
      const state = processState(pid);
      if (state === undefined || state === 'Z')
        return { landed: false, why: 'the trainer finished before the chosen point was seen' };
    }
    if (safely(isInside)) {
      freeze();
      if (safely(isInside)) {
        process.kill(pid, 'SIGKILL');
        return { landed: true, atMs: performance.now() - started };
      }
      process.kill(pid, 'SIGCONT');
    } else if (isNear && safely(isNear)) {
      for (let slice = 0; slice < 20_000; slice++) {
        freeze();
        if (safely(isInside)) {
          process.kill(pid, 'SIGKILL');
          return { landed: true, atMs: performance.now() - started };
        }
        const near = safely(isNear);
        process.kill(pid, 'SIGCONT');
        if (!near) break; // stepped past the point without seeing it: back to polling (a later try may catch it)
        sleepSync(0.02);
      }
    }
    sleepSync(0.1);
  }
  return { landed: false, why: `not seen within ${deadlineMs} ms` };
}

/**
 * Polls like killWhen until `isNear()`, then leaves the trainer frozen (SIGSTOP) and returns true;
 * the caller changes the world (a smaller disk) and sends SIGCONT. False if it ended first.
 */
export function freezeWhen(child: ChildProcess, isNear: () => boolean, deadlineMs: number): boolean {
  const pid = child.pid;
  if (pid === undefined) return false;
  const started = performance.now();
  for (let polls = 0; performance.now() - started < deadlineMs; polls++) {
    if (polls % 64 === 0 && ['Z', undefined].includes(processState(pid))) return false;
    if (safely(isNear)) {
      process.kill(pid, 'SIGSTOP');
      for (let wait = 0; wait < 500 && !['T', 't', 'Z', undefined].includes(processState(pid)); wait++) sleepSync(0.05);
      return processState(pid) !== 'Z' && processState(pid) !== undefined;
    }
    sleepSync(0.1);
  }
  return false;
}

function safely(probe: () => boolean): boolean {
  try {
    return probe();
  } catch {
    return false;
  }
}

/** Every file under `dir`, as paths relative to it (folders end with "/"). */
export function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (relative: string) => {
    for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const child = path.join(relative, entry.name);
      if (entry.isDirectory()) {
        out.push(`${child}/`);
        walk(child);
      } else out.push(child);
    }
  };
  walk('');
  return out.sort();
}

/**
 * A temporary name any writer of this project uses (`.name.<pid>….tmp`, `.step-N.<pid>.tmp`), or another hidden
 * leftover.
 */
export function isTemporaryName(name: string): boolean {
  return /\.tmp$/.test(name) || /^\.[^.]/.test(name);
}

/**
 * Reads back every file of a runs folder as its reader would: every run folder has a run.json, it
 * and every *.json parse, every line of every *.jsonl parses (a torn line is unreadable too), every
 * trace decodes, every safetensors file decodes, and no temporary file or folder is left. Returns
 * one line per problem.
 */
export function unreadableFiles(runsRoot: string): string[] {
  const problems: string[] = [];
  for (const relative of listTree(runsRoot)) {
    const file = path.join(runsRoot, relative);
    const parts = relative.replace(/\/$/, '').split(path.sep);
    const name = parts.at(-1) ?? '';
    if (parts.slice(0, -1).some(isTemporaryName)) continue; // inside a temporary folder, reported once as that folder
    if (isTemporaryName(name)) {
      problems.push(`${relative}: a temporary ${relative.endsWith('/') ? 'folder' : 'file'} was left behind`);
      continue;
    }
    if (relative.endsWith('/')) {
      // A run folder is its run.json: one without it is listed by no reader and resumed by no one.
      if (parts.length === 1 && !existsSync(path.join(file, 'run.json')))
        problems.push(`${relative}: a run folder without run.json`);
      continue;
    }
    try {
      if (name.endsWith('.json')) JSON.parse(readFileSync(file, 'utf8'));
      else if (name.endsWith('.jsonl')) {
        const lines = readFileSync(file, 'utf8').split('\n');
        if (lines.at(-1) !== '') throw new Error('the last line has no newline (torn)');
        lines.slice(0, -1).forEach((line, i) => {
          try {
            JSON.parse(line);
          } catch (error) {
            throw new Error(`line ${i + 1}: ${(error as Error).message}`);
          }
        });
      } else if (name.endsWith('.arrow')) decodeTrace(new Uint8Array(readFileSync(file)));
      else if (name.endsWith('.safetensors')) decodeSafetensors(new Uint8Array(readFileSync(file)));
      else if (statSync(file).size === 0) throw new Error('empty');
    } catch (error) {
      problems.push(`${relative}: ${(error as Error).message.slice(0, 200)}`);
    }
  }
  return problems;
}

/** A JavaScript stack frame ("    at fn (file.js:1:2)") in a CLI's output: users should never see one. */
export function hasStackTrace(output: string): boolean {
  return /^\s+at .+(:\d+:\d+\)?|\(native\)|\(<anonymous>\))$/m.test(output);
}

/** Regex-safe text. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The last lines of an output, for failure messages. */
export function tail(text: string, lines = 6): string {
  return text
    .replace(/\r/g, '\n')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-lines)
    .map((line) => (line.length > 300 ? `${line.slice(0, 300)}…` : line))
    .join(' | ');
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** One case's verdict: the checks that failed, in words. */
export interface CaseOutcome {
  readonly name: string;
  readonly failures: string[];
  readonly facts: Record<string, boolean | number>;
}

/**
 * A family's tally. Each case records named facts (booleans counted as "n/total", numbers summed)
 * and its failures; `after()` prints the summary line and then every failing case with why.
 */
export class Family {
  readonly outcomes: CaseOutcome[] = [];
  private readonly started = performance.now();

  constructor(readonly name: string) {}

  record(name: string, facts: Record<string, boolean | number>, failures: string[]): CaseOutcome {
    const outcome = { name, facts, failures };
    this.outcomes.push(outcome);
    return outcome;
  }

  /** "17/20" for a boolean fact. */
  ratio(fact: string): string {
    const relevant = this.outcomes.filter((outcome) => fact in outcome.facts);
    return `${relevant.filter((outcome) => outcome.facts[fact] === true).length}/${relevant.length}`;
  }

  sum(fact: string): number {
    return this.outcomes.reduce(
      (total, outcome) => total + (typeof outcome.facts[fact] === 'number' ? (outcome.facts[fact] as number) : 0),
      0,
    );
  }

  /** The summary line, then one line per failing case; printed from the test file's `after` hook. */
  report(summary: string): string {
    const failing = this.outcomes.filter((outcome) => outcome.failures.length > 0);
    const lines = [
      `${this.name}: ${summary}  (${failing.length} failing of ${this.outcomes.length} cases, ` +
        `${((performance.now() - this.started) / 1000).toFixed(0)} s)`,
    ];
    for (const outcome of failing) lines.push(`  ✗ ${this.name}/${outcome.name}: ${outcome.failures.join('; ')}`);
    return lines.join('\n');
  }
}
