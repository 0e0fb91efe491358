/**
 * RLHF: Open Run Folder… (`rlhf.openRunFolder`): a folder of another engine opens in the dashboard as a run (and is
 * listed in the Runs view from then on); a folder with run.json opens as the lens's own run; a folder that matches
 * no format is an error naming the files each engine writes. Its optional argument (a path, a Uri or a Runs view
 * item with `folder`) skips the dialog. `rlhf.forgetRunFolder` takes an opened folder off the Runs view.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { detectRunFormat } from '../../shared/importers/runFormat';
import { DashboardPanel } from '../dashboardPanel';
import type { WorkspaceRuns } from '../workspaceRuns';
import { noFormatMessage } from './engines';
import { ExternalRunSource } from './externalRun';
import type { ExternalRunList } from './externalRunList';

export const openRunFolderCommand = 'rlhf.openRunFolder';
export const forgetRunFolderCommand = 'rlhf.forgetRunFolder';

/** A folder path from a command argument (a path, a Uri, a Runs view item), if any. */
function folderOf(target: unknown): string | undefined {
  if (typeof target === 'string' && target.length > 0) return path.resolve(target);
  if (target instanceof vscode.Uri) return target.fsPath;
  if (typeof target === 'object' && target !== null) {
    const folder = (target as { folder?: unknown }).folder;
    if (typeof folder === 'string' && folder.length > 0) return folder;
  }
  return undefined;
}

export interface ExternalCommandContext {
  readonly extensionUri: vscode.Uri;
  readonly runs: WorkspaceRuns;
  readonly list: ExternalRunList;
  readonly log: vscode.LogOutputChannel;
  /** Shows an error (and keeps its text for the tests). */
  readonly showError: (message: string) => void;
}

export function registerExternalCommands(context: ExternalCommandContext): vscode.Disposable[] {
  const { extensionUri, runs, list, log, showError } = context;
  const open = async (target?: unknown): Promise<DashboardPanel | undefined> => {
    let folder = folderOf(target);
    if (!folder) {
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        canSelectMany: false,
        openLabel: 'Open Run Folder',
        title: 'A run folder of TRL, verl, NeMo-RL, an RL Logging Board or rlhf-lens',
        defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
      });
      folder = picked?.[0]?.fsPath;
      if (!folder) return undefined;
    }
    const format = await detectRunFormat(folder);
    if (format === undefined) {
      showError(noFormatMessage(folder));
      return undefined;
    }
    // Listed in the Runs view from now on (a folder the setting lists is shown once).
    await list.remember(folder);
    if (format === 'rlhf-lens') return DashboardPanel.show(extensionUri, runs, log, folder);
    try {
      const source = await ExternalRunSource.open(folder);
      return DashboardPanel.show(extensionUri, runs, log, folder, source);
    } catch (error) {
      showError((error as Error).message);
      return undefined;
    }
  };
  return [
    vscode.commands.registerCommand(openRunFolderCommand, open),
    vscode.commands.registerCommand(forgetRunFolderCommand, async (target?: unknown) => {
      const folder = folderOf(target);
      if (folder) await list.forget(folder);
    }),
  ];
}
