/**
 * Entry of the trainer process. The extension host starts it with `child_process.fork`; it announces
 * itself with `trainer/ready` and obeys control messages until told to stop. Never imports `vscode`.
 */
import { assertNever, type HostToTrainerMessage } from '../shared/protocol';
import { connectToHost, type HostChannel } from './hostChannel';

async function serve(host: HostChannel): Promise<void> {
  host.onMessage((message: HostToTrainerMessage) => {
    switch (message.type) {
      case 'control/ping':
        void host.send({ type: 'trainer/pong', id: message.id });
        break;
      case 'control/stop':
        void host
          .send({ type: 'trainer/exit', code: 0, reason: 'stopped on request' })
          .finally(() => process.exit(0));
        break;
      default:
        assertNever(message, 'trainer');
    }
  });
  // The host dying closes the channel; a trainer must not outlive it.
  process.on('disconnect', () => process.exit(0));
  await host.send({ type: 'trainer/ready', pid: process.pid, nodeVersion: process.version });
}

const host = connectToHost();
if (!host) {
  process.stderr.write('rlhf-lens trainer: this entry is started by the extension host through fork(); use the rlhf-lens CLI to train from a terminal.\n');
  process.exit(2);
}
serve(host).catch((error: unknown) => {
  process.stderr.write(`rlhf-lens trainer: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
