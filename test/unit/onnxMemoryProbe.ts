/**
 * Run as a child process by memoryGuard.test.ts: two SFT (lm) steps of the ONNX Runtime engine, with the
 * engine's own session settings, on the model shape and batch given as JSON in argv[2]; prints the peak RSS
 * over the process's RSS before the model was made, in bytes. A child, so that the peak is this step's alone.
 */
import { OnnxEngine } from '../../src/trainer/engine/onnxruntime/onnxEngine';
import type { ModelShape } from '../../src/trainer/memoryGuard';

async function probe(shape: ModelShape, batchSize: number): Promise<number> {
  const baseline = process.memoryUsage().rss;
  const model = new OnnxEngine().createModel({ ...shape, dropout: 0 }, { heads: [], seed: 3 });
  const optimizer = model.createOptimizer({ adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0.1 });
  const size = batchSize * shape.block_size;
  const batch = {
    batchSize,
    length: shape.block_size,
    inputs: Int32Array.from({ length: size }, (_, i) => (i * 31) % shape.vocab_size),
    targets: Int32Array.from({ length: size }, (_, i) => (i * 17) % shape.vocab_size),
    mask: new Float32Array(size).fill(1),
  };
  for (let step = 0; step < 2; step++)
    await optimizer.step({ kind: 'lm', batch }, { learningRate: 1e-3, maxGradNorm: 1 });
  const peak = process.resourceUsage().maxRSS * 1024; // kilobytes
  model.dispose();
  return peak - baseline;
}

const { shape, batchSize } = JSON.parse(process.argv[2]) as { shape: ModelShape; batchSize: number };
probe(shape, batchSize).then((bytes) => process.stdout.write(`${bytes}\n`));
