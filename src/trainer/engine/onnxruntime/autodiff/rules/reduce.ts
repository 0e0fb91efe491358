/** Gradient rules of the reductions over static axes. */
import { elementCount } from '../graph';
import { expand, mul, reshape } from '../ops';
import type { GradientRule, RuleContext } from './rule';
import { outputGrad, perInput } from './rule';

/** The reduced axes (all of them when none are given), non-negative. */
function reducedAxes(c: RuleContext, axes: readonly number[] | undefined): number[] {
  const rank = c.g.shape(c.node.inputs[0]).length;
  const all = Array.from({ length: rank }, (_, i) => i);
  return axes && axes.length > 0 ? axes.map((axis) => (axis < 0 ? axis + rank : axis)) : all;
}

/** dy in x's rank (size 1 on the reduced axes) broadcast back over x's shape. */
function spread(c: RuleContext, axes: readonly number[]): string {
  const xShape = c.g.shape(c.node.inputs[0]);
  const keptShape = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  const dy = outputGrad(c);
  const kept = c.g.shape(dy).join(',') === keptShape.join(',') ? dy : reshape(c.g, dy, keptShape);
  return expand(c.g, kept, xShape);
}

/** y = Σ_axes x: every x element contributes once, so ∂x = dy broadcast back over the reduced axes. */
const reduceSumRule: GradientRule = (c) => {
  const axesName = c.node.inputs[1];
  const axes = reducedAxes(c, axesName ? c.g.intValues(axesName) : undefined);
  return perInput(c, [() => spread(c, axes)]);
};

/** y = mean_axes x: ∂x = dy / n broadcast back, n the number of elements averaged. */
const reduceMeanRule: GradientRule = (c) => {
  const axes = reducedAxes(c, c.node.attributes.axes as number[] | undefined);
  const xShape = c.g.shape(c.node.inputs[0]);
  const count = elementCount(axes.map((axis) => xShape[axis]));
  return perInput(c, [() => mul(c.g, spread(c, axes), c.g.scalar(1 / count))]);
};

export const reduceRules: Record<string, GradientRule> = {
  ReduceSum: reduceSumRule,
  ReduceMean: reduceMeanRule,
};
