/** TensorFlow.js backends in the order `auto` tries them: the best first. */
export const backendNames = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
