/**
 * TensorFlow.js backends in the order `auto` tries them: the best first. `webgpu` runs on Dawn (the `webgpu`
 * package); `auto` passes over a software adapter (llvmpipe, lavapipe, SwiftShader), a pinned one uses it.
 */
export const backendNames = ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];

/**
 * Training engines a config or `rlhf.defaultEngine` may pin; `auto` picks the first (ONNX Runtime:
 * several times faster than tfjs-wasm on the CPU, same losses to 1e-3).
 */
export const engineNames = ['onnxruntime', 'tfjs'] as const;
export type EngineName = (typeof engineNames)[number];
