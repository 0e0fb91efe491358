/**
 * The SFT loss and every weight's gradient, one run: the ONNX autodiff graph on onnxruntime-node
 * (src/trainer/engine/onnxruntime/gptGraph.ts) against tfjs-wasm's tf.variableGrads of maskedNll, at
 * bench:train's shapes (batch 16 × full context). No optimizer step on either side. Interleaved rounds,
 * medians. Run: node --import tsx bench/onnxGradientBench.ts
 */
import * as ort from 'onnxruntime-node';
import { buildLmLossGraph, lmGraphInputs } from '../src/trainer/engine/onnxruntime/gptGraph';
import { selectBackend } from '../src/trainer/engine/tfjs/backend';
import { Gpt } from '../src/trainer/engine/tfjs/gpt';
import { maskedNll } from '../src/trainer/engine/tfjs/losses';
import { tf } from '../src/trainer/engine/tfjs/tfRuntime';
import type { GptConfig } from '../src/trainer/model/gptConfig';

const configs: Record<string, GptConfig> = {
  '110k': { vocab_size: 96, block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 },
  '850k': { vocab_size: 512, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
};
const batchSize = 16;
const rounds = 7;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

async function benchModel(label: string, config: GptConfig): Promise<Record<string, number | string>> {
  const length = config.block_size;
  const dims = [batchSize, length];
  const buildStart = performance.now();
  const graph = buildLmLossGraph(config, { batchSize, length }, 'float32');
  const buildMs = performance.now() - buildStart;
  const createStart = performance.now();
  const session = await ort.InferenceSession.create(graph.model);
  const createMs = performance.now() - createStart;

  const model = Gpt.create(config, { seed: 1 });
  const ids = Array.from({ length: batchSize * length }, (_, i) => (i * 7) % config.vocab_size);
  const targets = Array.from({ length: batchSize * length }, (_, i) => (i * 13) % config.vocab_size);
  const feeds: Record<string, ort.Tensor> = {
    [lmGraphInputs.ids]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), dims),
    [lmGraphInputs.targets]: new ort.Tensor('int64', BigInt64Array.from(targets.map(BigInt)), dims),
    [lmGraphInputs.mask]: new ort.Tensor('float32', new Float32Array(batchSize * length).fill(1), dims),
  };
  for (const [name, value] of await model.readWeights())
    feeds[name] = new ort.Tensor('float32', value.data, value.shape);
  const idsTensor = tf.tensor2d(ids, [batchSize, length], 'int32');
  const targetsTensor = tf.tensor2d(targets, [batchSize, length], 'int32');
  const maskTensor = tf.ones([batchSize, length]);
  const tfjsGradients = async () => {
    const { value, grads } = tf.variableGrads(
      () => maskedNll(model.forward(idsTensor).logits, targetsTensor, maskTensor) as never,
    );
    await Promise.all([value, ...Object.values(grads)].map((t) => t.data()));
    tf.dispose([value, ...Object.values(grads)]);
  };
  const onnxTimes: number[] = [];
  const tfjsTimes: number[] = [];
  for (let round = 0; round < rounds; round++) {
    onnxTimes.push(await timed(() => session.run(feeds)));
    tfjsTimes.push(await timed(tfjsGradients));
  }
  await session.release();
  model.dispose();
  tf.dispose([idsTensor, targetsTensor, maskTensor]);
  return {
    model: label,
    forward_nodes: graph.forwardNodes,
    backward_nodes: graph.backwardNodes,
    graph_build_ms: Number(buildMs.toFixed(1)),
    session_create_ms: Number(createMs.toFixed(0)),
    onnx_loss_and_grads_ms: Number(median(onnxTimes).toFixed(1)),
    tfjs_wasm_loss_and_grads_ms: Number(median(tfjsTimes).toFixed(1)),
  };
}

async function main(): Promise<void> {
  await selectBackend('wasm');
  for (const [label, config] of Object.entries(configs)) console.log(JSON.stringify(await benchModel(label, config)));
}

void main();
