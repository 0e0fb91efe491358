/**
 * The extension's settings (`rlhf.*` in package.json): the backend and engine a config's "auto" means, how many
 * runs may train at once, and where runs are written. Read on use, so a change applies to the next
 * run without a reload.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { backendNames, engineNames, type BackendName, type EngineName } from '../shared/backendNames';
import { defaultRunsFolder } from '../shared/runsFolder';

export type BackendSetting = 'auto' | BackendName;

export function defaultBackend(): BackendSetting {
  const value = vscode.workspace.getConfiguration('rlhf').get<string>('defaultBackend', 'auto');
  return (backendNames as readonly string[]).includes(value) ? (value as BackendName) : 'auto';
}

export type EngineSetting = 'auto' | EngineName;

export function defaultEngine(): EngineSetting {
  const value = vscode.workspace.getConfiguration('rlhf').get<string>('defaultEngine', 'auto');
  return (engineNames as readonly string[]).includes(value) ? (value as EngineName) : 'auto';
}

export function maxConcurrentRuns(): number {
  const value = vscode.workspace.getConfiguration('rlhf').get<number>('maxConcurrentRuns', 2);
  return Number.isInteger(value) && value >= 1 ? value : 2;
}

/**
 * The runs folder of `root` from `rlhf.runsFolder` (relative to the workspace folder). A value that
 * points outside the workspace falls back to `.rlhf/runs`: trainers write only inside it.
 */
export function runsFolderOf(root: string): { folder: string; problem?: string } {
  const setting =
    vscode.workspace
      .getConfiguration('rlhf', vscode.Uri.file(root))
      .get<string>('runsFolder', defaultRunsFolder)
      .trim() || defaultRunsFolder;
  const folder = path.resolve(root, setting);
  const relative = path.relative(root, folder);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    return {
      folder: path.join(root, defaultRunsFolder),
      problem: `rlhf.runsFolder "${setting}" is not a folder inside the workspace; using ${defaultRunsFolder}.`,
    };
  }
  return { folder };
}
