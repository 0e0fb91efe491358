/**
 * The logistic function and its logs, written so that large |x| neither overflows nor loses the
 * answer to rounding (what `torch.nn.functional.logsigmoid` and `softplus` do).
 */

/** softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^(−|x|)). */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** log σ(x) = −softplus(−x). */
export function logSigmoid(x: number): number {
  return -softplus(-x);
}

/** σ(x) = 1 / (1 + e^(−x)), without overflow for very negative x. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}
