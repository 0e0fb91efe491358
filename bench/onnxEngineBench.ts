/**
 * A full SFT optimizer step through the engine seam (forward, loss, backward, global-norm clipping,
 * AdamW) on the ONNX Runtime engine (src/trainer/engine/onnxruntime/onnxEngine.ts) against the tfjs
 * engine on wasm, at bench:train's shapes (batch 16 × full context), from the same weights. Interleaved
 * rounds, medians (min–max); the first step of each (graph build, session creation) is reported apart.
 * Run: node --import tsx bench/onnxEngineBench.ts
 */
import type { EngineOptimizer, LossSpec } from '../src/trainer/engine/engine';
import { OnnxEngine } from '../src/trainer/engine/onnxruntime/onnxEngine';
import { selectBackend } from '../src/trainer/engine/tfjs/backend';
import { TfjsEngine } from '../src/trainer/engine/tfjs/tfjsEngine';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { generate } from '../src/trainer/sampling/sampler';

const configs: Record<string, GptConfig> = {
  '110k': { vocab_size: 96, block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 },
  '850k': { vocab_size: 512, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
};
const batchSize = 16;
const rounds = 9;
const adam = { adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8, weightDecay: 0.01 };
const stepOptions = { learningRate: 1e-3, maxGradNorm: 1 };

const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
const summary = (values: number[]) => {
  const s = sorted(values);
  return `${s[s.length >> 1].toFixed(1)} (${s[0].toFixed(1)}–${s[s.length - 1].toFixed(1)})`;
};

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

async function main(): Promise<void> {
  const tfjs = new TfjsEngine(await selectBackend('wasm'), generate);
  const onnx = new OnnxEngine();
  for (const [label, config] of Object.entries(configs)) {
    const length = config.block_size;
    const size = batchSize * length;
    const spec: LossSpec = {
      kind: 'lm',
      batch: {
        batchSize,
        length,
        inputs: Int32Array.from({ length: size }, (_, i) => (i * 7) % config.vocab_size),
        targets: Int32Array.from({ length: size }, (_, i) => (i * 13) % config.vocab_size),
        mask: new Float32Array(size).fill(1),
      },
    };
    const tfModel = tfjs.createModel(config, { heads: [], seed: 1 });
    const ortModel = onnx.createModel(config, { heads: [], seed: 1 });
    const optimizers: Record<string, EngineOptimizer> = {
      onnxruntime: ortModel.createOptimizer(adam),
      'tfjs-wasm': tfModel.createOptimizer(adam),
    };
    const first: Record<string, number> = {};
    const times: Record<string, number[]> = {};
    for (const [name, optimizer] of Object.entries(optimizers)) {
      first[name] = await timed(() => optimizer.step(spec, stepOptions));
      times[name] = [];
    }
    for (let round = 0; round < rounds; round++)
      for (const [name, optimizer] of Object.entries(optimizers))
        times[name].push(await timed(() => optimizer.step(spec, stepOptions)));
    const ratio = sorted(times['tfjs-wasm'])[rounds >> 1] / sorted(times.onnxruntime)[rounds >> 1];
    console.log(`${label} (${ortModel.parameterCount} weights), batch ${batchSize} × ${length}, ms per step:`);
    for (const name of Object.keys(optimizers))
      console.log(`  ${name.padEnd(12)} first ${first[name].toFixed(0)}, then ${summary(times[name])}`);
    console.log(`  tfjs / onnxruntime: ${ratio.toFixed(2)}×`);
    tfModel.dispose();
    ortModel.dispose();
  }
}

void main();
