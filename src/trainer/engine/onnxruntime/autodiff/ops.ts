/**
 * Forward ops over a DiffGraph with static shape inference (numpy broadcasting, ONNX opset 17
 * semantics). The models, the losses and the gradient rules all build their nodes through these.
 */
import type { DiffGraph, Shape } from './graph';

/** numpy broadcasting of two shapes (right-aligned; a 1 stretches). */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`autodiff: cannot broadcast [${a}] with [${b}]`);
    return da === 1 ? db : da;
  });
}

const normalizeAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

type Binary = 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Min' | 'Max';

function binary(g: DiffGraph, opType: Binary, a: string, b: string): string {
  return g.node1(opType, [a, b], {}, { shape: broadcastShapes(g.shape(a), g.shape(b)), kind: 'float' });
}
export const add = (g: DiffGraph, a: string, b: string) => binary(g, 'Add', a, b);
export const sub = (g: DiffGraph, a: string, b: string) => binary(g, 'Sub', a, b);
export const mul = (g: DiffGraph, a: string, b: string) => binary(g, 'Mul', a, b);
export const div = (g: DiffGraph, a: string, b: string) => binary(g, 'Div', a, b);
/** x^p with p a constant (a scalar made by `g.scalar`). */
export const pow = (g: DiffGraph, x: string, p: string) => binary(g, 'Pow', x, p);
export const min = (g: DiffGraph, a: string, b: string) => binary(g, 'Min', a, b);
export const max = (g: DiffGraph, a: string, b: string) => binary(g, 'Max', a, b);

type Unary = 'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Tanh' | 'Sigmoid' | 'Softplus' | 'Identity' | 'Abs' | 'Sign';

function unary(g: DiffGraph, opType: Unary, x: string): string {
  return g.node1(opType, [x], {}, { shape: g.shape(x), kind: 'float' });
}
export const neg = (g: DiffGraph, x: string) => unary(g, 'Neg', x);
export const exp = (g: DiffGraph, x: string) => unary(g, 'Exp', x);
export const log = (g: DiffGraph, x: string) => unary(g, 'Log', x);
export const sqrt = (g: DiffGraph, x: string) => unary(g, 'Sqrt', x);
export const tanh = (g: DiffGraph, x: string) => unary(g, 'Tanh', x);
export const sigmoid = (g: DiffGraph, x: string) => unary(g, 'Sigmoid', x);
export const identity = (g: DiffGraph, x: string) => unary(g, 'Identity', x);
export const abs = (g: DiffGraph, x: string) => unary(g, 'Abs', x);
export const sign = (g: DiffGraph, x: string) => unary(g, 'Sign', x);
/**
 * softplus(x) = log(1 + eˣ). ONNX Runtime's Softplus kernel is float32 only, so float64 graphs compose
 * the stable form max(x, 0) + log(1 + e^(−|x|)); float32 graphs use the kernel (its rule is in unary.ts).
 */
export function softplus(g: DiffGraph, x: string): string {
  if (g.floatType === 'float32') return unary(g, 'Softplus', x);
  const tail = log(g, add(g, g.scalar(1), exp(g, neg(g, abs(g, x)))));
  return add(g, max(g, x, g.scalar(0)), tail);
}

/** Comparisons give bool tensors (masks for Where). */
export function compare(g: DiffGraph, opType: 'Less' | 'Greater' | 'LessOrEqual' | 'Equal', a: string, b: string) {
  return g.node1(opType, [a, b], {}, { shape: broadcastShapes(g.shape(a), g.shape(b)), kind: 'bool' });
}
export function and(g: DiffGraph, a: string, b: string): string {
  return g.node1('And', [a, b], {}, { shape: broadcastShapes(g.shape(a), g.shape(b)), kind: 'bool' });
}

/** Where(condition, a, b): a where the (constant, bool) condition holds, b elsewhere. */
export function where(g: DiffGraph, condition: string, a: string, b: string): string {
  const shape = broadcastShapes(g.shape(condition), broadcastShapes(g.shape(a), g.shape(b)));
  return g.node1('Where', [condition, a, b], {}, { shape, kind: 'float' });
}

/** Clip(x, lo, hi) with scalar bounds (constants). */
export function clip(g: DiffGraph, x: string, lo: string, hi: string): string {
  return g.node1('Clip', [x, lo, hi], {}, { shape: g.shape(x), kind: 'float' });
}

/** MatMul over rank ≥ 2 operands, leading (batch) dims broadcast. */
export function matMul(g: DiffGraph, a: string, b: string): string {
  const sa = g.shape(a);
  const sb = g.shape(b);
  if (sa.length < 2 || sb.length < 2) throw new Error('autodiff: MatMul needs operands of rank ≥ 2');
  if (sa[sa.length - 1] !== sb[sb.length - 2]) throw new Error(`autodiff: MatMul of [${sa}] and [${sb}]`);
  const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
  const shape = [...batch, sa[sa.length - 2], sb[sb.length - 1]];
  return g.node1('MatMul', [a, b], {}, { shape, kind: 'float' });
}

