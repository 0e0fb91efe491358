// "RLHF: Open Dashboard" with a run directory as its argument (what the Runs tree passes): a path
// string, a Uri or a run.json Uri open that run's panel, once per run, titled with the run's name.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { until } from './until';

const dashboardTabs = () =>
  vscode.window.tabGroups.all
    .flatMap((group) => group.tabs)
    .filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.includes('rlhf.dashboard'))
    .map((tab) => tab.label)
    .sort();

suite('dashboard', () => {
  test('a run directory argument opens that run’s dashboard, one panel per run', async function () {
    this.timeout(60_000);
    const extension = vscode.extensions.getExtension('rlhf-lens.rlhf-lens');
    assert.ok(extension);
    await extension.activate();
    const root = vscode.workspace.workspaceFolders?.[0].uri.fsPath;
    assert.ok(root, 'the test workspace is open');
    const runs = path.join(root, '.rlhf', 'runs');
    await vscode.commands.executeCommand('rlhf.openDashboard', path.join(runs, 'demo-ppo'));
    await until(
      () => (dashboardTabs().includes('RLHF: demo-ppo') ? true : undefined),
      'the demo-ppo dashboard tab',
      20_000,
    );
    // The same run again, as a Uri and as its run.json: the panel is revealed, not duplicated.
    await vscode.commands.executeCommand('rlhf.openDashboard', vscode.Uri.file(path.join(runs, 'demo-ppo')));
    await vscode.commands.executeCommand(
      'rlhf.openDashboard',
      vscode.Uri.file(path.join(runs, 'demo-ppo', 'run.json')),
    );
    await vscode.commands.executeCommand('rlhf.openDashboard', { runDir: path.join(runs, 'sft-small') });
    const both = await until(
      () => {
        const tabs = dashboardTabs();
        return tabs.includes('RLHF: sft-small') ? tabs : undefined;
      },
      'the sft-small dashboard tab',
      20_000,
    );
    assert.deepEqual(both, ['RLHF: demo-ppo', 'RLHF: sft-small']);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});
