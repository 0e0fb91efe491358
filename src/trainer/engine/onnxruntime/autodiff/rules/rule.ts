/**
 * The shape of a gradient rule and the helper every broadcasting rule shares. A rule gets the forward
 * node, the gradient of each of its outputs (undefined where no path reaches the loss) and which inputs
 * need a gradient, and returns the gradient of each input (undefined for constants and skipped inputs).
 */
import type { DiffGraph, GraphNode, Shape } from '../graph';
import { reduceSum, reshape } from '../ops';

export interface RuleContext {
  readonly g: DiffGraph;
  readonly node: GraphNode;
  readonly outputGrads: readonly (string | undefined)[];
  readonly needs: readonly boolean[];
}

export type GradientRule = (context: RuleContext) => (string | undefined)[];

/** The gradient of a single-output node's output (a rule only runs when one exists). */
export function outputGrad(context: RuleContext): string {
  const grad = context.outputGrads[0];
  if (grad === undefined) throw new Error(`autodiff: ${context.node.opType} called without an output gradient`);
  return grad;
}

/**
 * Undoes numpy broadcasting: if x of shape `target` was broadcast to the gradient's shape, ∂L/∂x sums
 * the gradient over the broadcast axes — the extra leading axes and every axis where x had size 1.
 * Shapes are static, so this is one ReduceSum over known axes and a Reshape (or nothing).
 */
export function unbroadcast(g: DiffGraph, grad: string, target: Shape): string {
  const shape = g.shape(grad);
  const offset = shape.length - target.length;
  const axes = shape.flatMap((d, i) => (i < offset || (target[i - offset] === 1 && d !== 1) ? [i] : []));
  // Only leading axes summed (a bias under a batch): dropping them gives the target's shape, no Reshape node.
  const onlyLeading = axes.length === offset;
  const summed = axes.length > 0 ? reduceSum(g, grad, axes, !onlyLeading) : grad;
  return g.shape(summed).join(',') === target.join(',') ? summed : reshape(g, summed, target);
}

/** Maps each input that needs a gradient through `compute`; the others get undefined. */
export function perInput(context: RuleContext, compute: ((input: string) => string)[]): (string | undefined)[] {
  return context.node.inputs.map((input, i) => (context.needs[i] && compute[i] ? compute[i](input) : undefined));
}
