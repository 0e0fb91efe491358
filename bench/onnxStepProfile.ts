/**
 * Where the ONNX Runtime engine's SFT step spends its time, at bench:train's shapes (batch 16 × full
 * context), one intra-op thread: the loss+gradient session run, global-norm clipping and AdamW on the
 * Float32Arrays, timed apart over the same steps as OnnxOptimizer.step does them (onnxEngine.ts).
 * Run: node --import tsx bench/onnxStepProfile.ts
 */
import { ArrayAdamW, clipByGlobalNormInPlace } from '../src/trainer/engine/onnxruntime/adamW';
import { gradientOutput } from '../src/trainer/engine/onnxruntime/gptGraph';
import { lossRun } from '../src/trainer/engine/onnxruntime/lossRuns';
import { OnnxEngine } from '../src/trainer/engine/onnxruntime/onnxEngine';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { spread, formatSpread } from './torch/torchReference';

const configs: Record<string, GptConfig> = {
  '110k': { vocab_size: 96, block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 },
  '850k': { vocab_size: 512, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
};
const batchSize = 16;
const warmup = 2;
const rounds = 10;
const adam = { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0.1 };
const learningRate = 1e-3;
const maxGradNorm = 1;

async function main(): Promise<void> {
  const engine = new OnnxEngine(undefined, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  for (const [label, config] of Object.entries(configs)) {
    const size = batchSize * config.block_size;
    const batch = {
      batchSize,
      length: config.block_size,
      inputs: Int32Array.from({ length: size }, (_, i) => (i * 7) % config.vocab_size),
      targets: Int32Array.from({ length: size }, (_, i) => (i * 13) % config.vocab_size),
      mask: new Float32Array(size).fill(1),
    };
    const model = engine.createModel(config, { heads: [], seed: 0 });
    const adamW = new ArrayAdamW(model.weights, adam);
    const run = lossRun(config, { kind: 'lm', batch });
    const phases = { feeds: [] as number[], session: [] as number[], clip: [] as number[], adamW: [] as number[] };
    for (let step = 0; step < warmup + rounds; step++) {
      const t0 = performance.now();
      const feeds = run.feeds();
      const t1 = performance.now();
      const { results, weightNames } = await model.run(run.key, run.build, feeds);
      const t2 = performance.now();
      const grads = new Map<string, Float32Array>();
      for (const name of weightNames) grads.set(name, results[gradientOutput(name)].data as Float32Array);
      clipByGlobalNormInPlace(grads, maxGradNorm);
      const t3 = performance.now();
      adamW.apply(grads, learningRate);
      const t4 = performance.now();
      if (step < warmup) continue;
      phases.feeds.push(t1 - t0);
      phases.session.push(t2 - t1);
      phases.clip.push(t3 - t2);
      phases.adamW.push(t4 - t3);
    }
    const cells = Object.entries(phases).map(([name, ms]) => `${name} ${formatSpread(spread(ms), 2)}`);
    console.log(`${label} (${model.parameterCount} weights), ms median (min–max) of ${rounds}: ${cells.join(', ')}`);
    model.dispose();
  }
}

void main();
