/**
 * Gradient rules of the ops that move elements without changing them: the gradient is moved back the
 * same way (reshaped, transposed inversely, padded, split, concatenated or scattered).
 */
import { concat, expand, reshape, split, transpose, unsqueeze } from '../ops';
import type { GradientRule, RuleContext } from './rule';
import { outputGrad, perInput, unbroadcast } from './rule';

/** Reshape, Squeeze, Unsqueeze: y has x's elements in another shape; ∂x = reshape(dy, shape(x)). */
const reshapeRule: GradientRule = (c) => perInput(c, [(x) => reshape(c.g, outputGrad(c), c.g.shape(x))]);

/** y = transpose(x, perm): ∂x = transpose(dy, perm⁻¹). */
const transposeRule: GradientRule = (c) => {
  const perm = c.node.attributes.perm as number[];
  const inverse = perm.map((_, axis) => perm.indexOf(axis));
  return perInput(c, [() => transpose(c.g, outputGrad(c), inverse)]);
};

/**
 * y = x[starts:ends] on static axes (step 1): ∂x is dy padded with zeros back to x's shape — before
 * each sliced axis by its start, after it by what the end cut off.
 */
const sliceRule: GradientRule = (c) => {
  const [x, startsName, , axesName, stepsName] = c.node.inputs; // the ends are implied by the output shape
  if (stepsName && c.g.intValues(stepsName).some((step) => step !== 1)) throw new Error('autodiff: Slice step ≠ 1');
  const shape = c.g.shape(x);
  const rank = shape.length;
  const starts = c.g.intValues(startsName);
  const axes = axesName ? c.g.intValues(axesName) : starts.map((_, i) => i);
  const yShape = c.g.shape(c.node.outputs[0]);
  const pads = new Array<number>(2 * rank).fill(0);
  axes.forEach((axis, i) => {
    const a = axis < 0 ? axis + rank : axis;
    const start = Math.min(Math.max(starts[i] < 0 ? starts[i] + shape[a] : starts[i], 0), shape[a]);
    pads[a] = start;
    pads[rank + a] = shape[a] - start - yShape[a];
  });
  const dy = outputGrad(c);
  const padded = () =>
    c.g.node1('Pad', [dy, c.g.int64(pads), c.g.scalar(0)], { mode: 'constant' }, { shape, kind: 'float' });
  return perInput(c, [padded]);
};

/** y = concat(x₁…xₙ, axis): ∂xᵢ is the piece of dy at xᵢ's place — one Split. */
const concatRule: GradientRule = (c) => {
  const axis = c.node.attributes.axis as number;
  const rank = c.g.shape(c.node.inputs[0]).length;
  const a = axis < 0 ? axis + rank : axis;
  const pieces = split(
    c.g,
    outputGrad(c),
    c.node.inputs.map((x) => c.g.shape(x)[a]),
    a,
  );
  return c.node.inputs.map((_, i) => (c.needs[i] ? pieces[i] : undefined));
};

/** [y₁…yₙ] = split(x, sizes, axis): ∂x = concat(dy₁…dyₙ), zeros for outputs no path reaches. */
const splitRule: GradientRule = (c) => {
  const axis = c.node.attributes.axis as number;
  const pieces = c.node.outputs.map((y, i) => c.outputGrads[i] ?? expand(c.g, c.g.scalar(0), c.g.shape(y)));
  return perInput(c, [() => concat(c.g, pieces, axis)]);
};

/** y = expand(x, shape): broadcasting, undone by a sum. */
const expandRule: GradientRule = (c) => perInput(c, [(x) => unbroadcast(c.g, outputGrad(c), c.g.shape(x))]);

/**
 * y = data[indices] (Gather on axis 0, an embedding lookup): ∂data[v] = Σ over the positions p with
 * indices[p] = v of dy[p]. One ScatterND with reduction "add" into zeros accumulates repeated indices.
 */
const gatherRule: GradientRule = (c: RuleContext) => {
  if ((c.node.attributes.axis ?? 0) !== 0) throw new Error('autodiff: Gather is differentiated on axis 0 only');
  const [data, indices] = c.node.inputs;
  const dataShape = c.g.shape(data);
  const scatter = () => {
    const zeros = expand(c.g, c.g.scalar(0), dataShape);
    const positions = unsqueeze(c.g, indices, [-1]); // [..., 1]: one index into data's first axis
    const inputs = [zeros, positions, outputGrad(c)];
    return c.g.node1('ScatterND', inputs, { reduction: 'add' }, { shape: dataShape, kind: 'float' });
  };
  return [c.needs[0] ? scatter() : undefined, undefined];
};

/**
 * y = GatherElements(data, indices, axis): each element of y is one element of data, so ∂data is dy
 * scattered back to the picked places, zeros elsewhere — one ScatterElements into zeros. Reduction "add"
 * sums the gradients of an element picked more than once.
 */
const gatherElementsRule: GradientRule = (c: RuleContext) => {
  const [data, indices] = c.node.inputs;
  const dataShape = c.g.shape(data);
  const scatter = () => {
    const zeros = expand(c.g, c.g.scalar(0), dataShape);
    const attributes = { axis: c.node.attributes.axis ?? 0, reduction: 'add' };
    return c.g.node1('ScatterElements', [zeros, indices, outputGrad(c)], attributes, {
      shape: dataShape,
      kind: 'float',
    });
  };
  return [c.needs[0] ? scatter() : undefined, undefined];
};

export const shapeRules: Record<string, GradientRule> = {
  Reshape: reshapeRule,
  Squeeze: reshapeRule,
  Unsqueeze: reshapeRule,
  Transpose: transposeRule,
  Slice: sliceRule,
  Concat: concatRule,
  Split: splitRule,
  Expand: expandRule,
  Gather: gatherRule,
  GatherElements: gatherElementsRule,
};
