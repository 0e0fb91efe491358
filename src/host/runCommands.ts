/**
 * The commands that author and manage runs: New Run (from a template), Start, Stop, Resume,
 * Validate, and the Runs view's context menu (open dashboard, reveal config, delete). Commands take
 * what their menus pass (a file URI, a Runs view item) or, from the palette, ask.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { writeFileDurable } from '../shared/durableWrite';
import { maxNameLength } from '../shared/runConfig';
import { isRunDirInside } from '../shared/runIds';
import { pathKind, readTextFile } from '../shared/configFile';
import { hfTokenizerFile, readHfModelFolder, type HfModelFolderSummary } from '../shared/hfModelFolder';
import {
  modelRunTemplates,
  renderModelTemplate,
  renderTemplate,
  runNamePattern,
  runTemplates,
  type ModelRunTemplate,
  type RunTemplate,
} from '../shared/runTemplates';
import { checkDocument } from './configDiagnostics';
import type { ConfigDiagnostics } from './configDiagnostics';
import type { RunController } from './runController';
import type { RunsTreeItem, RunsTreeProvider } from './runsTreeProvider';
import type { WorkspaceRuns } from './workspaceRuns';

type RunItem = Extract<RunsTreeItem, { kind: 'run' }>;

/** Arguments for running New Run without its prompts (automation and tests). */
export interface NewRunArguments {
  readonly template: RunTemplate['id'] | ModelRunTemplate['id'];
  readonly name: string;
  /** The Hugging Face model folder of an "on my model" template (absolute, or relative to the workspace folder). */
  readonly modelFolder?: string;
}

export interface RunCommandsContext {
  readonly controller: RunController;
  readonly runs: WorkspaceRuns;
  readonly tree: RunsTreeProvider;
  readonly diagnostics: ConfigDiagnostics;
  readonly log: vscode.LogOutputChannel;
}

/** A run directory from what a command got: a Runs view item, a path, or nothing (ask). */
async function runDirOf(
  context: RunCommandsContext,
  argument: unknown,
  placeHolder: string,
  filter: (item: RunItem) => boolean,
): Promise<string | undefined> {
  if (typeof argument === 'string') return argument;
  if (argument instanceof vscode.Uri) return argument.fsPath;
  if (typeof argument === 'object' && argument !== null && (argument as RunsTreeItem).kind === 'run')
    return (argument as RunItem).runDir;
  // A Slurm job's item once its trainer wrote a run folder.
  const clusterRun = (argument as { kind?: unknown; element?: { run?: { runDir: string } } } | null)?.element?.run;
  if ((argument as RunsTreeItem | null)?.kind === 'slurmJob' && clusterRun) return clusterRun.runDir;
  await context.tree.getChildren();
  const candidates = context.tree.items.filter((item): item is RunItem => item.kind === 'run' && filter(item));
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(`No run to pick: ${placeHolder.toLowerCase()}.`);
    return undefined;
  }
  if (candidates.length === 1) return candidates[0].runDir;
  const picked = await vscode.window.showQuickPick(
    candidates.map((item) => ({
      label: item.run.name,
      description: item.run.id,
      detail: `${item.run.status}${item.details.step !== undefined ? ` at step ${item.details.step}` : ''}`,
      runDir: item.runDir,
    })),
    { placeHolder },
  );
  return picked?.runDir;
}

/** The active editor's run config, or one picked from the workspace's `*.rlhf.json` files. */
async function pickConfigFile(): Promise<string | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === 'file' && active.fsPath.endsWith('.rlhf.json')) return active.fsPath;
  const files = await vscode.workspace.findFiles('**/*.rlhf.json', '**/node_modules/**', 200);
  if (files.length === 0) {
    void vscode.window.showInformationMessage(
      'No *.rlhf.json run config in this workspace. Make one with "RLHF: New Run".',
    );
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    files.map((file) => ({ label: vscode.workspace.asRelativePath(file), file })),
    { placeHolder: 'Run config to start' },
  );
  return picked?.file.fsPath;
}

type TemplateId = RunTemplate['id'] | ModelRunTemplate['id'];
const isModelTemplate = (id: TemplateId): id is ModelRunTemplate['id'] =>
  modelRunTemplates.some((template) => template.id === id);

async function pickTemplate(): Promise<TemplateId | undefined> {
  const item = (t: RunTemplate | ModelRunTemplate) => ({ label: t.label, detail: t.detail, id: t.id });
  const picked = await vscode.window.showQuickPick<vscode.QuickPickItem & { id?: TemplateId }>(
    [
      ...runTemplates.map(item),
      { label: 'Start from your own model', kind: vscode.QuickPickItemKind.Separator },
      ...modelRunTemplates.map(item),
    ],
    { placeHolder: 'Template of the new run', matchOnDetail: true },
  );
  return picked?.id;
}

