/**
 * The engine's tensor ops: the hand-written gradients of `embedding`, `matMul2d` and `batchMatMul`
 * (ops.ts) equal tfjs's built-in ones on `cpu`, and work on `wasm` where the built-in embedding
 * gradient does not; `layerNorm`, `gelu` and the losses agree with plain-JS twins on both backends.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Random } from '../../src/core/random';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { entropyFromLogits, maskedNll, tokenLogprobs } from '../../src/trainer/engine/tfjs/losses';
import { batchMatMul, embedding, gelu, layerNorm, linear, matMul2d } from '../../src/trainer/engine/tfjs/ops';
import { tf, type Tensor } from '../../src/trainer/engine/tfjs/tfRuntime';

function randomValues(size: number, seed: number, scale = 1): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: size }, () => rng.normal() * scale);
}

function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= tolerance, `${what}: max |difference| ${diff} > ${tolerance}`);
}

interface Input {
  readonly shape: number[];
  readonly data: Float32Array;
}

/** An op under test: its differentiable float inputs, the built-in computation and ours. */
interface GradientCase {
  readonly name: string;
  readonly inputs: readonly Input[];
  readonly builtIn: (...xs: Tensor[]) => Tensor;
  readonly custom: (...xs: Tensor[]) => Tensor;
}

interface ValueAndGrads {
  readonly shape: number[];
  readonly value: Float32Array;
  readonly grads: Float32Array[];
}

/** y = op(xs) and ∂L/∂xs for L = Σ y ⊙ R, R a fixed random tensor (so dy is not all ones). */
async function valueAndGrads(op: (...xs: Tensor[]) => Tensor, inputs: readonly Input[]): Promise<ValueAndGrads> {
  const [value, ...grads] = tf.tidy(() => {
    const xs = inputs.map(({ data, shape }) => tf.tensor(data, shape));
    const y = op(...xs);
    const weight = tf.tensor(randomValues(y.size, 99), y.shape);
    return [y, ...tf.grads((...args: Tensor[]) => tf.sum(tf.mul(op(...args), weight)))(xs)];
  });
  const shape = [...value.shape];
  const data = (await Promise.all([value, ...grads].map((t) => t.data()))) as Float32Array[];
  tf.dispose([value, ...grads]);
  return { shape, value: data[0], grads: data.slice(1) };
}

const vocab = 7;
const width = 4;
// Repeats (2 three times, 5 twice) make the embedding gradient sum several rows of dy into one row.
const repeatedIds1d = [2, 5, 2, 0, 6, 2, 5];
const repeatedIds2d = [
  [1, 3, 3],
  [3, 0, 1],
];

