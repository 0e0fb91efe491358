/**
 * The run config (`*.rlhf.json`): one schema gives the TypeScript type, the JSON Schema the editor
 * contributes, and the trainer's validator (see configSchema.ts). Names follow TRL and Hugging Face
 * Trainer where they have one. Defaults follow TRL too, except where TRL's assume a large pretrained
 * model and the small models trained from scratch here need another value; those say so.
 */
import { klEstimators } from '../core';
import { s, type Infer } from './configSchema';
import { backendNames, engineNames } from './backendNames';

/**
 * Longest run or stage name. Run ids keep the first 80 characters of a run name (newRunId) and cap
 * ids at 120 (runIds.ts); a longer name would be stored whole in every run.json for nothing.
 */
export const maxNameLength = 64;
/** Longest file path or stage reference: PATH_MAX on Linux. */
export const maxPathLength = 4096;

export const modelSchema = s.object(
  {
    from: s.optional(
      s.string({
        minLength: 1,
        maxLength: maxPathLength,
        description:
          'A Hugging Face model folder (config.json, model.safetensors or shards, tokenizer.json), relative to the ' +
          'config file: gpt2, llama (SmolLM2, Llama 3.x), qwen2 or mistral. Every stage starts from it and uses ' +
          'its tokenizer; the shape fields below are then ignored, and block_size caps the context.',
      }),
    ),
    n_layer: s.integer({
      default: 2,
      minimum: 1,
      maximum: 32,
      description:
        'Transformer blocks (at most 32; the memory guard refuses what does not fit the backend before a run starts).',
    }),
    n_head: s.integer({
      default: 4,
      minimum: 1,
      maximum: 32,
      description: 'Attention heads per block; must divide n_embd.',
    }),
    n_embd: s.integer({
      default: 64,
      minimum: 8,
      maximum: 2048,
      description: 'Width of the residual stream (at most 2048).',
    }),
    block_size: s.integer({
      default: 64,
      minimum: 8,
      maximum: 2048,
      description:
        'Context length in tokens: the longest prompt plus response the ' +
        'model sees (at most 2048; attention memory grows with its square).',
    }),
    dropout: s.number({
      default: 0,
      minimum: 0,
      maximum: 0.9,
      description: 'Dropout while training (attention weights and residual branches); 0 turns it off.',
    }),
  },
  {
    description:
      'Shape of the GPT trained from scratch (nanoGPT names), or "from": a pretrained Hugging Face model folder. ' +
      'The shape is ignored when init_from names a checkpoint, whose shape is used.',
  },
);

/** LoRA adapters (PEFT's LoraConfig names without the `lora_` prefix): a stage trains them instead of the trunk. */
export const loraSchema = s.optional(
  s.object(
    {
      r: s.integer({ default: 8, minimum: 1, maximum: 1024, description: 'Rank of the update B·A (PEFT: r).' }),
      alpha: s.number({
        default: 16,
        exclusiveMinimum: 0,
        maximum: 100000,
        description: 'The update is scaled by alpha / r (PEFT: lora_alpha).',
      }),
      dropout: s.number({
        default: 0.05,
        minimum: 0,
        maximum: 0.9,
        description: "Dropout on the adapters' input while training (PEFT: lora_dropout).",
      }),
      target_modules: s.optional(
        s.array(s.string({ minLength: 1, maxLength: 200, description: 'A module name, matched by suffix.' }), {
          description:
            'Linear layers to adapt, matched by name suffix as PEFT does (q_proj, v_proj, c_attn, …), or ' +
            '["all-linear"] for every linear layer but the LM head. Default: PEFT\'s for the model type ' +
            '(c_attn for gpt2; q_proj and v_proj for the Llama family).',
        }),
      ),
    },
    {
      description:
        'Train LoRA adapters (Hu et al. 2021) instead of every weight: the base model stays frozen, checkpoints ' +
        "hold the adapters in PEFT's layout, and the PPO/DPO reference is the base model with adapters off.",
    },
  ),
);

export const tokenizerSchema = s.object(
  {
    vocab_size: s.integer({
      default: 512,
      minimum: 259,
      maximum: 65536,
      description: 'Byte-level BPE vocabulary: 3 special tokens, 256 bytes, and merges learned from the training text.',
    }),
  },
  { description: 'The tokenizer trained from the SFT data when a run starts from scratch.' },
);

