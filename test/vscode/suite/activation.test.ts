/** The extension loads in a real extension host and registers what its manifest promises. */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'rlhf-lens.rlhf-lens';

suite('activation', () => {
  test('the extension is installed', () => {
    assert.ok(vscode.extensions.getExtension(EXTENSION_ID), `${EXTENSION_ID} is not among the extensions`);
  });

  test('it activates', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension);
    await extension.activate();
    assert.equal(extension.isActive, true);
  });

  test('its commands are registered', async () => {
    const commands = new Set(await vscode.commands.getCommands(true));
    for (const command of ['rlhf.openDashboard', 'rlhf.refreshRuns']) {
      assert.ok(commands.has(command), `command ${command} is not registered`);
    }
  });
});
