/**
 * The optimiser (src/trainer/engine/tfjs/adamW.ts) against a plain-JS transcription of PyTorch's
 * `torch.optim.AdamW` step, its checkpoint state, global-norm clipping, and the learning-rate
 * schedules (schedule.ts) at hand-computed points of Hugging Face's schedules.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Random } from '../../src/core/random';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { tf, type Tensor, type Variable } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { AdamWOptions } from '../../src/trainer/engine/engine';
import { AdamW, clipByGlobalNorm } from '../../src/trainer/engine/tfjs/adamW';
import { learningRateAt } from '../../src/trainer/optim/schedule';

before(async () => {
  await selectBackend('cpu');
});

function randomValues(size: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: size }, () => rng.normal());
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** A weight of rank 2, one of rank 3 and a bias of rank 1: decay applies to the first two only. */
const shapes: Record<string, number[]> = { w: [3, 4], e: [2, 2, 3], b: [4] };
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function makeParams(seed: number): Map<string, Variable> {
  return new Map(
    Object.entries(shapes).map(([name, shape], i) => [
      name,
      tf.tidy(() => tf.variable(tf.tensor(randomValues(size(shape), seed + i), shape))),
    ]),
  );
}

async function readParams(params: ReadonlyMap<string, Variable>): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [name, variable] of params) out[name] = (await variable.data()) as Float32Array;
  return out;
}

function disposeAll(params: ReadonlyMap<string, Variable>): void {
  for (const variable of params.values()) variable.dispose();
}

/** Gradients of step `step` as plain arrays, the same every time they are asked for. */
function gradientValues(step: number): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(shapes).map(([name, shape], i) => [name, randomValues(size(shape), 1000 * (step + 1) + i)]),
  );
}

function applyStep(optimizer: AdamW, step: number, lr: number): void {
  const grads = tf.tidy(
    () =>
      Object.fromEntries(
        Object.entries(gradientValues(step)).map(([name, values]) => [name, tf.tensor(values, shapes[name])]),
      ) as Record<string, Tensor>,
  );
  optimizer.apply(grads, lr);
  tf.dispose(Object.values(grads));
}

/**
 * torch.optim.AdamW's single-tensor step, transcribed (torch/optim/adamw.py, non-amsgrad), in float64:
 *   param.mul_(1 − lr·wd);  exp_avg.lerp_(g, 1 − β₁);  exp_avg_sq.mul_(β₂).addcmul_(g, g, 1 − β₂)
 *   step_size = lr / (1 − β₁ᵗ);  denom = √exp_avg_sq / √(1 − β₂ᵗ) + ε;  param.addcdiv_(exp_avg, denom, −step_size)
 * with weight decay only on tensors of rank ≥ 2, as nanoGPT's configure_optimizers groups them.
 */
class ReferenceAdamW {
  private t = 0;
  private readonly m: Record<string, number[]> = {};
  private readonly v: Record<string, number[]> = {};

  constructor(
    readonly params: Record<string, number[]>,
    private readonly options: AdamWOptions,
  ) {
    for (const [name, values] of Object.entries(params)) {
      this.m[name] = values.map(() => 0);
      this.v[name] = values.map(() => 0);
    }
  }

  step(grads: Record<string, number[]>, lr: number): void {
    this.t += 1;
    const { adamBeta1: beta1, adamBeta2: beta2, adamEpsilon: epsilon, weightDecay } = this.options;
    const stepSize = lr / (1 - beta1 ** this.t);
    const correction2Sqrt = Math.sqrt(1 - beta2 ** this.t);
    for (const [name, param] of Object.entries(this.params)) {
      const decay = shapes[name].length >= 2 ? weightDecay : 0;
      const [m, v, g] = [this.m[name], this.v[name], grads[name]];
      for (let i = 0; i < param.length; i++) {
        param[i] *= 1 - lr * decay;
        m[i] += (g[i] - m[i]) * (1 - beta1);
        v[i] = v[i] * beta2 + g[i] * g[i] * (1 - beta2);
        param[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / correction2Sqrt + epsilon);
      }
    }
  }
}

const options: AdamWOptions = { adamBeta1: 0.9, adamBeta2: 0.95, adamEpsilon: 1e-8, weightDecay: 0.1 };
const learningRates = [1e-2, 3e-2, 5e-2, 2e-2, 1e-2, 5e-3];

