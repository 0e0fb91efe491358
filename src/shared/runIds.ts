/**
 * Run names and ids become folder names under the runs folder; these two functions are the only
 * way one does, so a name from a config, a planted run.json, `inspect --name` or a webview message
 * never writes, opens or deletes anything outside the runs folder.
 */
import * as path from 'node:path';

/** Longest run id; a run folder's name stays well under every file system's 255-byte limit. */
export const maxRunIdLength = 120;

/**
 * A name made safe as a folder name: letters, digits, `-`, `_` and `.` kept, anything else (`/`,
 * `\`, NUL, spaces, non-ASCII) becomes `-`; no `..`, no leading `.` or `-`, at most
 * {@link maxRunIdLength} characters; "run" when nothing is left.
 */
export function sanitizeRunName(name: string): string {
  const cleaned = String(name)
    .slice(0, maxRunIdLength * 4) // a 50 MB name costs no more than a short one
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[.-]+/, '')
    .slice(0, maxRunIdLength)
    .replace(/[.-]+$/, '');
  return cleaned === '' ? 'run' : cleaned;
}

/** Why `id` cannot name a folder directly inside a runs folder, or undefined when it can. */
export function runIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return 'a run id must be a non-empty string';
  if (id.length > 255) return `a run id has at most 255 characters, this one ${id.length}`;
  if (id.includes('\0')) return 'a run id cannot contain a NUL character';
  if (/[/\\]/.test(id) || id === '.' || id === '..' || path.isAbsolute(id))
    return `run id ${JSON.stringify(id.slice(0, 200))} is a path, not a folder name`;
  return undefined;
}

/**
 * The folder of run `id` inside `runsFolder`; throws when the id is not one folder name inside it
 * (`..`, an absolute path, a separator, NUL). Ids listed from the runs folder always pass.
 */
export function runDirInside(runsFolder: string, id: string): string {
  const problem = runIdProblem(id);
  if (problem) throw new Error(`${problem}; run ids are folder names inside the runs folder ${runsFolder}.`);
  const root = path.resolve(runsFolder);
  const dir = path.resolve(root, id);
  if (path.dirname(dir) !== root)
    throw new Error(`run id ${JSON.stringify(id.slice(0, 200))} resolves to ${dir}, outside the runs folder ${root}.`);
  return dir;
}

/** Whether `dir` is a folder directly inside `runsFolder` (what the host may delete or resume). */
export function isRunDirInside(runsFolder: string, dir: string): boolean {
  const resolved = path.resolve(dir);
  return path.dirname(resolved) === path.resolve(runsFolder) && runIdProblem(path.basename(resolved)) === undefined;
}