function input(shape: number[], seed: number): Input {
  return {
    shape,
    data: randomValues(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  };
}

const gradientCases: GradientCase[] = [
  {
    name: 'embedding with repeated rank-1 ids',
    inputs: [input([vocab, width], 1)],
    builtIn: (table) => tf.gather(table, tf.tensor1d(repeatedIds1d, 'int32')),
    custom: (table) => embedding(table, tf.tensor1d(repeatedIds1d, 'int32')),
  },
  {
    name: 'embedding with rank-2 ids [2, 3]',
    inputs: [input([vocab, width], 2)],
    builtIn: (table) => tf.gather(table, tf.tensor2d(repeatedIds2d, undefined, 'int32')),
    custom: (table) => embedding(table, tf.tensor2d(repeatedIds2d, undefined, 'int32')),
  },
  {
    name: 'matMul2d [3, 5] · [5, 4]',
    inputs: [input([3, 5], 3), input([5, 4], 4)],
    builtIn: (a, b) => tf.matMul(a, b),
    custom: (a, b) => matMul2d(a, b),
  },
  {
    name: 'batchMatMul rank 3 [2, 3, 5] · [2, 5, 4]',
    inputs: [input([2, 3, 5], 5), input([2, 5, 4], 6)],
    builtIn: (a, b) => tf.matMul(a, b),
    custom: (a, b) => batchMatMul(a, b),
  },
  {
    name: 'batchMatMul rank 4 [2, 3, 4, 5] · [2, 3, 5, 2]',
    inputs: [input([2, 3, 4, 5], 7), input([2, 3, 5, 2], 8)],
    builtIn: (a, b) => tf.matMul(a, b),
    custom: (a, b) => batchMatMul(a, b),
  },
  {
    name: 'linear [2, 3, 4] · [4, 5] + [5]',
    inputs: [input([2, 3, 4], 9), input([4, 5], 10), input([5], 11)],
    builtIn: (x, w, b) => tf.add(tf.matMul(x.reshape([6, 4]), w).reshape([2, 3, 5]), b),
    custom: (x, w, b) => linear(x, w, b),
  },
];

describe('on cpu the hand-written gradients equal the built-in ones', () => {
  before(async () => {
    await selectBackend('cpu');
  });

  for (const testCase of gradientCases) {
    test(`${testCase.name}: same value and same gradients as the built-in op (1e-5)`, async () => {
      const expected = await valueAndGrads(testCase.builtIn, testCase.inputs);
      const actual = await valueAndGrads(testCase.custom, testCase.inputs);
      assert.deepEqual(actual.shape, expected.shape);
      assertClose(actual.value, expected.value, 1e-5, 'value');
      assert.equal(actual.grads.length, testCase.inputs.length);
      actual.grads.forEach((grad, i) => assertClose(grad, expected.grads[i], 1e-5, `gradient of input ${i}`));
    });
  }

  test('the embedding gradient of a row is the sum of dy over every position that reads it', async () => {
    // dW[v] = Σ_{n: ids[n] = v} dy[n]; with dy = 1 that is the count of v in ids, in every column.
    const grad = tf.tidy(() =>
      tf.grad((table: Tensor) => tf.sum(embedding(table, tf.tensor1d(repeatedIds1d, 'int32'))))(
        tf.zeros([vocab, width]),
      ),
    );
    const data = await grad.data();
    grad.dispose();
    const counts = Array.from({ length: vocab }, (_, v) => repeatedIds1d.filter((id) => id === v).length);
    assert.deepEqual(
      Array.from(data),
      counts.flatMap((count) => new Array<number>(width).fill(count)),
    );
  });
});

describe('on wasm the hand-written ops run forward and backward, matching cpu', () => {
  const reference = new Map<string, ValueAndGrads>();

  before(async () => {
    // The references: the built-in ops on cpu, read out as plain arrays before switching.
    await selectBackend('cpu');
    for (const testCase of gradientCases)
      reference.set(testCase.name, await valueAndGrads(testCase.builtIn, testCase.inputs));
    await selectBackend('wasm');
    assert.equal(tf.getBackend(), 'wasm');
  });

  for (const testCase of gradientCases) {
    test(`${testCase.name}: value and gradients on wasm equal the built-in op's on cpu (1e-4)`, async () => {
      const expected = reference.get(testCase.name) as ValueAndGrads;
      const actual = await valueAndGrads(testCase.custom, testCase.inputs);
      assert.deepEqual(actual.shape, expected.shape);
      assertClose(actual.value, expected.value, 1e-4, 'value');
      actual.grads.forEach((grad, i) => assertClose(grad, expected.grads[i], 1e-4, `gradient of input ${i}`));
    });
  }

  test(
    'the built-in tf.gather gradient throws on wasm (no UnsortedSegmentSum kernel), ' +
      'which is why embedding has its own',
    () => {
      // Checked against tfjs-backend-wasm 4.22: gather's forward runs, its gradient needs a kernel wasm lacks.
      assert.throws(
        () =>
          tf.tidy(() =>
            tf.grad((table: Tensor) => tf.sum(tf.gather(table, tf.tensor1d(repeatedIds1d, 'int32'))))(
              tf.ones([vocab, width]),
            ),
          ),
        /UnsortedSegmentSum/,
      );
      // The engine still works afterwards (tfjs itself leaves the failed gradient's few tensors behind).
      const rows = tf.tidy(() => tf.gather(tf.ones([vocab, width]), tf.tensor1d([1, 1], 'int32')).sum());
      assert.equal(rows.dataSync()[0], 2 * width);
      rows.dispose();
    },
  );
});

// ---- Plain-JS twins -------------------------------------------------------------------------------

/** Rows of length n: each row's log-softmax, in float64. */
function logSoftmaxRows(values: ArrayLike<number>, n: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < values.length; start += n) {
    const row = Array.from({ length: n }, (_, i) => values[start + i]);
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
    out.push(...row.map((x) => x - logZ));
  }
  return out;
}

function layerNormRows(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
): number[] {
  const n = gamma.length;
  const out: number[] = [];
  for (let start = 0; start < x.length; start += n) {
    const row = Array.from({ length: n }, (_, i) => x[start + i]);
    const mean = row.reduce((a, b) => a + b, 0) / n;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / n; // biased, as PyTorch's LayerNorm
    out.push(...row.map((value, i) => ((value - mean) / Math.sqrt(variance + epsilon)) * gamma[i] + beta[i]));
  }
  return out;
}

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

