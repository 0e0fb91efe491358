/**
 * RLHF Lens: wiring only. Activation stays cheap; heavy modules (tfjs, Arrow, ONNX) load in the
 * trainer process or on first use.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openDashboardCommand } from './host/dashboardPanel';
import { RunController } from './host/runController';
import { RunsTreeProvider } from './host/runsTreeProvider';
import { TrainerSupervisor } from './host/trainerSupervisor';
import { WorkspaceRuns } from './host/workspaceRuns';

/** What `activate` returns: the integration tests drive the trainer supervisor through it. */
export interface RlhfLensApi {
  readonly supervisor: TrainerSupervisor;
  readonly runs: RunController;
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
  const runController = new RunController(trainers, runs, log);
  context.subscriptions.push(
    runController,
    vscode.commands.registerCommand('rlhf.startRun', async (uri?: vscode.Uri) => {
      const configFile = uri?.fsPath ?? (await pickConfigFile());
      if (configFile) await runController.start(configFile);
    }),
    vscode.commands.registerCommand('rlhf.stopRun', async () => {
      if (runController.running === 0) void vscode.window.showInformationMessage('No RLHF run is running in this window.');
      else await runController.stopAll();
    }),
    log,
    runs,
    runsTree,
    vscode.window.registerTreeDataProvider('rlhf.runs', runsTree),
    // Optional argument: a run directory (path string, Uri or tree item); without one, a quick pick.
    vscode.commands.registerCommand('rlhf.openDashboard', openDashboardCommand(context.extensionUri, runs, log)),
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

  return { supervisor: trainers, runs: runController, lastErrorMessage: () => lastErrorMessage };
}

/** The active editor's run config, or one picked from the workspace's `*.rlhf.json` files. */
async function pickConfigFile(): Promise<string | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === 'file' && active.fsPath.endsWith('.rlhf.json')) return active.fsPath;
  const files = await vscode.workspace.findFiles('**/*.rlhf.json', '**/node_modules/**', 200);
  if (files.length === 0) {
    void vscode.window.showInformationMessage('No *.rlhf.json run config in this workspace. Write one (see the README) and run this command again.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    files.map((file) => ({ label: vscode.workspace.asRelativePath(file), file })),
    { placeHolder: 'Run config to start' },
  );
  return picked?.file.fsPath;
}

/** VS Code awaits this: every trainer this window started is stopped before the host exits. */
export async function deactivate(): Promise<void> {
  await supervisor?.dispose();
  supervisor = undefined;
}
