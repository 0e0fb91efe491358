/**
 * Gradient rules of the elementwise ops. y is the node's output, dy = ∂L/∂y; binary ops broadcast
 * (numpy), so each input's gradient is unbroadcast back to that input's static shape.
 */
import { compare, and, div, mul, neg, pow, sigmoid, sign, sub, where } from '../ops';
import type { GradientRule, RuleContext } from './rule';
import { outputGrad, perInput, unbroadcast } from './rule';

function binaryRule(
  dA: (c: RuleContext, dy: string) => string,
  dB: (c: RuleContext, dy: string) => string,
): GradientRule {
  return (c) => {
    const dy = outputGrad(c);
    const [a, b] = c.node.inputs;
    return perInput(c, [
      () => unbroadcast(c.g, dA(c, dy), c.g.shape(a)),
      () => unbroadcast(c.g, dB(c, dy), c.g.shape(b)),
    ]);
  };
}

const input = (c: RuleContext, i: number) => c.node.inputs[i];
const output = (c: RuleContext) => c.node.outputs[0];

/** y = a + b: ∂a = dy, ∂b = dy. */
const addRule = binaryRule(
  (_, dy) => dy,
  (_, dy) => dy,
);
/** y = a − b: ∂a = dy, ∂b = −dy. */
const subRule = binaryRule(
  (_, dy) => dy,
  (c, dy) => neg(c.g, dy),
);
/** y = a·b: ∂a = dy·b, ∂b = dy·a. */
const mulRule = binaryRule(
  (c, dy) => mul(c.g, dy, input(c, 1)),
  (c, dy) => mul(c.g, dy, input(c, 0)),
);
/** y = a/b: ∂a = dy/b, ∂b = −dy·a/b² = −(dy/b)·y. */
const divRule = binaryRule(
  (c, dy) => div(c.g, dy, input(c, 1)),
  (c, dy) => neg(c.g, mul(c.g, div(c.g, dy, input(c, 1)), output(c))),
);

/** y = xᵖ with a constant p: ∂x = dy·p·xᵖ⁻¹. The exponent gets no gradient. */
const powRule: GradientRule = (c) => {
  if (c.needs[1]) throw new Error('autodiff: Pow differentiates only its base (the exponent must be a constant)');
  const [x, p] = c.node.inputs;
  const local = mul(c.g, p, pow(c.g, x, sub(c.g, p, c.g.scalar(1))));
  return [unbroadcast(c.g, mul(c.g, outputGrad(c), local), c.g.shape(x)), undefined];
};

/**
 * y = max(a, b): dy goes to the larger operand (to a on ties, as a subgradient); min likewise to the
 * smaller. The mask is a comparison of the forward inputs.
 */
function minMaxRule(bWins: 'Less' | 'Greater'): GradientRule {
  return (c) => {
    const [a, b] = c.node.inputs;
    const dy = outputGrad(c);
    const mask = compare(c.g, bWins, a, b); // max: a < b; min: a > b
    const zero = c.g.scalar(0);
    return perInput(c, [
      () => unbroadcast(c.g, where(c.g, mask, zero, dy), c.g.shape(a)),
      () => unbroadcast(c.g, where(c.g, mask, dy, zero), c.g.shape(b)),
    ]);
  };
}

/** y = where(m, a, b) with a constant mask m: ∂a = where(m, dy, 0), ∂b = where(m, 0, dy). */
const whereRule: GradientRule = (c) => {
  const [condition, a, b] = c.node.inputs;
  const dy = outputGrad(c);
  const zero = c.g.scalar(0);
  if (c.needs[0]) throw new Error('autodiff: the condition of Where is not differentiable');
  return [
    undefined,
    c.needs[1] ? unbroadcast(c.g, where(c.g, condition, dy, zero), c.g.shape(a)) : undefined,
    c.needs[2] ? unbroadcast(c.g, where(c.g, condition, zero, dy), c.g.shape(b)) : undefined,
  ];
};

/** y = clip(x, lo, hi) with constant bounds: ∂x = dy where lo ≤ x ≤ hi, else 0 (tfjs's clipByValue). */
const clipRule: GradientRule = (c) => {
  const [x, lo, hi] = c.node.inputs;
  if (c.needs[1] || c.needs[2]) throw new Error('autodiff: the bounds of Clip must be constants');
  const inside = and(c.g, compare(c.g, 'LessOrEqual', lo, x), compare(c.g, 'LessOrEqual', x, hi));
  return [where(c.g, inside, outputGrad(c), c.g.scalar(0)), undefined, undefined];
};

function unaryRule(local: (c: RuleContext, dy: string) => string): GradientRule {
  return (c) => perInput(c, [() => local(c, outputGrad(c))]);
}

const one = (c: RuleContext) => c.g.scalar(1);

export const elementwiseRules: Record<string, GradientRule> = {
  Add: addRule,
  Sub: subRule,
  Mul: mulRule,
  Div: divRule,
  Pow: powRule,
  Max: minMaxRule('Less'),
  Min: minMaxRule('Greater'),
  Where: whereRule,
  Clip: clipRule,
  /** y = x: ∂x = dy. */
  Identity: unaryRule((_, dy) => dy),
  /** y = −x: ∂x = −dy. */
  Neg: unaryRule((c, dy) => neg(c.g, dy)),
  /** y = eˣ: ∂x = dy·y. */
  Exp: unaryRule((c, dy) => mul(c.g, dy, output(c))),
  /** y = log x: ∂x = dy/x. */
  Log: unaryRule((c, dy) => div(c.g, dy, input(c, 0))),
  /** y = √x: ∂x = dy/(2y). */
  Sqrt: unaryRule((c, dy) => div(c.g, dy, mul(c.g, c.g.scalar(2), output(c)))),
  /** y = tanh x: ∂x = dy·(1 − y²). */
  Tanh: unaryRule((c, dy) => mul(c.g, dy, sub(c.g, one(c), mul(c.g, output(c), output(c))))),
  /** y = σ(x): ∂x = dy·y·(1 − y). */
  Sigmoid: unaryRule((c, dy) => mul(c.g, dy, mul(c.g, output(c), sub(c.g, one(c), output(c))))),
  /** y = log(1 + eˣ): ∂x = dy·σ(x). */
  Softplus: unaryRule((c, dy) => mul(c.g, dy, sigmoid(c.g, input(c, 0)))),
  /** y = |x|: ∂x = dy·sign(x) (0 at 0, a subgradient). */
  Abs: unaryRule((c, dy) => mul(c.g, dy, sign(c.g, input(c, 0)))),
  /** y = sign(x): zero almost everywhere. */
  Sign: () => [undefined],
};
