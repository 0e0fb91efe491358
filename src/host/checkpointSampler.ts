/**
 * Completions from a checkpoint for the Rank view, sampled in a trainer process (the host never loads
 * tfjs): one serving trainer is started on first use and kept warm with the model loaded, so the next
 * set comes back in the time sampling takes. A trainer that died is replaced on the next request.
 * Free of `vscode`, so the benchmark and unit tests drive the real thing.
 */
import type { SampleRequestMessage, SampleResultMessage } from '../shared/protocol';
import type { TrainerProcess } from './trainerProcess';
import type { TrainerSupervisor } from './trainerSupervisor';

export type SampleOptions = Omit<SampleRequestMessage, 'type' | 'id'>;

export class CheckpointSampler {
  private trainer: TrainerProcess | undefined;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (result: SampleResultMessage) => void; reject: (error: Error) => void }
  >();

  constructor(
    private readonly supervisor: TrainerSupervisor,
    private readonly cwd?: string,
  ) {}

  /** Starts the serving trainer now (if it is not running), so the first set does not wait for it. */
  async warmUp(): Promise<void> {
    await this.ensureTrainer().ready;
  }

  async sample(options: SampleOptions): Promise<SampleResultMessage> {
    const trainer = this.ensureTrainer();
    await trainer.ready;
    const id = this.nextId++;
    const result = new Promise<SampleResultMessage>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    if (!trainer.send({ type: 'sample/request', id, ...options })) {
      this.waiting.delete(id);
      throw new Error('The sampling trainer process is not connected; try again.');
    }
    return result;
  }

  get pid(): number | undefined {
    return this.trainer?.pid;
  }

  async dispose(): Promise<void> {
    const trainer = this.trainer;
    this.trainer = undefined;
    await trainer?.stop(3_000);
  }

  private ensureTrainer(): TrainerProcess {
    if (this.trainer?.isRunning) return this.trainer;
    const trainer = this.supervisor.start({ label: 'rank sampler', cwd: this.cwd });
    this.trainer = trainer;
    trainer.onMessage((message) => {
      if (message.type !== 'sample/result' && message.type !== 'sample/error') return;
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.type === 'sample/result') waiter.resolve(message);
      else waiter.reject(new Error(message.message));
    });
    void trainer.exited.then((exit) => {
      if (this.trainer === trainer) this.trainer = undefined;
      for (const [id, waiter] of this.waiting) {
        waiter.reject(
          new Error(
            `${exit.description} while sampling.` +
              `${exit.stderrTail ? ` Its last output: ${exit.stderrTail.split('\n').slice(-3).join(' / ')}` : ''}`,
          ),
        );
        this.waiting.delete(id);
      }
    });
    return trainer;
  }
}
