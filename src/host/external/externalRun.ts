/**
 * A run folder written by another engine (TRL, verl, NeMo-RL, an RL Logging Board folder), read as the dashboard
 * reads a native run: its header (name = the folder's name, the engine's label), metric points, the steps with
 * rollouts and each step's rows as a packed PPO trace, what the engine did not log, and the problems met while
 * reading (as `file:line: …`). `detectRunFormat` picks the importer. No `vscode`: unit tests use it as it is.
 */
import * as path from 'node:path';
import type { DashboardRunInfo, MetricPoint, NotLoggedField } from '../../shared/dashboardMessages';
import type { ImportedStep } from '../../shared/importers/convertedLines';
import { listNemoRlSteps, nemoRlFilePattern, readNemoRlStep } from '../../shared/importers/nemoRl';
import { readRlLoggingBoard, type BoardDecoded } from '../../shared/importers/rlLoggingBoard';
import { detectRunFormat } from '../../shared/importers/runFormat';
import { readTrlMetrics, trainerStateName } from '../../shared/importers/trlTrainerState';
import { listVerlSteps, readVerlStep, verlFilePattern } from '../../shared/importers/verl';
import { packPpoTrace, type PackedPpoTrace } from '../../shared/packedTrace';
import { UserError } from '../../shared/userError';
import { engineLabels, engineNotLogged, noFormatMessage, type ExternalFormat } from './engines';
import { ExternalRunWatcher, type FileRole } from './externalWatcher';
import { extraReaders as defaultReaders, type ExtraReaders, type MetricsRead } from './extraReaders';
import { scanFolder } from './folderScan';

/** A folder written to within this long is shown as running (engines write no status file). */
const runningWindowMs = 5 * 60 * 1000;

const completionsPattern = /^completions\/completions_(\d+)\.parquet$/;
const tensorboardPattern = /(^|\/)events\.out\.tfevents\./;

/** The message of any error (a UserError's names its file). */
const describe = (error: unknown) => (error as Error).message;

export class ExternalRunSource {
  /** Problems met since the caller last took them (`file:line: …`). */
  readonly problems: string[] = [];
  private board: { stamp: string; decoded: Promise<BoardDecoded> } | undefined;
  private hasMetrics = false;
  private hasSteps = false;

  private constructor(
    readonly folder: string,
    readonly format: ExternalFormat,
    private readonly readers: ExtraReaders,
  ) {}

  /**
   * The source of `folder`; a UserError naming the files each engine writes when no format matches, and one
   * saying so for a native run (run.json: open it as the lens's own run).
   */
  static async open(folder: string, readers: ExtraReaders = defaultReaders): Promise<ExternalRunSource> {
    const format = await detectRunFormat(folder);
    if (format === undefined) throw new UserError(noFormatMessage(folder));
    if (format === 'rlhf-lens') throw new UserError(`${folder} has a run.json: it opens as an rlhf-lens run`);
    return new ExternalRunSource(path.resolve(folder), format, readers);
  }

  get engine(): string {
    return engineLabels[this.format];
  }

  /** The dashboard's header for this run. */
  async runInfo(): Promise<DashboardRunInfo> {
    const files = await scanFolder(this.folder);
    const newest = Math.max(0, ...[...files.values()].map((stamp) => stamp.mtimeMs));
    const name = path.basename(this.folder);
    const why = `${this.engine} does not record it in the folder the lens reads`;
    let step: number | undefined;
    let maxSteps: number | undefined;
    if (this.format === 'trl') {
      const state = await readTrlMetrics(this.folder).catch(() => undefined);
      step = state?.globalStep;
      maxSteps = state?.maxSteps;
    }
    return {
      id: name,
      name,
      status: Date.now() - newest < runningWindowMs ? 'running' : 'completed',
      runDir: this.folder,
      stage: this.stageKind(),
      step,
      maxSteps,
      cliprange: { missing: `the cliprange (ε): ${why}` },
      maxNewTokens: { missing: `max_new_tokens: ${why}` },
      engine: this.engine,
      notLogged: this.notLogged(),
    };
  }

  /** The kind of training when the format says it: a completions dump is GRPO's; the others may be PPO or GRPO. */
  private stageKind(): string | undefined {
    return this.format === 'trl' && this.hasSteps ? 'grpo' : undefined;
  }

  /** What the engine did not log, less what this folder has after all (metrics from TensorBoard, completions). */
  notLogged(): NotLoggedField[] {
    return engineNotLogged[this.format].filter(
      (entry) => !(entry.field === 'metrics' && this.hasMetrics) && !(entry.field === 'rollouts' && this.hasSteps),
    );
  }

  /** Every metric point of the run, from the start (the caller sends them as a reset). */
  async readMetrics(): Promise<MetricPoint[]> {
    const read: MetricsRead[] = [];
    if (this.format === 'trl') {
      try {
        const state = await readTrlMetrics(this.folder);
        read.push({ points: state.points, problems: state.problems });
      } catch (error) {
        this.problems.push(describe(error));
      }
    }
    // TRL's TensorBoard callback logs what log_history holds: its scalars are read only when the state has none.
    const tensorboard = this.readers.tensorboardScalars;
    if (tensorboard && (read.length === 0 || read[0].points.length === 0)) {
      try {
        read.push(await tensorboard(this.folder));
      } catch (error) {
        this.problems.push(describe(error));
      }
    }
    for (const { problems } of read) this.problems.push(...problems);
    const points = read.flatMap((entry) => entry.points);
    this.hasMetrics = points.length > 0;
    return points;
  }

