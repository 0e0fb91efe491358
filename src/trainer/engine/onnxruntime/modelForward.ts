/**
 * "A model forward": what every training and evaluation graph (lm, Bradley–Terry, PPO, DPO, evaluate, scores)
 * needs of the model it runs — its weight inputs, which of them train, and ids → logits and final hidden state —
 * so the losses are written once for our GPT (gptGraph.ts), the Llama family (llamaGraph.ts) and either with LoRA
 * adapters (loraForward.ts).
 */
import type { CausalLmConfig } from '../../model/causalLmConfig';
import { isLlamaConfig } from '../../model/causalLmConfig';
import type { ScalarHead } from '../../model/gptConfig';
import { gptWeightShapes } from '../../model/gptWeightShapes';
import { drawDropoutMasks, type DropoutBatchShape, type DropoutMask } from '../../model/dropoutMasks';
import type { DiffGraph } from './autodiff/graph';
import { gptForward, type DropoutMaskInput, type LinearHook } from './gptForward';
import { llamaForward, llamaWeightShapes } from './llamaGraph';

export type { LinearHook } from './gptForward';

export interface ForwardResult {
  /** [B, T, V] */
  readonly logits: string;
  /** The final hidden state [B, T, C], which the scalar heads read. */
  readonly hidden: string;
}

/** A graph input per dropout site, by the site's index and shape (the input's name is the builder's choice). */
export interface ForwardDropout {
  readonly mask: DropoutMaskInput;
}

export interface ModelForward {
  readonly config: CausalLmConfig;
  /** Every weight input (base weights, adapters, `heads`) by name and shape, in state-dict order. */
  weightShapes(heads: readonly ScalarHead[]): Map<string, number[]>;
  /** Whether a weight gets a gradient output (every weight of a full fine-tune; adapters and heads under LoRA). */
  trains(name: string): boolean;
  /** Whether a training forward of this model has dropout sites (fed when a step has a dropout seed). */
  readonly hasDropout: boolean;
  /** The masks of a training forward's dropout sites, in site order (model/dropoutMasks.ts's scheme). */
  dropoutMasks(shape: DropoutBatchShape, forwardSeed: number): DropoutMask[];
  forward(g: DiffGraph, weights: ReadonlyMap<string, string>, ids: string, dropout?: ForwardDropout): ForwardResult;
}

/** The plain forward of `config`: every weight trains; dropout sites only for a GPT with dropout > 0. */
export function baseModelForward(config: CausalLmConfig): ModelForward {
  if (isLlamaConfig(config)) {
    if (config.dropout !== 0)
      throw new Error(`a ${config.architecture.modelType} model trains without dropout, got dropout ${config.dropout}`);
    return {
      config,
      weightShapes: (heads) => llamaWeightShapes(config, heads),
      trains: () => true,
      hasDropout: false,
      dropoutMasks: () => [],
      forward: (g, weights, ids, _dropout, adapt?: LinearHook) => llamaForward(g, config, weights, ids, adapt),
    } satisfies AdaptableForward;
  }
  return {
    config,
    weightShapes: (heads) => gptWeightShapes(config, heads),
    trains: () => true,
    hasDropout: config.dropout > 0,
    dropoutMasks: (shape, forwardSeed) => drawDropoutMasks(config, shape, forwardSeed),
    forward: (g, weights, ids, dropout, adapt?: LinearHook) =>
      gptForward(g, config, weights, ids, dropout?.mask, adapt),
  } satisfies AdaptableForward;
}

/** A base forward whose linear layers can be adapted (what loraForward.ts wraps). */
export interface AdaptableForward extends ModelForward {
  forward(
    g: DiffGraph,
    weights: ReadonlyMap<string, string>,
    ids: string,
    dropout?: ForwardDropout,
    adapt?: LinearHook,
  ): ForwardResult;
}

/** A graph builder takes a config (its plain forward) or a forward already made (LoRA, adapters off). */
export type ModelSource = CausalLmConfig | ModelForward;

export function forwardOf(source: ModelSource): ModelForward {
  return 'forward' in source && typeof source.forward === 'function'
    ? source
    : baseModelForward(source as CausalLmConfig);
}

/** Declares every weight of `model` (and `heads`) as a float input; returns name → value. */
export function modelWeightInputs(
  g: DiffGraph,
  model: ModelForward,
  heads: readonly ScalarHead[] = [],
): Map<string, string> {
  const weights = new Map<string, string>();
  for (const [name, shape] of model.weightShapes(heads)) weights.set(name, g.input(name, shape));
  return weights;
}

/** The weights whose gradients a loss graph outputs. */
export const trainedWeights = (model: ModelForward, weights: ReadonlyMap<string, string>) =>
  [...weights.keys()].filter((name) => model.trains(name));
