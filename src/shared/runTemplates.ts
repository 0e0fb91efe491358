/**
 * Templates of "RLHF: New Run": each is a complete, valid config on the embedded demo task (which
 * needs no data and has a sentiment oracle), sized to finish in minutes on a laptop. Only the run's
 * name is asked for; everything else is a starting point to edit with the schema's completion.
 * The "on my model" templates also ask for a Hugging Face model folder: the same stages start from it
 * and train LoRA adapters, with learning rates for a pretrained model.
 */
import demoPipeline from '../../examples/demo-pipeline.rlhf.json';
import { maxNameLength } from './runConfig';

export interface RunTemplate {
  readonly id: 'demo-pipeline' | 'sft' | 'reward' | 'ppo' | 'dpo';
  readonly label: string;
  readonly detail: string;
}

export const runTemplates: readonly RunTemplate[] = [
  {
    id: 'demo-pipeline',
    label: 'Demo pipeline',
    detail: "SFT → preference labels → reward model → PPO, and DPO from the same labels (the README's demo)",
  },
  { id: 'sft', label: 'SFT', detail: 'Supervised fine-tuning of a small GPT on the demo reviews' },
  { id: 'reward', label: 'Reward model', detail: 'SFT → simulated preference labels → a Bradley–Terry reward model' },
  { id: 'ppo', label: 'PPO', detail: 'SFT → preference labels → reward model → PPO with a per-token KL penalty' },
  { id: 'dpo', label: 'DPO', detail: 'SFT → preference labels → DPO against the frozen SFT policy' },
];

/** Templates that start from the user's Hugging Face model folder (`model.from`), which New Run asks for. */
export interface ModelRunTemplate {
  readonly id: 'ppo-my-model' | 'dpo-my-model';
  readonly label: string;
  readonly detail: string;
}

export const modelRunTemplates: readonly ModelRunTemplate[] = [
  {
    id: 'ppo-my-model',
    label: 'PPO on my model',
    detail: 'Your model folder: SFT → preference labels → reward model → PPO, training LoRA adapters',
  },
  {
    id: 'dpo-my-model',
    label: 'DPO on my model',
    detail: 'Your model folder: SFT → preference labels → DPO, training LoRA adapters',
  },
];

/** Run names become run ids and file names: the schema's pattern and length limit. */
export const runNamePattern = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${maxNameLength - 1}}$`);

const model = { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64, dropout: 0 };
const sft = {
  type: 'sft',
  dataset: { source: 'demo', num_examples: 20000 },
  learning_rate: 0.003,
  max_steps: 600,
  warmup_steps: 30,
  eval_steps: 100,
  save_steps: 200,
};
const preferences = {
  type: 'preferences',
  policy: 'sft',
  prompts: { source: 'demo' },
  num_prompts: 512,
  completions_per_prompt: 4,
  annotator: 'simulated',
  annotator_temperature: 0.1,
  max_new_tokens: 32,
};
const reward = {
  type: 'reward',
  init_from: 'sft',
  preferences: 'preferences',
  learning_rate: 0.0005,
  num_train_epochs: 2,
  per_device_train_batch_size: 8,
};
const ppo = {
  type: 'ppo',
  policy: 'sft',
  reward_model: 'reward',
  prompts: { source: 'demo' },
  total_episodes: 1024,
  batch_size: 32,
  num_mini_batches: 2,
  num_ppo_epochs: 4,
  learning_rate: 0.0003,
  kl_estimator: 'k1',
  init_kl_coef: 0.05,
  max_new_tokens: 32,
  eval_steps: 8,
  save_steps: 16,
};
const dpo = {
  type: 'dpo',
  policy: 'sft',
  preferences: 'preferences',
  beta: 0.1,
  loss_type: 'sigmoid',
  learning_rate: 0.0005,
  num_train_epochs: 2,
  per_device_train_batch_size: 16,
};

const stagesOf: Record<Exclude<RunTemplate['id'], 'demo-pipeline'>, readonly object[]> = {
  sft: [sft],
  reward: [sft, preferences, reward],
  ppo: [sft, preferences, reward, ppo],
  dpo: [sft, preferences, dpo],
};

/** The config text of a template for a run called `name`. */
export function renderTemplate(id: RunTemplate['id'], name: string): string {
  checkRunName(name);
  const config =
    id === 'demo-pipeline'
      ? { ...demoPipeline, name }
      : { name, seed: 42, backend: 'auto', model, tokenizer: { vocab_size: 512 }, stages: stagesOf[id] };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * Context of the "on my model" templates: room for a demo prompt and a 32-token answer, and little enough that a
 * 1B-parameter model's activations fit a laptop (the memory guard says so before a run starts when they do not).
 */
export const modelTemplateBlockSize = 128;

/** PEFT's usual starting point; target_modules is left to PEFT's default for the model type. */
const lora = { r: 8, alpha: 16, dropout: 0.05 };

/**
 * The "on my model" stages: the demo's, with learning rates for adapters on a pretrained model (TRL's LoRA
 * examples train adapters at 1e-4 to 2e-4 for SFT and reward models, and about 10× lower for PPO and DPO).
 */
const modelStages: Record<ModelRunTemplate['id'], readonly object[]> = {
  'ppo-my-model': [
    { ...sft, learning_rate: 0.0002, max_steps: 200, warmup_steps: 10, eval_steps: 50, save_steps: 100, lora },
    { ...preferences, num_prompts: 256 },
    { ...reward, learning_rate: 0.0001, lora },
    { ...ppo, learning_rate: 0.00002, total_episodes: 512, batch_size: 16, lora },
  ],
  'dpo-my-model': [
    { ...sft, learning_rate: 0.0002, max_steps: 200, warmup_steps: 10, eval_steps: 50, save_steps: 100, lora },
    { ...preferences, num_prompts: 256 },
    { ...dpo, learning_rate: 0.00005, per_device_train_batch_size: 8, lora },
  ],
};

/**
 * The config text of an "on my model" template: `modelFrom` is the folder as the config names it (relative to the
 * config file); `maxPositions`, the folder's context, caps block_size.
 */
export function renderModelTemplate(
  id: ModelRunTemplate['id'],
  name: string,
  modelFrom: string,
  maxPositions?: number,
): string {
  checkRunName(name);
  const blockSize = Math.min(modelTemplateBlockSize, maxPositions ?? modelTemplateBlockSize);
  const config = {
    name,
    seed: 42,
    backend: 'auto',
    model: { from: modelFrom, block_size: blockSize },
    stages: modelStages[id],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function checkRunName(name: string): void {
  if (!runNamePattern.test(name))
    throw new Error(
      `"${name}" cannot name a run: use up to ${maxNameLength} letters, digits, ".", "_" and "-", starting ` +
        `with a letter or digit.`,
    );
}
