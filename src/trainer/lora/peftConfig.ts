/**
 * PEFT's `adapter_config.json` for a LoRA adapter, as `PeftModel.save_pretrained` writes it (PEFT v0.20.0,
 * commit a5526d27a9d47d1e8264d5e1b1f96c0fdc79464e): `dataclasses.asdict(LoraConfig)` without `runtime_config`
 * (LoraConfig.to_dict), `inference_mode` set to true for the save, target_modules as a list (PEFT keeps a set and
 * turns it into a list; "all-linear" is resolved before, to the full names of every linear layer but the output
 * head), dumped by `json.dumps(output_dict, indent=2, sort_keys=True)` with no newline at the end.
 *
 * Only plain LoRA is read back: r and α (scale α / r), dropout, target modules. Everything PEFT adds on top
 * (rsLoRA's α/√r, DoRA, per-layer rank or α patterns, layer subsets, LoRA biases) is refused by name, since
 * merging it as plain LoRA would give a different model.
 */
import { isRecord } from '../../shared/isRecord';
import type { CausalLmConfig } from '../model/causalLmConfig';
import { isLlamaConfig } from '../model/causalLmConfig';
import { linearModules, type LoraSettings } from './loraTargets';

export const adapterConfigFile = 'adapter_config.json';
/** The PEFT release whose format is written (and claimed in `peft_version`). */
export const peftVersion = '0.20.0';

/** PEFT's TaskType for a policy / SFT model (a causal LM) and for a reward model (a sequence classifier). */
export type PeftTaskType = 'CAUSAL_LM' | 'SEQ_CLS';

/**
 * What PeftModelForSequenceClassification adds to `modules_to_save` when the config names none: the common names
 * of a classifier head (transformers' `…ForSequenceClassification` calls its head `score`).
 */
export const sequenceClassifierModules: readonly string[] = ['classifier', 'score'];

export interface AdapterConfigInput {
  readonly config: CausalLmConfig;
  readonly settings: LoraSettings;
  readonly taskType: PeftTaskType;
  /** The base model's folder or Hub id, as PEFT records it (null when unknown). */
  readonly baseModelNameOrPath: string | null;
}

/** Every key of the file, with the value PEFT writes for a plain LoRA adapter. */
export function adapterConfigJson(input: AdapterConfigInput): Record<string, unknown> {
  const { config, settings, taskType } = input;
  const targetModules =
    settings.targetModules === 'all-linear'
      ? linearModules(config).map((m) => m.module)
      : [...new Set(settings.targetModules)].sort();
  return {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: input.baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    // GPT-2's Conv1D stores W as [in, out]: PEFT sets fan_in_fan_out for it (and warns when it is not given).
    fan_in_fan_out: !isLlamaConfig(config),
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: settings.alpha,
    lora_bias: false,
    lora_dropout: settings.dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: taskType === 'SEQ_CLS' ? [...sequenceClassifierModules] : null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: peftVersion,
    qalora_group_size: 16,
    r: settings.r,
    rank_pattern: {},
    revision: null,
    target_modules: targetModules,
    target_parameters: null,
    task_type: taskType,
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
    velora_config: null,
  };
}

/** Keys whose values Python writes as floats (`0.0`, not `0`): LoraConfig types lora_dropout as float. */
const floatKeys = new Set(['lora_dropout']);

/** The file's text as Python's `json.dumps(value, indent=2, sort_keys=True)` prints it. */
export function adapterConfigText(input: AdapterConfigInput): string {
  return pythonJson(adapterConfigJson(input), '', undefined);
}