export const datasetSchema = s.tagged(
  'source',
  {
    demo: s.object(
      {
        num_examples: s.integer({
          default: 20000,
          minimum: 10,
          maximum: 1_000_000,
          description: 'Reviews generated from the built-in grammar.',
        }),
      },
      { description: 'The embedded demo task: short film and product reviews, with a sentiment oracle.' },
    ),
    jsonl: s.object(
      {
        path: s.string({
          minLength: 1,
          maxLength: maxPathLength,
          description:
            'A JSONL file of {"text"} or {"prompt","completion"} lines, or conversational lines as TRL takes them ' +
            '({"messages": [{"role","content"}, …]}, or lists of messages as prompt and completion), relative to ' +
            'the config file.',
        }),
        chat_template: s.optional(
          s.boolean({
            description:
              'Render the lines with the chat template of the model folder ("model": {"from": …}) as TRL does: ' +
              'the prompt with the generation prompt, the completion as what the whole conversation adds to it. ' +
              'Plain string prompts and completions become a user and an assistant turn. Conversational lines need it.',
          }),
        ),
      },
      { description: 'Your own data.', required: ['path'] },
    ),
  },
  { description: 'Where the training text comes from.' },
);

export const sftStageSchema = s.object(
  {
    name: s.optional(
      s.string({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
        maxLength: maxNameLength,
        description: 'Name of this stage in run ids; defaults to the stage type.',
      }),
    ),
    dataset: datasetSchema,
    init_from: s.string({
      default: 'scratch',
      minLength: 1,
      maxLength: maxPathLength,
      description:
        '"scratch" for new weights and tokenizer, or a checkpoint ' +
        'folder (relative to the config file) to continue from.',
    }),
    eval_fraction: s.number({
      default: 0.05,
      minimum: 0,
      maximum: 0.5,
      description: 'Share of the examples held out for eval loss and perplexity.',
    }),
    learning_rate: s.number({
      default: 1e-3,
      exclusiveMinimum: 0,
      maximum: 1,
      trl: 'learning_rate',
      description:
        'Peak AdamW learning rate. TRL defaults to 2e-5 for pretrained models; small models from scratch need ~1e-3.',
    }),
    max_steps: s.integer({ default: 600, minimum: 1, trl: 'max_steps', description: 'Optimizer steps to train for.' }),
    per_device_train_batch_size: s.integer({
      default: 16,
      minimum: 1,
      maximum: 1024,
      trl: 'per_device_train_batch_size',
      description: 'Sequences per optimizer step.',
    }),
    warmup_steps: s.integer({
      default: 30,
      minimum: 0,
      trl: 'warmup_steps',
      description: 'Steps of linear warmup from 0 to the peak learning rate.',
    }),
    lr_scheduler_type: s.enum(['cosine', 'linear', 'constant'], {
      default: 'cosine',
      trl: 'lr_scheduler_type',
      description: 'Decay after warmup.',
      valueDescriptions: ['Half a cosine down to 0.', 'A straight line down to 0.', 'Stay at the peak.'],
    }),
    weight_decay: s.number({
      default: 0.1,
      minimum: 0,
      maximum: 1,
      trl: 'weight_decay',
      description: 'Decoupled weight decay on matrices (not biases or LayerNorm). TRL defaults to 0; nanoGPT uses 0.1.',
    }),
    adam_beta1: s.number({ default: 0.9, minimum: 0, maximum: 0.9999, trl: 'adam_beta1', description: 'AdamW β₁.' }),
    adam_beta2: s.number({
      default: 0.99,
      minimum: 0,
      maximum: 0.99999,
      trl: 'adam_beta2',
      description: 'AdamW β₂. TRL defaults to 0.999; 0.99 suits short runs of small models (nanoGPT).',
    }),
    adam_epsilon: s.number({ default: 1e-8, exclusiveMinimum: 0, trl: 'adam_epsilon', description: 'AdamW ε.' }),
    max_grad_norm: s.number({
      default: 1,
      minimum: 0,
      trl: 'max_grad_norm',
      description: 'Clip the global gradient norm to this; 0 turns clipping off.',
    }),
    completion_only_loss: s.boolean({
      default: true,
      trl: 'completion_only_loss',
      description: 'For prompt/completion data, train only on completion tokens.',
    }),
    eval_steps: s.integer({
      default: 50,
      minimum: 1,
      trl: 'eval_steps',
      description: 'Evaluate held-out loss every this many steps (and at the end).',
    }),
    logging_steps: s.integer({
      default: 1,
      minimum: 1,
      trl: 'logging_steps',
      description: 'Write a metrics.jsonl line every this many steps.',
    }),
    lora: loraSchema,
    save_steps: s.integer({
      default: 200,
      minimum: 1,
      trl: 'save_steps',
      description: 'Checkpoint every this many steps (and at the end or on stop).',
    }),
  },
  { description: 'Supervised fine-tuning: next-token prediction on text, or on completions given prompts.' },
);

