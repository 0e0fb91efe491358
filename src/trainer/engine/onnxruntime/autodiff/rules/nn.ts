/** Gradient rules of MatMul, Softmax, LogSoftmax and LayerNormalization. */
import {
  add,
  div,
  exp,
  matMul,
  mul,
  reduceMean,
  reduceSum,
  reshape,
  sqrt,
  sub,
  transpose,
  transposeLast,
} from '../ops';
import type { GradientRule, RuleContext } from './rule';
import { outputGrad, perInput, unbroadcast } from './rule';

/**
 * Y = A·B over the last two axes, leading axes broadcast: ∂A = dY·Bᵀ, ∂B = Aᵀ·dY, each summed over
 * the axes it was broadcast along. A 2-D B under a batched A (a linear layer) folds the batch into the
 * rows instead — Aᵀ·dY as one [k, N]·[N, m] product rather than a batched product and a sum.
 */
const matMulRule: GradientRule = (c) => {
  const { g } = c;
  const [a, b] = c.node.inputs;
  const dy = outputGrad(c);
  const gradA = () => unbroadcast(g, matMul(g, dy, transposeLast(g, b)), g.shape(a));
  const gradB = () => {
    const aShape = g.shape(a);
    if (g.shape(b).length === 2 && aShape.length > 2) {
      const k = aShape[aShape.length - 1];
      const rows = g
        .shape(a)
        .slice(0, -1)
        .reduce((p, d) => p * d, 1);
      const m = g.shape(dy)[g.shape(dy).length - 1];
      return matMul(g, transpose(g, reshape(g, a, [rows, k]), [1, 0]), reshape(g, dy, [rows, m]));
    }
    return unbroadcast(g, matMul(g, transposeLast(g, a), dy), g.shape(b));
  };
  return perInput(c, [gradA, gradB]);
};

function checkLastAxis(c: RuleContext): void {
  const axis = (c.node.attributes.axis ?? -1) as number;
  const rank = c.g.shape(c.node.inputs[0]).length;
  if (axis !== -1 && axis !== rank - 1)
    throw new Error(`autodiff: ${c.node.opType} is differentiated on the last axis`);
}

/** y = softmax(x) on the last axis: ∂x = y ⊙ (dy − Σⱼ dyⱼ yⱼ). */
const softmaxRule: GradientRule = (c) => {
  checkLastAxis(c);
  const { g } = c;
  const y = c.node.outputs[0];
  const dy = outputGrad(c);
  return perInput(c, [() => mul(g, y, sub(g, dy, reduceSum(g, mul(g, dy, y), [-1])))]);
};

/** y = log softmax(x) on the last axis: ∂x = dy − softmax(x) Σⱼ dyⱼ, with softmax(x) = eʸ. */
const logSoftmaxRule: GradientRule = (c) => {
  checkLastAxis(c);
  const { g } = c;
  const dy = outputGrad(c);
  return perInput(c, [() => sub(g, dy, mul(g, exp(g, c.node.outputs[0]), reduceSum(g, dy, [-1])))]);
};

/**
 * y = x̂ ⊙ γ + β over the last axis, x̂ = (x − μ)/σ, σ = √(var + ε) (biased variance, as the op).
 * ∂γ = Σ_rows dy ⊙ x̂, ∂β = Σ_rows dy, and with g = dy ⊙ γ:
 *   ∂x = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / σ
 * (Ba, Kiros & Hinton 2016). μ, σ and x̂ are recomputed from x in the backward graph.
 */
const layerNormRule: GradientRule = (c) => {
  checkLastAxis(c);
  const { g } = c;
  const [x, scale, bias] = c.node.inputs;
  const epsilon = (c.node.attributes.epsilon as { float: number } | undefined)?.float ?? 1e-5;
  const dy = outputGrad(c);
  const centered = sub(g, x, reduceMean(g, x, [-1]));
  const sigma = sqrt(g, add(g, reduceMean(g, mul(g, centered, centered), [-1]), g.scalar(Math.fround(epsilon))));
  const normalized = div(g, centered, sigma);
  const gradX = () => {
    const scaled = mul(g, dy, scale);
    const projection = mul(g, normalized, reduceMean(g, mul(g, scaled, normalized), [-1]));
    return div(g, sub(g, sub(g, scaled, reduceMean(g, scaled, [-1])), projection), sigma);
  };
  return [
    c.needs[0] ? gradX() : undefined,
    c.needs[1] ? unbroadcast(g, mul(g, dy, normalized), g.shape(scale)) : undefined,
    c.needs[2] && bias ? unbroadcast(g, dy, g.shape(bias)) : undefined,
  ];
};

export const nnRules: Record<string, GradientRule> = {
  MatMul: matMulRule,
  Softmax: softmaxRule,
  LogSoftmax: logSoftmaxRule,
  LayerNormalization: layerNormRule,
};
