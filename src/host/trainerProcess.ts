/**
 * One trainer child process, seen from the extension host: fork, typed messages, a `ready`
 * handshake, a graceful stop with a hard-kill deadline, and how it ended. Free of `vscode` so the
 * unit tests fork the real trainer without an editor.
 */
import { fork, type ChildProcess } from 'node:child_process';
import {
  parseTrainerMessage,
  type HostToTrainerMessage,
  type TrainerReadyMessage,
  type TrainerToHostMessage,
} from '../shared/protocol';
import { Listeners, type Listener } from './listeners';

export interface TrainerStartOptions {
  /** The built trainer entry (`dist/trainer.js`). */
  readonly modulePath: string;
  /** Shown in messages to the user: the run's name. */
  readonly label: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** How a trainer process ended. */
export interface TrainerExit {
  readonly label: string;
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The host asked it to stop (a hard kill after the stop deadline still counts as asked). */
  readonly requested: boolean;
  /** Ended by a signal or a non-zero code without being asked to. */
  readonly crashed: boolean;
  /** One line for the user, naming the code or signal. */
  readonly description: string;
  /** The last lines the process wrote to stderr, for the log. */
  readonly stderrTail: string;
}

const stderrTailLines = 40;

export class TrainerProcess {
  readonly label: string;
  readonly ready: Promise<TrainerReadyMessage>;
  readonly exited: Promise<TrainerExit>;

  private readonly child: ChildProcess;
  private readonly messageListeners = new Listeners<TrainerToHostMessage>();
  private readonly outputListeners = new Listeners<string>();
  private stderrLines: string[] = [];
  private stopRequested = false;
  private hasExited = false;

  constructor(options: TrainerStartOptions) {
    this.label = options.label;
    this.child = fork(options.modulePath, [...(options.args ?? [])], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      // The extension host's own flags (inspector ports, loaders) must not leak into the trainer;
      // RLHF_LENS_TRAINER_INSPECT=<port> opens the trainer's own inspector for a debugger to attach.
      execArgv: process.env.RLHF_LENS_TRAINER_INSPECT ? [`--inspect=${process.env.RLHF_LENS_TRAINER_INSPECT}`] : [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.collect(chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.collect(chunk));

    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.hasExited = true;
        resolve(this.describeExit(code, signal));
      });
      // A fork that cannot start at all (missing entry, EACCES) emits 'error' and may never emit 'exit'.
      this.child.once('error', (error) => {
        if (this.child.pid !== undefined) return;
        this.hasExited = true;
        this.collect(`${error.message}\n`);
        resolve(this.describeExit(1, null));
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const off = this.onMessage((message) => {
        if (message.type === 'trainer/ready') {
          off();
          resolve(message);
        }
      });
      void this.exited.then((exit) => reject(new Error(`${exit.description} before it was ready`)));
    });
    // Callers that only await `exited` must not see an unhandled rejection from `ready`.
    this.ready.catch(() => undefined);

    this.child.on('message', (raw: unknown) => {
      const message = parseTrainerMessage(raw);
      if (message) this.messageListeners.fire(message);
      else this.collect(`ignored a malformed message from the trainer: ${JSON.stringify(raw)}\n`);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return !this.hasExited;
  }

  onMessage(listener: Listener<TrainerToHostMessage>): () => void {
    return this.messageListeners.add(listener);
  }

  /** Every line the process writes to stdout or stderr. */
  onOutput(listener: Listener<string>): () => void {
    return this.outputListeners.add(listener);
  }

  send(message: HostToTrainerMessage): boolean {
    if (!this.child.connected) return false;
    this.child.send(message);
    return true;
  }

  /** Asks the trainer to finish its step and exit; kills it if it has not exited after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<TrainerExit> {
    this.stopRequested = true;
    if (this.hasExited) return this.exited;
    if (!this.send({ type: 'control/stop' })) this.child.kill('SIGKILL');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal without asking first: what a crash looks like from here. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  private collect(chunk: string): void {
    for (const line of chunk.split(/\r?\n/)) {
      if (line.length === 0) continue;
      this.stderrLines.push(line);
      this.outputListeners.fire(line);
    }
    if (this.stderrLines.length > stderrTailLines) this.stderrLines = this.stderrLines.slice(-stderrTailLines);
  }

  private describeExit(code: number | null, signal: NodeJS.Signals | null): TrainerExit {
    const crashed = !this.stopRequested && (signal !== null || (code !== null && code !== 0));
    const who = `RLHF trainer "${this.label}"${this.child.pid === undefined ? '' : ` (pid ${this.child.pid})`}`;
    let description: string;
    if (signal !== null) description = `${who} was killed by signal ${signal}`;
    else if (code === 0) description = `${who} exited normally`;
    else description = `${who} exited with code ${code ?? 'unknown'}`;
    return {
      label: this.label,
      pid: this.child.pid,
      code,
      signal,
      requested: this.stopRequested,
      crashed,
      description,
      stderrTail: this.stderrLines.join('\n'),
    };
  }
}