const stageName = () =>
  s.optional(
    s.string({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      maxLength: maxNameLength,
      description:
        'Name of this stage, used in run ids and by later stages to refer to it; defaults to the stage type.',
    }),
  );
const reference = (what: string, fallback: string) =>
  s.string({
    default: fallback,
    minLength: 1,
    maxLength: maxPathLength,
    description: `${what}: the name of an earlier stage of this config, or a path relative to the config file.`,
  });
const promptsSchema = s.tagged(
  'source',
  {
    demo: s.object({}, { description: 'Openings of demo reviews (the embedded task, which has a sentiment oracle).' }),
    jsonl: s.object(
      {
        path: s.string({
          minLength: 1,
          maxLength: maxPathLength,
          description:
            'A JSONL file of {"prompt"} lines (text, or a list of {"role","content"} messages), relative to the ' +
            'config file.',
        }),
        chat_template: s.optional(
          s.boolean({
            description:
              'Render each prompt with the chat template of the model folder ("model": {"from": …}), ending with ' +
              'the generation prompt (a string prompt is one user turn), as TRL formats conversational prompts.',
          }),
        ),
      },
      { description: 'Your own prompts.', required: ['path'] },
    ),
  },
  { description: 'Where rollout prompts come from.' },
);
const samplingFields = {
  temperature: s.number({
    default: 1,
    minimum: 0,
    maximum: 5,
    trl: 'temperature',
    description: 'Sampling temperature for generation; log-probabilities are computed at the same temperature.',
  }),
  top_k: s.integer({ default: 0, minimum: 0, description: 'Sample only among the k most likely tokens; 0 keeps all.' }),
  top_p: s.number({
    default: 1,
    exclusiveMinimum: 0,
    maximum: 1,
    description: 'Nucleus sampling: the smallest set of tokens reaching this probability; 1 keeps all.',
  }),
  max_new_tokens: s.integer({
    default: 32,
    minimum: 1,
    maximum: 2048,
    trl: 'response_length',
    description: 'Longest response generated.',
  }),
};

export const preferencesStageSchema = s.object(
  {
    name: stageName(),
    policy: reference('The policy that writes the completions to rank', 'sft'),
    prompts: promptsSchema,
    num_prompts: s.integer({
      default: 1500,
      minimum: 1,
      description: 'Prompts to write completions for; each becomes one judgment.',
    }),
    completions_per_prompt: s.integer({
      default: 4,
      minimum: 2,
      maximum: 8,
      description: 'K completions ranked per prompt (InstructGPT ranked 4 to 9).',
    }),
    annotator: s.enum(['simulated', 'file'], {
      default: 'simulated',
      description:
        'Who ranks: a simulated annotator that ranks by the demo oracle with Bradley–Terry noise, or ' +
        "judgments already in a file (the ranking panel's).",
      valueDescriptions: ['Rank by the sentiment oracle, with noise.', 'Use the judgments in `file`.'],
    }),
    annotator_temperature: s.number({
      default: 0.1,
      minimum: 0,
      maximum: 10,
      description:
        'Noise of the simulated annotator: P(a ranked above b) = σ((oracle(a) ' +
        '− oracle(b)) / temperature); 0 ranks by the oracle exactly.',
    }),
    file: s.optional(
      s.string({
        minLength: 1,
        maxLength: maxPathLength,
        description:
          'A preference file (.rlhf/preferences/<name>.jsonl, or TRL prompt/chosen/rejected lines), relative ' +
          'to the config file; used with "annotator": "file".',
      }),
    ),
    chat_template: s.optional(
      s.boolean({
        description:
          'Render the lines of `file` with the chat template of the model folder, as TRL does for conversational ' +
          'prompt/chosen/rejected lines (plain strings become a user turn and assistant turns).',
      }),
    ),
    ...samplingFields,
  },
  { description: 'Preference labels: K completions per prompt, ranked by a simulated annotator or read from a file.' },
);

