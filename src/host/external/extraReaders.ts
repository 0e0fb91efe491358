/**
 * The slots where readers of other helpers' formats plug into external runs (externalRun.ts): TensorBoard event
 * files (scalars → metric points) and TRL's completions parquet (one step's rows → a trace table). Each is a plain
 * function over a folder, so the source needs no knowledge of the file formats; `extraReaders` is what the
 * extension uses, and tests pass their own.
 */
import type { MetricPoint } from '../../shared/dashboardMessages';
import type { ImportedStep } from '../../shared/importers/convertedLines';

/** Metric points read from a folder, and the problems (`file:offset: …`) of what was skipped. */
export interface MetricsRead {
  readonly points: MetricPoint[];
  readonly problems: string[];
}

/** Reads every TensorBoard scalar under `folder` (its `events.out.tfevents.*` files) as metric points by step. */
export type TensorboardScalarsReader = (folder: string) => Promise<MetricsRead>;

/** TRL's `<output_dir>/completions/completions_<step>.parquet` files (GRPOTrainer with `log_completions=True`). */
export interface TrlCompletionsReader {
  /** The steps that have a completions file under `outputDir`, ascending. */
  readonly steps: (outputDir: string) => Promise<number[]>;
  /** One step's completions as a PPO trace table (and the rows skipped, as problems). */
  readonly read: (outputDir: string, step: number) => Promise<ImportedStep>;
}

/**
 * The text of each token id with the run's tokenizer (`tokenizer.json` in `folder` or the folder above it), or
 * undefined when the run has none: a trace that stores only ids (NeMo-RL's dumps) then shows the texts.
 */
export type TokenTextsReader = (folder: string) => Promise<((ids: readonly number[]) => string[]) | undefined>;

export interface ExtraReaders {
  tensorboardScalars?: TensorboardScalarsReader;
  trlCompletions?: TrlCompletionsReader;
  tokenTexts?: TokenTextsReader;
}

/**
 * The readers the extension uses. Empty until the TensorBoard and completions readers are wired in here
 * (`extraReaders.tensorboardScalars = readTensorboardScalars`, `extraReaders.trlCompletions = { … }`,
 * `extraReaders.tokenTexts = …`).
 */
export const extraReaders: ExtraReaders = {};
