/**
 * A run directory, written only by its trainer (DESIGN.md, "The run directory: the contract"):
 *   run.json        resolved config, status, backend and why, versions, seed, start/end, error
 *   metrics.jsonl   one object per logged optimizer step
 *   checkpoints/    step-<n>/ folders
 * Every write goes through shared/durableWrite.ts (whole or not at all); opening a run to resume first
 * removes the temporary files and folders a killed writer left.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { parseJsonText } from '../../shared/runFiles';
import { runDirInside, sanitizeRunName } from '../../shared/runIds';
import type { RunStatus } from '../../shared/runSummary';
import {
  appendLineDurable,
  DurableWriteError,
  removeStaleTemporaries,
  syncFile,
  writeFileDurable,
  writeJsonDurable,
  createFolderDurableSync,
  FolderTakenError,
  isTemporaryName,
} from '../../shared/durableWrite';
import { checkResumableRunJson } from './runJsonCheck';
import type { SlurmRunRecord } from '../cluster/slurmJob';
import type { SweepElement } from '../../shared/sweep';

export interface RunJsonFields {
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  readonly started_at: string;
  readonly ended_at?: string;
  readonly stage: string;
  readonly stage_index: number;
  readonly seed: number;
  readonly backend?: string;
  readonly backend_reason?: string;
  /** The GPU adapter the backend computes on (vendor, architecture, description; "software adapter"). */
  readonly backend_adapter?: string;
  /** The training engine (`onnxruntime` or `tfjs`) and why it was chosen; the backend fields name tfjs's backend. */
  readonly engine?: string;
  readonly engine_reason?: string;
  readonly config: unknown;
  readonly config_file?: string;
  readonly versions: Record<string, string>;
  readonly step?: number;
  readonly max_steps?: number;
  readonly error?: string;
  readonly resumed_at?: readonly string[];
  readonly last_checkpoint?: string;
  readonly parameters?: number;
  readonly train_examples?: number;
  readonly eval_examples?: number;
  /** SFT: the eval loss of a unigram model, the floor a language model must beat. */
  readonly unigram_eval_loss?: number;
  /** Outputs of the earlier stages this stage was started with (stage name → checkpoint, preferences). */
  readonly stage_outputs?: Record<string, { checkpoint?: string; preferences?: string }>;
  /** What this stage left for later stages. */
  readonly outputs?: { checkpoint?: string; preferences?: string };
  /** Extra per-stage facts (reward model accuracy, eval scores…). */
  readonly summary?: Record<string, number>;
  /** The Slurm job that runs this stage (`rlhf-lens submit`), updated when the job is started again. */
  readonly slurm?: SlurmRunRecord;
  /** The sweep element this run is (its config has the element's settings written in). */
  readonly sweep?: SweepElement;
}

/**
 * The run.json fields a stage restarted from nothing keeps (clearForRestart), in this order: which run
 * it is and what it was started with. Everything else was written by the stage and goes with it.
 */
const fieldsKeptOnRestart = [
  'id',
  'name',
  'status',
  'started_at',
  'stage',
  'stage_index',
  'seed',
  'config',
  'config_file',
  'versions',
  'resumed_at',
  'stage_outputs',
  'slurm',
  'sweep',
] as const satisfies readonly (keyof RunJsonFields)[];

/** Longest `error` kept in run.json: the file must stay small enough to rewrite on a nearly full disk. */
const maxErrorLength = 2000;

/**
 * Room kept on the disk for recording a failure: a stage that fills the disk must still be able to
 * rewrite run.json as `failed` (a temporary copy, then a rename), so this file of zeros is written
 * when the stage starts and removed to make that room. Not a temporary name: sweeps keep it.
 */
const reserveFile = '.failure-reserve';
const reserveBytes = 64 * 1024; // run.json is a few KiB; configs are capped by the schema
const diskFullCodes = new Set(['ENOSPC', 'EDQUOT']);

