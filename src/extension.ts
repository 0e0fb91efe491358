/**
 * RLHF Lens: wiring only. Activation stays cheap; heavy modules (tfjs, Arrow, ONNX) load in the
 * trainer process or on first use.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { registerClusterCommands } from './host/cluster/clusterCommands';
import { ClusterRuns } from './host/cluster/clusterRuns';
import { openDashboardCommand } from './host/dashboardPanel';
import { exportModelCommand } from './host/exportModelCommand';
import { registerExternalCommands } from './host/external/externalCommands';
import { ExternalRunList } from './host/external/externalRunList';
import { RankView } from './host/rankView';
import { ConfigCodeLens } from './host/configCodeLens';
import { ConfigDiagnostics, configSelector } from './host/configDiagnostics';
import { registerRunCommands } from './host/runCommands';
import { RunController } from './host/runController';
import { RunsTreeProvider } from './host/runsTreeProvider';
import { TrainerSupervisor } from './host/trainerSupervisor';
import { WorkspaceRuns } from './host/workspaceRuns';

/** What `activate` returns: the integration tests drive the trainer supervisor through it. */
export interface RlhfLensApi {
  readonly supervisor: TrainerSupervisor;
  readonly runs: RunController;
  /** The Runs view's data (its latest items), for tests. */
  readonly runsTree: RunsTreeProvider;
  /** The Rank view (its session, for tests). */
  readonly rank: RankView;
  /** The cluster jobs of the Runs view (submissions, Slurm states), for tests. */
  readonly cluster: ClusterRuns;
  /** The text of the last error notification the extension showed, for tests to read. */
  readonly lastErrorMessage: () => string | undefined;
}

let supervisor: TrainerSupervisor | undefined;

export function activate(context: vscode.ExtensionContext): RlhfLensApi {
  const log = vscode.window.createOutputChannel('RLHF Lens', { log: true });
  const runs = new WorkspaceRuns();
  // Every trainer start (runs, the Rank view's sampling) passes this gate: Workspace Trust.
  supervisor = new TrainerSupervisor(
    path.join(context.extensionPath, 'dist', 'trainer.js'),
    () => vscode.workspace.isTrusted,
  );
  let lastErrorMessage: string | undefined;

  const trainers = supervisor;
  const runController = new RunController(trainers, runs, log);
  const externalRuns = new ExternalRunList(context.workspaceState);
  const cluster = new ClusterRuns(log);
  const runsTree = new RunsTreeProvider(runs, runController, externalRuns, cluster);
  const showError = (message: string) => {
    lastErrorMessage = message;
    log.error(message);
    void vscode.window.showErrorMessage(message);
  };
  const configDiagnostics = new ConfigDiagnostics();
  const codeLens = new ConfigCodeLens(runs);
  context.subscriptions.push(
    runController,
    configDiagnostics,
    codeLens,
    vscode.languages.registerCodeLensProvider(configSelector, codeLens),
    ...registerRunCommands({ controller: runController, runs, tree: runsTree, diagnostics: configDiagnostics, log }),
    // A dataset or checkpoint a config names may appear when a run finishes: check the open configs again.
    runs.onDidChange(() => configDiagnostics.refreshAll()),
    log,
    runs,
    runsTree,
    vscode.window.registerTreeDataProvider('rlhf.runs', runsTree),
    // Optional argument: a run directory (path string, Uri or tree item); without one, a quick pick.
    vscode.commands.registerCommand('rlhf.openDashboard', openDashboardCommand(context.extensionUri, runs, log)),
    vscode.commands.registerCommand('rlhf.refreshRuns', () => {
      runs.refresh();
      externalRuns.refresh();
      cluster.pollNow();
    }),
    cluster,
    ...registerClusterCommands({
      extensionUri: context.extensionUri,
      trainerScript: path.join(context.extensionPath, 'dist', 'trainer.js'),
      runs,
      cluster,
      log,
      showError,
    }),
    // Optional argument: the folder (path string, Uri or Runs view item); without one, a folder dialog.
    ...registerExternalCommands({
      extensionUri: context.extensionUri,
      runs,
      list: externalRuns,
      log,
      showError,
    }),
    vscode.commands.registerCommand(
      'rlhf.exportOnnx',
      exportModelCommand(path.join(context.extensionPath, 'dist', 'trainer.js'), log),
    ),
    { dispose: () => void trainers.dispose() },
  );

  const rankView = new RankView(context, trainers, log);
  context.subscriptions.push(
    rankView,
    vscode.window.registerWebviewViewProvider(RankView.viewType, rankView),
    vscode.commands.registerCommand('rlhf.rankCompletions', (args?: Parameters<RankView['rankCompletions']>[0]) =>
      rankView.rankCompletions(args),
    ),
    vscode.commands.registerCommand('rlhf.exportPreferences', (dataset?: string) =>
      rankView.exportPreferences(typeof dataset === 'string' ? dataset : undefined),
    ),
  );

  trainers.onDidExit((exit) => log.info(exit.description));
  trainers.onDidCrash((exit) => {
    lastErrorMessage = `${exit.description}.`;
    if (exit.stderrTail) log.error(`${exit.description}. Its last output:\n${exit.stderrTail}`);
    void vscode.window.showErrorMessage(lastErrorMessage, 'Show Log').then((choice) => {
      if (choice === 'Show Log') log.show();
    });
  });

  return {
    supervisor: trainers,
    runs: runController,
    runsTree,
    cluster,
    rank: rankView,
    lastErrorMessage: () => lastErrorMessage,
  };
}

/** VS Code awaits this: every trainer this window started is stopped before the host exits. */
export async function deactivate(): Promise<void> {
  await supervisor?.dispose();
  supervisor = undefined;
}