function reducedShape(shape: Shape, axes: readonly number[], keepdims: boolean): number[] {
  const reduced = new Set(axes.map((axis) => normalizeAxis(axis, shape.length)));
  return shape.flatMap((d, i) => (reduced.has(i) ? (keepdims ? [1] : []) : [d]));
}

/** ReduceSum over static axes (opset 13+: axes is an input). */
export function reduceSum(g: DiffGraph, x: string, axes: readonly number[], keepdims = true): string {
  const shape = reducedShape(g.shape(x), axes, keepdims);
  return g.node1('ReduceSum', [x, g.int64(axes)], { keepdims: keepdims ? 1 : 0 }, { shape, kind: 'float' });
}

/** ReduceMean over static axes (opset 17: axes is an attribute). */
export function reduceMean(g: DiffGraph, x: string, axes: readonly number[], keepdims = true): string {
  const shape = reducedShape(g.shape(x), axes, keepdims);
  return g.node1('ReduceMean', [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 }, { shape, kind: 'float' });
}

/** Reshape to a fully static shape (no 0 or −1). */
export function reshape(g: DiffGraph, x: string, shape: Shape): string {
  const info = g.info(x);
  const count = (s: Shape) => s.reduce((p, d) => p * d, 1);
  if (count(shape) !== count(info.shape)) throw new Error(`autodiff: cannot reshape [${info.shape}] to [${shape}]`);
  return g.node1('Reshape', [x, g.int64(shape)], {}, { shape, kind: info.kind });
}

/** Broadcasts x to `shape` (a copy, as the gradient of a reduction needs). */
export function expand(g: DiffGraph, x: string, shape: Shape): string {
  return g.node1('Expand', [x, g.int64(shape)], {}, { shape: broadcastShapes(g.shape(x), shape), kind: 'float' });
}

export function transpose(g: DiffGraph, x: string, perm: readonly number[]): string {
  const shape = perm.map((axis) => g.shape(x)[axis]);
  return g.node1('Transpose', [x], { perm: [...perm] }, { shape, kind: g.info(x).kind });
}

/** Swaps the last two axes. */
export function transposeLast(g: DiffGraph, x: string): string {
  const rank = g.shape(x).length;
  const perm = Array.from({ length: rank }, (_, i) => (i < rank - 2 ? i : rank - 1 - (i - (rank - 2))));
  return transpose(g, x, perm);
}

export function unsqueeze(g: DiffGraph, x: string, axes: readonly number[]): string {
  const rank = g.shape(x).length + axes.length;
  const inserted = new Set(axes.map((axis) => normalizeAxis(axis, rank)));
  const rest = [...g.shape(x)];
  const shape = Array.from({ length: rank }, (_, i) => (inserted.has(i) ? 1 : (rest.shift() as number)));
  return g.node1('Unsqueeze', [x, g.int64(axes)], {}, { shape, kind: g.info(x).kind });
}

export function squeeze(g: DiffGraph, x: string, axes: readonly number[]): string {
  const shape = reducedShape(g.shape(x), axes, false);
  return g.node1('Squeeze', [x, g.int64(axes)], {}, { shape, kind: g.info(x).kind });
}

/** Slice with static starts/ends on `axes`, step 1 (ends clamp to the dimension, as ONNX does). */
export function slice(g: DiffGraph, x: string, starts: number[], ends: number[], axes: number[]): string {
  const shape = [...g.shape(x)];
  axes.forEach((axis, i) => {
    const a = normalizeAxis(axis, shape.length);
    const clampIndex = (v: number) => Math.min(Math.max(v < 0 ? v + shape[a] : v, 0), shape[a]);
    shape[a] = Math.max(clampIndex(ends[i]) - clampIndex(starts[i]), 0);
  });
  const inputs = [x, g.int64(starts), g.int64(ends), g.int64(axes)];
  return g.node1('Slice', inputs, {}, { shape, kind: g.info(x).kind });
}

export function concat(g: DiffGraph, xs: readonly string[], axis: number): string {
  const shape = [...g.shape(xs[0])];
  const a = normalizeAxis(axis, shape.length);
  shape[a] = xs.reduce((total, x) => total + g.shape(x)[a], 0);
  return g.node1('Concat', xs, { axis }, { shape, kind: g.info(xs[0]).kind });
}