function writeReserve(dir: string): void {
  writeFileDurable(path.join(dir, reserveFile), new Uint8Array(reserveBytes));
}

/**
 * A run id that sorts by time: `<name>-<stage>-<yyyymmdd-hhmmss>`, made a safe folder name by the
 * one sanitiser (runIds.ts): a name such as `../../escape` cannot leave the runs folder.
 */
export function newRunId(name: string, stage: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const prefix = sanitizeRunName(`${sanitizeRunName(name).slice(0, 80)}-${sanitizeRunName(stage).slice(0, 20)}`);
  return `${prefix}-${stamp}`;
}

export class RunDirectory {
  private fields: RunJsonFields;

  private constructor(
    readonly dir: string,
    fields: RunJsonFields,
  ) {
    this.fields = fields;
  }

  /**
   * Creates `<runsRoot>/<id>/` with its run.json, checkpoints/ and the failure reserve, whole or not
   * at all (a temporary folder renamed into place): a crash or a full disk never leaves a run folder
   * without its run.json. A taken id gets a numeric suffix.
   */
  static create(
    runsRoot: string,
    fields: Omit<RunJsonFields, 'id' | 'status' | 'started_at'> & { id: string },
  ): RunDirectory {
    mkdirSync(runsRoot, { recursive: true });
    // A taken id gets the next suffix, also when another trainer takes it between the check and the rename.
    for (let n = 1; ; n++) {
      const id = n === 1 ? fields.id : `${fields.id}-${n}`;
      const dir = runDirInside(runsRoot, id);
      if (existsSync(dir)) continue;
      const fieldsWithId: RunJsonFields = { ...fields, id, status: 'running', started_at: new Date().toISOString() };
      const writeRunFolder = (runJson: RunJsonFields, reserve: boolean) =>
        createFolderDurableSync(dir, (folder) => {
          mkdirSync(path.join(folder, 'checkpoints'));
          writeJsonDurable(path.join(folder, 'run.json'), runJson);
          if (reserve) writeReserve(folder);
        });
      try {
        writeRunFolder(fieldsWithId, true);
      } catch (error) {
        if (error instanceof FolderTakenError) continue;
        // Too full to start the stage: leave a small run folder that says so (the Runs view shows it,
        // and --resume starts the stage once there is room), then report the error.
        if (error instanceof DurableWriteError && diskFullCodes.has(error.code)) {
          try {
            writeRunFolder(
              { ...fieldsWithId, status: 'failed', ended_at: new Date().toISOString(), error: error.message },
              false,
            );
          } catch {
            // not even that fits: the error below says why
          }
        }
        throw error;
      }
      return new RunDirectory(dir, fieldsWithId);
    }
  }

