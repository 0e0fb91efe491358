/**
 * The PyTorch yardstick of the benches: bench/torch/reference.py in a long-lived Debian python3
 * (`/usr/bin/python3` with python3-torch), one thread, driven over stdin/stdout JSON lines so the
 * benches interleave their rounds with ours without process start-up in the timings.
 * Absent torch, `startTorchReference` prints how to get it and returns undefined: the benches run ours alone.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { encodeSafetensors, type SafetensorsTensor } from '../../src/shared/safetensors';

const python = '/usr/bin/python3';
const script = path.join(__dirname, 'reference.py');
const installHint =
  'PyTorch reference skipped: Debian python3 has no torch ' +
  '(apt-get install -y python3-torch python3-numpy to compare against PyTorch)';

interface TorchBlas {
  library: string;
  openblas: boolean;
}

export interface TorchInfo {
  torch: string;
  threads: number;
  blas: TorchBlas;
}

export type Reply = Record<string, unknown> & { id: number; ok: boolean; error?: string };

/** One reply line of reference.py; throws on anything that is not a reply object. */
export function parseReply(line: string): Reply {
  const value = JSON.parse(line) as unknown;
  if (typeof value !== 'object' || value === null || typeof (value as Reply).id !== 'number')
    throw new Error(`not a reply of the PyTorch reference: ${line.slice(0, 200)}`);
  if (typeof (value as Reply).ok !== 'boolean') throw new Error(`reply without "ok": ${line.slice(0, 200)}`);
  return value as Reply;
}

export class TorchReference {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let reply: Reply;
      try {
        reply = parseReply(line);
      } catch (error) {
        for (const waiter of this.pending.values()) waiter.reject(error as Error);
        this.pending.clear();
        return;
      }
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!waiter) return;
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(new Error(`PyTorch reference: ${reply.error ?? 'failed'}`));
    });
    child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    child.on('exit', (code) => {
      for (const waiter of this.pending.values())
        waiter.reject(new Error(`PyTorch reference exited (${code}): ${this.stderr}`));
      this.pending.clear();
    });
  }

  /** What the reference runs on (torch version, threads, BLAS), from its `hello`. */
  info: TorchInfo = { torch: '?', threads: 0, blas: { library: '?', openblas: false } };

  /**
   * The reference, or undefined (after one line saying how to get it) when Debian's python3 lacks torch.
   * Prints what it runs on, and a warning when the BLAS is not OpenBLAS (Debian's python3-torch also
   * runs on the netlib reference BLAS, about 5× slower: not a fair yardstick).
   */
  static async start(threads = 1): Promise<TorchReference | undefined> {
    const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log(installHint);
      return undefined;
    }
    const reference = new TorchReference(
      spawn(python, [script], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, RLHF_TORCH_THREADS: String(threads) },
      }),
    );
    const hello = await reference.request('hello');
    reference.info = { torch: String(hello.torch), threads: Number(hello.threads), blas: hello.blas as TorchBlas };
    console.log(
      `PyTorch reference: torch ${reference.info.torch}, ${reference.info.threads} thread(s), ` +
        `BLAS ${reference.info.blas.library.split(', ')[0]}`,
    );
    if (!reference.info.blas.openblas)
      console.log(
        'warning: PyTorch runs on the reference BLAS, ~5× slower than OpenBLAS: ' +
          'apt-get install -y libopenblas0-pthread for a fair yardstick',
      );
    return reference;
  }

  request(cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }
}

/** Our weights as a safetensors file reference.py reads (float32, by state-dict name). */
export function writeWeights(
  file: string,
  weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
): string {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, { shape, data }] of weights) tensors[name] = { dtype: 'F32', shape: [...shape], data };
  writeFileSync(file, encodeSafetensors(tensors));
  return file;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

export const formatSpread = (s: Spread, digits = 1, unit = '') =>
  `${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

export function table(header: string[], lines: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join('\n');
}