export const rewardStageSchema = s.object(
  {
    name: stageName(),
    init_from: reference('Weights the reward model starts from (its trunk; the score head is new)', 'sft'),
    preferences: reference('The preference judgments to train on', 'preferences'),
    eval_fraction: s.number({
      default: 0.1,
      minimum: 0,
      maximum: 0.5,
      description: 'Share of the prompts whose pairs are held out for accuracy.',
    }),
    learning_rate: s.number({
      default: 5e-4,
      exclusiveMinimum: 0,
      maximum: 1,
      trl: 'learning_rate',
      description: 'Peak AdamW learning rate.',
    }),
    num_train_epochs: s.number({
      default: 2,
      exclusiveMinimum: 0,
      maximum: 100,
      trl: 'num_train_epochs',
      description: 'Passes over the training prompts.',
    }),
    per_device_train_batch_size: s.integer({
      default: 8,
      minimum: 1,
      maximum: 1024,
      trl: 'per_device_train_batch_size',
      description: 'Prompts per step; every pair of a prompt goes in the same batch (InstructGPT).',
    }),
    warmup_steps: s.integer({ default: 10, minimum: 0, trl: 'warmup_steps', description: 'Steps of linear warmup.' }),
    weight_decay: s.number({
      default: 0.01,
      minimum: 0,
      maximum: 1,
      trl: 'weight_decay',
      description: 'Decoupled weight decay on matrices.',
    }),
    max_grad_norm: s.number({
      default: 1,
      minimum: 0,
      trl: 'max_grad_norm',
      description: 'Clip the global gradient norm; 0 turns clipping off.',
    }),
    score_pooling: s.enum(['last', 'sum'], {
      default: 'last',
      description:
        'How the score head reads a sequence: at its last token, or summed over ' +
        'its tokens (bias once). Saved in the checkpoint; PPO scores the same way.',
      valueDescriptions: [
        'The head at the last token, as InstructGPT and TRL read a reward model.',
        'The head summed over every token: a reward made of per-token contributions, each seeing its context; ' +
          "learns additive objectives (such as the demo's lexicon sentiment) faster on small models.",
      ],
    }),
    center_rewards: s.boolean({
      default: true,
      trl: 'center_rewards_coefficient',
      description: "After training, shift the score head's bias so the mean reward over the training data is 0.",
    }),
    eval_steps: s.integer({
      default: 50,
      minimum: 1,
      trl: 'eval_steps',
      description: 'Held-out accuracy every this many steps (and at the end).',
    }),
    lora: loraSchema,
    save_steps: s.integer({
      default: 200,
      minimum: 1,
      trl: 'save_steps',
      description: 'Checkpoint every this many steps (and at the end).',
    }),
  },
  {
    description:
      'A reward model trained on preference pairs with the Bradley–Terry loss −log σ(r(chosen) − r(rejected)).',
  },
);

