/**
 * Follows an external run folder while its engine writes: `fs.watch` on the folder reports within milliseconds
 * (a new step file, a line appended), and a modest poll of the files' sizes and times backs it up where events
 * are not delivered (network drives, files in subfolders such as `checkpoint-<n>/`). Each change is told as what
 * it touches — the metrics, or which steps — by the format's `classify`. No `vscode`: unit tests run it.
 */
import { watch, type FSWatcher } from 'node:fs';
import { Listeners } from '../listeners';
import { changedFiles, scanFolder, type FileStamp } from './folderScan';

/** What a change touched: the metrics, and the steps whose rows changed ('all': a file holding many steps). */
export interface ExternalRunChange {
  readonly metrics: boolean;
  readonly steps: readonly number[] | 'all';
}

/** What one file (path relative to the folder, `/`-separated) is to its format, or undefined when unrelated. */
export type FileRole = { readonly kind: 'metrics' } | { readonly kind: 'step'; readonly step: number | 'all' };

export class ExternalRunWatcher {
  private readonly listeners = new Listeners<ExternalRunChange>();
  private watcher: FSWatcher | undefined;
  private seen: Map<string, FileStamp> | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private scanning = Promise.resolve();
  private disposed = false;

  /**
   * @param debounceMs events of one burst (a write, then a rename) become one scan
   * @param pollMs the backup poll's period
   */
  constructor(
    readonly folder: string,
    private readonly classify: (relative: string) => FileRole | undefined,
    private readonly debounceMs = 50,
    private readonly pollMs = 1000,
  ) {
    try {
      this.watcher = watch(folder, { persistent: false }, () => this.scanSoon());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // The folder is gone or not watchable: the poll still follows it.
    }
    this.scanSoon(0);
  }

  onDidChange(listener: (change: ExternalRunChange) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Resolves after the scans queued so far (tests wait on it). */
  settled(): Promise<void> {
    return this.scanning;
  }

  private scanSoon(delay = this.debounceMs): void {
    if (this.disposed || this.scanTimer) return;
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined;
      this.scanning = this.scanning.then(() => this.scan());
    }, delay);
  }

  private async scan(): Promise<void> {
    if (this.disposed) return;
    const now = await scanFolder(this.folder);
    const before = this.seen;
    this.seen = now;
    clearTimeout(this.pollTimer);
    if (!this.disposed) this.pollTimer = setTimeout(() => this.scanSoon(0), this.pollMs);
    if (!before) return; // the first scan only records
    let metrics = false;
    const steps = new Set<number>();
    let allSteps = false;
    for (const name of changedFiles(before, now)) {
      const role = this.classify(name);
      if (role?.kind === 'metrics') metrics = true;
      else if (role?.kind === 'step') {
        if (role.step === 'all') allSteps = true;
        else steps.add(role.step);
      }
    }
    if (!metrics && !allSteps && steps.size === 0) return;
    this.listeners.fire({ metrics, steps: allSteps ? 'all' : [...steps].sort((a, b) => a - b) });
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.scanTimer);
    clearTimeout(this.pollTimer);
    this.watcher?.close();
    this.listeners.clear();
  }
}