/** The model folder of an "on my model" template, checked as the config checks will check it; undefined: none. */
async function pickModelFolder(
  root: string,
  given?: string,
): Promise<{ folder: string; summary: HfModelFolderSummary } | undefined> {
  let folder = given === undefined ? undefined : path.resolve(root, given);
  if (folder === undefined) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      defaultUri: vscode.Uri.file(root),
      openLabel: 'Use This Model Folder',
      title: 'RLHF: New Run — your Hugging Face model folder (config.json, model.safetensors, tokenizer.json)',
    });
    folder = picked?.[0]?.fsPath;
  }
  if (folder === undefined) return undefined;
  const read =
    pathKind(folder) === 'folder'
      ? readHfModelFolder(folder, { readText: readTextFile, isFile: (file) => pathKind(file) === 'file' })
      : { problem: 'it is not a folder' };
  const problem =
    'problem' in read
      ? read.problem
      : read.summary.hasTokenizer
        ? undefined
        : `it has no ${hfTokenizerFile}; the lens needs the model's own tokenizer`;
  if (problem !== undefined || !('summary' in read)) {
    void vscode.window.showErrorMessage(`${folder} cannot start a run: ${problem}`);
    return undefined;
  }
  return { folder, summary: read.summary };
}

/** The folder as a config in `root` names it: relative, with "/" on every platform (absolute on another drive). */
function folderAsWritten(root: string, folder: string): string {
  const relative = path.relative(root, folder);
  if (relative === '') return '.';
  return path.isAbsolute(relative) ? folder : relative.split(path.sep).join('/');
}

/**
 * New Run: pick a template (and, for "on my model", the model folder), name the run, get `<name>.rlhf.json` in the
 * workspace, opened.
 */
async function newRun(args?: NewRunArguments): Promise<vscode.Uri | undefined> {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!root) {
    void vscode.window.showErrorMessage('Open a folder first: a run config is written into it.');
    return undefined;
  }
  const template = args?.template ?? (await pickTemplate());
  if (!template) return undefined;
  const model = isModelTemplate(template) ? await pickModelFolder(root, args?.modelFolder) : undefined;
  if (isModelTemplate(template) && model === undefined) return undefined;
  const fileOf = (name: string) => path.join(root, `${name}.rlhf.json`);
  const name =
    args?.name ??
    (await vscode.window.showInputBox({
      title: 'RLHF: New Run',
      prompt:
        'Name of the run (letters, digits, ".", "_" and "-"); the ' +
        'config is written to <name>.rlhf.json in the workspace folder',
      value: template === 'demo-pipeline' ? 'demo' : `my-${template}`,
      validateInput: (value) =>
        !runNamePattern.test(value)
          ? `Use up to ${maxNameLength} letters, digits, ".", "_" and "-", starting with a letter or digit.`
          : existsSync(fileOf(value))
            ? `${value}.rlhf.json exists already; pick another name.`
            : undefined,
    }));
  if (!name) return undefined;
  const file = fileOf(name);
  if (existsSync(file)) {
    void vscode.window.showErrorMessage(`${path.basename(file)} exists already; pick another name.`);
    return undefined;
  }
  const text =
    isModelTemplate(template) && model !== undefined
      ? renderModelTemplate(template, name, folderAsWritten(root, model.folder), model.summary.maxPositions)
      : renderTemplate(template as RunTemplate['id'], name);
  writeFileDurable(file, text);
  const uri = vscode.Uri.file(file);
  await vscode.window.showTextDocument(uri);
  return uri;
}

async function validate(context: RunCommandsContext, uri?: vscode.Uri): Promise<boolean> {
  const target = uri ?? vscode.window.activeTextEditor?.document.uri;
  if (!target || !target.fsPath.endsWith('.rlhf.json')) {
    void vscode.window.showInformationMessage('Open a *.rlhf.json run config to validate it.');
    return false;
  }
  const document = await vscode.workspace.openTextDocument(target);
  context.diagnostics.update(document);
  const { config, problems } = checkDocument(document);
  const errors = problems.filter((problem) => problem.severity === 'error');
  const warnings = problems.length - errors.length;
  const name = path.basename(target.fsPath);
  if (config) {
    const stages = config.stages.map((stage) => stage.name ?? stage.type).join(' → ');
    void vscode.window.showInformationMessage(
      `${name} is valid: ` +
        `${stages}${warnings > 0 ? ` (${warnings} warning${warnings === 1 ? '' : 's'} in the Problems panel)` : ''}.`,
    );
    return true;
  }
  const first = errors[0];
  void vscode.window
    .showErrorMessage(
      `${name} has ${errors.length} error${errors.length === 1 ? '' : 's'}; the first, line ${first.line}: ` +
        `${first.message}`,
      'Show Problems',
    )
    .then((choice) => choice && vscode.commands.executeCommand('workbench.actions.view.problems'));
  return false;
}

