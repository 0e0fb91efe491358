/**
 * The TensorFlow.js instance every trainer module uses. The wasm and cpu backends run on the
 * tfjs-core bundled into the trainer; the native backends (`tfjs-node`, `tfjs-node-gpu`) ship their
 * own tfjs-core, and kernels registered on one instance are invisible to another — so backend
 * selection installs the instance that owns the chosen backend here, and modules read `tf` from
 * this binding instead of importing tfjs-core themselves.
 */
import * as bundledTf from '@tensorflow/tfjs-core';
// tfjs-core alone does not add the chained methods (`t.reshape(...)`); the full tfjs package would.
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
// Likewise the gradient functions of the built-in kernels.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

export type Tf = typeof bundledTf;
export type Tensor = bundledTf.Tensor;
export type Variable = bundledTf.Variable;

export let tf: Tf = bundledTf;

export function installTf(instance: Tf): void {
  tf = instance;
}

export function bundledTfInstance(): Tf {
  return bundledTf;
}
