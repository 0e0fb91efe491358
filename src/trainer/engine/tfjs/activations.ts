/**
 * The activations a GPT-2 config.json may name (`activation_function`, transformers' ACT2FN names), as tfjs
 * functions. `gelu_new` and `gelu_pytorch_tanh` are both the tanh approximation GPT-2 was trained with; `gelu`
 * is the exact erf form.
 */
import type { Gpt2Activation } from '../../hf/hfArchitecture';
import { gelu } from './ops';
import { tf, type Tensor } from './tfRuntime';

/** SiLU (swish): x · σ(x); the Llama family's SwiGLU gate. */
export function silu(x: Tensor): Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** GELU, exact: ½x(1 + erf(x / √2)). */
export function geluExact(x: Tensor): Tensor {
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

const byName: Record<Gpt2Activation, (x: Tensor) => Tensor> = {
  gelu_new: gelu,
  gelu_pytorch_tanh: gelu,
  gelu: geluExact,
  relu: (x) => tf.relu(x),
  silu,
  swish: silu,
  tanh: (x) => tf.tanh(x),
};

export function gpt2Activation(name: Gpt2Activation): (x: Tensor) => Tensor {
  return byName[name];
}
