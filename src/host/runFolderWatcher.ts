/**
 * Watches one run directory for what its trainer writes: metrics.jsonl lines, run.json rewrites and
 * new or rewritten trace files (`traces/step-<n>.arrow`, `.jsonl`, `.jsonl.gz`, and their
 * `.rank-<r>` shards). Node's `fs.watch` (inotify on Linux) reports within milliseconds; a slow poll
 * of the files' sizes and times backs it up where file events are not delivered (network drives, a
 * `traces/` folder created after the watch began). No `vscode`, so the unit tests check the latency
 * against a real file.
 */
import { watch, type FSWatcher, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Listeners } from './listeners';
import { parseTraceFileName } from './runData';

export type RunFolderChange = 'metrics' | 'run' | 'traces';

export class RunFolderWatcher {
  private readonly listeners = new Listeners<RunFolderChange>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly pending = new Set<RunFolderChange>();
  private flushTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private lastSeen = new Map<string, string>();
  private disposed = false;

  /**
   * @param debounceMs events of one burst (an atomic write is a create and a rename) become one change
   * @param pollMs the backup poll's period
   */
  constructor(
    readonly runDir: string,
    private readonly debounceMs = 50,
    private readonly pollMs = 1000,
  ) {
    this.watchFolder(runDir);
    this.watchFolder(path.join(runDir, 'traces'));
    void this.poll(true);
  }

  onDidChange(listener: (change: RunFolderChange) => void): () => void {
    return this.listeners.add(listener);
  }

  private watchFolder(folder: string): void {
    if (this.disposed || this.watchers.has(folder)) return;
    try {
      const watcher = watch(folder, { persistent: false }, (_event, name) =>
        this.onEvent(folder, name?.toString() ?? ''),
      );
      watcher.on('error', () => {
        watcher.close();
        this.watchers.delete(folder);
      });
      this.watchers.set(folder, watcher);
    } catch {
      // The folder does not exist yet (traces/ before the first step): the poll picks it up.
    }
  }

  private onEvent(folder: string, name: string): void {
    if (folder === this.runDir) {
      if (name === 'metrics.jsonl') this.queue('metrics');
      else if (name === 'run.json') this.queue('run');
      else if (name === 'traces') {
        this.watchFolder(path.join(this.runDir, 'traces'));
        this.queue('traces');
      }
    } else if (parseTraceFileName(name)) {
      this.queue('traces');
    }
  }

  private queue(change: RunFolderChange): void {
    this.pending.add(change);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const changes = [...this.pending];
      this.pending.clear();
      for (const item of changes) this.listeners.fire(item);
    }, this.debounceMs);
  }

  /** Compares sizes and times with the last poll; the first poll only records them. */
  private async poll(first = false): Promise<void> {
    if (this.disposed) return;
    const stamp = async (file: string) => {
      try {
        const stat = await fs.stat(file);
        return `${stat.size}:${stat.mtimeMs}`;
      } catch {
        return 'missing';
      }
    };
    const traces = path.join(this.runDir, 'traces');
    const checks: [string, RunFolderChange][] = [
      [path.join(this.runDir, 'metrics.jsonl'), 'metrics'],
      [path.join(this.runDir, 'run.json'), 'run'],
      [traces, 'traces'],
    ];
    for (const [file, change] of checks) {
      const now = await stamp(file);
      if (!first && this.lastSeen.get(file) !== now) this.queue(change);
      this.lastSeen.set(file, now);
    }
    if (!this.watchers.has(traces)) this.watchFolder(traces);
    if (!this.disposed) this.pollTimer = setTimeout(() => void this.poll(), this.pollMs);
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.pollTimer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.listeners.clear();
  }
}
