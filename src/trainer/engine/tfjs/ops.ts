/**
 * Tensor ops with hand-written gradients where the built-in ones are slow or missing on the wasm
 * backend (measured in ENVIRONMENT.md):
 * - `embedding`: backprop through `tf.gather` needs `UnsortedSegmentSum`, which wasm lacks; the
 *   gradient here is the one-hot-transposed matMul  dW = onehot(ids)ᵀ · dY.
 * - `matMul2d` / `batchMatMul`: wasm's matMul with `transposeA/B` is ~7× slower than an explicit
 *   transpose plus a plain matMul, and the built-in matMul gradient uses those flags. For Y = A·B:
 *   dA = dY · Bᵀ and dB = Aᵀ · dY, with explicit transposes.
 * - `addMany`: webgpu's AddN binds every input as a storage buffer in one shader, and WebGPU guarantees
 *   only 8 per stage (tfjs does not ask for more): over 7 inputs its pipeline is invalid and the sum is
 *   garbage, silently. The sum is taken in groups of 7.
 * Each is tested against the built-in gradient on `cpu` (test/unit/ops.test.ts).
 * Everything else (layer norm, GELU, softmax) composes built-in ops whose gradients are fine.
 */
import { tf, type Tensor } from './tfRuntime';

type SaveFunc = (tensors: Tensor[]) => void;
type TwoInputGradient = (
  a: Tensor,
  b: Tensor,
  save: SaveFunc,
) => { value: Tensor; gradFunc: (dy: Tensor, saved: Tensor[]) => Tensor[] };

/** tf.customGrad for a two-input op, with the argument types tfjs's signature loses. */
function customGrad2(f: TwoInputGradient): (a: Tensor, b: Tensor) => Tensor {
  const op = tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]);
  return (a, b) => op(a, b) as Tensor;
}

/** Rows of `table` [V, C] at `ids` (int32, any shape S) → [...S, C]. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const vocabSize = table.shape[0];
  const width = table.shape[1] as number;
  const op = customGrad2((weights, indices, save) => {
    save([indices]);
    const flat = indices.reshape([-1]); // [N]
    const value = tf.gather(weights, flat).reshape([...indices.shape, width]); // [...S, C]
    return {
      value,
      gradFunc: (dy, saved) => {
        const flatIds = saved[0].reshape([-1]); // [N]
        const oneHotT = tf.transpose(tf.oneHot(flatIds, vocabSize).toFloat()); // [V, N]
        const dWeights = tf.matMul(oneHotT, dy.reshape([-1, width])); // [V, C]
        return [dWeights, tf.zerosLike(saved[0])];
      },
    };
  });
  return op(table, ids);
}

/** Storage buffers per shader stage WebGPU guarantees (maxStorageBuffersPerShaderStage), less the output's. */
const maxAddNInputs = 7;

/** Σ tensors of one shape, as addN in groups small enough for every backend (see above). */
export function addMany(tensors: readonly Tensor[]): Tensor {
  let terms = [...tensors];
  while (terms.length > 1) {
    const groups: Tensor[] = [];
    for (let i = 0; i < terms.length; i += maxAddNInputs) {
      const group = terms.slice(i, i + maxAddNInputs);
      groups.push(group.length === 1 ? group[0] : tf.addN(group));
    }
    terms = groups;
  }
  return terms[0];
}

/** A · B for 2-D A [M, K] and B [K, N], gradients with explicit transposes. */
export function matMul2d(a: Tensor, b: Tensor): Tensor {
  const op = customGrad2((x, y, save) => {
    save([x, y]);
    return {
      value: tf.matMul(x, y),
      gradFunc: (dy, [xs, ys]) => [tf.matMul(dy, tf.transpose(ys)), tf.matMul(tf.transpose(xs), dy)],
    };
  });
  return op(a, b);
}

/** Swaps the last two axes of a rank-3 or rank-4 tensor explicitly (no transpose flags). */
export function swapLastAxes(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(x, perm);
}

/** Batched A · B over leading axes (rank 3 or 4), gradients with explicit transposes. */
export function batchMatMul(a: Tensor, b: Tensor): Tensor {
  const op = customGrad2((x, y, save) => {
    save([x, y]);
    return {
      value: tf.matMul(x, y),
      gradFunc: (dy, [xs, ys]) => [tf.matMul(dy, swapLastAxes(ys)), tf.matMul(swapLastAxes(xs), dy)],
    };
  });
  return op(a, b);
}

/** x [..., C] · W [C, D] + b [D] → [..., D], through the 2-D matMul. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const inWidth = x.shape[x.shape.length - 1] as number;
  const outWidth = weight.shape[1] as number;
  const y = matMul2d(x.reshape([-1, inWidth]), weight).reshape([...x.shape.slice(0, -1), outWidth]);
  return bias ? tf.add(y, bias) : y;
}

/** LayerNorm over the last axis: γ · (x − μ) / √(σ² + ε) + β. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, epsilon = 1e-5): Tensor {
  const axis = x.shape.length - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
}

/** GELU, tanh approximation (GPT-2): ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function gelu(x: Tensor): Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x)))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}