  /** The steps with rollouts, ascending. */
  async listSteps(): Promise<number[]> {
    let steps: number[] = [];
    try {
      steps = await this.stepsOfFormat();
    } catch (error) {
      this.problems.push(describe(error));
    }
    this.hasSteps = steps.length > 0;
    return steps;
  }

  private async stepsOfFormat(): Promise<number[]> {
    switch (this.format) {
      case 'trl':
        return this.readers.trlCompletions ? this.readers.trlCompletions.steps(this.folder) : [];
      case 'nemo-rl':
        return listNemoRlSteps(this.folder);
      case 'verl':
        return listVerlSteps(this.folder);
      case 'rl-logging-board':
        return (await this.readBoard()).steps;
    }
  }

  /** One step's rows; its skipped lines go to `problems`. A step without a file throws (ENOENT-like). */
  async readStep(step: number): Promise<ImportedStep> {
    let imported: ImportedStep;
    switch (this.format) {
      case 'trl': {
        const reader = this.readers.trlCompletions;
        if (!reader) throw new UserError('reading TRL completions parquet files is not available in this build');
        imported = await reader.read(this.folder, step);
        break;
      }
      case 'nemo-rl':
        imported = await readNemoRlStep(this.folder, step);
        break;
      case 'verl':
        imported = await readVerlStep(this.folder, step);
        break;
      case 'rl-logging-board': {
        const decoded = await this.readBoard();
        const table = decoded.tables.get(step);
        if (!table) throw new UserError(`no line of step ${step} in the folder's *.jsonl files`, { file: this.folder });
        imported = { table, problems: [] };
        break;
      }
    }
    this.problems.push(...imported.problems);
    return imported;
  }

  /** One step's rows packed for the heatmap, with the fields the engine did not write listed as absent. */
  async packed(step: number): Promise<PackedPpoTrace> {
    const { table } = await this.readStep(step);
    if (table.kind !== 'ppo') throw new Error(`Step ${step} of ${this.folder} is not a PPO trace.`);
    // Only ids stored: their texts from the run's tokenizer, when it has one (then `tokens` is no longer absent).
    const decode =
      !table.columns.includes('tokens') && table.columns.includes('token_ids')
        ? await this.readers.tokenTexts?.(this.folder).catch((error: Error) => void this.problems.push(error.message))
        : undefined;
    if (!decode) return packPpoTrace(step, table.numRows, (index) => table.row(index), table.columns);
    return packPpoTrace(
      step,
      table.numRows,
      (index) => {
        const row = table.row(index);
        return { ...row, tokens: decode(row.token_ids) };
      },
      [...table.columns, 'tokens'],
    );
  }

  /** An RL Logging Board folder holds many steps per file: decoded once per change of its files. */
  private async readBoard(): Promise<BoardDecoded> {
    const files = await scanFolder(this.folder);
    const stamp = [...files]
      .filter(([name]) => name.endsWith('.jsonl') && !name.includes('/'))
      .map(([name, { size, mtimeMs }]) => `${name}:${size}:${mtimeMs}`)
      .join('|');
    if (this.board?.stamp !== stamp) {
      const decoded = readRlLoggingBoard(this.folder).then((result) => {
        this.problems.push(...result.problems);
        return result;
      });
      this.board = { stamp, decoded };
      decoded.catch(() => (this.board = undefined));
    }
    return this.board.decoded;
  }

  /** What a file of this folder is to its format (the watcher's classifier). */
  roleOf(relative: string): FileRole | undefined {
    if (tensorboardPattern.test(relative)) return { kind: 'metrics' };
    const base = relative.split('/').at(-1) ?? relative;
    const atRoot = !relative.includes('/');
    switch (this.format) {
      case 'trl': {
        if (base === trainerStateName) return { kind: 'metrics' };
        const match = completionsPattern.exec(relative);
        return match ? { kind: 'step', step: Number(match[1]) } : undefined;
      }
      case 'nemo-rl': {
        const match = nemoRlFilePattern.exec(relative);
        return match && match[1] === 'train' ? { kind: 'step', step: Number(match[2]) } : undefined;
      }
      case 'verl': {
        const match = verlFilePattern.exec(relative);
        return match ? { kind: 'step', step: Number(match[1]) } : undefined;
      }
      case 'rl-logging-board':
        return atRoot && base.endsWith('.jsonl') ? { kind: 'step', step: 'all' } : undefined;
    }
  }

  /** A watcher of the folder that tells changes as this format's metrics or steps. */
  watch(debounceMs?: number, pollMs?: number): ExternalRunWatcher {
    return new ExternalRunWatcher(this.folder, (relative) => this.roleOf(relative), debounceMs, pollMs);
  }
}
