/**
 * Sampling for the ONNX Runtime training engine (engine/onnxruntime/onnxEngine.ts): one KV-cache session
 * per model with its weights as graph inputs, so each `generate` feeds the current weights (no rebuild)
 * and samples with `generateOnnx` — the tfjs sampler's twin (same padding, warpers and seeded draws).
 * Passed in by whoever creates the engine, so that engine/ does not import onnx/ (no folder cycle).
 */
import type { EngineSampler, EngineSamplerFactory } from '../engine/onnxruntime/onnxEngine';
import { OnnxCausalLm } from './onnxCausalLm';
import { generateOnnx } from './onnxSampler';

export const onnxEngineSampler: EngineSamplerFactory = (config, heads, executionProviders): EngineSampler => {
  let session: Promise<OnnxCausalLm> | undefined;
  return {
    async generate(weights, prompts, sampling) {
      if (session) await (await session).updateWeights(weights);
      else
        session = OnnxCausalLm.fromCausalLm(config, heads, weights, {
          kvCache: true,
          weightSync: 'inputs',
          spinWait: false,
          executionProviders,
        });
      return generateOnnx(await session, prompts, sampling);
    },
    async release() {
      if (session) await (await session).release();
      session = undefined;
    },
  };
};
