// Runs inside the real extension host: the extension forks its real trainer process, and a crash of
// that process reaches the user as an error naming the signal while the extension keeps working.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { RlhfLensApi } from '../../../src/extension';
import type { TrainerExit } from '../../../src/host/trainerProcess';
import { until } from './until';

async function api(): Promise<RlhfLensApi> {
  const extension = vscode.extensions.getExtension<RlhfLensApi>('rlhf-lens.rlhf-lens');
  assert.ok(extension, 'the extension is installed');
  return extension.activate();
}

suite('trainer process round trip', () => {
  test('fork, ready, ping, graceful stop', async () => {
    const { supervisor } = await api();
    const trainer = supervisor.start({ label: 'extension-host round trip' });
    const ready = await trainer.ready;
    assert.equal(ready.pid, trainer.pid);
    assert.notEqual(ready.pid, process.pid, 'training never runs in the extension host process');
    const pong = new Promise((resolve) =>
      trainer.onMessage((message) => message.type === 'trainer/pong' && resolve(message.id)),
    );
    trainer.send({ type: 'control/ping', id: 7 });
    assert.equal(await pong, 7);
    const exit = await trainer.stop();
    assert.equal(exit.crashed, false);
  });

  test('kill -9 is reported to the user naming SIGKILL, and the next trainer starts fine', async () => {
    const lens = await api();
    const crashes: TrainerExit[] = [];
    const off = lens.supervisor.onDidCrash((exit) => crashes.push(exit));
    const victim = lens.supervisor.start({ label: 'kill-9 victim' });
    const { pid } = await victim.ready;
    process.kill(pid, 'SIGKILL');
    const crash = await until(() => crashes[0], 'the crash report');
    off();
    assert.equal(crash.signal, 'SIGKILL');
    const shown = await until(() => lens.lastErrorMessage(), 'the error notification');
    assert.equal(shown, `RLHF trainer "kill-9 victim" (pid ${pid}) was killed by signal SIGKILL.`);

    // The extension is still usable: commands run and a new trainer starts.
    await vscode.commands.executeCommand('rlhf.refreshRuns');
    const next = lens.supervisor.start({ label: 'after the crash' });
    assert.equal((await next.ready).type, 'trainer/ready');
    assert.equal((await next.stop()).crashed, false);
  });
});
