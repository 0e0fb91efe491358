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
import { readTensorboardScalars, type TensorboardReadState } from '../../shared/importers/tensorboard';
import {
  fillTokenTexts,
  findTokenizerJson,
  loadTokenTextDecoder,
  type TokenTextDecoder,
} from '../../shared/importers/tokenIdsToTexts';
import { listTrlCompletionSteps, readTrlCompletionsStep, trlRewardNames } from '../../shared/importers/trlCompletions';
import { readTrlMetrics, trainerStateName, trlStateFiles } from '../../shared/importers/trlTrainerState';
import { listVerlSteps, readVerlStep, verlFilePattern } from '../../shared/importers/verl';
import { packPpoTrace, type PackedPpoTrace } from '../../shared/packedTrace';
import { UserError } from '../../shared/userError';
import { engineLabels, engineNotLogged, noFormatMessage, type ExternalFormat } from './engines';
import { ExternalRunWatcher, type FileRole } from './externalWatcher';
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
  /** TensorBoard problems already given to the caller (the reader repeats them on every poll). */
  private readonly reported = new Set<string>();
  private hasSteps = false;
  /** How far each TensorBoard event file has been read: a live run's files are read only where they grew. */
  private readonly tensorboard: TensorboardReadState = { files: new Map() };
  /** TRL's reward functions, from `rewards/<name>/mean` in log_history: they name the parquet's reward columns. */
  private rewardNames: string[] | undefined;
  /** The run's tokenizer, loaded once, for traces that store only token ids (undefined: not looked for yet). */
  private tokenizer: { file?: string; decoder?: Promise<TokenTextDecoder> } | undefined;

  private constructor(
    readonly folder: string,
    readonly format: ExternalFormat,
  ) {}

  /**
   * The source of `folder`; a UserError naming the files each engine writes when no format matches, and one
   * saying so for a native run (run.json: open it as the lens's own run).
   */
  static async open(folder: string): Promise<ExternalRunSource> {
    const format = await detectRunFormat(folder);
    if (format === undefined) throw new UserError(noFormatMessage(folder));
    if (format === 'rlhf-lens') throw new UserError(`${folder} has a run.json: it opens as an rlhf-lens run`);
    return new ExternalRunSource(path.resolve(folder), format);
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
    let points: MetricPoint[] = [];
    // Before its first checkpoint a TRL run has no trainer_state.json yet: not a problem, its scalars are below.
    if (this.format === 'trl') {
      try {
        if ((await trlStateFiles(this.folder)).length > 0) {
          const state = await readTrlMetrics(this.folder);
          this.problems.push(...state.problems);
          points = state.points;
        }
      } catch (error) {
        this.problems.push(describe(error));
      }
    }
    // TRL's TensorBoard callback logs what log_history holds, live (a trainer_state.json is written only with each
    // checkpoint): the scalars are read when they go further than the state, and for any engine that writes them.
    try {
      const scalars = await readTensorboardScalars(this.folder, this.tensorboard);
      const lastStateStep = points.at(-1)?.step ?? -1;
      const lastScalarStep = scalars.points.at(-1)?.step ?? -1;
      if (lastScalarStep > lastStateStep) points = [...scalars.points];
      // Each call reports every problem so far: only the new ones are the caller's news.
      for (const problem of scalars.problems) if (!this.reported.has(problem)) this.problems.push(problem);
      for (const problem of scalars.problems) this.reported.add(problem);
    } catch (error) {
      this.problems.push(describe(error));
    }
    if (this.format === 'trl') this.rewardNames = trlRewardNames(points.flatMap((point) => Object.keys(point)));
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
        return listTrlCompletionSteps(this.folder);
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
      case 'trl':
        if (this.rewardNames === undefined) await this.readMetrics();
        imported = await readTrlCompletionsStep(this.folder, step, { rewardNames: this.rewardNames });
        break;
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
    let imported = await this.readStep(step);
    // Only ids stored: their texts from the run's tokenizer.json, when it has one (then `tokens` is not absent).
    if (!imported.table.columns.includes('tokens') && imported.table.columns.includes('token_ids')) {
      const decoder = await this.tokenDecoder();
      if (decoder) {
        imported = fillTokenTexts(imported, decoder);
        this.problems.push(...imported.problems.filter((problem) => problem.startsWith(decoder.file)));
      }
    }
    const { table } = imported;
    if (table.kind !== 'ppo') throw new Error(`Step ${step} of ${this.folder} is not a PPO trace.`);
    return packPpoTrace(step, table.numRows, (index) => table.row(index), table.columns);
  }

  /** The run's tokenizer (found once: the folder, `tokenizer/`, the newest checkpoint), or undefined. */
  private async tokenDecoder(): Promise<TokenTextDecoder | undefined> {
    if (this.tokenizer === undefined) {
      const file = await findTokenizerJson(this.folder);
      this.tokenizer = { file, decoder: file === undefined ? undefined : loadTokenTextDecoder(file) };
    }
    try {
      return await this.tokenizer.decoder;
    } catch (error) {
      // Said once; the ids stay shown as ids.
      this.problems.push(`${describe(error)}; token ids are shown as ids`);
      this.tokenizer = { file: this.tokenizer.file };
      return undefined;
    }
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
