/**
 * The cluster commands: Submit Run to Cluster (the trainer CLI's `submit` in a child process, never in the
 * extension host), Cancel Job (`scancel`, after a confirmation), Open Job Output, and Open Sweep in Dashboard (the
 * sweep's runs overlaid on one dashboard's charts).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DashboardPanel } from '../dashboardPanel';
import type { RunsTreeItem } from '../runsTreeProvider';
import { trustExplanation } from '../workspaceTrust';
import type { WorkspaceRuns } from '../workspaceRuns';
import type { ClusterElement } from './clusterElements';
import { openJobOutputCommand, type ClusterRuns, type SubmissionListing } from './clusterRuns';
import { jobSpecOf } from './clusterTreeItems';
import { scancel } from './slurmCommands';
import { runSubmit, type SubmitResult } from './submitProcess';
import { isFinished } from './slurmJobState';

export const submitRunCommand = 'rlhf.submitRun';
export const cancelJobCommand = 'rlhf.cancelJob';
export const openSweepDashboardCommand = 'rlhf.openSweepDashboard';
export { openJobOutputCommand };

export interface ClusterCommandsContext {
  readonly extensionUri: vscode.Uri;
  readonly trainerScript: string;
  readonly runs: WorkspaceRuns;
  readonly cluster: ClusterRuns;
  readonly log: vscode.LogOutputChannel;
  readonly showError: (message: string) => void;
  /** Tests answer the confirmation with this instead of a modal dialog. */
  readonly confirm?: (message: string) => Promise<boolean>;
}

function configOf(argument: unknown): string | undefined {
  if (argument instanceof vscode.Uri) return argument.fsPath;
  if (typeof argument === 'string') return argument;
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === 'file' && active.fsPath.endsWith('.rlhf.json')) return active.fsPath;
  return undefined;
}

/** The elements a command acts on: a job item's, or every element of a sweep's item. */
function elementsOf(argument: unknown): { elements: readonly ClusterElement[]; listing?: SubmissionListing } {
  const item = argument as RunsTreeItem | ClusterElement | undefined;
  if (item && 'kind' in item && item.kind === 'slurmJob') return { elements: [item.element] };
  if (item && 'kind' in item && item.kind === 'slurmSubmission')
    return { elements: item.listing.elements, listing: item.listing };
  if (item && 'submission' in item) return { elements: [item] };
  return { elements: [] };
}

export function registerClusterCommands(context: ClusterCommandsContext): vscode.Disposable[] {
  const { cluster, showError } = context;
  const confirm =
    context.confirm ??
    (async (message: string) =>
      (await vscode.window.showWarningMessage(message, { modal: true }, 'Cancel Job')) === 'Cancel Job');

  const submit = async (argument?: unknown): Promise<SubmitResult | undefined> => {
    const config = configOf(argument);
    if (!config) {
      showError('Submit Run to Cluster: open a *.rlhf.json run config first (or use its CodeLens).');
      return undefined;
    }
    if (!vscode.workspace.isTrusted) {
      showError(trustExplanation('submits runs'));
      return undefined;
    }
    await vscode.workspace.textDocuments.find((document) => document.uri.fsPath === config)?.save();
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Submitting ${path.basename(config)} to Slurm…` },
        () => runSubmit(context.trainerScript, config, context.runs.folder),
      );
      context.log.info(`Submitted ${config}: Slurm job ${result.job_id} (${result.submission})`);
      cluster.pollNow();
      void vscode.window.showInformationMessage(`Submitted ${path.basename(config)}: Slurm job ${result.job_id}.`);
      return result;
    } catch (error) {
      showError((error as Error).message);
      return undefined;
    }
  };

  const cancel = async (argument?: unknown): Promise<boolean> => {
    const { elements, listing } = elementsOf(argument);
    const live = elements.filter((element) => !isFinished(element.phase));
    if (live.length === 0) return false;
    // A whole sweep is one `scancel` of its array; one element is `<array>_<index>`.
    const spec = listing ? listing.submission.jobId : jobSpecOf(live[0]);
    const what = listing ? `all ${live.length} unfinished jobs of sweep ${spec}` : `Slurm job ${spec}`;
    if (!(await confirm(`Cancel ${what}? A running trainer is stopped.`))) return false;
    try {
      await scancel(spec);
      context.log.info(`Cancelled Slurm job ${spec}`);
      cluster.pollNow();
      return true;
    } catch (error) {
      showError((error as Error).message);
      return false;
    }
  };

  const openOutput = async (argument?: unknown): Promise<void> => {
    const element = elementsOf(argument).elements[0];
    if (!element) return;
    if (!existsSync(element.outputFile)) {
      // A job that died before its trainer started without an output file: Slurm could not open it (a folder
      // missing on the node), and it never will.
      const why = element.diedBeforeTrainer
        ? `has no output file: Slurm could not write ${element.outputFile}, or it was removed`
        : `has no output yet (${element.description}): ${element.outputFile}`;
      void vscode.window.showInformationMessage(`Slurm job ${jobSpecOf(element)} ${why}`);
      return;
    }
    await vscode.window.showTextDocument(vscode.Uri.file(element.outputFile), { preview: false });
  };

  const openSweep = (argument?: unknown): DashboardPanel | undefined => {
    const runDirs = elementsOf(argument).elements.flatMap((element) => (element.run ? [element.run.runDir] : []));
    if (runDirs.length === 0) {
      void vscode.window.showInformationMessage('No run of this sweep has started yet.');
      return undefined;
    }
    const panel = DashboardPanel.show(context.extensionUri, context.runs, context.log, runDirs[0]);
    panel.compareWith(runDirs.slice(1).map((runDir) => path.basename(runDir)));
    return panel;
  };

  return [
    vscode.commands.registerCommand(submitRunCommand, submit),
    vscode.commands.registerCommand(cancelJobCommand, cancel),
    vscode.commands.registerCommand(openJobOutputCommand, openOutput),
    vscode.commands.registerCommand(openSweepDashboardCommand, openSweep),
  ];
}
