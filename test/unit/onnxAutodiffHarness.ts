/**
 * Finite-difference checks of graphs built with the ONNX autodiff, run in a real onnxruntime-node
 * InferenceSession: loss = Σ op(x) ⊙ r with a random r, the built gradient against central
 * differences (L(x + h) − L(x − h)) / 2h in float64.
 */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DiffGraph } from '../../src/trainer/engine/onnxruntime/autodiff/graph';
import { gradients } from '../../src/trainer/engine/onnxruntime/autodiff/gradients';
import { mul, reduceSum } from '../../src/trainer/engine/onnxruntime/autodiff/ops';

/** A deterministic uniform stream in [−1, 1) (mulberry32). */
export function uniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export interface FloatInput {
  readonly shape: readonly number[];
  /** Values in (0.5, 1.5) instead of (−1, 1): for Log, Sqrt, Pow and divisors. */
  readonly positive?: boolean;
  /** Not differentiated (still an input of the graph). */
  readonly constant?: boolean;
  /** Fixed values instead of random ones. */
  readonly values?: readonly number[];
}

export interface IntInput {
  readonly shape: readonly number[];
  readonly values: readonly number[];
}

export interface GradientCase {
  readonly floats: Readonly<Record<string, FloatInput>>;
  readonly ints?: Readonly<Record<string, IntInput>>;
  /** Builds the op(s) under test from the inputs (by name); returns the output that the loss weighs. */
  build(g: DiffGraph, inputs: Readonly<Record<string, string>>): string;
}

export interface GradientCheck {
  /** The largest |analytic − numeric| / max(1, |analytic|) over every checked element. */
  readonly worstError: number;
  readonly elements: number;
  /** The op types of the forward graph (rule coverage). */
  readonly forwardOps: ReadonlySet<string>;
}

const STEP = 1e-6;
const count = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

export async function checkGradients(testCase: GradientCase, seed = 1): Promise<GradientCheck> {
  const random = uniform(seed);
  const g = new DiffGraph('float64');
  const names: Record<string, string> = {};
  const values = new Map<string, Float64Array>();
  for (const [name, spec] of Object.entries(testCase.floats)) {
    names[name] = g.input(name, spec.shape);
    const draw = () => (spec.positive ? 1 + random() / 2 : random());
    values.set(name, Float64Array.from(spec.values ?? Array.from({ length: count(spec.shape) }, draw)));
  }
  for (const [name, spec] of Object.entries(testCase.ints ?? {})) names[name] = g.input(name, spec.shape, 'int64');
  const output = testCase.build(g, names);
  const forwardOps = new Set(g.nodes.map((node) => node.opType));
  const weights = g.floatTensor(Array.from({ length: count(g.shape(output)) }, random), g.shape(output));
  const weighted = mul(g, output, weights);
  const loss = reduceSum(
    g,
    weighted,
    Array.from(g.shape(weighted), (_, i) => i),
    false,
  );
  const wrt = Object.keys(testCase.floats).filter((name) => !testCase.floats[name].constant);
  const grads = gradients(g, loss, wrt);
  g.output(loss, 'loss');
  wrt.forEach((name) => g.output(grads.get(name) as string, `grad_${name}`));

  const session = await ort.InferenceSession.create(g.encode());
  const feeds = (): Record<string, ort.Tensor> => {
    const result: Record<string, ort.Tensor> = {};
    for (const [name, spec] of Object.entries(testCase.floats))
      result[name] = new ort.Tensor('float64', values.get(name) as Float64Array, [...spec.shape]);
    for (const [name, spec] of Object.entries(testCase.ints ?? {}))
      result[name] = new ort.Tensor('int64', BigInt64Array.from(spec.values.map(BigInt)), [...spec.shape]);
    return result;
  };
  const analytic = await session.run(feeds());
  const lossAt = async () => (await session.run(feeds(), ['loss'])).loss.data[0] as number;
  let worstError = 0;
  let elements = 0;
  for (const name of wrt) {
    const x = values.get(name) as Float64Array;
    const grad = analytic[`grad_${name}`].data as Float64Array;
    if (grad.length !== x.length) throw new Error(`grad_${name} has ${grad.length} elements, ${name} ${x.length}`);
    for (let i = 0; i < x.length; i++) {
      const original = x[i];
      x[i] = original + STEP;
      const above = await lossAt();
      x[i] = original - STEP;
      const below = await lossAt();
      x[i] = original;
      const numeric = (above - below) / (2 * STEP);
      worstError = Math.max(worstError, Math.abs(grad[i] - numeric) / Math.max(1, Math.abs(grad[i])));
      elements++;
    }
  }
  await session.release();
  return { worstError, elements, forwardOps };
}

/**
 * Per weight: max |onnx − reference| ≤ 1e-4 · max |reference| (relative to the weight's largest gradient),
 * with a floor of 1e-4 × the model's largest gradient for weights whose true gradient is 0 — e.g. ln_f.bias
 * under Bradley–Terry, where each pair's ±∂L/∂r cancel and both engines return rounding noise.
 */
export const ENGINE_RELATIVE_TOLERANCE = 1e-4;
const ZERO_GRADIENT_FLOOR = 1e-4;

const maxAbs = (values: Float32Array) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Asserts every `grad.<weight>` output against the reference engine's gradient of that weight. */
export function assertGradientsMatch(
  outputs: Readonly<Record<string, ort.Tensor>>,
  weightNames: readonly string[],
  reference: ReadonlyMap<string, Float32Array>,
): void {
  assert.deepEqual([...weightNames].sort(), [...reference.keys()].sort());
  const modelScale = Math.max(...[...reference.values()].map(maxAbs));
  assert.ok(modelScale > 0, 'the reference gradient is zero');
  for (const name of weightNames) {
    const actual = outputs[`grad.${name}`].data as Float32Array;
    const expected = reference.get(name) as Float32Array;
    const scale = Math.max(maxAbs(expected), ZERO_GRADIENT_FLOOR * modelScale);
    const worst = expected.reduce((m, v, i) => Math.max(m, Math.abs(actual[i] - v)), 0);
    assert.ok(worst <= ENGINE_RELATIVE_TOLERANCE * scale, `${name}: max |Δ| ${worst.toExponential(2)}, scale ${scale}`);
  }
}

/** A batch [B, T] of ids, next-token targets and a completion-only mask (the first positions are the prompt). */
export function tokenBatch(batchSize: number, length: number, vocab: number, seed: number) {
  const random = uniform(seed);
  const token = () => Math.floor(((random() + 1) / 2) * vocab);
  const ids = Array.from({ length: batchSize * length }, token);
  const targets = Array.from({ length: batchSize * length }, token);
  const promptLength = Math.floor(length / 2);
  const mask = Array.from({ length: batchSize * length }, (_, k) => (k % length >= promptLength ? 1 : 0));
  return { ids, targets, mask };
}