export const ppoStageSchema = s.object(
  {
    name: stageName(),
    policy: reference('The policy to optimise (and, frozen, the KL reference)', 'sft'),
    reward_model: reference('The reward model that scores responses', 'reward'),
    prompts: promptsSchema,
    total_episodes: s.integer({
      default: 4096,
      minimum: 1,
      trl: 'total_episodes',
      description: 'Responses generated over the whole run; steps = total_episodes / batch_size.',
    }),
    batch_size: s.integer({
      default: 32,
      minimum: 2,
      maximum: 1024,
      trl: 'batch_size',
      description: 'Prompts (and responses) per PPO step.',
    }),
    num_mini_batches: s.integer({
      default: 2,
      minimum: 1,
      trl: 'num_mini_batches',
      description: 'Minibatches each PPO epoch is split into; must divide batch_size.',
    }),
    num_ppo_epochs: s.integer({
      default: 4,
      minimum: 1,
      maximum: 64,
      trl: 'num_ppo_epochs',
      description: 'Passes over each batch of rollouts.',
    }),
    learning_rate: s.number({
      default: 3e-4,
      exclusiveMinimum: 0,
      maximum: 1,
      trl: 'learning_rate',
      description: 'AdamW learning rate (constant). TRL defaults to 3e-6 for large models.',
    }),
    ...samplingFields,
    stop_token: s.enum(['eos', 'none'], {
      default: 'eos',
      trl: 'stop_token',
      description: 'End a response at EOS; later tokens are padding.',
    }),
    rollout_engine: s.enum(['training', 'onnx', 'tfjs'], {
      default: 'training',
      description:
        'Where rollouts are sampled and scored. "training": on the training engine itself (the config\'s ' +
        '"engine"), with no second copy of the weights. "onnx": the policy, reference and reward model exported ' +
        'to separate onnxruntime-node sessions with a KV cache, as large RLHF systems split generation from ' +
        "training; the policy's new weights reach them after every update.",
      valueDescriptions: [
        'Sample and score on the training engine (ONNX Runtime or TensorFlow.js, as "engine" chose).',
        'Sample and score in separate onnxruntime-node sessions, synced with the policy after every update.',
        'The older name of "training" (from when TensorFlow.js was the only training engine); the same.',
      ],
    }),
    missing_eos_penalty: s.optional(
      s.number({
        description: 'Subtracted from the score of responses that did not end with EOS (TRL: missing_eos_penalty).',
        trl: 'missing_eos_penalty',
      }),
    ),
    kl_estimator: s.enum(klEstimators, {
      default: 'k1',
      trl: 'kl_estimator',
      description: 'Per-token KL estimate in the reward penalty.',
      valueDescriptions: [
        'log π − log π_ref (unbiased, can be negative).',
        '½(log π − log π_ref)².',
        '(r − 1) − log r with r = π_ref/π (unbiased, ≥ 0).',
        '|log π − log π_ref|.',
      ],
    }),
    init_kl_coef: s.number({
      default: 0.05,
      minimum: 0,
      trl: 'kl_coef',
      description: 'β of the per-token penalty −β·KL (fixed, or the start of the adaptive controller).',
    }),
    adap_kl_ctrl: s.boolean({
      default: false,
      trl: 'adap_kl_ctrl',
      description: "Adapt β toward `target` KL (Ziegler et al. 2019), as TRL's AdaptiveKLController.",
    }),
    target: s.number({
      default: 6,
      exclusiveMinimum: 0,
      trl: 'target',
      description: 'Target KL (summed over a response) of the adaptive controller.',
    }),
    horizon: s.number({
      default: 10000,
      exclusiveMinimum: 0,
      trl: 'horizon',
      description: 'Horizon of the adaptive controller, in episodes.',
    }),
    gamma: s.number({ default: 1, minimum: 0, maximum: 1, trl: 'gamma', description: 'Discount factor of GAE.' }),
    lam: s.number({ default: 0.95, minimum: 0, maximum: 1, trl: 'lam', description: 'λ of GAE.' }),
    cliprange: s.number({
      default: 0.2,
      exclusiveMinimum: 0,
      maximum: 1,
      trl: 'cliprange',
      description: 'ε of the clipped policy objective: ratios outside [1−ε, 1+ε] stop pulling.',
    }),
    cliprange_value: s.number({
      default: 0.2,
      exclusiveMinimum: 0,
      trl: 'cliprange_value',
      description: 'ε of the clipped value loss.',
    }),
    vf_coef: s.number({ default: 0.1, minimum: 0, trl: 'vf_coef', description: 'Weight of the value loss.' }),
    entropy_coef: s.number({ default: 0, minimum: 0, description: 'Entropy bonus weight (PPO-max); TRL has none.' }),
    whiten_rewards: s.boolean({
      default: false,
      trl: 'whiten_rewards',
      description: 'Whiten the per-token rewards of a batch before GAE.',
    }),
    whiten_advantages: s.boolean({ default: true, description: 'Whiten advantages per batch (TRL always does).' }),
    advantage_clip: s.optional(
      s.number({ exclusiveMinimum: 0, description: 'Clip whitened advantages to ±this (PPO-max).' }),
    ),
    use_score_scaling: s.boolean({
      default: false,
      trl: 'use_score_scaling',
      description: 'Divide scores by their running standard deviation (PPO-max reward scaling).',
    }),
    use_score_norm: s.boolean({
      default: false,
      trl: 'use_score_norm',
      description: 'With score scaling, also subtract the running mean.',
    }),
    score_clip: s.optional(
      s.number({ exclusiveMinimum: 0, trl: 'score_clip', description: 'Clip scores (after scaling) to ±this.' }),
    ),
    max_grad_norm: s.number({
      default: 1,
      minimum: 0,
      trl: 'max_grad_norm',
      description: 'Clip the global gradient norm; 0 turns clipping off.',
    }),
    ratio_threshold: s.number({
      default: 10,
      exclusiveMinimum: 1,
      trl: 'ratio_threshold',
      description: 'Skip a minibatch whose mean ratio exceeds this (a sign of a broken batch).',
    }),
    early_stopping: s.boolean({
      default: false,
      trl: 'early_stopping',
      description: "Stop a step's PPO epochs once the approximate KL exceeds 1.5 × target_kl.",
    }),
    target_kl: s.number({
      default: 1,
      exclusiveMinimum: 0,
      trl: 'target_kl',
      description: 'KL (per token, approximate) for early stopping.',
    }),
    ptx_coef: s.number({
      default: 0,
      minimum: 0,
      description:
        'PPO-ptx (InstructGPT): weight of a language-modelling ' +
        'loss on SFT data mixed into each update; 0 turns it off.',
    }),
    ptx_dataset: s.optional(datasetSchema),
    critic_warmup_steps: s.integer({
      default: 0,
      minimum: 0,
      description: 'Steps that train only the value head before the policy moves (PPO-max).',
    }),
    eval_steps: s.integer({
      default: 10,
      minimum: 1,
      description: 'Score held-out prompts (oracle and KL to the reference) every this many steps and at the end.',
    }),
    num_eval_prompts: s.integer({ default: 64, minimum: 1, description: 'Held-out prompts scored at each eval.' }),
    lora: loraSchema,
    save_steps: s.integer({
      default: 20,
      minimum: 1,
      trl: 'save_steps',
      description: 'Checkpoint every this many steps (and at the end or on stop).',
    }),
  },
  {
    description:
      'PPO against a reward model with a per-token KL penalty to ' +
      "a frozen reference (TRL's PPOTrainer, with PPO-max options).",
  },
);

