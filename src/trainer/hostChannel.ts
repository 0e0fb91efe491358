/**
 * The trainer's end of the fork IPC channel: typed sends, validated receives. Algorithm code never
 * sees this; the process entry turns callbacks into messages.
 */
import { parseHostMessage, type HostToTrainerMessage, type TrainerToHostMessage } from '../shared/protocol';

export interface HostChannel {
  send(message: TrainerToHostMessage): Promise<void>;
  onMessage(handler: (message: HostToTrainerMessage) => void): void;
}

/** The channel of a process started with `child_process.fork`; undefined when run without one. */
export function connectToHost(): HostChannel | undefined {
  const processSend = process.send?.bind(process);
  if (!processSend) return undefined;
  return {
    send: (message) =>
      new Promise((resolve, reject) => {
        processSend(message, undefined, {}, (error: Error | null) => (error ? reject(error) : resolve()));
      }),
    onMessage: (handler) => {
      process.on('message', (raw: unknown) => {
        const message = parseHostMessage(raw);
        if (message) handler(message);
        else process.stderr.write(`rlhf-lens trainer: ignored an unknown control message ${JSON.stringify(raw)}\n`);
      });
    },
  };
}
