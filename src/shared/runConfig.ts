/**
 * The run config (`*.rlhf.json`): one schema gives the TypeScript type, the JSON Schema the editor
 * contributes, and the trainer's validator (see configSchema.ts). Names follow TRL and Hugging Face
 * Trainer where they have one. Defaults follow TRL too, except where TRL's assume a large pretrained
 * model and the small models trained from scratch here need another value; those say so.
 */
import { s, type Infer } from './configSchema';
import { backendNames } from './backendNames';

export const modelSchema = s.object(
  {
    n_layer: s.integer({ default: 2, minimum: 1, maximum: 48, description: 'Transformer blocks.' }),
    n_head: s.integer({ default: 4, minimum: 1, maximum: 64, description: 'Attention heads per block; must divide n_embd.' }),
    n_embd: s.integer({ default: 64, minimum: 8, maximum: 4096, description: 'Width of the residual stream.' }),
    block_size: s.integer({ default: 64, minimum: 8, maximum: 4096, description: 'Context length in tokens: the longest prompt plus response the model sees.' }),
    dropout: s.number({ default: 0, minimum: 0, maximum: 0.9, description: 'Dropout while training (attention weights and residual branches); 0 turns it off.' }),
  },
  { description: 'Shape of the GPT trained from scratch (nanoGPT names). Ignored when init_from names a checkpoint, whose shape is used.' },
);

export const tokenizerSchema = s.object(
  {
    vocab_size: s.integer({ default: 512, minimum: 259, maximum: 65536, description: 'Byte-level BPE vocabulary: 3 special tokens, 256 bytes, and merges learned from the training text.' }),
  },
  { description: 'The tokenizer trained from the SFT data when a run starts from scratch.' },
);

export const datasetSchema = s.tagged(
  'source',
  {
    demo: s.object(
      {
        num_examples: s.integer({ default: 20000, minimum: 10, maximum: 1_000_000, description: 'Reviews generated from the built-in grammar.' }),
      },
      { description: 'The embedded demo task: short film and product reviews, with a sentiment oracle.' },
    ),
    jsonl: s.object(
      {
        path: s.string({ minLength: 1, description: 'A JSONL file of {"text"} or {"prompt","completion"} lines, relative to the config file.' }),
      },
      { description: 'Your own data.', required: ['path'] },
    ),
  },
  { description: 'Where the training text comes from.' },
);

export const sftStageSchema = s.object(
  {
    name: s.optional(s.string({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'Name of this stage in run ids; defaults to the stage type.' })),
    dataset: datasetSchema,
    init_from: s.string({ default: 'scratch', description: '"scratch" for new weights and tokenizer, or a checkpoint folder (relative to the config file) to continue from.' }),
    eval_fraction: s.number({ default: 0.05, minimum: 0, maximum: 0.5, description: 'Share of the examples held out for eval loss and perplexity.' }),
    learning_rate: s.number({ default: 1e-3, exclusiveMinimum: 0, maximum: 1, trl: 'learning_rate', description: 'Peak AdamW learning rate. TRL defaults to 2e-5 for pretrained models; small models from scratch need ~1e-3.' }),
    max_steps: s.integer({ default: 600, minimum: 1, trl: 'max_steps', description: 'Optimizer steps to train for.' }),
    per_device_train_batch_size: s.integer({ default: 16, minimum: 1, maximum: 4096, trl: 'per_device_train_batch_size', description: 'Sequences per optimizer step.' }),
    warmup_steps: s.integer({ default: 30, minimum: 0, trl: 'warmup_steps', description: 'Steps of linear warmup from 0 to the peak learning rate.' }),
    lr_scheduler_type: s.enum(['cosine', 'linear', 'constant'], { default: 'cosine', trl: 'lr_scheduler_type', description: 'Decay after warmup.', valueDescriptions: ['Half a cosine down to 0.', 'A straight line down to 0.', 'Stay at the peak.'] }),
    weight_decay: s.number({ default: 0.1, minimum: 0, maximum: 1, trl: 'weight_decay', description: 'Decoupled weight decay on matrices (not biases or LayerNorm). TRL defaults to 0; nanoGPT uses 0.1.' }),
    adam_beta1: s.number({ default: 0.9, minimum: 0, maximum: 0.9999, trl: 'adam_beta1', description: 'AdamW β₁.' }),
    adam_beta2: s.number({ default: 0.99, minimum: 0, maximum: 0.99999, trl: 'adam_beta2', description: 'AdamW β₂. TRL defaults to 0.999; 0.99 suits short runs of small models (nanoGPT).' }),
    adam_epsilon: s.number({ default: 1e-8, exclusiveMinimum: 0, trl: 'adam_epsilon', description: 'AdamW ε.' }),
    max_grad_norm: s.number({ default: 1, minimum: 0, trl: 'max_grad_norm', description: 'Clip the global gradient norm to this; 0 turns clipping off.' }),
    completion_only_loss: s.boolean({ default: true, trl: 'completion_only_loss', description: 'For prompt/completion data, train only on completion tokens.' }),
    eval_steps: s.integer({ default: 50, minimum: 1, trl: 'eval_steps', description: 'Evaluate held-out loss every this many steps (and at the end).' }),
    logging_steps: s.integer({ default: 1, minimum: 1, trl: 'logging_steps', description: 'Write a metrics.jsonl line every this many steps.' }),
    save_steps: s.integer({ default: 200, minimum: 1, trl: 'save_steps', description: 'Checkpoint every this many steps (and at the end or on stop).' }),
  },
  { description: 'Supervised fine-tuning: next-token prediction on text, or on completions given prompts.' },
);

export const stageSchema = s.tagged('type', { sft: sftStageSchema }, { description: 'A training stage.' });

export const runConfigSchema = s.object(
  {
    name: s.string({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'Name of the run: letters, digits, ".", "_" and "-"; run ids start with it.' }),
    seed: s.integer({ default: 42, minimum: 0, maximum: 4294967295, trl: 'seed', description: 'Seeds weights, data order, dropout and sampling: the same seed gives the same run.' }),
    backend: s.enum(['auto', ...backendNames], {
      default: 'auto',
      description: 'TensorFlow.js backend. "auto" picks the best available in the order tfjs-node-gpu, tfjs-node, wasm, cpu; any other value pins it and fails if it is not available.',
      valueDescriptions: ['The best available.', 'CUDA through libtensorflow (optional package).', 'CPU through libtensorflow (optional package).', 'WebAssembly, always available.', 'Plain JavaScript, slowest.'],
    }),
    model: modelSchema,
    tokenizer: tokenizerSchema,
    stages: s.array(stageSchema, { minItems: 1, description: 'Stages run in order; each writes its own run directory.' }),
  },
  { description: 'An RLHF Lens run.', required: ['name', 'stages'] },
);

export type ModelConfig = Infer<typeof modelSchema>;
export type DatasetConfig = Infer<typeof datasetSchema>;
export type SftStageConfig = Infer<typeof sftStageSchema>;
export type StageConfig = Infer<typeof stageSchema>;
export type RunConfig = Infer<typeof runConfigSchema>;
