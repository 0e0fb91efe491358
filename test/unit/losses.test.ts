// Every tensor loss of the tfjs engine (src/trainer/engine/tfjs/losses.ts) against its plain-array twin in
// src/core, to 1e-5: PPO's policy and value losses, Bradley–Terry, DPO (every loss type).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { bradleyTerryLoss, dpoLoss, ppoPolicyLoss, ppoValueLoss, type DpoLossType } from '../../src/core';
import { Random } from '../../src/core/random';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import {
  bradleyTerryLossTensor,
  dpoLossTensor,
  ppoPolicyLossTensor,
  ppoValueLossTensor,
} from '../../src/trainer/engine/tfjs/losses';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';

const close = (a: number, b: number, tolerance = 1e-5) =>
  assert.ok(Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

before(async () => {
  await selectBackend('wasm');
});

test('the tensor PPO losses agree with their core twins to 1e-5', () => {
  const random = new Random(5);
  const shape = [4, 7];
  const matrix = (scale: number) =>
    Array.from({ length: shape[0] }, () => Array.from({ length: shape[1] }, () => random.normal() * scale));
  const mask = Array.from({ length: 4 }, (_, b) => Array.from({ length: 7 }, (_, t) => (t < 3 + b ? 1 : 0)));
  const [newLp, oldLp, advantages, newV, oldV, returns] = [
    matrix(0.3),
    matrix(0.3),
    matrix(1),
    matrix(1),
    matrix(1),
    matrix(1),
  ];
  const core = ppoPolicyLoss(newLp, oldLp, advantages, mask, 0.2);
  const coreValue = ppoValueLoss(newV, oldV, returns, mask, 0.2);
  const t = (m: number[][]) => tf.tensor2d(m);
  const policy = ppoPolicyLossTensor(t(newLp), t(oldLp), t(advantages), t(mask), 0.2);
  const value = ppoValueLossTensor(t(newV), t(oldV), t(returns), t(mask), 0.2);
  close(policy.loss.dataSync()[0], core.loss);
  close(policy.clipFrac.dataSync()[0], core.clipFrac);
  close(policy.approxKl.dataSync()[0], core.approxKl);
  close(value.loss.dataSync()[0], coreValue.loss);
  close(value.clipFrac.dataSync()[0], coreValue.clipFrac);
  assert.ok(core.clipFrac > 0 && core.clipFrac < 1, 'the case exercises clipping');
});

test('the tensor Bradley–Terry loss equals core bradleyTerryLoss, large gaps included', async () => {
  const random = new Random(3);
  const chosen = Array.from({ length: 64 }, (_, i) => random.normal() * (i < 8 ? 40 : 2));
  const rejected = Array.from({ length: 64 }, () => random.normal() * 2);
  const loss = tf.tidy(() => bradleyTerryLossTensor(tf.tensor1d(chosen), tf.tensor1d(rejected)));
  const value = (await loss.data())[0];
  loss.dispose();
  const expected = bradleyTerryLoss(chosen, rejected);
  assert.ok(Math.abs(value - expected) <= 1e-5 * Math.max(1, Math.abs(expected)), `${value} vs ${expected}`);
  const even = tf.tidy(() => bradleyTerryLossTensor(tf.tensor1d([0, 5, -50]), tf.tensor1d([0, 5, 50])));
  assert.ok(Math.abs((await even.data())[0] - bradleyTerryLoss([0, 5, -50], [0, 5, 50])) <= 1e-5);
  even.dispose();
});

test('the tfjs DPO loss equals core dpoLoss for every loss type', async () => {
  const random = new Random(3);
  const n = 64;
  const logps = () => Array.from({ length: n }, () => Math.fround(-40 * random.next() - 1));
  const [policyChosen, policyRejected, refChosen, refRejected] = [logps(), logps(), logps(), logps()];
  const chosenLengths = Array.from({ length: n }, () => 1 + random.int(30));
  const rejectedLengths = Array.from({ length: n }, () => 1 + random.int(30));
  const cases: { lossType: DpoLossType; beta: number; labelSmoothing: number }[] = [
    { lossType: 'sigmoid', beta: 0.1, labelSmoothing: 0 },
    { lossType: 'sigmoid', beta: 0.5, labelSmoothing: 0.2 },
    { lossType: 'hinge', beta: 0.1, labelSmoothing: 0 },
    { lossType: 'ipo', beta: 0.1, labelSmoothing: 0 },
  ];
  for (const options of cases) {
    const expected = dpoLoss(policyChosen, policyRejected, refChosen, refRejected, {
      ...options,
      chosenLengths,
      rejectedLengths,
    });
    const tensors = tf.tidy(() => {
      const out = dpoLossTensor(
        tf.tensor1d(policyChosen),
        tf.tensor1d(policyRejected),
        tf.tensor1d(refChosen),
        tf.tensor1d(refRejected),
        { ...options, chosenLengths: tf.tensor1d(chosenLengths), rejectedLengths: tf.tensor1d(rejectedLengths) },
      );
      return [out.losses, out.chosenRewards, out.rejectedRewards];
    });
    const [losses, chosenRewards, rejectedRewards] = await Promise.all(
      tensors.map(async (tensor) => Array.from(await tensor.data())),
    );
    tf.dispose(tensors);
    const close = (name: string, actual: number[], wanted: number[]) =>
      wanted.forEach((value, i) =>
        assert.ok(
          Math.abs(actual[i] - value) <= 1e-5 * Math.max(1, Math.abs(value)),
          `${options.lossType} ${name}[${i}]: ${actual[i]} vs ${value}`,
        ),
      );
    close('losses', losses, expected.losses);
    close('chosenRewards', chosenRewards, expected.chosenRewards);
    close('rejectedRewards', rejectedRewards, expected.rejectedRewards);
    assert.ok(
      expected.losses.some((loss) => loss > 0),
      `${options.lossType}: a degenerate case`,
    );
  }
});