export const dpoStageSchema = s.object(
  {
    name: stageName(),
    policy: reference('The policy to optimise (and, frozen, the reference)', 'sft'),
    preferences: reference('The preference judgments to train on', 'preferences'),
    beta: s.number({
      default: 0.1,
      exclusiveMinimum: 0,
      trl: 'beta',
      description: 'β: how far the policy may move from the reference (higher stays closer).',
    }),
    loss_type: s.enum(['sigmoid', 'hinge', 'ipo'], {
      default: 'sigmoid',
      trl: 'loss_type',
      description: 'DPO loss.',
      valueDescriptions: ['DPO (Rafailov et al. 2023).', 'SLiC hinge loss.', 'IPO (Azar et al. 2023).'],
    }),
    label_smoothing: s.number({
      default: 0,
      minimum: 0,
      maximum: 0.5,
      trl: 'label_smoothing',
      description: 'Conservative DPO: the assumed probability that a label is flipped.',
    }),
    eval_fraction: s.number({
      default: 0.1,
      minimum: 0,
      maximum: 0.5,
      description: 'Share of the prompts whose pairs are held out.',
    }),
    learning_rate: s.number({
      default: 5e-4,
      exclusiveMinimum: 0,
      maximum: 1,
      trl: 'learning_rate',
      description: 'Peak AdamW learning rate. TRL defaults to 1e-6 for large models.',
    }),
    num_train_epochs: s.number({
      default: 2,
      exclusiveMinimum: 0,
      maximum: 100,
      trl: 'num_train_epochs',
      description: 'Passes over the training pairs.',
    }),
    max_steps: s.optional(
      s.integer({
        minimum: 1,
        trl: 'max_steps',
        description: 'Train for exactly this many steps, overriding num_train_epochs.',
      }),
    ),
    per_device_train_batch_size: s.integer({
      default: 16,
      minimum: 1,
      maximum: 1024,
      trl: 'per_device_train_batch_size',
      description: 'Pairs per step.',
    }),
    warmup_steps: s.integer({ default: 10, minimum: 0, trl: 'warmup_steps', description: 'Steps of linear warmup.' }),
    max_grad_norm: s.number({
      default: 1,
      minimum: 0,
      trl: 'max_grad_norm',
      description: 'Clip the global gradient norm; 0 turns clipping off.',
    }),
    eval_steps: s.integer({
      default: 50,
      minimum: 1,
      trl: 'eval_steps',
      description: 'Held-out metrics and generation every this many steps and at the end.',
    }),
    num_eval_prompts: s.integer({
      default: 64,
      minimum: 1,
      description: 'Held-out prompts whose generations are scored by the oracle at each eval.',
    }),
    max_new_tokens: s.integer({
      default: 32,
      minimum: 1,
      maximum: 2048,
      description: 'Response length when generating for eval.',
    }),
    lora: loraSchema,
    save_steps: s.integer({
      default: 200,
      minimum: 1,
      trl: 'save_steps',
      description: 'Checkpoint every this many steps (and at the end).',
    }),
  },
  { description: 'Direct preference optimisation (DPO, IPO or hinge) against a frozen reference.' },
);

