/**
 * Where the run folders of other engines come from: the `rlhf.externalRuns` setting (absolute paths, or relative to
 * the first workspace folder; `~` is the home folder — no other assumption, so a path on a cluster's login node
 * works over Remote-SSH as typed) and the folders opened with Open Run Folder…. No `vscode`: unit tests use it.
 */
import * as path from 'node:path';

export type ExternalFolderOrigin = 'setting' | 'opened';

export interface ExternalFolder {
  readonly folder: string;
  readonly origin: ExternalFolderOrigin;
}

/**
 * One `rlhf.externalRuns` entry as an absolute path; undefined for an empty entry, or a relative one without a
 * workspace folder to resolve it against (then `problem` says so).
 */
export function resolveRunFolder(
  entry: string,
  workspaceFolder: string | undefined,
  home: string,
): { folder: string } | { problem: string } | undefined {
  const trimmed = entry.trim();
  if (trimmed === '') return undefined;
  const expanded = trimmed === '~' ? home : /^~[\\/]/.test(trimmed) ? path.join(home, trimmed.slice(2)) : trimmed;
  if (path.isAbsolute(expanded)) return { folder: path.resolve(expanded) };
  if (workspaceFolder === undefined)
    return { problem: `rlhf.externalRuns: "${entry}" is relative, and no workspace folder is open to resolve it` };
  return { folder: path.resolve(workspaceFolder, expanded) };
}

/** The setting's folders, then the opened ones not already listed (each folder once). */
export function externalFolders(
  settingEntries: readonly unknown[],
  opened: readonly string[],
  workspaceFolder: string | undefined,
  home: string,
): { folders: ExternalFolder[]; problems: string[] } {
  const folders: ExternalFolder[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  const add = (folder: string, origin: ExternalFolderOrigin) => {
    if (seen.has(folder)) return;
    seen.add(folder);
    folders.push({ folder, origin });
  };
  for (const entry of settingEntries) {
    if (typeof entry !== 'string') {
      problems.push(`rlhf.externalRuns: ${JSON.stringify(entry)} is not a path (a string)`);
      continue;
    }
    const resolved = resolveRunFolder(entry, workspaceFolder, home);
    if (resolved && 'folder' in resolved) add(resolved.folder, 'setting');
    else if (resolved) problems.push(resolved.problem);
  }
  for (const folder of opened) add(path.resolve(folder), 'opened');
  return { folders, problems };
}
