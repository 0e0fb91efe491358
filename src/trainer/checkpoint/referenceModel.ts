/**
 * The PPO / DPO reference of a LoRA policy: the policy itself with its adapters off (the seam's `adaptersOff`), so
 * the process holds one copy of the trunk. The base weights are frozen while the adapters train, so adapters off is
 * exactly the model the stage started from (PEFT's `disable_adapter()`, which TRL uses as the reference when the
 * policy is a PeftModel and no ref_model is given).
 */
import type { EngineModel } from '../engine/engine';

const notAReferenceOperation = (what: string) => () => {
  throw new Error(`the reference of a LoRA policy (its adapters off) only computes log-probabilities, not ${what}`);
};

/** The base model of LoRA `policy` as a model of its own; disposing it leaves the policy alone. */
export function adaptersOffView(policy: EngineModel): EngineModel {
  if (!policy.lora) throw new Error('adaptersOffView: the policy trains no LoRA adapters');
  return {
    config: policy.config,
    lora: policy.lora,
    // The ONNX rollout engine builds the reference session from these weights with the adapters off
    // (onnxRolloutEngine.ts sessionWeights); the value head rides along unused.
    heads: policy.heads,
    parameterCount: policy.parameterCount,
    evaluate: (batch, request) => policy.evaluate(batch, { ...request, adaptersOff: true }),
    readWeights: () => policy.readWeights(),
    scores: notAReferenceOperation('scores'),
    scoreTotal: notAReferenceOperation('scores'),
    generate: notAReferenceOperation('samples'),
    subtractFromWeight: notAReferenceOperation('weight updates'),
    createOptimizer: notAReferenceOperation('an optimizer'),
    dispose: () => undefined,
  };
}
