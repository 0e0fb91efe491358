/**
 * The array shapes the core math takes, and the checks that turn a shape mistake into an error that
 * says which argument is wrong. A row is any array of numbers (`number[]`, `Float32Array`, a
 * `Uint8Array` mask, …); 2-D inputs are `[batch][time]` lists of rows, as TRL's `[B, T]` tensors.
 * Rows of one batch may differ in length (each row is its own sequence), but every argument of one
 * call must have the same shape as the first.
 */

/** One sequence of numbers: `number[]`, `Float32Array`, `Uint8Array`, … */
export type Row = ArrayLike<number>;

/** `[batch][time]`: one row per sequence. */
export type Matrix = readonly Row[];

/**
 * A mask entry is 1 for a counted token and 0 for padding (other values weight the entry, as TRL's
 * `values * mask` does). A masked-out entry contributes exactly 0 even when the value there is NaN
 * or ±Infinity (TRL's product would give NaN; padding often holds such sentinels).
 */
export function applyMask(value: number, mask: number): number {
  return mask === 0 ? 0 : value * mask;
}

/** Throws unless every matrix has the first one's shape: `[batch][time]` with equal row lengths. */
export function assertSameShape(fn: string, named: Record<string, Matrix>): void {
  const entries = Object.entries(named);
  const [firstName, first] = entries[0];
  for (const [name, matrix] of entries) {
    if (!Array.isArray(matrix)) {
      throw new TypeError(`${fn}: ${name} must be a [batch][time] array of rows (number[] or Float32Array).`);
    }
    if (matrix.length !== first.length) {
      throw new RangeError(
        `${fn}: ${name} has ${matrix.length} rows but ${firstName} has ${first.length}; pass [batch][time] ` +
          `arrays of the same shape.`,
      );
    }
    for (let b = 0; b < matrix.length; b++) {
      const row = matrix[b];
      if (row === null || typeof row !== 'object' || typeof row.length !== 'number') {
        throw new TypeError(`${fn}: ${name}[${b}] must be a row of numbers (number[] or Float32Array).`);
      }
      if (row.length !== first[b].length) {
        throw new RangeError(
          `${fn}: ${name}[${b}] has ${row.length} entries but ${firstName}[${b}] has ${first[b].length}; pass ` +
            `[batch][time] arrays of the same shape.`,
        );
      }
    }
  }
}

/** Throws unless every row has the first one's length. */
export function assertSameLength(fn: string, named: Record<string, Row>): void {
  const entries = Object.entries(named);
  const [firstName, first] = entries[0];
  for (const [name, row] of entries) {
    if (row === null || typeof row !== 'object' || typeof row.length !== 'number') {
      throw new TypeError(`${fn}: ${name} must be an array of numbers (number[] or Float32Array).`);
    }
    if (row.length !== first.length) {
      throw new RangeError(
        `${fn}: ${name} has ${row.length} entries but ${firstName} has ${first.length}; pass one entry per pair.`,
      );
    }
  }
}

/** Throws unless `value` is a finite number at least `min`. */
export function assertFinite(fn: string, name: string, value: number, min = -Infinity): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    const bound = min === -Infinity ? '' : ` ≥ ${min}`;
    throw new RangeError(`${fn}: ${name} must be a finite number${bound}, got ${String(value)}.`);
  }
}

/** Applies `f` entry by entry to same-shaped matrices, returning plain `number[][]`. */
export function zipMap(matrices: readonly Matrix[], f: (...values: number[]) => number): number[][] {
  const [first] = matrices;
  const out: number[][] = new Array<number[]>(first.length);
  const args = new Array<number>(matrices.length);
  for (let b = 0; b < first.length; b++) {
    const row = new Array<number>(first[b].length);
    for (let t = 0; t < row.length; t++) {
      for (let k = 0; k < matrices.length; k++) args[k] = matrices[k][b][t];
      row[t] = f(...args);
    }
    out[b] = row;
  }
  return out;
}
