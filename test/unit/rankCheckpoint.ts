/**
 * A small trained checkpoint for the Rank view's tests and benchmark: the demo model's shape (2
 * layers, 4 heads, width 64) with a context of 192 tokens, room for a prompt plus 128 new tokens.
 * Trained once by the real CLI (`dist/trainer.js train`, so run `npm run build` first) under the
 * shared heavy-job lock, and cached in test-results/rank-checkpoint/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
export const rankCheckpointDir = path.join(root, 'test-results', 'rank-checkpoint');

export const rankModelShape = { n_layer: 2, n_head: 4, n_embd: 64, block_size: 192, dropout: 0 };

/** Returns `<dir>/.rlhf/runs/<run>/checkpoints/step-<n>` of the trained checkpoint. */
export function ensureRankCheckpoint(): string {
  const runs = path.join(rankCheckpointDir, '.rlhf', 'runs');
  const found = () => {
    if (!existsSync(runs)) return undefined;
    for (const run of readdirSync(runs)) {
      const checkpoints = path.join(runs, run, 'checkpoints');
      const step = existsSync(checkpoints) ? readdirSync(checkpoints).find((name) => name === 'step-120') : undefined;
      if (step) return path.join(checkpoints, step);
    }
    return undefined;
  };
  const existing = found();
  if (existing) return existing;
  mkdirSync(rankCheckpointDir, { recursive: true });
  const config = path.join(rankCheckpointDir, 'rank-sft.rlhf.json');
  writeFileSync(
    config,
    JSON.stringify({
      name: 'rank-sft',
      seed: 3,
      backend: 'wasm',
      model: rankModelShape,
      tokenizer: { vocab_size: 400 },
      stages: [
        {
          type: 'sft',
          dataset: { source: 'demo', num_examples: 3000 },
          learning_rate: 0.003,
          max_steps: 120,
          per_device_train_batch_size: 8,
          warmup_steps: 10,
          eval_steps: 120,
          save_steps: 120,
        },
      ],
    }),
  );
  const trainer = path.join(root, 'dist', 'trainer.js');
  if (!existsSync(trainer)) throw new Error(`${trainer} is missing: run npm run build first`);
  // Heavy jobs take turns on the shared machine (flock is absent on some systems: then just run);
  // RLHF_LENS_HEAVY_LOCK=held says the caller already holds the lock (a second flock would wait forever).
  const lock = existsSync('/usr/bin/flock') && process.env.RLHF_LENS_HEAVY_LOCK !== 'held';
  const command = lock ? ['/usr/bin/flock', '/tmp/rlhf-heavy.lock', process.execPath] : [process.execPath];
  execFileSync(command[0], [...command.slice(1), trainer, 'train', config, '--runs-dir', runs], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 15 * 60_000,
  });
  const trained = found();
  if (!trained) throw new Error(`training the rank checkpoint left no step-120 checkpoint under ${runs}`);
  return trained;
}
