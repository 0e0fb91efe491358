/**
 * The embedded demo: the DPO paper's controlled-sentiment experiment in miniature. One SFT policy
 * on the review corpus, simulated preference labels from the sentiment oracle, a reward model, then
 * PPO at three KL coefficients and DPO at three β, all from the same SFT policy and labels. The
 * full run fits in 15 minutes on 2 cores; `quick` is a smaller version for the tests (under a minute).
 */
export const demoKlCoefficients = [0.02, 0.05, 0.2] as const;
export const demoBetas = [0.05, 0.1, 0.5] as const;

export interface DemoScale {
  /** nanoGPT shape: the quick demo trains a narrower model so the whole pipeline fits in its budget. */
  readonly model: {
    readonly n_layer: number;
    readonly n_head: number;
    readonly n_embd: number;
    readonly block_size: number;
  };
  readonly sftSteps: number;
  readonly sftLearningRate: number;
  readonly preferencePrompts: number;
  readonly completionsPerPrompt: number;
  readonly rewardEpochs: number;
  readonly rewardLearningRate: number;
  readonly ppoEpisodes: number;
  readonly ppoBatch: number;
  readonly ppoLearningRate: number;
  readonly dpoSteps: number;
  readonly dpoLearningRate: number;
  readonly evalPrompts: number;
  readonly maxNewTokens: number;
}

// Sizes measured on 2 cores: the full demo's reward model needs ~1,000 prompts × 6 completions, a
// summed score (see the reward stage below) and four epochs to pass 85% held-out accuracy against the
// oracle (0.860 and 0.852 over two seeds; reading the last token instead: 0.819). The quick one (the test command's)
// is sized so its margins hold with room on the ONNX Runtime engine: 512 prompts × 6 gave a reward model at 78–85 %
// oracle accuracy and PPO / DPO gains of +0.10 to +0.51 over SFT for seeds 42, 1 and 2 (the test asks 70 % and +0.05),
// in about 20 s on 2 cores.
export const demoScales: Record<'full' | 'quick', DemoScale> = {
  full: {
    model: { n_layer: 2, n_head: 4, n_embd: 64, block_size: 64 },
    sftSteps: 800,
    sftLearningRate: 3e-3,
    preferencePrompts: 1024,
    completionsPerPrompt: 6,
    rewardEpochs: 4,
    rewardLearningRate: 1.5e-3,
    ppoEpisodes: 768,
    ppoBatch: 32,
    ppoLearningRate: 3e-4,
    dpoSteps: 120,
    dpoLearningRate: 5e-4,
    evalPrompts: 256,
    maxNewTokens: 32,
  },
  quick: {
    model: { n_layer: 2, n_head: 4, n_embd: 48, block_size: 48 },
    sftSteps: 300,
    sftLearningRate: 5e-3,
    preferencePrompts: 512,
    completionsPerPrompt: 6,
    rewardEpochs: 3,
    rewardLearningRate: 2e-3,
    ppoEpisodes: 384,
    ppoBatch: 32,
    ppoLearningRate: 1e-3,
    dpoSteps: 60,
    dpoLearningRate: 1e-3,
    evalPrompts: 256,
    maxNewTokens: 16,
  },
};

const klName = (coefficient: number) => `ppo-kl${coefficient}`;
const betaName = (beta: number) => `dpo-beta${beta}`;
export const ppoStageNames = demoKlCoefficients.map(klName);
export const dpoStageNames = demoBetas.map(betaName);

/** The seed of the demo's runs unless `--seed` gives another (the README's figures are this seed's). */
export const demoSeed = 42;

/** The run config of the demo, as a `*.rlhf.json` would hold it. */
export function demoConfig(scale: DemoScale, name: string, seed = demoSeed): Record<string, unknown> {
  return {
    name,
    seed,
    backend: 'auto',
    model: { ...scale.model, dropout: 0 },
    tokenizer: { vocab_size: 512 },
    stages: [
      {
        type: 'sft',
        dataset: { source: 'demo', num_examples: 20000 },
        learning_rate: scale.sftLearningRate,
        max_steps: scale.sftSteps,
        warmup_steps: 30,
        eval_steps: Math.ceil(scale.sftSteps / 4),
        save_steps: scale.sftSteps,
      },
      {
        type: 'preferences',
        policy: 'sft',
        prompts: { source: 'demo' },
        num_prompts: scale.preferencePrompts,
        completions_per_prompt: scale.completionsPerPrompt,
        annotator_temperature: 0.05,
        max_new_tokens: scale.maxNewTokens,
      },
      // The oracle is a sum of per-word sentiment in context; a 64-wide, 2-layer trunk learns that as a sum
      // of per-token scores far better than squeezed into its last position.
      {
        type: 'reward',
        init_from: 'sft',
        preferences: 'preferences',
        score_pooling: 'sum',
        learning_rate: scale.rewardLearningRate,
        num_train_epochs: scale.rewardEpochs,
        per_device_train_batch_size: 8,
        eval_steps: 100,
      },
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
        // PPO-max's reward scaling: scores divided by their running std, so β weighs the KL penalty
        // against rewards of unit scale whatever the reward model's scale (a summed score's grows in PPO).
        use_score_scaling: true,
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
        max_steps: scale.dpoSteps,
        per_device_train_batch_size: 16,
        eval_steps: 1000,
        num_eval_prompts: 32,
        max_new_tokens: scale.maxNewTokens,
        save_steps: 1000,
      })),
    ],
  };
}