function pythonJson(value: unknown, indent: string, key: string | undefined): string {
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((item) => inner + pythonJson(item, inner, undefined)).join(',\n')}\n${indent}]`;
  }
  if (isRecord(value)) {
    const keys = Object.keys(value).sort();
    if (keys.length === 0) return '{}';
    const lines = keys.map((k) => `${inner}${JSON.stringify(k)}: ${pythonJson(value[k], inner, k)}`);
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  if (typeof value === 'number' && key !== undefined && floatKeys.has(key) && Number.isInteger(value))
    return value.toFixed(1);
  return JSON.stringify(value);
}

/** What an adapter_config.json says, checked: a plain LoRA adapter of `config`'s architecture. */
export interface ParsedAdapterConfig {
  readonly settings: LoraSettings;
  readonly taskType: PeftTaskType;
  readonly baseModelNameOrPath: string | null;
  readonly modulesToSave: readonly string[];
}

/** Reads the JSON of `file` (its text given) as a plain LoRA adapter; errors name the file and the field. */
export function parseAdapterConfig(text: string, file: string, config: CausalLmConfig): ParsedAdapterConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(json)) throw new Error(`${file}: expected a JSON object, as PEFT's save_pretrained writes`);
  // Annotated so TypeScript narrows after a call (a never-returning arrow function must be typed explicitly).
  const fail: (field: string, problem: string) => never = (field, problem) => {
    throw new Error(`${file}: field "${field}" ${problem}`);
  };
  if (json.peft_type !== 'LORA')
    fail('peft_type', `is ${JSON.stringify(json.peft_type)}; only LoRA adapters ("LORA") can be read`);
  const taskType = json.task_type;
  if (taskType !== 'CAUSAL_LM' && taskType !== 'SEQ_CLS')
    fail('task_type', `is ${JSON.stringify(taskType)}; expected "CAUSAL_LM" (a policy) or "SEQ_CLS" (a reward model)`);
  const r = json.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail('r', `must be a positive integer, got ${show(r)}`);
  const alpha = json.lora_alpha;
  if (typeof alpha !== 'number' || !(alpha > 0)) fail('lora_alpha', `must be a positive number, got ${show(alpha)}`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout >= 1)
    fail('lora_dropout', `must be a number in [0, 1), got ${show(dropout)}`);

  // Variants whose merge is not W₀ + (α/r)·B·A: refused rather than merged wrongly.
  const mustBe: [string, unknown][] = [
    ['use_rslora', false],
    ['use_dora', false],
    ['lora_bias', false],
    ['bias', 'none'],
  ];
  for (const [field, expected] of mustBe)
    if (json[field] !== undefined && json[field] !== expected)
      fail(field, `is ${show(json[field])}; only plain LoRA (${field}: ${JSON.stringify(expected)}) is supported`);
  for (const field of ['rank_pattern', 'alpha_pattern'])
    if (isRecord(json[field]) && Object.keys(json[field]).length > 0)
      fail(field, 'sets a per-layer rank or alpha; only one r and lora_alpha for every layer are supported');
  for (const field of ['layers_to_transform', 'layer_replication', 'target_parameters', 'trainable_token_indices'])
    if (json[field] !== undefined && json[field] !== null) fail(field, `is set (${show(json[field])}); not supported`);

  return {
    settings: { r, alpha, dropout, targetModules: parseTargetModules(json.target_modules, config, fail) },
    taskType,
    baseModelNameOrPath: typeof json.base_model_name_or_path === 'string' ? json.base_model_name_or_path : null,
    modulesToSave: parseModulesToSave(json.modules_to_save, fail),
  };
}

function parseTargetModules(
  value: unknown,
  config: CausalLmConfig,
  fail: (field: string, problem: string) => never,
): LoraSettings['targetModules'] {
  if (value === 'all-linear') return 'all-linear';
  if (!Array.isArray(value) || value.length === 0 || !value.every((m) => typeof m === 'string'))
    return fail('target_modules', `must be a non-empty list of module names, got ${show(value)}`);
  const all = linearModules(config).map((m) => m.module);
  const names = value as string[];
  // "all-linear" is saved resolved, as every linear layer's full name: read it back as what it was.
  if (names.length === all.length && all.every((m) => names.includes(m))) return 'all-linear';
  return names;
}

function parseModulesToSave(value: unknown, fail: (field: string, problem: string) => never): string[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value) || !value.every((m) => typeof m === 'string'))
    return fail('modules_to_save', `must be null or a list of module names, got ${show(value)}`);
  return value as string[];
}

const show = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));