  /**
   * Opens an existing run directory to resume it. run.json is checked before anything is written
   * (checkResumableRunJson): a damaged or planted file throws, naming the file and the field, and
   * stays as it was.
   */
  static open(dir: string): RunDirectory {
    if (isTemporaryName(path.basename(dir)))
      throw new Error(
        `Cannot resume ${dir}: it is a run folder that was still being created when its trainer stopped (a ` +
          `temporary name); it holds no checkpoint and the next run in ${path.dirname(dir)} removes it. Resume the ` +
          `run of the stage before it, or start the config again.`,
      );
    const file = path.join(dir, 'run.json');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(
        `Cannot resume ${dir}: ${file} cannot be read (` +
          `${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give the folder of a run, ` +
          `which holds run.json.`,
      );
    }
    // Every field of RunJsonFields present has been checked for its type; the stored config is the validated one.
    const fields = checkResumableRunJson(parseJsonText(text, file), file) as unknown as RunJsonFields;
    // Temporary files and folders of a killed writer are never read: clear them (a live writer's stay:
    // this run may be training in another process).
    removeStaleTemporaries(dir, { keepLiveOwners: true });
    return new RunDirectory(dir, fields);
  }

  get id(): string {
    return this.fields.id;
  }

  get runJson(): RunJsonFields {
    return this.fields;
  }

  get metricsFile(): string {
    return path.join(this.dir, 'metrics.jsonl');
  }

  checkpointDir(step: number): string {
    return path.join(this.dir, 'checkpoints', `step-${step}`);
  }

  update(patch: Partial<RunJsonFields>): void {
    // The reserve is for recording a failure while the stage runs; an ending stage gives it up first,
    // so no kill between the two leaves it behind (a resume writes it again).
    if (patch.status !== undefined && patch.status !== 'running')
      rmSync(path.join(this.dir, reserveFile), { force: true });
    this.fields = { ...this.fields, ...patch };
    this.writeRunJson();
  }

  /** Keeps room for the last run.json write of a resumed stage (see markFailed). */
  keepFailureReserve(): void {
    writeReserve(this.dir);
  }

  /** One whole line; a failed append is cut back off. Synced with the next run.json write. */
  appendMetrics(metrics: Record<string, number>): void {
    appendLineDurable(this.metricsFile, JSON.stringify(metrics));
  }

  /** On resume: drops metrics of steps after the checkpoint, which the resumed run writes again. */
  truncateMetricsAfter(step: number): void {
    if (!existsSync(this.metricsFile)) return;
    const kept = readFileSync(this.metricsFile, 'utf8')
      .split('\n')
      .filter((line) => {
        if (line.trim() === '') return false;
        try {
          return (JSON.parse(line) as { step?: number }).step! <= step;
        } catch {
          return false; // a line cut by a crash
        }
      });
    writeFileDurable(this.metricsFile, kept.map((line) => `${line}\n`).join(''));
  }

  /**
   * Records that the stage failed: status `failed` with the reason in `error`. Never throws: when the
   * disk is full the first write can fail, so the stage's temporary files are removed to free space and
   * the write is tried again; returns the error of that last try when even it failed.
   */
  markFailed(reason: string): Error | undefined {
    const patch = {
      status: 'failed' as const,
      ended_at: new Date().toISOString(),
      error: reason.length > maxErrorLength ? `${reason.slice(0, maxErrorLength)}…` : reason,
    };
    try {
      this.update(patch);
      return undefined;
    } catch {
      try {
        // A full disk: the stage's temporaries and the reserve kept for this write make room.
        this.removeTemporaryFiles();
        rmSync(path.join(this.dir, reserveFile), { force: true });
        this.update(patch);
        return undefined;
      } catch (error) {
        return error as Error;
      }
    }
  }

  /** Removes the temporary files of unfinished writes in this run directory (its stage is not running). */
  removeTemporaryFiles(): void {
    removeStaleTemporaries(this.dir);
  }

  /**
   * A stage killed before its first checkpoint starts again from nothing, in this directory: what it
   * wrote (metrics, traces, unfinished checkpoints) and the run.json fields it set are cleared, so the
   * files agree with the run that follows. The config and the earlier stages' outputs stay.
   */
  clearForRestart(): void {
    for (const name of ['metrics.jsonl', 'traces', 'checkpoints'])
      rmSync(path.join(this.dir, name), { recursive: true, force: true });
    this.removeTemporaryFiles();
    mkdirSync(path.join(this.dir, 'checkpoints'));
    const kept = fieldsKeptOnRestart.map((key) => [key, this.fields[key]]);
    this.fields = Object.fromEntries(kept) as Pick<RunJsonFields, (typeof fieldsKeptOnRestart)[number]>;
    this.writeRunJson();
  }

  private writeRunJson(): void {
    // Metrics lines are appended without a sync each (one per step); run.json is written at checkpoints
    // and stage ends, so syncing them first makes every line up to what run.json records durable.
    try {
      syncFile(this.metricsFile);
    } catch (error) {
      // Recording how the stage ended matters more than the metrics' last sync (a disk that fails fsync).
      if (this.fields.status === 'running') throw error;
    }
    writeJsonDurable(path.join(this.dir, 'run.json'), this.fields);
  }
}
