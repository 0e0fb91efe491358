/**
 * The tfjs engine's models, one per CausalLmConfig: our GPT (also any Hugging Face gpt2 folder, with the config's
 * LayerNorm ε and activation) or a Llama-family model, each as a trunk under the shared heads and LoRA adapters
 * (causalLm.ts).
 *
 * Fresh weights come from the engine-neutral initialisers the ONNX Runtime engine also calls: model/gptInit.ts,
 * model/llamaInit.ts (trunk and heads), lora/loraInit.ts (adapters).
 */
import { loraTargets } from '../../lora/loraTargets';
import { isLlamaConfig, type CausalLmConfig, type LlamaConfig } from '../../model/causalLmConfig';
import { drawDropoutMasks } from '../../model/dropoutMasks';
import { initialLlamaHeads, initialLlamaTrunk } from '../../model/llamaInit';
import type { GptConfig, ScalarHead } from '../../model/gptConfig';
import type { CreateModelOptions, NamedArrays } from '../engine';
import { gpt2Activation } from './activations';
import { TfjsLm, type Trunk } from './causalLm';
import { Gpt, ourGptMath, type GptMath } from './gpt';
import { LlamaModel } from './llamaModel';
import { LoraAdapters } from './loraAdapters';
import { makeVariables } from './readVariables';
import type { Variable } from './tfRuntime';

/** The GPT's math from a config: GPT-2's `layer_norm_epsilon` and `activation_function` (absent: ours). */
export function gptMath(config: GptConfig): GptMath {
  return {
    layerNormEpsilon: config.layer_norm_epsilon ?? ourGptMath.layerNormEpsilon,
    activation:
      config.activation_function === undefined ? ourGptMath.activation : gpt2Activation(config.activation_function),
  };
}

/** The model `options` describe: from `weights` or freshly seeded, with heads, and adapters when `lora` is set. */
export function createTfjsLm(config: CausalLmConfig, options: CreateModelOptions): TfjsLm {
  const { trunk, headWeights, gpt } = isLlamaConfig(config) ? llamaTrunk(config, options) : gptTrunk(config, options);
  let adapters: LoraAdapters | undefined;
  try {
    if (options.lora)
      adapters = LoraAdapters.create(options.lora, loraTargets(config, options.lora), options.seed, options.weights);
  } catch (error) {
    trunk.dispose();
    throw error;
  }
  return new TfjsLm(trunk, options.heads, headWeights, adapters, gpt);
}

/** A GPT (its heads among its own weights) as a trunk and its head weights. */
export function gptParts(gpt: Gpt): { trunk: Trunk; headWeights: Map<string, Variable>; gpt: Gpt } {
  const isHead = (name: string) => gpt.heads.some((head) => name.startsWith(`${head}.`));
  const all = [...gpt.weights];
  const trunk: Trunk = {
    config: gpt.config,
    weights: new Map(all.filter(([name]) => !isHead(name))),
    forward: (ids, { dropoutSeed, ...options }) => {
      const [batchSize, length] = ids.shape as [number, number];
      const dropoutMasks =
        dropoutSeed === undefined ? undefined : drawDropoutMasks(gpt.config, { batchSize, length }, dropoutSeed);
      return gpt.forward(ids, { ...options, dropoutMasks });
    },
    dispose: () => gpt.dispose(),
  };
  return { trunk, headWeights: new Map(all.filter(([name]) => isHead(name))), gpt };
}

/** Our GPT alone (no adapters) as the engine's model; a TfjsLm as it is. */
export function asTfjsLm(model: TfjsLm | Gpt): TfjsLm {
  if (!(model instanceof Gpt)) return model;
  const { trunk, headWeights } = gptParts(model);
  return new TfjsLm(trunk, model.heads, headWeights, undefined, model);
}

function gptTrunk(config: GptConfig, options: CreateModelOptions) {
  const math = gptMath(config);
  const gpt = options.weights
    ? Gpt.fromWeights(config, options.heads, options.weights, {
        keepMissingHeads: options.keepMissingHeads,
        seed: options.seed,
        math,
      })
    : Gpt.create(config, { seed: options.seed, heads: options.heads, math });
  return gptParts(gpt);
}

/** A checkpoint's value of `name`, checked against the shape the model needs. */
function checkedValue(weights: NamedArrays, name: string, shape: readonly number[]): Float32Array {
  const value = weights.get(name);
  if (!value) throw new Error(`the checkpoint has no weight "${name}"`);
  if (value.shape.join(',') !== shape.join(','))
    throw new Error(`weight "${name}" has shape [${value.shape}] in the checkpoint but [${shape}] in the model config`);
  return value.data;
}

function llamaTrunk(config: LlamaConfig, options: CreateModelOptions) {
  if (config.dropout !== 0)
    throw new Error(`dropout ${config.dropout}: the Llama family trains without dropout in the tfjs engine (use 0)`);
  const architecture = config.architecture;
  const { weights } = options;
  const fresh = weights ? undefined : initialLlamaTrunk(config, options.seed);
  const model = LlamaModel.fromValues(architecture, (name, shape) =>
    checkedValue(fresh ?? (weights as NamedArrays), name, shape),
  );
  let headWeights: Map<string, Variable>;
  try {
    headWeights = llamaHeads(architecture.hiddenSize, options.heads, options);
  } catch (error) {
    model.dispose();
    throw error;
  }
  const trunk: Trunk = {
    config,
    weights: model.weights,
    forward: (ids, { dropoutSeed: _unused, ...rest }) => model.forward(ids, rest),
    dispose: () => {
      model.dispose();
      for (const variable of headWeights.values()) variable.dispose();
    },
  };
  return { trunk, headWeights, gpt: undefined };
}

/** [C, 1] weight and [1] bias per head: from the checkpoint, or fresh (no checkpoint, or keepMissingHeads). */
function llamaHeads(width: number, heads: readonly ScalarHead[], options: CreateModelOptions): Map<string, Variable> {
  const fresh = initialLlamaHeads(width, heads, options.seed);
  const shapes = heads.flatMap((head) => [[`${head}.weight`, [width, 1]] as const, [`${head}.bias`, [1]] as const]);
  return makeVariables(shapes, (name, shape) => {
    const head = name.split('.')[0];
    const fromCheckpoint = options.weights && !(options.keepMissingHeads && !options.weights.has(`${head}.weight`));
    return checkedValue(fromCheckpoint ? (options.weights as NamedArrays) : fresh, name, shape);
  });
}
