/**
 * The heads' names in a checkpoint, as TRL and transformers load them, against the engine's names:
 *   engine `v_head.weight` [C, 1], `v_head.bias` [1]  ↔  TRL's ValueHead `v_head.summary.weight` [1, C] and
 *     `v_head.summary.bias` [1] (AutoModelForCausalLMWithValueHead);
 *   engine `score.weight` [C, 1]                       ↔  transformers' …ForSequenceClassification `score.weight`
 *     [1, C]; our `score.bias` [1] is saved too under its own name. transformers' score layer has no bias: it
 *     ignores the tensor with a warning ("Some weights … were not used"), so its scores differ from ours by that
 *     constant, which the Bradley–Terry loss (a difference of two scores) never sees; our PPO reads it, so reward
 *     centering (which moves score.bias) keeps its meaning here.
 * A column [C, 1] and a row [1, C] hold the same numbers in row-major order: only the shape changes.
 * Optimizer moments (`<weight>.exp_avg`, `<weight>.exp_avg_sq`) follow their weight's name.
 */
import type { NamedArrays } from '../engine/engine';

const savedName: Readonly<Record<string, string>> = {
  'v_head.weight': 'v_head.summary.weight',
  'v_head.bias': 'v_head.summary.bias',
  'score.weight': 'score.weight',
};
const engineName: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(savedName).map(([engine, saved]) => [saved, engine]),
);
/** The heads' weights that are vectors stored as a column in the engine and a row in the checkpoint. */
const columnWeights = new Set(['v_head.weight', 'score.weight']);
const momentSuffix = /\.(?:exp_avg|exp_avg_sq)$/;

function rename(
  arrays: NamedArrays,
  names: Readonly<Record<string, string>>,
  shapeOf: (engineWeight: string, columns: number) => number[],
): NamedArrays {
  const out: NamedArrays = new Map();
  for (const [name, { shape, data }] of arrays) {
    const suffix = momentSuffix.exec(name)?.[0] ?? '';
    const weight = name.slice(0, name.length - suffix.length);
    const renamed = Object.hasOwn(names, weight) ? names[weight] : undefined;
    if (renamed === undefined) {
      out.set(name, { shape, data });
      continue;
    }
    const engineWeight = Object.hasOwn(savedName, weight) ? weight : renamed;
    out.set(renamed + suffix, {
      shape: columnWeights.has(engineWeight) ? shapeOf(engineWeight, data.length) : shape,
      data,
    });
  }
  return out;
}

/** Weights (or optimizer moments) under the engine's names → the checkpoint's names and shapes. */
export function toCheckpointNames(arrays: NamedArrays): NamedArrays {
  return rename(arrays, savedName, (_, width) => [1, width]);
}

/** Weights (or optimizer moments) under the checkpoint's names → the engine's names and shapes. */
export function toEngineNames(arrays: NamedArrays): NamedArrays {
  return rename(arrays, engineName, (_, width) => [width, 1]);
}
