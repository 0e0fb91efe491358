/**
 * Where the ONNX Runtime engine's PPO loss+gradient session spends its time, by ONNX op type, at
 * bench:rollout's minibatch shape (8 rows × 81 positions, vocab 300, context 96, d 64, 2 layers), one
 * intra-op thread: onnxruntime's own profiler over `runs` session runs, the warm-up excluded.
 * Run: node --import tsx bench/onnxPpoGraphProfile.ts
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { initialGptWeights } from '../src/trainer/model/gptInit';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { buildPpoLossGraph, ppoGraphInputs } from '../src/trainer/engine/onnxruntime/ppoGraph';

const config: GptConfig = { vocab_size: 300, block_size: 96, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 };
const shape = { batchSize: 8, length: 81 };
const promptLength = 18;
const warmup = 3;
const runs = 20;
const topNodes = 25;
const settings = {
  temperature: 1,
  cliprange: 0.2,
  cliprangeValue: 0.2,
  vfCoef: 0.1,
  entropyCoef: 0,
  policyActive: true,
};

async function main(): Promise<void> {
  const graph = buildPpoLossGraph(config, shape, settings, 'float32');
  const prefix = path.join(tmpdir(), `ppo-graph-profile-${process.pid}`);
  const session = await ort.InferenceSession.create(graph.model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const cells = shape.batchSize * shape.length;
  const dims = [shape.batchSize, shape.length];
  const grid = (f: (i: number) => number) =>
    new ort.Tensor(
      'float32',
      Float32Array.from({ length: cells }, (_, i) => f(i)),
      dims,
    );
  const ids = (offset: number) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: cells }, (_, i) => BigInt((i * 31 + offset) % config.vocab_size)),
      dims,
    );
  const feeds: Record<string, ort.Tensor> = {
    [ppoGraphInputs.ids]: ids(0),
    [ppoGraphInputs.targets]: ids(31),
    [ppoGraphInputs.mask]: grid((i) => Number(i % shape.length >= promptLength - 1)),
    [ppoGraphInputs.oldLogprobs]: grid(() => -Math.log(config.vocab_size)),
    [ppoGraphInputs.oldValues]: grid((i) => 0.1 * Math.sin(i)),
    [ppoGraphInputs.advantages]: grid((i) => Math.sin(i)),
    [ppoGraphInputs.returns]: grid((i) => 0.5 * Math.sin(i)),
  };
  for (const [name, w] of initialGptWeights(config, { seed: 0, heads: ['v_head'] }))
    feeds[name] = new ort.Tensor('float32', w.data, [...w.shape]);
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  session.endProfiling(); // the node binding returns no name: the file is the only one with our prefix
  const file = readdirSync(tmpdir())
    .map((name) => path.join(tmpdir(), name))
    .find((name) => name.startsWith(prefix));
  if (!file) throw new Error('no profile written');
  await session.release();
  const events = JSON.parse(readFileSync(file, 'utf8')) as {
    cat: string;
    name: string;
    dur: number;
    args?: { op_name?: string };
  }[];
  rmSync(file);
  const byOp = new Map<string, { us: number; count: number }>();
  const byNode = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
    const entry = byOp.get(e.args.op_name) ?? { us: 0, count: 0 };
    entry.us += e.dur;
    entry.count++;
    byOp.set(e.args.op_name, entry);
    byNode.set(e.name, (byNode.get(e.name) ?? 0) + e.dur);
  }
  const total = [...byOp.values()].reduce((s, e) => s + e.us, 0);
  const perRun = warmup + runs;
  times.sort((a, b) => a - b);
  console.log(`session run: median ${times[runs >> 1].toFixed(2)} ms (min ${times[0].toFixed(2)})`);
  for (const [name, e] of [...byOp].sort((a, b) => b[1].us - a[1].us)) {
    const msPerRun = (e.us / perRun / 1000).toFixed(2).padStart(7);
    const share = ((100 * e.us) / total).toFixed(1).padStart(5);
    console.log(`${name.padEnd(22)} ${msPerRun} ms/run ${share} %  ${e.count / perRun} nodes`);
  }
  console.log('\nslowest nodes (ms/run):');
  for (const [name, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, topNodes))
    console.log(`${name.replace('_kernel_time', '').padEnd(30)} ${(us / perRun / 1000).toFixed(2)}`);
}

void main();