/** Split into pieces of static `sizes` along `axis` (opset 13+: sizes is an input). */
export function split(g: DiffGraph, x: string, sizes: readonly number[], axis: number): string[] {
  const a = normalizeAxis(axis, g.shape(x).length);
  const outputs = sizes.map((size) => ({
    shape: g.shape(x).map((d, i) => (i === a ? size : d)),
    kind: g.info(x).kind,
  }));
  return g.node('Split', [x, g.int64(sizes)], { axis }, outputs);
}

/** Gather rows (axis 0) of `data` by int64 `indices`: embeddings. */
export function gather(g: DiffGraph, data: string, indices: string): string {
  const shape = [...g.shape(indices), ...g.shape(data).slice(1)];
  return g.node1('Gather', [data, indices], { axis: 0 }, { shape, kind: 'float' });
}

/**
 * GatherElements on `axis`: y[…, i, …] = data[…, indices[…, i, …], …], indices int64 of y's shape (one
 * element picked per index, e.g. each position's target log-probability from [B, T, V] by [B, T, 1]).
 */
export function gatherElements(g: DiffGraph, data: string, indices: string, axis: number): string {
  return g.node1('GatherElements', [data, indices], { axis }, { shape: g.shape(indices), kind: 'float' });
}

export function softmax(g: DiffGraph, x: string): string {
  return g.node1('Softmax', [x], { axis: -1 }, { shape: g.shape(x), kind: 'float' });
}

export function logSoftmax(g: DiffGraph, x: string): string {
  return g.node1('LogSoftmax', [x], { axis: -1 }, { shape: g.shape(x), kind: 'float' });
}

/** LayerNormalization over the last axis (the exporter's ε = 1e-5). */
export function layerNorm(g: DiffGraph, x: string, scale: string, bias: string, epsilon = 1e-5): string {
  const attributes = { axis: -1, epsilon: { float: epsilon } };
  return g.node1('LayerNormalization', [x, scale, bias], attributes, { shape: g.shape(x), kind: 'float' });
}

/** Casts a bool or int64 tensor to the graph's float type. */
export function castToFloat(g: DiffGraph, x: string): string {
  return g.node1('Cast', [x], { to: g.floatDataType }, { shape: g.shape(x), kind: 'float' });
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/**
 * GPT-2's tanh-GELU: y = ½x(1 + t), t = tanh(u), u = c(x + a·x³), c = √(2/π), a = 0.044715 — composed
 * forward, with a derivative of its own (fewer nodes than differentiating the parts):
 *   ∂y/∂x = ½(1 + t) + ½x·(1 − t²)·c(1 + 3a·x²)
 */
export function geluTanh(g: DiffGraph, x: string): string {
  return g.composite(
    x,
    () => {
      const square = mul(g, x, x);
      const inner = mul(g, g.scalar(GELU_C), add(g, x, mul(g, g.scalar(GELU_A), mul(g, x, square))));
      const t = tanh(g, inner);
      const halfX = mul(g, g.scalar(0.5), x);
      return { value: mul(g, halfX, add(g, g.scalar(1), t)), parts: { square, t, halfX } };
    },
    (dy, { square, t, halfX }) => {
      const slope = add(g, g.scalar(GELU_C), mul(g, g.scalar(3 * GELU_A * GELU_C), square)); // c(1 + 3a·x²)
      const sech2 = sub(g, g.scalar(1), mul(g, t, t)); // 1 − t²
      const halfOnePlusT = add(g, g.scalar(0.5), mul(g, g.scalar(0.5), t)); // ½(1 + t)
      return mul(g, dy, add(g, halfOnePlusT, mul(g, halfX, mul(g, sech2, slope))));
    },
  );
}

const INVERSE_SQRT_TWO = Math.SQRT1_2;
const INVERSE_SQRT_TWO_PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * The exact GELU (GPT-2's `activation_function: "gelu"`): y = ½x(1 + erf(x/√2)) = x·Φ(x), composed forward with its
 * derivative of its own (Erf has no gradient rule): ∂y/∂x = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π). ONNX Runtime
 * runs Erf in float32 only, so a float64 graph cannot hold it.
 */
export function geluExact(g: DiffGraph, x: string): string {
  return g.composite(
    x,
    () => {
      const erf = g.node1('Erf', [mul(g, x, g.scalar(INVERSE_SQRT_TWO))], {}, { shape: g.shape(x), kind: 'float' });
      const cdf = mul(g, g.scalar(0.5), add(g, g.scalar(1), erf)); // Φ(x)
      return { value: mul(g, x, cdf), parts: { cdf } };
    },
    (dy, { cdf }) => {
      const density = mul(g, g.scalar(INVERSE_SQRT_TWO_PI), exp(g, mul(g, g.scalar(-0.5), mul(g, x, x)))); // φ(x)
      return mul(g, dy, add(g, cdf, mul(g, x, density)));
    },
  );
}
