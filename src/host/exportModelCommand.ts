/**
 * "RLHF: Export Model to ONNX": runs `rlhf-lens export` in a trainer process (the host never loads
 * model code) on a checkpoint — the one passed in (a run or checkpoint folder, as a path or Uri), or
 * one picked from the workspace's runs — and writes a transformers.js-style folder next to the run
 * (`<run>/onnx/step-<n>`). Resolves to that folder, or undefined when cancelled or failed.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { TrainerProcess } from './trainerProcess';

type ExportTarget = string | vscode.Uri | { readonly runDir?: string; readonly resourceUri?: vscode.Uri } | undefined;

/** A folder from the command's argument: a path, a Uri, or a tree item carrying one. */
function folderOf(target: ExportTarget): string | undefined {
  if (typeof target === 'string') return target;
  if (target instanceof vscode.Uri) return target.fsPath;
  return target?.runDir ?? target?.resourceUri?.fsPath;
}

/** Checkpoints under the workspace's `.rlhf/runs`, newest run first. */
async function pickCheckpoint(): Promise<string | undefined> {
  const files = await vscode.workspace.findFiles('.rlhf/runs/*/checkpoints/step-*/model.safetensors');
  if (files.length === 0) {
    void vscode.window.showInformationMessage('No checkpoints under .rlhf/runs yet: train a run first (RLHF: Start Run).');
    return undefined;
  }
  const items = files
    .map((file) => {
      const checkpoint = path.dirname(file.fsPath);
      const run = path.basename(path.dirname(path.dirname(checkpoint)));
      return { label: `${run} · ${path.basename(checkpoint)}`, description: vscode.workspace.asRelativePath(checkpoint), checkpoint };
    })
    .sort((a, b) => b.label.localeCompare(a.label, undefined, { numeric: true }));
  return (await vscode.window.showQuickPick(items, { title: 'Export a checkpoint to ONNX', placeHolder: 'Pick a checkpoint' }))?.checkpoint;
}

/** Where the trainer writes the export: `<run>/onnx/step-<n>` for a run's checkpoint (the CLI's default). */
function exportDirFor(folder: string): string | undefined {
  const parent = path.dirname(folder);
  return path.basename(parent) === 'checkpoints' ? path.join(path.dirname(parent), 'onnx', path.basename(folder)) : undefined;
}

export function exportModelCommand(trainerModule: string, log: vscode.LogOutputChannel): (target?: ExportTarget) => Promise<string | undefined> {
  return async (target) => {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showErrorMessage('Exporting a model runs the RLHF trainer, which needs a trusted workspace.');
      return undefined;
    }
    const folder = folderOf(target) ?? (await pickCheckpoint());
    if (!folder) return undefined;
    const out = exportDirFor(folder);
    const trainer = new TrainerProcess({ modulePath: trainerModule, label: 'export to ONNX', args: ['export', folder, ...(out ? ['--out', out] : [])], cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath });
    let output = '';
    trainer.onOutput((chunk) => (output += chunk));
    const exit = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Exporting ${path.basename(folder)} to ONNX…` }, () => trainer.exited);
    // The CLI prints the folder it wrote as a line of its own (stdout; stderr lines may interleave).
    const written = output.split('\n').map((line) => line.trim()).filter((line) => path.isAbsolute(line)).at(-1) ?? '';
    if (exit.code !== 0 || !path.isAbsolute(written)) {
      const reason = output.split('\n').find((line) => line.startsWith('error: '))?.slice('error: '.length) ?? exit.description;
      log.error(`Export of ${folder} failed: ${reason}\n${exit.stderrTail}`);
      void vscode.window.showErrorMessage(`Could not export ${folder} to ONNX: ${reason}`);
      return undefined;
    }
    log.info(`exported ${folder} to ${written}`);
    void vscode.window.showInformationMessage(`Exported to ${vscode.workspace.asRelativePath(written)} (onnx/model.onnx, config.json, tokenizer.json).`, 'Reveal in Explorer').then((choice) => {
      if (choice) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(written));
    });
    return written;
  };
}
