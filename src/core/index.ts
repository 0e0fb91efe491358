/**
 * The public API of RLHF Lens's pure math: plain arrays in, plain arrays out, no tfjs and no I/O.
 * Built to `dist/core.js` with type declarations (`dist/core.d.ts`).
 */
export { Random } from './random';
export type { Matrix, Row } from './arrays';
export { mean, std, sum } from './stats';
export { logSigmoid, sigmoid, softplus } from './sigmoid';
export { maskedMean, maskedVar, maskedWhiten } from './masked';
export { klEstimators, klPerToken, type KlEstimator } from './kl';
export { gae, type GaeResult } from './gae';
export { ClipClass, classifyClip, clipClassMeanings, clipClassValues, clipFraction } from './clipClass';
export { ppoPolicyLoss, ppoValueLoss, type PpoPolicyLossResult, type PpoValueLossResult } from './ppoLosses';
export {
  bradleyTerryLoss,
  dpoLoss,
  type DpoLossOptions,
  type DpoLossResult,
  type DpoLossType,
} from './preferenceLosses';
export { rankingToPairs, type PreferencePair } from './rankingToPairs';
