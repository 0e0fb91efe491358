/**
 * LoRA (Hu et al. 2021, eq. 3): a frozen weight W₀ gets a trainable low-rank update, h = W₀x + (α/r)·B·A·x, with
 * A ∈ ℝ^{r×in} (random) and B ∈ ℝ^{out×r} (zeros, so training starts at the base model). Names and shapes follow
 * PEFT: the module `model.layers.0.self_attn.q_proj` gets `…q_proj.lora_A.weight` [r, in] and
 * `…q_proj.lora_B.weight` [out, r] — whatever the base weight's own layout (GPT-2's Conv1D stores W₀ as [in, out],
 * PEFT's `fan_in_fan_out`). In a file PEFT prefixes every name with `base_model.model.`; inside an engine they are
 * the names below, next to the base weights'.
 */
import type { LoraConfig } from '../../shared/runConfig';
import type { CausalLmConfig } from '../model/causalLmConfig';
import { isLlamaConfig } from '../model/causalLmConfig';

/** The `lora` block of a stage, in the engine's camelCase. */
export interface LoraSettings {
  /** Rank r of the update. */
  readonly r: number;
  /** α: the update is scaled by α / r. */
  readonly alpha: number;
  /** Dropout on the adapter's input x (PEFT's `lora_dropout`), while training only. */
  readonly dropout: number;
  /** Module names matched by suffix, as PEFT does (`q_proj`, `c_attn`), or every linear layer but the LM head. */
  readonly targetModules: readonly string[] | 'all-linear';
}

/** PEFT's default `target_modules` per model_type (what it uses when a LoraConfig names none). */
export const defaultTargetModules: Readonly<Record<'gpt2' | 'llama' | 'qwen2' | 'mistral', readonly string[]>> = {
  gpt2: ['c_attn'],
  llama: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
};

/** One adapted linear layer. */
export interface LoraTarget {
  /** The module's name (`transformer.h.0.attn.c_attn`, `model.layers.0.self_attn.q_proj`). */
  readonly module: string;
  /** Its frozen weight's name (`<module>.weight`). */
  readonly baseWeight: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** True when the base weight is stored [in, out] (GPT-2's Conv1D); false for Linear's [out, in]. */
  readonly fanInFanOut: boolean;
}

export const loraAName = (module: string) => `${module}.lora_A.weight`;
export const loraBName = (module: string) => `${module}.lora_B.weight`;
export const loraScale = (settings: LoraSettings) => settings.alpha / settings.r;
/** True for an adapter tensor's name (every other weight of a LoRA model is frozen, heads aside). */
export const isLoraWeight = (name: string) => /\.lora_[AB]\.weight$/.test(name);

/** Every linear layer of the model's blocks, in state-dict order. */
export function linearModules(config: CausalLmConfig): LoraTarget[] {
  const modules: LoraTarget[] = [];
  if (isLlamaConfig(config)) {
    const a = config.architecture;
    const d = a.hiddenSize;
    const queryWidth = a.numHeads * a.headDim;
    const keyValueWidth = a.numKeyValueHeads * a.headDim;
    const shapes: [string, number, number][] = [
      ['self_attn.q_proj', d, queryWidth],
      ['self_attn.k_proj', d, keyValueWidth],
      ['self_attn.v_proj', d, keyValueWidth],
      ['self_attn.o_proj', queryWidth, d],
      ['mlp.gate_proj', d, a.intermediateSize],
      ['mlp.up_proj', d, a.intermediateSize],
      ['mlp.down_proj', a.intermediateSize, d],
    ];
    for (let layer = 0; layer < a.numLayers; layer++)
      for (const [name, inFeatures, outFeatures] of shapes)
        modules.push(linearTarget(`model.layers.${layer}.${name}`, inFeatures, outFeatures, false));
    return modules;
  }
  const c = config.n_embd;
  const shapes: [string, number, number][] = [
    ['attn.c_attn', c, 3 * c],
    ['attn.c_proj', c, c],
    ['mlp.c_fc', c, 4 * c],
    ['mlp.c_proj', 4 * c, c],
  ];
  for (let layer = 0; layer < config.n_layer; layer++)
    for (const [name, inFeatures, outFeatures] of shapes)
      modules.push(linearTarget(`transformer.h.${layer}.${name}`, inFeatures, outFeatures, true));
  return modules;
}

function linearTarget(module: string, inFeatures: number, outFeatures: number, fanInFanOut: boolean): LoraTarget {
  return { module, baseWeight: `${module}.weight`, inFeatures, outFeatures, fanInFanOut };
}

/**
 * The modules `settings` adapts, matched as PEFT matches a list: a module whose name is the entry or ends with
 * `.<entry>`. An entry that matches nothing is an error, as in PEFT.
 */
export function loraTargets(config: CausalLmConfig, settings: LoraSettings): LoraTarget[] {
  const modules = linearModules(config);
  if (settings.targetModules === 'all-linear') return modules;
  for (const entry of settings.targetModules)
    if (!modules.some((m) => matches(m.module, entry)))
      throw new Error(
        `lora.target_modules: "${entry}" matches no linear layer of this model ` +
          `(it has ${[...new Set(modules.map((m) => m.module.split('.').slice(-1)[0]))].join(', ')})`,
      );
  return modules.filter(
    (m) => settings.targetModules !== 'all-linear' && settings.targetModules.some((e) => matches(m.module, e)),
  );
}

const matches = (module: string, entry: string) => module === entry || module.endsWith(`.${entry}`);

/** A stage's `lora` block as the engine's settings; absent target_modules take PEFT's default for `modelType`. */
export function loraSettingsOf(config: LoraConfig, modelType: keyof typeof defaultTargetModules): LoraSettings {
  const modules = config.target_modules ?? defaultTargetModules[modelType];
  return {
    r: config.r,
    alpha: config.alpha,
    dropout: config.dropout,
    targetModules: modules.length === 1 && modules[0] === 'all-linear' ? 'all-linear' : modules,
  };
}

/**
 * Named float32 tensors: structurally the engine's NamedArrays (engine/engine.ts), declared here because the engine
 * folder imports this one (imports between folders go one way).
 */
export type NamedArrays = Map<string, { shape: number[]; data: Float32Array }>;
