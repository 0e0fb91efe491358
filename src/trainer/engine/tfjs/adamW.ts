/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), as PyTorch's `torch.optim.AdamW`
 * computes it, with its moments kept as named tensors so checkpoints can save and restore them:
 *   θ ← θ − η·λ·θ                    (decoupled decay, only on weights of rank ≥ 2, as nanoGPT)
 *   m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²
 *   θ ← θ − η · m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
 */
import type { AdamWOptions, OptimizerState } from '../engine';
import { addMany } from './ops';
import { tf, type Tensor, type Variable } from './tfRuntime';
import { checkedMoments } from '../optimizerState';

/** AdamW's state as checkpoints hold it (the seam's OptimizerState). */
export type AdamWState = OptimizerState;

export class AdamW {
  private stepCount = 0;
  private readonly m = new Map<string, Variable>();
  private readonly v = new Map<string, Variable>();

  constructor(
    private readonly params: ReadonlyMap<string, Variable>,
    private readonly options: AdamWOptions,
  ) {
    for (const [name, param] of params) {
      // tidy disposes the zeros the variables were made from (a variable keeps their data, not the tensor).
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(param), false)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(param), false)),
      );
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /**
   * One update with learning rate `lr`; `grads` by weight name (missing ones are skipped). Disposes nothing
   * it was given.
   */
  apply(grads: Readonly<Record<string, Tensor>>, lr: number): void {
    this.stepCount += 1;
    const { adamBeta1: beta1, adamBeta2: beta2, adamEpsilon: epsilon, weightDecay } = this.options;
    const correction1 = 1 - beta1 ** this.stepCount;
    const correction2 = 1 - beta2 ** this.stepCount;
    tf.tidy(() => {
      for (const [name, param] of this.params) {
        const g = grads[name];
        if (!g) continue;
        const m = this.m.get(name) as Variable;
        const v = this.v.get(name) as Variable;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const decayed = weightDecay > 0 && param.rank >= 2 ? tf.mul(param, 1 - lr * weightDecay) : param;
        const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
        param.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
    });
  }

  async readState(): Promise<AdamWState> {
    const moments = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of this.params.keys()) {
      const m = this.m.get(name) as Variable;
      const v = this.v.get(name) as Variable;
      moments.set(`${name}.exp_avg`, { shape: [...m.shape], data: (await m.data()) as Float32Array });
      moments.set(`${name}.exp_avg_sq`, { shape: [...v.shape], data: (await v.data()) as Float32Array });
    }
    return { step: this.stepCount, moments };
  }

  loadState(state: AdamWState): void {
    const moments = checkedMoments(
      state,
      [...this.params.keys()].map((name) => [name, (this.m.get(name) as Variable).shape] as const),
    );
    for (const [name, { expAvg, expAvgSq }] of moments) {
      const m = this.m.get(name) as Variable;
      const v = this.v.get(name) as Variable;
      tf.tidy(() => m.assign(tf.tensor(expAvg, m.shape)));
      tf.tidy(() => v.assign(tf.tensor(expAvgSq, v.shape)));
    }
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const tensor of [...this.m.values(), ...this.v.values()]) tensor.dispose();
  }
}

/**
 * Global-norm clipping (torch.nn.utils.clip_grad_norm_): g ← g · min(1, max_norm / (‖g‖₂ + 1e-6)).
 * Returns the clipped gradients (new tensors) and the norm before clipping.
 */
export function clipByGlobalNorm(
  grads: Readonly<Record<string, Tensor>>,
  maxNorm: number,
): { clipped: Record<string, Tensor>; norm: Tensor } {
  return tf.tidy(() => {
    const squares = Object.values(grads).map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(addMany(squares));
    const scale = maxNorm > 0 ? tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))) : tf.scalar(1);
    const clipped: Record<string, Tensor> = {};
    for (const [name, g] of Object.entries(grads)) clipped[name] = tf.mul(g, scale);
    return { clipped, norm };
  });
}
