/**
 * The preference graphs on the ONNX autodiff (src/trainer/engine/onnxruntime/preferenceGraphs.ts)
 * against the tfjs engine's lossGraph for the same specs: Bradley–Terry with both score poolings, and
 * DPO (sigmoid with label smoothing, IPO per token, hinge) — loss and every weight's gradient, float32.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { BradleyTerryLoss, DpoLoss, LossSpec } from '../../src/trainer/engine/engine';
import {
  bradleyTerryGraphInputs,
  buildBradleyTerryGraph,
  buildDpoGraph,
  dpoGraphInputs,
  type PreferenceGraph,
} from '../../src/trainer/engine/onnxruntime/preferenceGraphs';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { lossGraph } from '../../src/trainer/engine/tfjs/lossGraphs';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { GptConfig, ScalarHead, ScorePooling } from '../../src/trainer/model/gptConfig';
import { assertGradientsMatch, tokenBatch, uniform } from './onnxAutodiffHarness';

before(async () => {
  await selectBackend('wasm');
});

const baseConfig: GptConfig = { vocab_size: 40, block_size: 12, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
const LOSS_TOLERANCE = 1e-5;
const ints = (values: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(Array.from(values), (v) => BigInt(v)),
    dims,
  );
const floats = (values: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor('float32', Float32Array.from(values), dims);

/** Runs `graph` with the model's weights and `feeds`; checks loss and gradients against tfjs's `spec`. */
async function compareWithTfjs(
  config: GptConfig,
  heads: readonly ScalarHead[],
  spec: LossSpec,
  graph: PreferenceGraph,
  feeds: Record<string, ort.Tensor>,
): Promise<void> {
  const model = Gpt.create(config, { seed: 5, heads });
  const grads = new Map<string, Float32Array>();
  let expectedLoss = 0;
  tf.tidy(() => {
    const { value, grads: byVariable } = tf.variableGrads(() => lossGraph(model, spec).loss as never);
    expectedLoss = value.dataSync()[0];
    for (const [name, variable] of model.weights) grads.set(name, byVariable[variable.name].dataSync() as Float32Array);
  });
  for (const [name, value] of await model.readWeights()) feeds[name] = floats(value.data, value.shape);
  model.dispose();
  const session = await ort.InferenceSession.create(graph.model);
  const result = await session.run(feeds);
  await session.release();
  const loss = result.loss.data[0] as number;
  assert.ok(Math.abs(loss - expectedLoss) <= LOSS_TOLERANCE * Math.max(1, expectedLoss), `${loss} vs ${expectedLoss}`);
  assertGradientsMatch(result, graph.weightNames, grads);
}

for (const pooling of ['last', 'sum'] as ScorePooling[]) {
  test(`onnx preference graphs: Bradley–Terry (${pooling} pooling) equals tfjs's loss and gradients`, async () => {
    const config = { ...baseConfig, score_pooling: pooling };
    const [rows, length] = [4, 9];
    const lengths = [9, 5, 7, 3];
    const batch = tokenBatch(rows, length, config.vocab_size, 2);
    const spec: BradleyTerryLoss = {
      kind: 'bradleyTerry',
      scores: { batchSize: rows, length, ids: Int32Array.from(batch.ids), lengths },
      chosenRows: [0, 2, 1],
      rejectedRows: [1, 3, 3],
    };
    const pick = lengths.flatMap((n) =>
      Array.from({ length }, (_, t) => (pooling === 'last' ? Number(t === n - 1) : Number(t < n))),
    );
    const oneHot = (picked: readonly number[]) =>
      picked.flatMap((row) => Array.from({ length: rows }, (_, n) => Number(n === row)));
    const pairs = spec.chosenRows.length;
    const feeds = {
      [bradleyTerryGraphInputs.ids]: ints(batch.ids, [rows, length]),
      [bradleyTerryGraphInputs.pick]: floats(pick, [rows, length]),
      [bradleyTerryGraphInputs.biasCount]: floats(
        lengths.map((n) => (pooling === 'sum' ? n - 1 : 0)),
        [rows],
      ),
      [bradleyTerryGraphInputs.chosen]: floats(oneHot(spec.chosenRows), [pairs, rows]),
      [bradleyTerryGraphInputs.rejected]: floats(oneHot(spec.rejectedRows), [pairs, rows]),
    };
    const graph = buildBradleyTerryGraph(config, { batchSize: rows, length }, pairs, 'float32');
    await compareWithTfjs(config, ['score'], spec, graph, feeds);
  });
}

const dpoSettings: Pick<DpoLoss, 'lossType' | 'labelSmoothing'>[] = [
  { lossType: 'sigmoid', labelSmoothing: 0.1 },
  { lossType: 'ipo' },
  { lossType: 'hinge' },
];

for (const settings of dpoSettings) {
  test(`onnx preference graphs: DPO (${settings.lossType}) equals tfjs's loss and gradients`, async () => {
    const [pairs, length] = [3, 10];
    const batch = tokenBatch(2 * pairs, length, baseConfig.vocab_size, 4);
    const random = uniform(8);
    const perPair = () =>
      Array.from({ length: pairs }, () => (-length * Math.log(baseConfig.vocab_size)) / 2 + random());
    const spec: DpoLoss = {
      kind: 'dpo',
      batch: {
        batchSize: 2 * pairs,
        length,
        inputs: Int32Array.from(batch.ids),
        targets: Int32Array.from(batch.targets),
        mask: Float32Array.from(batch.mask),
      },
      refChosen: perPair(),
      refRejected: perPair(),
      beta: 0.3,
      chosenLengths: [5, 5, 5],
      rejectedLengths: [5, 5, 5],
      ...settings,
    };
    const dims = [2 * pairs, length];
    const feeds = {
      [dpoGraphInputs.ids]: ints(batch.ids, dims),
      [dpoGraphInputs.targets]: ints(batch.targets, dims),
      [dpoGraphInputs.mask]: floats(batch.mask, dims),
      [dpoGraphInputs.refChosen]: floats(spec.refChosen, [pairs]),
      [dpoGraphInputs.refRejected]: floats(spec.refRejected, [pairs]),
      [dpoGraphInputs.chosenLengths]: floats(spec.chosenLengths, [pairs]),
      [dpoGraphInputs.rejectedLengths]: floats(spec.rejectedLengths, [pairs]),
    };
    const graph = buildDpoGraph(
      baseConfig,
      { batchSize: 2 * pairs, length },
      { beta: spec.beta, ...settings },
      'float32',
    );
    await compareWithTfjs(baseConfig, [], spec, graph, feeds);
  });
}
