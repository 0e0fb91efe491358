/**
 * RLHF Lens: wiring only. Activation stays cheap; heavy modules (tfjs, Arrow, ONNX) load in the
 * trainer process or on first use.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DashboardPanel } from './host/dashboardPanel';
import { RunsTreeProvider } from './host/runsTreeProvider';
import { TrainerSupervisor } from './host/trainerSupervisor';
import { WorkspaceRuns } from './host/workspaceRuns';

/** What `activate` returns: the integration tests drive the trainer supervisor through it. */
export interface RlhfLensApi {
  readonly supervisor: TrainerSupervisor;
  /** The text of the last error notification the extension showed, for tests to read. */
  readonly lastErrorMessage: () => string | undefined;
}

let supervisor: TrainerSupervisor | undefined;

export function activate(context: vscode.ExtensionContext): RlhfLensApi {
  const log = vscode.window.createOutputChannel('RLHF Lens', { log: true });
  const runs = new WorkspaceRuns();
  const runsTree = new RunsTreeProvider(runs);
  supervisor = new TrainerSupervisor(path.join(context.extensionPath, 'dist', 'trainer.js'));
  let lastErrorMessage: string | undefined;

  const trainers = supervisor;
  context.subscriptions.push(
    log,
    runs,
    runsTree,
    vscode.window.registerTreeDataProvider('rlhf.runs', runsTree),
    vscode.commands.registerCommand('rlhf.openDashboard', () => DashboardPanel.show(context.extensionUri, runs, log)),
    vscode.commands.registerCommand('rlhf.refreshRuns', () => runs.refresh()),
    { dispose: () => void trainers.dispose() },
  );

  trainers.onDidExit((exit) => log.info(exit.description));
  trainers.onDidCrash((exit) => {
    lastErrorMessage = `${exit.description}.`;
    if (exit.stderrTail) log.error(`${exit.description}. Its last output:\n${exit.stderrTail}`);
    void vscode.window.showErrorMessage(lastErrorMessage, 'Show Log').then((choice) => {
      if (choice === 'Show Log') log.show();
    });
  });

  return { supervisor: trainers, lastErrorMessage: () => lastErrorMessage };
}

/** VS Code awaits this: every trainer this window started is stopped before the host exits. */
export async function deactivate(): Promise<void> {
  await supervisor?.dispose();
  supervisor = undefined;
}
