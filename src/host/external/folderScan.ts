/**
 * The files of an external run folder, with sizes and times: what the watcher compares between polls and what
 * tells which step a change touched. Only a few levels deep (an engine's files sit in the folder, its
 * `checkpoint-<n>/`, `completions/` or a TensorBoard `runs/<name>/` folder), never into model weights' contents.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** How deep the scan goes: `runs/<date_host>/events.out.tfevents.*` is two folders down. */
const scanDepth = 3;
/** A folder with more entries than this is not an engine's log folder (a dataset, a cache): it is not listed. */
const maxEntriesPerFolder = 5000;

export interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
}

/** Files under `folder` by path relative to it (with `/` separators). */
export async function scanFolder(folder: string): Promise<Map<string, FileStamp>> {
  const files = new Map<string, FileStamp>();
  const visit = async (relative: string, depth: number): Promise<void> => {
    const entries = await fs.readdir(path.join(folder, relative), { withFileTypes: true }).catch(() => []);
    if (entries.length > maxEntriesPerFolder) return;
    for (const entry of entries) {
      const name = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (depth + 1 < scanDepth) await visit(name, depth + 1);
      } else if (entry.isFile()) {
        const stat = await fs.stat(path.join(folder, name)).catch(() => undefined);
        if (stat) files.set(name, { size: stat.size, mtimeMs: stat.mtimeMs });
      }
    }
  };
  await visit('', 0);
  return files;
}

/** The paths whose stamp differs between two scans (added, removed or rewritten). */
export function changedFiles(before: ReadonlyMap<string, FileStamp>, after: ReadonlyMap<string, FileStamp>): string[] {
  const changed: string[] = [];
  for (const [name, stamp] of after) {
    const old = before.get(name);
    if (!old || old.size !== stamp.size || old.mtimeMs !== stamp.mtimeMs) changed.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) changed.push(name);
  return changed;
}
