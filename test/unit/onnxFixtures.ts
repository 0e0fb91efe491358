/**
 * Shared fixtures of the ONNX tests: a tiny SFT model trained by the real pipeline (wasm), and
 * checkpoints of it with a value head (a PPO policy) and a score head (a reward model), written with
 * the trainer's own checkpoint writer.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { saveCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import type { ScorePooling } from '../../src/trainer/model/gptConfig';
import { Gpt, type ScalarHead } from '../../src/trainer/engine/tfjs/gpt';
import { checkpointConfig } from '../../src/trainer/checkpoint/modelLoading';
import { runPipeline } from '../../src/trainer/pipeline';
import { loadModel } from '../../src/trainer/checkpoint/loadGpt';

export const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-onnx-'));
let sftCheckpoint: Promise<string> | undefined;

/** A 2-layer SFT model trained for 60 steps on the demo reviews (a few seconds on wasm). */
export function tinySft(): Promise<string> {
  sftCheckpoint ??= (async () => {
    const configFile = path.join(workDir, 'sft.rlhf.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        name: 'sft',
        seed: 1,
        backend: 'wasm',
        model: { n_layer: 2, n_head: 2, n_embd: 32, block_size: 40 },
        tokenizer: { vocab_size: 300 },
        stages: [
          {
            type: 'sft',
            dataset: { source: 'demo', num_examples: 2000 },
            learning_rate: 0.005,
            max_steps: 60,
            warmup_steps: 5,
            save_steps: 60,
          },
        ],
      }),
    );
    const { runs } = await runPipeline({ configFile, runsRoot: path.join(workDir, 'runs') }, { log: () => undefined });
    return runs[0].result.outputs.checkpoint as string;
  })();
  return sftCheckpoint;
}

/**
 * The SFT model with `heads` (fresh, seeded, then scaled up so they are not ~0) saved as its own
 * checkpoint (every weight moved by up to `nudge`); returns the folder and the loaded tfjs model (the caller disposes
 * it).
 */
export async function checkpointWithHeads(
  name: string,
  heads: readonly ScalarHead[],
  scorePooling?: ScorePooling,
  nudge = 0,
): Promise<{ dir: string; model: Gpt }> {
  const { model: loaded, checkpoint } = await loadModel(await tinySft(), heads, 7);
  const weights = await loaded.readWeights();
  loaded.dispose();
  // `nudge` moves every weight a little (another policy than the SFT model, for a non-zero KL).
  if (nudge > 0)
    for (const { data } of weights.values()) data.forEach((value, i) => (data[i] = value + nudge * Math.sin(7 * i)));
  for (const head of heads) {
    const w = weights.get(`${head}.weight`);
    if (w) w.data.forEach((value, i) => (w.data[i] = value * 50));
    const b = weights.get(`${head}.bias`);
    if (b) b.data[0] = 0.3;
  }
  const config = { ...loaded.config, ...(scorePooling && { score_pooling: scorePooling }) };
  const model = Gpt.fromWeights(config, heads, weights);
  const dir = path.join(workDir, 'checkpoints', name);
  await saveCheckpoint(dir, {
    config: checkpointConfig(model, checkpoint.tokenizer),
    weights,
    trainerState: { global_step: 0, max_steps: 0, stage: 'test', seed: 7 },
    tokenizer: checkpoint.tokenizer,
  });
  return { dir, model };
}
