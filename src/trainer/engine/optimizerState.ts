/**
 * AdamW's saved moments, checked against a model before any engine loads them: every weight needs its
 * `<name>.exp_avg` and `<name>.exp_avg_sq` (PyTorch's names for m and v) with the weight's shape. Both engines read
 * optimizer state through this, so a checkpoint written by one loads into the other with the same errors.
 */
import type { OptimizerState } from './engine';

export interface WeightMoments {
  readonly expAvg: Float32Array;
  readonly expAvgSq: Float32Array;
}

/** The moments of each weight in `shapes`; throws naming the file, tensor and shape on the first mismatch. */
export function checkedMoments(
  state: OptimizerState,
  shapes: Iterable<readonly [name: string, shape: readonly number[]]>,
): Map<string, WeightMoments> {
  const file = state.file ?? 'the optimizer checkpoint';
  const advice =
    'the optimizer state does not belong to this model; resume from an earlier checkpoint ' +
    "(delete this step's folder).";
  const moments = new Map<string, WeightMoments>();
  for (const [name, shape] of shapes) {
    const read = (suffix: 'exp_avg' | 'exp_avg_sq'): Float32Array => {
      const saved = state.moments.get(`${name}.${suffix}`);
      if (!saved) throw new Error(`${file}: has no tensor "${name}.${suffix}" — ${advice}`);
      if (saved.shape.join(',') !== shape.join(','))
        throw new Error(
          `${file}: tensor "${name}.${suffix}" has shape [${saved.shape}], expected [${shape}] — ${advice}`,
        );
      return saved.data;
    };
    moments.set(name, { expAvg: read('exp_avg'), expAvgSq: read('exp_avg_sq') });
  }
  return moments;
}