async function read(t: Tensor): Promise<Float32Array> {
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`on ${backend}, layerNorm, gelu and the losses agree with plain JS`, () => {
    before(async () => {
      await selectBackend(backend);
    });

    test('layerNorm is γ · (x − μ) / √(σ² + ε) + β over the last axis, σ² biased', async () => {
      const x = randomValues(2 * 3 * 6, 20, 3);
      const gamma = randomValues(6, 21);
      const beta = randomValues(6, 22);
      for (const epsilon of [1e-5, 0.5]) {
        const actual = await read(
          tf.tidy(() => layerNorm(tf.tensor(x, [2, 3, 6]), tf.tensor1d(gamma), tf.tensor1d(beta), epsilon)),
        );
        assertClose(actual, layerNormRows(x, gamma, beta, epsilon), 1e-5, `epsilon ${epsilon}`);
      }
    });

    test('gelu is the tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³)))', async () => {
      const x = Float32Array.from([-6, -3, -1, -0.5, 0, 0.25, 1, 2.5, 6, ...randomValues(20, 23, 2)]);
      const actual = await read(tf.tidy(() => gelu(tf.tensor1d(x))));
      assertClose(actual, Array.from(x, geluTanh), 1e-5, 'gelu');
    });

    // B = 2, T = 3, V = 5
    const logits = randomValues(2 * 3 * 5, 30, 2);
    const targets = [
      [4, 0, 2],
      [1, 1, 3],
    ];
    const mask = [
      [1, 1, 0],
      [0, 1, 1],
    ];
    const logProbs = logSoftmaxRows(logits, 5); // [B·T·V] in float64
    const targetLogprob = (b: number, t: number) => logProbs[(b * 3 + t) * 5 + targets[b][t]];

    test('tokenLogprobs is log_softmax(logits)[target] at each position', async () => {
      const actual = await read(
        tf.tidy(() => tokenLogprobs(tf.tensor(logits, [2, 3, 5]), tf.tensor2d(targets, undefined, 'int32'))),
      );
      assertClose(
        actual,
        [0, 1].flatMap((b) => [0, 1, 2].map((t) => targetLogprob(b, t))),
        1e-5,
        'token logprobs',
      );
    });

    test('maskedNll is Σ −log p · m / Σ m, and 0 (not NaN) for an empty mask', async () => {
      let sum = 0;
      let count = 0;
      for (let b = 0; b < 2; b++) {
        for (let t = 0; t < 3; t++) {
          if (mask[b][t] === 0) continue;
          sum -= targetLogprob(b, t);
          count += 1;
        }
      }
      const run = (m: number[][]) =>
        read(
          tf.tidy(() =>
            maskedNll(tf.tensor(logits, [2, 3, 5]), tf.tensor2d(targets, undefined, 'int32'), tf.tensor2d(m)),
          ),
        );
      assertClose(await run(mask), [sum / count], 1e-5, 'masked nll');
      assert.deepEqual(
        Array.from(
          await run([
            [0, 0, 0],
            [0, 0, 0],
          ]),
        ),
        [0],
      );
    });

    test('the gradient of maskedNll w.r.t. the logits is (softmax − onehot(target)) · m / Σ m', async () => {
      const actual = await read(
        tf.tidy(() =>
          tf.grad((z: Tensor) => maskedNll(z, tf.tensor2d(targets, undefined, 'int32'), tf.tensor2d(mask)))(
            tf.tensor(logits, [2, 3, 5]),
          ),
        ),
      );
      const count = mask.flat().reduce((a, b) => a + b, 0);
      const expected = logProbs.map((logProb, i) => {
        const [b, t, v] = [Math.floor(i / 15), Math.floor(i / 5) % 3, i % 5];
        return ((Math.exp(logProb) - (v === targets[b][t] ? 1 : 0)) * mask[b][t]) / count;
      });
      assertClose(actual, expected, 1e-5, 'gradient');
    });

    test('entropyFromLogits is −Σ p log p of each position', async () => {
      const actual = await read(tf.tidy(() => entropyFromLogits(tf.tensor(logits, [2, 3, 5]))));
      const expected = Array.from(
        { length: 6 },
        (_, row) => -logProbs.slice(row * 5, row * 5 + 5).reduce((sum, lp) => sum + Math.exp(lp) * lp, 0),
      );
      assertClose(actual, expected, 1e-5, 'entropy');
      // A uniform row has entropy log V.
      assertClose(await read(tf.tidy(() => entropyFromLogits(tf.zeros([1, 1, 5])))), [Math.log(5)], 1e-6, 'uniform');
    });
  });
}
