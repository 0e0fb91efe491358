/**
 * The run folders of other engines the Runs view lists: the `rlhf.externalRuns` setting's and the ones opened with
 * Open Run Folder… (remembered in workspaceState), each with the engine that wrote it or why it cannot be read.
 */
import { homedir } from 'node:os';
import * as vscode from 'vscode';
import { detectRunFormat } from '../../shared/importers/runFormat';
import { engineLabels, noFormatMessage } from './engines';
import { externalFolders, type ExternalFolderOrigin } from './externalFolders';

export const externalRunsSetting = 'rlhf.externalRuns';
/** workspaceState key of the folders opened with Open Run Folder…. */
const openedKey = 'rlhf.openedRunFolders';
/**
 * How often the listed folders are checked again: a folder named in the setting before its engine wrote anything
 * shows up as a run once the first files are there.
 */
const recheckMs = 5000;

export interface ExternalRunItem {
  readonly folder: string;
  readonly origin: ExternalFolderOrigin;
  /** The engine's label, when a format matched. */
  readonly engine?: string;
  /** Why the folder cannot be shown (missing, no format matched). */
  readonly problem?: string;
}

export class ExternalRunList implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  /** The last listing's folders and engines, to tell when a recheck found something new. */
  private signature = '';
  private readonly recheck: NodeJS.Timeout;

  constructor(private readonly state: vscode.Memento) {
    this.subscriptions = [
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration(externalRunsSetting)) this.changed.fire();
      }),
    ];
    this.recheck = setInterval(() => {
      const before = this.signature;
      void this.list().then(() => {
        if (this.signature !== before) this.changed.fire();
      });
    }, recheckMs);
  }

  private get opened(): string[] {
    return this.state.get<string[]>(openedKey, []);
  }

  /** Adds a folder opened with Open Run Folder… to the Runs view (kept for this workspace). */
  async remember(folder: string): Promise<void> {
    if (this.opened.includes(folder)) return;
    await this.state.update(openedKey, [...this.opened, folder]);
    this.changed.fire();
  }

  /** Removes a folder opened with Open Run Folder… from the Runs view. */
  async forget(folder: string): Promise<void> {
    await this.state.update(
      openedKey,
      this.opened.filter((item) => item !== folder),
    );
    this.changed.fire();
  }

  /** Every listed folder with its engine, or the problem that keeps it from being shown. */
  async list(): Promise<ExternalRunItem[]> {
    const entries = vscode.workspace.getConfiguration().get<unknown[]>(externalRunsSetting, []);
    const workspaceFolder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const { folders, problems } = externalFolders(
      Array.isArray(entries) ? entries : [entries],
      this.opened,
      workspaceFolder,
      homedir(),
    );
    const items = await Promise.all(
      folders.map(async ({ folder, origin }): Promise<ExternalRunItem> => {
        const format = await detectRunFormat(folder);
        return format === undefined
          ? { folder, origin, problem: noFormatMessage(folder) }
          : { folder, origin, engine: engineLabels[format] };
      }),
    );
    const all: ExternalRunItem[] = [
      ...items,
      ...problems.map((problem) => ({ folder: '', origin: 'setting' as const, problem })),
    ];
    this.signature = all.map((item) => `${item.folder}:${item.engine ?? item.problem}`).join('|');
    return all;
  }

  /** Tells the Runs view to list again (an engine wrote a folder's first files). */
  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    clearInterval(this.recheck);
    for (const subscription of this.subscriptions) subscription.dispose();
    this.changed.dispose();
  }
}