describe('AdamW', () => {
  test(
    'matches a plain-JS transcription of PyTorch AdamW ' + 'over several steps, decaying only weights of rank ≥ 2',
    async () => {
      const params = makeParams(1);
      const reference = new ReferenceAdamW(
        Object.fromEntries(Object.keys(shapes).map((name, i) => [name, randomValues(size(shapes[name]), 1 + i)])),
        options,
      );
      const optimizer = new AdamW(params, options);
      try {
        for (const [step, lr] of learningRates.entries()) {
          applyStep(optimizer, step, lr);
          reference.step(gradientValues(step), lr);
          const actual = await readParams(params);
          for (const name of Object.keys(shapes))
            assertClose(actual[name], reference.params[name], 1e-5, `step ${step + 1} ${name}`);
        }
        assert.equal(optimizer.step, learningRates.length);
        // Sanity: the run moved the weights by much more than the tolerance.
        assert.ok(Math.abs(reference.params.w[0] - randomValues(12, 1)[0]) > 1e-2);
      } finally {
        optimizer.dispose();
        disposeAll(params);
      }
    },
  );

  test(
    'with a zero gradient the step is pure decoupled decay: ' + 'rank ≥ 2 weights shrink by (1 − lr·λ), biases stay',
    async () => {
      const params = makeParams(2);
      const before = await readParams(params);
      const optimizer = new AdamW(params, { ...options, weightDecay: 0.5 });
      try {
        const grads = tf.tidy(
          () =>
            Object.fromEntries(Object.entries(shapes).map(([name, shape]) => [name, tf.zeros(shape)])) as Record<
              string,
              Tensor
            >,
        );
        optimizer.apply(grads, 0.1);
        tf.dispose(Object.values(grads));
        const after = await readParams(params);
        assertClose(
          after.w,
          Array.from(before.w, (x) => x * (1 - 0.1 * 0.5)),
          1e-7,
          'w',
        );
        assertClose(
          after.e,
          Array.from(before.e, (x) => x * (1 - 0.1 * 0.5)),
          1e-7,
          'e',
        );
        assert.deepEqual(after.b, before.b);
      } finally {
        optimizer.dispose();
        disposeAll(params);
      }
    },
  );

  test('a weight with no gradient in this step is left untouched', async () => {
    const params = makeParams(3);
    const before = await readParams(params);
    const optimizer = new AdamW(params, options);
    try {
      const grads = tf.tidy(() => ({ w: tf.ones(shapes.w) }));
      optimizer.apply(grads, 0.1);
      tf.dispose(grads.w);
      const after = await readParams(params);
      assert.deepEqual(after.e, before.e);
      assert.deepEqual(after.b, before.b);
      assert.notDeepEqual(after.w, before.w);
    } finally {
      optimizer.dispose();
      disposeAll(params);
    }
  });

  test('loadState(readState()) on fresh variables continues exactly as the original optimizer would', async () => {
    const params = makeParams(4);
    const optimizer = new AdamW(params, options);
    const resumedParams = new Map<string, Variable>();
    let resumed: AdamW | undefined;
    try {
      for (let step = 0; step < 3; step++) applyStep(optimizer, step, learningRates[step]);
      const state = await optimizer.readState();
      assert.equal(state.step, 3);
      assert.deepEqual(
        [...state.moments.keys()],
        ['w.exp_avg', 'w.exp_avg_sq', 'e.exp_avg', 'e.exp_avg_sq', 'b.exp_avg', 'b.exp_avg_sq'],
      );
      assert.deepEqual(state.moments.get('e.exp_avg_sq')?.shape, [2, 2, 3]);
      // A checkpoint: the weights and the optimizer state, restored into new variables and a new optimizer.
      for (const [name, values] of Object.entries(await readParams(params)))
        resumedParams.set(
          name,
          tf.tidy(() => tf.variable(tf.tensor(values, shapes[name]))),
        );
      resumed = new AdamW(resumedParams, options);
      resumed.loadState(state);
      assert.equal(resumed.step, 3);
      for (let step = 3; step < 6; step++) {
        applyStep(optimizer, step, learningRates[step]);
        applyStep(resumed, step, learningRates[step]);
      }
      assert.deepEqual(await readParams(resumedParams), await readParams(params));
      assert.deepEqual((await resumed.readState()).moments, (await optimizer.readState()).moments);
    } finally {
      optimizer.dispose();
      resumed?.dispose();
      disposeAll(params);
      disposeAll(resumedParams);
    }
  });

  test('loadState refuses a state with a missing or mis-shaped moment, naming it and its file', async () => {
    const params = makeParams(5);
    const optimizer = new AdamW(params, options);
    try {
      const state = await optimizer.readState();
      const missing = new Map(state.moments);
      missing.delete('b.exp_avg_sq');
      assert.throws(
        () => optimizer.loadState({ step: 1, moments: missing, file: '/run/checkpoints/step-4/optimizer.safetensors' }),
        /^Error: \/run\/checkpoints\/step-4\/optimizer\.safetensors: has no tensor "b\.exp_avg_sq" — /,
      );
      const misShaped = new Map(state.moments);
      misShaped.set('w.exp_avg', { shape: [4, 3], data: new Float32Array(12) });
      assert.throws(
        () => optimizer.loadState({ step: 1, moments: misShaped }),
        /the optimizer checkpoint: tensor "w\.exp_avg" has shape \[4,3\], expected \[3,4\]/,
      );
    } finally {
      optimizer.dispose();
      disposeAll(params);
    }
  });

  test('apply leaks no tensors and dispose frees the moments', () => {
    const params = makeParams(6);
    const tensors = tf.memory().numTensors;
    const optimizer = new AdamW(params, options);
    assert.equal(tf.memory().numTensors, tensors + 2 * params.size);
    applyStep(optimizer, 0, 1e-2);
    applyStep(optimizer, 1, 1e-2);
    assert.equal(tf.memory().numTensors, tensors + 2 * params.size);
    optimizer.dispose();
    assert.equal(tf.memory().numTensors, tensors);
    disposeAll(params);
  });
});

