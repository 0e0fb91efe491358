/**
 * The training losses on the ONNX autodiff graph (src/trainer/engine/onnxruntime/losses.ts): their
 * values equal src/core's twins (float64), and their gradients match central finite differences.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { bradleyTerryLoss as coreBradleyTerry, dpoLoss, ppoPolicyLoss, ppoValueLoss } from '../../src/core';
import type { DpoLossType } from '../../src/core';
import { DiffGraph } from '../../src/trainer/engine/onnxruntime/autodiff/graph';
import * as loss from '../../src/trainer/engine/onnxruntime/losses';
import { checkGradients, uniform } from './onnxAutodiffHarness';

const VALUE_TOLERANCE = 1e-12;
const GRADIENT_TOLERANCE = 1e-6;
const [rows, columns] = [3, 5];
const random = uniform(17);
const matrix = (scale = 1, offset = 0) =>
  Array.from({ length: rows }, () => Array.from({ length: columns }, () => offset + scale * random()));
const row = (n: number, scale = 1) => Array.from({ length: n }, () => scale * random());
const mask = [
  [1, 1, 1, 0, 0],
  [1, 1, 1, 1, 1],
  [0, 1, 1, 1, 0],
];

/** Runs a float64 graph whose inputs are the given matrices/rows; returns each named output's values. */
async function evaluate(
  inputs: Record<string, number[][] | number[]>,
  build: (g: DiffGraph, names: Record<string, string>) => Record<string, string>,
): Promise<Record<string, number[]>> {
  const g = new DiffGraph('float64');
  const names: Record<string, string> = {};
  const shapeOf = (v: number[][] | number[]) =>
    Array.isArray(v[0]) ? [v.length, (v[0] as number[]).length] : [v.length];
  for (const [name, value] of Object.entries(inputs)) names[name] = g.input(name, shapeOf(value));
  const outputs = build(g, names);
  for (const [name, value] of Object.entries(outputs)) g.output(value, name);
  const session = await ort.InferenceSession.create(g.encode());
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, value] of Object.entries(inputs))
    feeds[name] = new ort.Tensor('float64', Float64Array.from(value.flat()), shapeOf(value));
  const result = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.keys(outputs).map((name) => [name, Array.from(result[name].data as Float64Array)]));
}