export const stageSchema = s.tagged(
  'type',
  {
    sft: sftStageSchema,
    preferences: preferencesStageSchema,
    reward: rewardStageSchema,
    ppo: ppoStageSchema,
    dpo: dpoStageSchema,
  },
  { description: 'A training stage.' },
);

/** A Slurm name (partition, account, QOS): what `sinfo` and `sacctmgr` print, nothing a shell would read. */
const slurmName = (what: string) =>
  s.optional(s.string({ pattern: '^[A-Za-z0-9_.+-]+$', maxLength: 128, description: what }));

export const slurmLauncherSchema = s.object(
  {
    partition: slurmName("Partition to run in (`sbatch --partition`); the cluster's default partition when left out."),
    gres: s.optional(
      s.string({
        pattern: '^[A-Za-z0-9_:,.-]+$',
        maxLength: 256,
        description: 'Generic resources per node (`sbatch --gres`), e.g. "gpu:1".',
      }),
    ),
    cpus_per_task: s.optional(
      s.integer({ minimum: 1, maximum: 4096, description: 'CPUs for the trainer (`sbatch --cpus-per-task`).' }),
    ),
    mem: s.optional(
      s.string({
        pattern: '^[0-9]+[KMGT]?$',
        maxLength: 32,
        description: 'Memory per node in Slurm\'s syntax (`sbatch --mem`), e.g. "8G".',
      }),
    ),
    time: s.optional(
      s.string({
        pattern: '^([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}$',
        maxLength: 32,
        description:
          'Time limit in Slurm\'s syntax (`sbatch --time`): "MM", "HH:MM:SS", "D-HH:MM"…; ' +
          "the partition's when left out.",
      }),
    ),
    account: slurmName('Account charged for the job (`sbatch --account`).'),
    qos: slurmName('Quality of service (`sbatch --qos`).'),
    extra_args: s.optional(
      s.array(
        s.string({ minLength: 1, maxLength: 1024, description: 'One sbatch argument, e.g. "--constraint=a100".' }),
        {
          description: 'More sbatch arguments, passed as they are (each one argument, no shell).',
        },
      ),
    ),
    signal_before_end_s: s.integer({
      default: 120,
      minimum: 10,
      maximum: 65535,
      description:
        'Seconds before the time limit at which Slurm signals the job (USR1): the trainer finishes its step, ' +
        'checkpoints and the job requeues itself to resume. Longer than a step plus a checkpoint.',
    }),
    requeue: s.boolean({
      default: true,
      description:
        'Requeue the job when it nears its time limit or is preempted, resuming the run from its last checkpoint.',
    }),
  },
  { description: 'Run as a Slurm batch job (`rlhf-lens submit`): these become the #SBATCH lines of the batch script.' },
);