describe('clipByGlobalNorm', () => {
  // ‖g‖₂ over both tensors = √(3² + 4² + 0² + 12²) = 13.
  const makeGrads = () => tf.tidy(() => ({ a: tf.tensor1d([3, 4]), b: tf.tensor2d([[0, 12]]) }));

  async function clip(maxNorm: number): Promise<{ norm: number; a: number[]; b: number[] }> {
    const grads = makeGrads();
    const tensors = tf.memory().numTensors;
    const { clipped, norm } = clipByGlobalNorm(grads, maxNorm);
    assert.equal(tf.memory().numTensors, tensors + 3, 'only the clipped gradients and the norm are new');
    const out = {
      norm: (await norm.data())[0],
      a: Array.from(await clipped.a.data()),
      b: Array.from(await clipped.b.data()),
    };
    tf.dispose([norm, ...Object.values(clipped), ...Object.values(grads)]);
    return out;
  }

  test(
    'above the max it scales every gradient by max_norm ' + '/ (‖g‖ + 1e-6) and reports the norm before clipping',
    async () => {
      const { norm, a, b } = await clip(1);
      assert.ok(Math.abs(norm - 13) < 1e-5);
      const scale = 1 / (13 + 1e-6);
      assertClose(a, [3 * scale, 4 * scale], 1e-7, 'a');
      assertClose(b, [0, 12 * scale], 1e-7, 'b');
      assert.ok(Math.abs(Math.hypot(...a, ...b) - 1) < 1e-5, 'the clipped global norm is the max norm');
    },
  );

  test(
    'below the max (or with max_norm 0, off) it returns ' + 'the gradients unchanged, still reporting the norm',
    async () => {
      for (const maxNorm of [20, 0]) {
        const { norm, a, b } = await clip(maxNorm);
        assert.ok(Math.abs(norm - 13) < 1e-5);
        assert.deepEqual(a, [3, 4]);
        assert.deepEqual(b, [0, 12]);
      }
    },
  );
});

describe('learningRateAt (Hugging Face schedules: peak 1e-3, 100 steps, 10 of warmup)', () => {
  const peak = 1e-3;
  const at = (step: number, type: 'cosine' | 'linear' | 'constant', warmup = 10) =>
    learningRateAt(step, peak, 100, warmup, type);
  const close = (actual: number, expected: number) =>
    assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} vs ${expected}`);

  test('warmup rises linearly from 0: lr = peak · step / warmup, for every schedule', () => {
    for (const type of ['cosine', 'linear', 'constant'] as const) {
      close(at(0, type), 0);
      close(at(1, type), 1e-4);
      close(at(5, type), 5e-4);
      close(at(9, type), 9e-4);
    }
  });

  test('cosine: peak · ½(1 + cos(π · progress)), progress = (step − warmup) / (total − warmup)', () => {
    close(at(10, 'cosine'), 1e-3); // progress 0
    close(at(40, 'cosine'), 7.5e-4); // progress 1/3: ½(1 + cos(π/3)) = 0.75
    close(at(55, 'cosine'), 5e-4); // progress 1/2
    close(at(70, 'cosine'), 2.5e-4); // progress 2/3: ½(1 + cos(2π/3)) = 0.25
    close(at(100, 'cosine'), 0); // progress 1
    close(at(130, 'cosine'), 0); // past the end it stays at 0
  });

  test('linear: peak · (1 − progress), reaching 0 at the last step', () => {
    close(at(10, 'linear'), 1e-3);
    close(at(40, 'linear'), 1e-3 * (2 / 3));
    close(at(55, 'linear'), 5e-4);
    close(at(91, 'linear'), 1e-4);
    close(at(100, 'linear'), 0);
    close(at(130, 'linear'), 0);
  });

  test('constant: the peak after warmup, and from step 0 without warmup', () => {
    for (const step of [10, 50, 100]) close(at(step, 'constant'), peak);
    close(at(0, 'constant', 0), peak);
    // Without warmup the decays start at step 0 from the peak.
    close(at(0, 'cosine', 0), peak);
    close(at(50, 'cosine', 0), 5e-4);
    close(at(25, 'linear', 0), 7.5e-4);
  });
});