const close = (actual: number, expected: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= VALUE_TOLERANCE * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs ${expected}`,
  );

const ppoPolicyInputs = () => {
  const newLogprobs = matrix(0.5, -1);
  return {
    newLogprobs,
    oldLogprobs: newLogprobs.map((r) => r.map((v) => v + 0.6 * random())),
    advantages: matrix(),
    mask,
  };
};

test('onnx losses: the PPO policy loss, clip fraction and approximate KL equal core’s', async () => {
  const inputs = ppoPolicyInputs();
  const cliprange = 0.1;
  const actual = await evaluate(inputs, (g, n) => {
    const result = loss.ppoPolicyLoss(
      g,
      { newLogprobs: n.newLogprobs, oldLogprobs: n.oldLogprobs, advantages: n.advantages, mask: n.mask },
      cliprange,
    );
    return { loss: result.loss, clipFrac: result.clipFrac, approxKl: result.approxKl };
  });
  const expected = ppoPolicyLoss(inputs.newLogprobs, inputs.oldLogprobs, inputs.advantages, mask, cliprange);
  assert.ok(
    expected.clipFrac > 0 && expected.clipFrac < 1,
    `the case clips some tokens and not others: ${expected.clipFrac}`,
  );
  close(actual.loss[0], expected.loss, 'loss');
  close(actual.clipFrac[0], expected.clipFrac, 'clipFrac');
  close(actual.approxKl[0], expected.approxKl, 'approxKl');
});

test('onnx losses: the clipped value loss and its clip fraction equal core’s', async () => {
  const inputs = { newValues: matrix(), oldValues: matrix(), returns: matrix(), mask };
  const actual = await evaluate(inputs, (g, n) => {
    const result = loss.ppoValueLoss(
      g,
      { newValues: n.newValues, oldValues: n.oldValues, returns: n.returns, mask: n.mask },
      0.2,
    );
    return { loss: result.loss, clipFrac: result.clipFrac };
  });
  const expected = ppoValueLoss(inputs.newValues, inputs.oldValues, inputs.returns, mask, 0.2);
  close(actual.loss[0], expected.loss, 'loss');
  close(actual.clipFrac[0], expected.clipFrac, 'clipFrac');
});

test('onnx losses: Bradley–Terry equals core’s', async () => {
  const inputs = { chosen: row(4, 3), rejected: row(4, 3) };
  const actual = await evaluate(inputs, (g, n) => ({ loss: loss.bradleyTerryLoss(g, n.chosen, n.rejected) }));
  close(actual.loss[0], coreBradleyTerry(inputs.chosen, inputs.rejected), 'loss');
});

const dpoCases: { lossType: DpoLossType; labelSmoothing?: number; lengths?: boolean }[] = [
  { lossType: 'sigmoid' },
  { lossType: 'sigmoid', labelSmoothing: 0.1 },
  { lossType: 'hinge' },
  { lossType: 'ipo' },
  { lossType: 'ipo', lengths: true },
];

for (const { lossType, labelSmoothing, lengths } of dpoCases) {
  const smoothing = labelSmoothing ? `, label smoothing ${labelSmoothing}` : '';
  const label = `${lossType}${smoothing}${lengths ? ', per token' : ''}`;
  test(`onnx losses: DPO (${label}) losses and rewards equal core’s; gradients match finite differences`, async () => {
    const beta = 0.5;
    const logprobs = {
      policyChosen: row(4, 4),
      policyRejected: row(4, 4),
      refChosen: row(4, 4),
      refRejected: row(4, 4),
    };
    const lengthRows = { chosenLengths: [3, 1, 7, 2], rejectedLengths: [5, 2, 0, 4] };
    const inputs = lengths ? { ...logprobs, ...lengthRows } : logprobs;
    const options = (n: Record<string, string>) => ({
      beta,
      lossType,
      labelSmoothing,
      ...(lengths ? { chosenLengths: n.chosenLengths, rejectedLengths: n.rejectedLengths } : {}),
    });
    const actual = await evaluate(inputs, (g, n) =>
      loss.dpoLosses(
        g,
        {
          policyChosen: n.policyChosen,
          policyRejected: n.policyRejected,
          refChosen: n.refChosen,
          refRejected: n.refRejected,
        },
        options(n),
      ),
    );
    const expected = dpoLoss(logprobs.policyChosen, logprobs.policyRejected, logprobs.refChosen, logprobs.refRejected, {
      beta,
      lossType,
      labelSmoothing,
      ...(lengths ? lengthRows : {}),
    });
    expected.losses.forEach((v, i) => close(actual.losses[i], v, `losses[${i}]`));
    expected.chosenRewards.forEach((v, i) => close(actual.chosenRewards[i], v, `chosenRewards[${i}]`));
    expected.rejectedRewards.forEach((v, i) => close(actual.rejectedRewards[i], v, `rejectedRewards[${i}]`));

    const check = await checkGradients({
      floats: {
        policyChosen: { shape: [4] },
        policyRejected: { shape: [4] },
        refChosen: { shape: [4], constant: true },
        refRejected: { shape: [4], constant: true },
        ...(lengths
          ? {
              chosenLengths: { shape: [4], constant: true, values: lengthRows.chosenLengths },
              rejectedLengths: { shape: [4], constant: true, values: lengthRows.rejectedLengths },
            }
          : {}),
      },
      build: (g, n) =>
        loss.dpoLosses(
          g,
          {
            policyChosen: n.policyChosen,
            policyRejected: n.policyRejected,
            refChosen: n.refChosen,
            refRejected: n.refRejected,
          },
          options(n),
        ).losses,
    });
    assert.ok(check.worstError <= GRADIENT_TOLERANCE, `worst relative error ${check.worstError.toExponential(2)}`);
  });
}

test('onnx losses: PPO policy, value and Bradley–Terry gradients match finite differences', async () => {
  const constantMask = { shape: [rows, columns], constant: true, values: mask.flat() };
  const policy = await checkGradients({
    floats: {
      newLogprobs: { shape: [rows, columns] },
      oldLogprobs: { shape: [rows, columns], constant: true },
      advantages: { shape: [rows, columns], constant: true },
      mask: constantMask,
    },
    build: (g, n) => {
      const result = loss.ppoPolicyLoss(
        g,
        { newLogprobs: n.newLogprobs, oldLogprobs: n.oldLogprobs, advantages: n.advantages, mask: n.mask },
        0.2,
      );
      return result.loss;
    },
  });
  const value = await checkGradients({
    floats: {
      newValues: { shape: [rows, columns] },
      oldValues: { shape: [rows, columns], constant: true },
      returns: { shape: [rows, columns], constant: true },
      mask: constantMask,
    },
    build: (g, n) =>
      loss.ppoValueLoss(g, { newValues: n.newValues, oldValues: n.oldValues, returns: n.returns, mask: n.mask }, 0.2)
        .loss,
  });
  const bradleyTerry = await checkGradients({
    floats: { chosen: { shape: [4] }, rejected: { shape: [4] } },
    build: (g, n) => loss.bradleyTerryLoss(g, n.chosen, n.rejected),
  });
  for (const [name, check] of Object.entries({ policy, value, bradleyTerry }))
    assert.ok(
      check.worstError <= GRADIENT_TOLERANCE,
      `${name}: worst relative error ${check.worstError.toExponential(2)}`,
    );
});