async function deleteRun(context: RunCommandsContext, argument: unknown): Promise<boolean> {
  const runDir = await runDirOf(context, argument, 'Run to delete', (item) => !item.activeHere);
  if (!runDir) return false;
  const runId = path.basename(runDir);
  if (context.controller.activeRun(runId)) {
    void vscode.window.showWarningMessage(`Run ${runId} is training; stop it before deleting it.`);
    return false;
  }
  // Only a folder directly inside the runs folder is ever removed.
  const folder = context.runs.folder;
  if (!folder || !isRunDirInside(folder, runDir)) {
    void vscode.window.showErrorMessage(`${runDir} is not a run in this workspace's runs folder; nothing was deleted.`);
    return false;
  }
  const choice = await vscode.window.showWarningMessage(
    `Delete run ${runId}?`,
    {
      modal: true,
      detail:
        `Its folder ${vscode.workspace.asRelativePath(runDir)} — run.json, metrics, traces and checkpoints — is ` +
        `removed. This cannot be undone.`,
    },
    'Delete',
  );
  if (choice !== 'Delete') return false;
  await fs.rm(runDir, { recursive: true, force: true });
  context.log.info(`deleted run ${runId} (${runDir})`);
  context.runs.refresh();
  return true;
}

export function registerRunCommands(context: RunCommandsContext): vscode.Disposable[] {
  const { controller } = context;
  return [
    vscode.commands.registerCommand('rlhf.newRun', (args?: NewRunArguments) => newRun(args)),
    vscode.commands.registerCommand('rlhf.startRun', async (uri?: vscode.Uri) => {
      const configFile = uri instanceof vscode.Uri ? uri.fsPath : await pickConfigFile();
      if (!configFile) return undefined;
      // Unsaved edits are what the user sees and what the diagnostics checked: train those.
      const open = vscode.workspace.textDocuments.find((document) => document.uri.fsPath === configFile);
      if (open?.isDirty) await open.save();
      const trainer = await controller.start(configFile);
      return trainer?.pid;
    }),
    vscode.commands.registerCommand('rlhf.validateConfig', (uri?: vscode.Uri) => validate(context, uri)),
    vscode.commands.registerCommand('rlhf.stopRun', async (argument?: unknown) => {
      if (controller.running === 0) {
        void vscode.window.showInformationMessage('No RLHF run is training in this window.');
        return false;
      }
      const runDir = await runDirOf(context, argument, 'Run to stop', (item) => item.activeHere);
      return runDir ? controller.stop(path.basename(runDir)) : false;
    }),
    vscode.commands.registerCommand('rlhf.resumeRun', async (argument?: unknown) => {
      const runDir = await runDirOf(
        context,
        argument,
        'Run to resume',
        (item) => !item.activeHere && item.run.status !== 'completed',
      );
      const trainer = runDir ? await controller.resume(runDir) : undefined;
      return trainer?.pid;
    }),
    vscode.commands.registerCommand('rlhf.deleteRun', (argument?: unknown) => deleteRun(context, argument)),
    vscode.commands.registerCommand('rlhf.openRunDashboard', async (argument?: unknown) => {
      const runDir = await runDirOf(context, argument, 'Run to open', () => true);
      if (runDir) await vscode.commands.executeCommand('rlhf.openDashboard', runDir);
    }),
    vscode.commands.registerCommand('rlhf.revealRunConfig', async (argument?: unknown) => {
      const item =
        typeof argument === 'object' && argument !== null && (argument as RunsTreeItem).kind === 'run'
          ? (argument as RunItem)
          : undefined;
      const configFile = item?.details.configFile;
      if (!configFile || !existsSync(configFile)) {
        void vscode.window.showInformationMessage(
          configFile
            ? `The config ${configFile} is gone; the run keeps a copy in its run.json ("config").`
            : 'This run does not record the config file it was started from.',
        );
        return;
      }
      await vscode.window.showTextDocument(vscode.Uri.file(configFile));
      await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(configFile));
    }),
  ];
}
