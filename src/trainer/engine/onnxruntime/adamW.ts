/**
 * AdamW and global-norm clipping on plain Float32Arrays, the ONNX Runtime engine's twins of
 * engine/tfjs/adamW.ts — the same formulas in the same order, the same state names, so a checkpoint
 * written by one engine resumes on the other:
 *   θ ← θ − η·λ·θ                    (decoupled decay, only on weights of rank ≥ 2, as nanoGPT)
 *   m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²
 *   θ ← θ − η · m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
 * Weights are updated in place: the engine's model owns them.
 */
import type { AdamWOptions, NamedArrays, OptimizerState } from '../engine';
import { checkedMoments } from '../optimizerState';

/** torch.nn.utils.clip_grad_norm_'s guard against a zero norm. */
const NORM_EPSILON = 1e-6;

/**
 * Global-norm clipping (torch.nn.utils.clip_grad_norm_): g ← g · min(1, max_norm / (‖g‖₂ + 1e-6)), in
 * place; 0 turns clipping off. Returns the norm before clipping.
 */
export function clipByGlobalNormInPlace(grads: ReadonlyMap<string, Float32Array>, maxNorm: number): number {
  let squares = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) squares += g[i] * g[i];
  const norm = Math.sqrt(squares);
  const scale = maxNorm > 0 ? Math.min(1, maxNorm / (norm + NORM_EPSILON)) : 1;
  if (scale !== 1) for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= scale;
  return norm;
}

export class ArrayAdamW {
  private stepCount = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(
    private readonly params: NamedArrays,
    private readonly options: AdamWOptions,
  ) {
    for (const [name, param] of params) {
      this.m.set(name, new Float32Array(param.data.length));
      this.v.set(name, new Float32Array(param.data.length));
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /** One update with learning rate `lr`; `grads` by weight name (missing ones are skipped). */
  apply(grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.stepCount += 1;
    const { adamBeta1: beta1, adamBeta2: beta2, adamEpsilon: epsilon, weightDecay } = this.options;
    const correction1 = 1 - beta1 ** this.stepCount;
    const correction2 = 1 - beta2 ** this.stepCount;
    const oneMinusBeta1 = 1 - beta1;
    const oneMinusBeta2 = 1 - beta2;
    for (const [name, param] of this.params) {
      const g = grads.get(name);
      if (!g) continue;
      const m = this.m.get(name) as Float32Array;
      const v = this.v.get(name) as Float32Array;
      const decay = weightDecay > 0 && param.shape.length >= 2 ? 1 - lr * weightDecay : 1;
      const theta = param.data;
      // The same operations in the same order as before, with the float32 stores read back through
      // Math.fround instead of the arrays (bit-identical results, fewer typed-array loads).
      for (let i = 0; i < theta.length; i++) {
        const gi = g[i];
        const mi = Math.fround(m[i] * beta1 + gi * oneMinusBeta1);
        const vi = Math.fround(v[i] * beta2 + gi * gi * oneMinusBeta2);
        m[i] = mi;
        v[i] = vi;
        const update = mi / correction1 / (Math.sqrt(vi / correction2) + epsilon);
        theta[i] = theta[i] * decay - update * lr;
      }
    }
  }

  readState(): OptimizerState {
    const moments: NamedArrays = new Map();
    for (const [name, param] of this.params) {
      const shape = [...param.shape];
      moments.set(`${name}.exp_avg`, { shape, data: Float32Array.from(this.m.get(name) as Float32Array) });
      moments.set(`${name}.exp_avg_sq`, { shape, data: Float32Array.from(this.v.get(name) as Float32Array) });
    }
    return { step: this.stepCount, moments };
  }

  /** Checks every moment's presence and shape before changing anything (tfjs's messages). */
  loadState(state: OptimizerState): void {
    const moments = checkedMoments(
      state,
      [...this.params].map(([name, param]) => [name, param.shape] as const),
    );
    for (const [name, { expAvg, expAvgSq }] of moments) {
      (this.m.get(name) as Float32Array).set(expAvg);
      (this.v.get(name) as Float32Array).set(expAvgSq);
    }
    this.stepCount = state.step;
  }
}
