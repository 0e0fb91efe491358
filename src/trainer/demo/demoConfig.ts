/**
 * The embedded demo: the DPO paper's controlled-sentiment experiment in miniature. One SFT policy
 * on the review corpus, simulated preference labels from the sentiment oracle, a reward model, then
 * PPO at three KL coefficients and DPO at three β, all from the same SFT policy and labels. The
 * full run fits in 15 minutes on 2 cores; `quick` is a smaller version for the tests (under 3).
 */
export const demoKlCoefficients = [0.02, 0.05, 0.2] as const;
export const demoBetas = [0.05, 0.1, 0.5] as const;

export interface DemoScale {
  readonly sftSteps: number;
  readonly preferencePrompts: number;
  readonly rewardEpochs: number;
  readonly ppoEpisodes: number;
  readonly ppoBatch: number;
  readonly ppoLearningRate: number;
  readonly dpoEpochs: number;
  readonly dpoLearningRate: number;
  readonly evalPrompts: number;
  readonly maxNewTokens: number;
}

export const demoScales: Record<'full' | 'quick', DemoScale> = {
  full: { sftSteps: 800, preferencePrompts: 768, rewardEpochs: 2, ppoEpisodes: 1280, ppoBatch: 32, ppoLearningRate: 3e-4, dpoEpochs: 1, dpoLearningRate: 5e-4, evalPrompts: 256, maxNewTokens: 32 },
  quick: { sftSteps: 250, preferencePrompts: 256, rewardEpochs: 2, ppoEpisodes: 256, ppoBatch: 32, ppoLearningRate: 1e-3, dpoEpochs: 1, dpoLearningRate: 1e-3, evalPrompts: 128, maxNewTokens: 24 },
};

const klName = (coefficient: number) => `ppo-kl${coefficient}`;
const betaName = (beta: number) => `dpo-beta${beta}`;
export const ppoStageNames = demoKlCoefficients.map(klName);
export const dpoStageNames = demoBetas.map(betaName);

/** The run config of the demo, as a `*.rlhf.json` would hold it. */
export function demoConfig(scale: DemoScale, name: string): Record<string, unknown> {
  return {
    name,
    seed: 42,
    backend: 'auto',
    model: { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64, dropout: 0 },
    tokenizer: { vocab_size: 512 },
    stages: [
      { type: 'sft', dataset: { source: 'demo', num_examples: 20000 }, learning_rate: 3e-3, max_steps: scale.sftSteps, warmup_steps: 30, eval_steps: Math.ceil(scale.sftSteps / 4), save_steps: scale.sftSteps },
      { type: 'preferences', policy: 'sft', prompts: { source: 'demo' }, num_prompts: scale.preferencePrompts, completions_per_prompt: 4, annotator_temperature: 0.1, max_new_tokens: scale.maxNewTokens },
      { type: 'reward', init_from: 'sft', preferences: 'preferences', num_train_epochs: scale.rewardEpochs, per_device_train_batch_size: 8 },
      ...demoKlCoefficients.map((coefficient) => ({
        type: 'ppo',
        name: klName(coefficient),
        policy: 'sft',
        reward_model: 'reward',
        prompts: { source: 'demo' },
        total_episodes: scale.ppoEpisodes,
        batch_size: scale.ppoBatch,
        num_mini_batches: 2,
        num_ppo_epochs: 4,
        learning_rate: scale.ppoLearningRate,
        init_kl_coef: coefficient,
        max_new_tokens: scale.maxNewTokens,
        eval_steps: 1000,
        num_eval_prompts: 32,
        save_steps: 1000,
      })),
      ...demoBetas.map((beta) => ({
        type: 'dpo',
        name: betaName(beta),
        policy: 'sft',
        preferences: 'preferences',
        beta,
        learning_rate: scale.dpoLearningRate,
        num_train_epochs: scale.dpoEpochs,
        per_device_train_batch_size: 16,
        eval_steps: 1000,
        num_eval_prompts: 32,
        max_new_tokens: scale.maxNewTokens,
        save_steps: 1000,
      })),
    ],
  };
}
