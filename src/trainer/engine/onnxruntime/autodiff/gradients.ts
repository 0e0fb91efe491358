/**
 * Reverse-mode differentiation over a DiffGraph: `gradients(g, loss, wrt)` appends the backward nodes to
 * the same graph and returns, for each name in `wrt`, the value holding ∂loss/∂name.
 *
 * Only values on a path from some `wrt` to the loss get gradients (others are never built); a value
 * used several times sums its contributions with Add. Each op's rule lives in rules/ with its math; a
 * composite (DiffGraph.composite, e.g. tanh-GELU) has one rule for its whole run of nodes.
 */
import type { DiffGraph } from './graph';
import { add, expand } from './ops';
import { elementwiseRules } from './rules/elementwise';
import { nnRules } from './rules/nn';
import { reduceRules } from './rules/reduce';
import type { GradientRule } from './rules/rule';
import { shapeRules } from './rules/shape';

const rules: Readonly<Record<string, GradientRule>> = {
  ...elementwiseRules,
  ...shapeRules,
  ...reduceRules,
  ...nnRules,
};

/** The op types `gradients` can differentiate through. */
export const differentiableOps: readonly string[] = Object.keys(rules).sort();

export function gradients(g: DiffGraph, loss: string, wrt: readonly string[]): Map<string, string> {
  const forward = g.nodes.slice(); // the backward nodes appended below are not walked
  const dependsOnWrt = new Set(wrt);
  for (const node of forward)
    if (node.inputs.some((input) => dependsOnWrt.has(input))) node.outputs.forEach((y) => dependsOnWrt.add(y));
  const reachesLoss = new Set([loss]);
  for (let i = forward.length - 1; i >= 0; i--)
    if (forward[i].outputs.some((y) => reachesLoss.has(y))) forward[i].inputs.forEach((x) => reachesLoss.add(x));
  const needsGrad = (name: string) =>
    name !== '' && dependsOnWrt.has(name) && reachesLoss.has(name) && g.info(name).kind === 'float';

  const contributions = new Map<string, string[]>();
  /** The gradient of a value: its contributions summed (once, then cached as a single term). */
  const total = (name: string): string | undefined => {
    const terms = contributions.get(name);
    if (!terms || terms.length === 0) return undefined;
    const sum = terms.slice(1).reduce((acc, term) => add(g, acc, term), terms[0]);
    contributions.set(name, [sum]);
    return sum;
  };
  const contribute = (name: string, grad: string) =>
    contributions.set(name, [...(contributions.get(name) ?? []), grad]);

  const lossShape = g.shape(loss);
  contribute(loss, lossShape.length === 0 ? g.scalar(1) : expand(g, g.scalar(1), lossShape)); // ∂loss/∂loss = 1
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    const composite = g.composites.get(node.outputs[0]);
    if (composite) {
      // One rule for the whole run of nodes; the nodes inside get no gradients of their own.
      const dy = total(node.outputs[0]);
      if (dy !== undefined && needsGrad(composite.input)) contribute(composite.input, composite.backward(dy));
      i = composite.firstNode;
      continue;
    }
    const needs = node.inputs.map(needsGrad);
    if (!needs.some(Boolean)) continue;
    const outputGrads = node.outputs.map(total);
    if (outputGrads.every((grad) => grad === undefined)) continue;
    const rule = rules[node.opType];
    if (!rule) throw new Error(`autodiff: no gradient rule for ${node.opType}`);
    const inputGrads = rule({ g, node, outputGrads, needs });
    node.inputs.forEach((input, k) => {
      const grad = inputGrads[k];
      if (needs[k] && grad !== undefined) contribute(input, grad);
    });
  }
  // A weight no path reaches gets zeros, so callers always receive a gradient of the weight's shape.
  return new Map(wrt.map((name) => [name, total(name) ?? expand(g, g.scalar(0), g.shape(name))]));
}
