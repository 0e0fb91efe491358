/**
 * The public API of RLHF Lens's pure math: plain arrays in, plain arrays out, no tfjs and no I/O.
 * Built to `dist/core.js` with type declarations.
 */
export { Random } from './random';
