/**
 * "RLHF: Export Model to ONNX": runs `rlhf-lens export` in a trainer process (the host never loads
 * model code) on a checkpoint — the one passed in (a run or checkpoint folder, as a path or Uri), or
 * one picked from the workspace's runs — and writes a transformers.js-style folder next to the run
 * (`<run>/onnx/step-<n>`). Resolves to that folder, or undefined when cancelled or failed.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { TrainerProcess } from './trainerProcess';
import { trustExplanation } from './workspaceTrust';

type ExportTarget = string | vscode.Uri | { readonly runDir?: string; readonly resourceUri?: vscode.Uri } | undefined;

/** A folder from the command's argument: a path, a Uri, or a tree item carrying one. */
function folderOf(target: ExportTarget): string | undefined {
  if (typeof target === 'string') return target;
  if (target instanceof vscode.Uri) return target.fsPath;
  return target?.runDir ?? target?.resourceUri?.fsPath;
}

/** Checkpoints under the workspace's `.rlhf/runs`, newest run first. */
async function pickCheckpoint(): Promise<string | undefined> {
  // config.json: every checkpoint has one, a LoRA stage's too (its adapter folder holds no model.safetensors).
  const files = await vscode.workspace.findFiles('.rlhf/runs/*/checkpoints/step-*/config.json');
  if (files.length === 0) {
    void vscode.window.showInformationMessage(
      'No checkpoints under .rlhf/runs yet: train a run first (RLHF: Start Run).',
    );
    return undefined;
  }
  const items = files
    .map((file) => {
      const checkpoint = path.dirname(file.fsPath);
      const run = path.basename(path.dirname(path.dirname(checkpoint)));
      return {
        label: `${run} · ${path.basename(checkpoint)}`,
        description: vscode.workspace.asRelativePath(checkpoint),
        checkpoint,
      };
    })
    .sort((a, b) => b.label.localeCompare(a.label, undefined, { numeric: true }));
  return (
    await vscode.window.showQuickPick(items, { title: 'Export a checkpoint to ONNX', placeHolder: 'Pick a checkpoint' })
  )?.checkpoint;
}

/** A run folder stands for its latest checkpoint (as on the command line); anything else is taken as given. */
function checkpointOf(folder: string): string {
  const checkpoints = path.join(folder, 'checkpoints');
  if (existsSync(path.join(folder, 'config.json')) || !existsSync(checkpoints)) return folder;
  const steps = readdirSync(checkpoints)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((match) => match !== null)
    .map((match) => Number(match[1]));
  return steps.length > 0 ? path.join(checkpoints, `step-${Math.max(...steps)}`) : folder;
}

/**
 * Where the export goes, as the CLI's default: `<run>/onnx/step-<n>` for a run's checkpoint, else
 * `<checkpoint>/onnx-export`.
 */
function exportDirFor(checkpoint: string): string {
  const parent = path.dirname(checkpoint);
  return path.basename(parent) === 'checkpoints'
    ? path.join(path.dirname(parent), 'onnx', path.basename(checkpoint))
    : path.join(checkpoint, 'onnx-export');
}

export function exportModelCommand(
  trainerModule: string,
  log: vscode.LogOutputChannel,
): (target?: ExportTarget) => Promise<string | undefined> {
  return async (target) => {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showErrorMessage(trustExplanation('exports models'));
      return undefined;
    }
    const folder = folderOf(target) ?? (await pickCheckpoint());
    if (!folder) return undefined;
    const checkpoint = checkpointOf(folder);
    const written = exportDirFor(checkpoint);
    const trainer = new TrainerProcess({
      modulePath: trainerModule,
      label: 'export to ONNX',
      args: ['export', checkpoint, '--out', written],
      cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    });
    const output: string[] = [];
    trainer.onOutput((line) => output.push(line));
    const exit = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Exporting ${path.basename(folder)} to ONNX…` },
      () => trainer.exited,
    );
    if (exit.code !== 0 || !existsSync(path.join(written, 'onnx', 'model.onnx'))) {
      const reason = output.find((line) => line.startsWith('error: '))?.slice('error: '.length) ?? exit.description;
      log.error(`Export of ${folder} failed: ${reason}\n${exit.stderrTail}`);
      void vscode.window.showErrorMessage(`Could not export ${folder} to ONNX: ${reason}`);
      return undefined;
    }
    log.info(`exported ${folder} to ${written}`);
    void vscode.window
      .showInformationMessage(
        `Exported to ${vscode.workspace.asRelativePath(written)} (onnx/model.onnx, config.json, tokenizer.json).`,
        'Reveal in Explorer',
      )
      .then((choice) => {
        if (choice) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(written));
      });
    return written;
  };
}
