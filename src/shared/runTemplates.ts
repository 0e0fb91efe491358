/**
 * Templates of "RLHF: New Run": each is a complete, valid config on the embedded demo task (which
 * needs no data and has a sentiment oracle), sized to finish in minutes on a laptop. Only the run's
 * name is asked for; everything else is a starting point to edit with the schema's completion.
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
  if (!runNamePattern.test(name))
    throw new Error(
      `"${name}" cannot name a run: use up to ${maxNameLength} letters, digits, ".", "_" and "-", starting ` +
        `with a letter or digit.`,
    );
  const config =
    id === 'demo-pipeline'
      ? { ...demoPipeline, name }
      : { name, seed: 42, backend: 'auto', model, tokenizer: { vocab_size: 512 }, stages: stagesOf[id] };
  return `${JSON.stringify(config, null, 2)}\n`;
}