export const launcherSchema = s.tagged(
  'type',
  {
    local: s.object({}, { description: 'Run on this machine, as a child of the editor or in a terminal.' }),
    slurm: slurmLauncherSchema,
  },
  { description: 'Where the run trains: "local" (the default) or "slurm" (`rlhf-lens submit`).' },
);

/**
 * A sweep's setting path: `stages.<stage name>.<field>`, the field a dotted path inside the stage
 * (`stages.ppo.init_kl_coef`). Stage names may hold dots; the config's names resolve the path (sweep.ts).
 */
export const sweepPathPattern = '^stages\\.[A-Za-z0-9][A-Za-z0-9._-]*\\.[A-Za-z_][A-Za-z0-9_]*$';

export const sweepSchema = s.record(
  s.array(s.scalar({ description: 'One value of the setting: one run of the sweep.' }), {
    minItems: 1,
    description: 'The values to try, one run each.',
  }),
  {
    keyPattern: sweepPathPattern,
    keyDescription: 'a setting path such as "stages.ppo.init_kl_coef" (stages.<stage name>.<field>)',
    description:
      'Runs the config once per value (with several settings, once per combination, the first setting varying ' +
      'slowest): under Slurm one job array, one run per element. Keys are setting paths ' +
      '"stages.<stage name>.<field>", e.g. {"stages.ppo.init_kl_coef": [0.02, 0.05, 0.1]}.',
  },
);

export const runConfigSchema = s.object(
  {
    name: s.string({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      maxLength: maxNameLength,
      description: 'Name of the run: letters, digits, ".", "_" and "-"; run ids start with it.',
    }),
    seed: s.integer({
      default: 42,
      minimum: 0,
      maximum: 4294967295,
      trl: 'seed',
      description: 'Seeds weights, data order, dropout and sampling: the same seed gives the same run.',
    }),
    backend: s.enum(['auto', ...backendNames], {
      default: 'auto',
      description:
        'TensorFlow.js backend. "auto" picks the best available in the order tfjs-node-gpu, tfjs-node, wasm, ' +
        'cpu; any other value pins it and fails if it is not available.',
      valueDescriptions: [
        'The best available.',
        'CUDA through libtensorflow (optional package).',
        'CPU through libtensorflow (optional package).',
        'WebAssembly, always available.',
        'Plain JavaScript, slowest.',
      ],
    }),
    engine: s.enum(['auto', ...engineNames], {
      default: 'auto',
      description:
        'Training engine (TRL has no such field: it always trains on PyTorch). "auto" follows the ' +
        'rlhf.defaultEngine setting (RLHF_LENS_ENGINE) and otherwise picks onnxruntime; checkpoints are the same ' +
        'whichever engine wrote them, so a run may resume on the other.',
      valueDescriptions: [
        'ONNX Runtime unless rlhf.defaultEngine pins another.',
        'ONNX Runtime: forward, loss and backward as one ONNX graph, all cores.',
        'TensorFlow.js on the backend chosen by "backend".',
      ],
    }),
    model: modelSchema,
    tokenizer: tokenizerSchema,
    stages: s.array(stageSchema, {
      minItems: 1,
      description: 'Stages run in order; each writes its own run directory.',
    }),
    launcher: s.optional(launcherSchema),
    sweep: s.optional(sweepSchema),
  },
  { description: 'An RLHF Lens run.', required: ['name', 'stages'] },
);

export type ModelConfig = Infer<typeof modelSchema>;
export type DatasetConfig = Infer<typeof datasetSchema>;
export type SftStageConfig = Infer<typeof sftStageSchema>;
export type PreferencesStageConfig = Infer<typeof preferencesStageSchema>;
export type RewardStageConfig = Infer<typeof rewardStageSchema>;
export type PpoStageConfig = Infer<typeof ppoStageSchema>;
export type DpoStageConfig = Infer<typeof dpoStageSchema>;
export type PromptsConfig = Infer<typeof promptsSchema>;
export type StageConfig = Infer<typeof stageSchema>;
export type RunConfig = Infer<typeof runConfigSchema>;
export type SlurmLauncherConfig = Infer<typeof slurmLauncherSchema>;
export type LauncherConfig = Infer<typeof launcherSchema>;
export type SweepConfig = Infer<typeof sweepSchema>;
export type LoraConfig = NonNullable<SftStageConfig['lora']>;
