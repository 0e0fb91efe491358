/**
 * `node --import tsx bench/memoryCalibration.ts [case]`: runs real stages on the wasm backend and
 * compares the memory guard's estimate (src/trainer/memoryGuard.ts) with the wasm heap they grew to
 * (wasm memory only grows, so its size is the peak) and the process's peak RSS. Each case runs in a
 * process of its own (a heap never shrinks); without an argument every case is run that way.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/trainer/engine/tfjs/tfRuntime';
import { estimateStageMemory, formatBytes, stageModelShape } from '../src/trainer/memoryGuard';
import { loadRunConfig, runPipeline } from '../src/trainer/pipeline';

const sft = (batch: number) => ({
  type: 'sft',
  dataset: { source: 'demo', num_examples: 400 },
  max_steps: 3,
  warmup_steps: 1,
  eval_steps: 100,
  save_steps: 100,
  per_device_train_batch_size: batch,
});
const cases: Record<string, { model: Record<string, number>; vocab: number; stages: object[]; measured: number }> = {
  'sft-2x64-T64-b16': {
    model: { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64 },
    vocab: 512,
    stages: [sft(16)],
    measured: 0,
  },
  'sft-4x128-T128-b16': {
    model: { n_layer: 4, n_head: 4, n_embd: 128, block_size: 128 },
    vocab: 512,
    stages: [sft(16)],
    measured: 0,
  },
  'sft-4x256-T256-b16': {
    model: { n_layer: 4, n_head: 8, n_embd: 256, block_size: 256 },
    vocab: 1024,
    stages: [sft(16)],
    measured: 0,
  },
  'sft-2x64-T512-b16': {
    model: { n_layer: 2, n_head: 8, n_embd: 64, block_size: 512 },
    vocab: 512,
    stages: [sft(16)],
    measured: 0,
  },
  'sft-6x384-T128-b32': {
    model: { n_layer: 6, n_head: 6, n_embd: 384, block_size: 128 },
    vocab: 2048,
    stages: [sft(32)],
    measured: 0,
  },
};

async function runCase(name: string): Promise<void> {
  const spec = cases[name];
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-memcal-'));
  try {
    const configFile = path.join(dir, `${name}.rlhf.json`);
    writeFileSync(
      configFile,
      JSON.stringify({
        name: 'memcal',
        backend: 'wasm',
        model: spec.model,
        tokenizer: { vocab_size: spec.vocab },
        stages: spec.stages,
      }),
    );
    const config = loadRunConfig(configFile);
    const estimate = estimateStageMemory(
      config.stages[0],
      config,
      stageModelShape(config, 0, () => undefined),
    );
    await runPipeline({ configFile, runsRoot: path.join(dir, 'runs') }, { log: () => undefined });
    const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
    const rss = process.resourceUsage().maxRSS * 1024;
    process.stdout.write(
      `${JSON.stringify({ name, estimate: estimate.bytes, parts: estimate.parts, wasmHeap: heap, peakRss: rss })}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(only: string | undefined): Promise<void> {
  if (only) return runCase(only);
  process.stdout.write('case                   estimate   wasm heap  peak RSS   estimate / heap\n');
  for (const name of Object.keys(cases)) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', __filename, name], { encoding: 'utf8' });
    const line = child.stdout.trim().split('\n').at(-1) ?? '';
    if (child.status !== 0 || !line.startsWith('{')) {
      process.stdout.write(`${name}: failed (${child.status}) ${child.stderr.slice(-400)}\n`);
      continue;
    }
    const row = JSON.parse(line) as { estimate: number; wasmHeap: number; peakRss: number };
    process.stdout.write(
      `${name.padEnd(22)} ${formatBytes(row.estimate).padStart(9)}  ${formatBytes(row.wasmHeap).padStart(9)}  ` +
        `${formatBytes(row.peakRss).padStart(9)}  ${(row.estimate / row.wasmHeap).toFixed(2)}\n`,
    );
  }
}

void main(process.argv[2]);
