/**
 * Model weights read one tensor at a time into trainable tfjs variables (no random init first, no second copy):
 * the shared loader of the project's GPT and the Hugging Face Llama-family model.
 */
import { tf, type Variable } from './tfRuntime';

/**
 * Each named weight of `shapes`, read with `read` and checked against its shape; on any failure the variables
 * already made are freed and the error passes on.
 */
export async function readVariables(
  shapes: Iterable<readonly [string, readonly number[]]>,
  read: (name: string) => Promise<Float32Array>,
): Promise<Map<string, Variable>> {
  const weights = new Map<string, Variable>();
  try {
    for (const [name, shape] of shapes) weights.set(name, variableOf(name, shape, await read(name)));
  } catch (error) {
    disposeAll(weights);
    throw error;
  }
  return weights;
}

/** The same from values at hand (a checkpoint in memory, a fresh initialisation): each checked, none read twice. */
export function makeVariables(
  shapes: Iterable<readonly [string, readonly number[]]>,
  value: (name: string, shape: readonly number[]) => Float32Array,
): Map<string, Variable> {
  const weights = new Map<string, Variable>();
  try {
    for (const [name, shape] of shapes) weights.set(name, variableOf(name, shape, value(name, shape)));
  } catch (error) {
    disposeAll(weights);
    throw error;
  }
  return weights;
}

function variableOf(name: string, shape: readonly number[], data: Float32Array): Variable {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) throw new Error(`weight "${name}" has ${data.length} values, [${shape}] needs ${size}`);
  // No tfjs variable names: they must be unique engine-wide and several models live at once.
  return tf.tidy(() => tf.variable(tf.tensor(data, [...shape]), true));
}

function disposeAll(weights: Map<string, Variable>): void {
  for (const variable of weights.values()) variable.dispose();
}
