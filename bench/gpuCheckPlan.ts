/**
 * What the GPU check measures and how long each part may take. The full plan fits the GPU machine's 8 minutes
 * with room for the kit's unpacking; the dry run keeps the same parts with small shapes for a CPU machine.
 */
import type { GptConfig } from '../src/trainer/model/gptConfig';
import type { EngineTarget, PpoSpec } from './gpuCheckParts';
import { stageDefaults } from './torch/ppoComparison';

/** bench:train's two models (batch 16 × full context) and the GPT-2-small shape of the issue (~124M). */
const fullModels: Record<string, { config: GptConfig; batchSize: number }> = {
  '110k': { config: { vocab_size: 96, block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 }, batchSize: 16 },
  '850k': {
    config: { vocab_size: 512, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
    batchSize: 16,
  },
  'gpt2-small': {
    config: { vocab_size: 50257, block_size: 256, n_layer: 12, n_head: 12, n_embd: 768, dropout: 0 },
    batchSize: 8,
  },
};
/** The dry run: the same names, shapes a shared CPU (and the software adapter) gets through in seconds. */
const dryModels: typeof fullModels = {
  // Context 16: the software adapter (llvmpipe) must get through the GPU targets' steps inside their budgets too.
  '110k': { config: { ...fullModels['110k'].config, block_size: 16 }, batchSize: 2 },
  '850k': { config: { ...fullModels['850k'].config, block_size: 16 }, batchSize: 2 },
  'gpt2-small': {
    config: { vocab_size: 256, block_size: 16, n_layer: 2, n_head: 2, n_embd: 32, dropout: 0 },
    batchSize: 2,
  },
};
const tinyModel: GptConfig = { vocab_size: 32, block_size: 8, n_layer: 1, n_head: 2, n_embd: 16, dropout: 0 };

/** bench:rollout's PPO shape: the 110k-like demo model (vocab 300, context 96), batch 16, 64 new tokens, 4 × 2. */
const fullPpo: Omit<PpoSpec, 'target'> = {
  model: { vocab_size: 300, block_size: 96, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 },
  batchSize: 16,
  newTokens: 64,
  epochs: 4,
  miniBatches: 2,
  iterations: 2,
};
const dryPpo: Omit<PpoSpec, 'target'> = {
  model: { vocab_size: 300, block_size: 40, n_layer: 1, n_head: 2, n_embd: 16, dropout: 0 },
  batchSize: 4,
  newTokens: 8,
  epochs: 1,
  miniBatches: 1,
  iterations: 2,
};

const gpuTargets: EngineTarget[] = [
  { engine: 'tfjs', backend: 'webgpu' },
  { engine: 'onnxruntime', backend: 'webgpu' },
];
/** The CPU engines the ≥20× comparison is made against (tfjs-node is not in the kit: it needs libtensorflow). */
const cpuTargets: EngineTarget[] = [
  { engine: 'onnxruntime', backend: 'cpu' },
  { engine: 'tfjs', backend: 'wasm' },
];
const smallModels = ['110k', '850k'];
const largestModel = 'gpt2-small';

export type PartPlan = { name: string; budgetS: number } & (
  | { kind: 'adapters' | 'pytorch' }
  | { kind: 'gradients' | 'ppo'; target: EngineTarget }
  | { kind: 'train'; target: EngineTarget; model: string }
);

export interface CheckPlan {
  readonly dryRun: boolean;
  /** Seconds for the whole check (gpu-check.sh's unpacking and Node's start come on top). */
  readonly deadlineS: number;
  /** A part is skipped rather than started with less time than this. */
  readonly minimumPartS: number;
  readonly models: typeof fullModels;
  readonly largestModel: string;
  readonly cpuComparisonModel: string;
  readonly gradientModel: GptConfig;
  readonly gradientBatch: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly ppo: Omit<PpoSpec, 'target'>;
  readonly targets: readonly EngineTarget[];
  readonly python: string;
  /** What cudaReference.py reads on stdin. */
  readonly pytorch: object;
  readonly shapes: object;
  readonly parts: readonly PartPlan[];
}

const name = (target: EngineTarget) => `${target.engine}:${target.backend}`;

export function checkPlan(dryRun: boolean): CheckPlan {
  const models = dryRun ? dryModels : fullModels;
  const ppo = dryRun ? dryPpo : fullPpo;
  const rounds = dryRun ? 2 : 5;
  const warmup = dryRun ? 1 : 2;
  /** Seconds per part, by kind (the full check: an H200 runs each in a fraction of it). */
  const budget = dryRun
    ? { adapters: 30, gradients: 40, pytorch: 60, trainLarge: 40, trainSmall: 40, ppo: 60 }
    : { adapters: 30, gradients: 40, pytorch: 90, trainLarge: 90, trainSmall: 25, ppo: 45 };
  const parts: PartPlan[] = [
    { name: 'adapters', kind: 'adapters', budgetS: budget.adapters },
    ...gpuTargets.map((target) => ({
      name: `gradients:${name(target)}`,
      kind: 'gradients' as const,
      target,
      budgetS: budget.gradients,
    })),
    { name: 'pytorch', kind: 'pytorch', budgetS: budget.pytorch },
    ...gpuTargets.map((target) => ({
      name: `train:${name(target)}:${largestModel}`,
      kind: 'train' as const,
      target,
      model: largestModel,
      budgetS: budget.trainLarge,
    })),
    ...[...gpuTargets, ...cpuTargets].flatMap((target) =>
      smallModels.map((model) => ({
        name: `train:${name(target)}:${model}`,
        kind: 'train' as const,
        target,
        model,
        budgetS: budget.trainSmall,
      })),
    ),
    ...[...gpuTargets, cpuTargets[0]].map((target) => ({
      name: `ppo:${name(target)}`,
      kind: 'ppo' as const,
      target,
      budgetS: budget.ppo,
    })),
  ];
  const modelShapes = Object.fromEntries(
    Object.entries(models).map(([key, { config, batchSize }]) => [key, { ...config, batch_size: batchSize }]),
  );
  return {
    dryRun,
    deadlineS: dryRun ? 240 : 440,
    minimumPartS: 5,
    models,
    largestModel,
    cpuComparisonModel: '850k',
    gradientModel: dryRun ? tinyModel : fullModels['110k'].config,
    gradientBatch: dryRun ? 2 : 4,
    warmup,
    rounds,
    ppo,
    targets: [...gpuTargets, ...cpuTargets],
    // The GPU machine's python3 has torch; here Debian's (the CPU benches' yardstick) has it.
    python: process.env.RLHF_GPU_CHECK_PYTHON ?? (dryRun ? '/usr/bin/python3' : 'python3'),
    pytorch: {
      device: dryRun ? 'cpu' : 'cuda',
      warmup,
      rounds,
      models: Object.entries(models).map(([key, { config, batchSize }]) => ({
        name: key,
        config,
        batch_size: batchSize,
      })),
      ppo: {
        config: ppo.model,
        batch: ppo.batchSize,
        prompt_length: 18,
        new_tokens: ppo.newTokens,
        epochs: ppo.epochs,
        mini_batches: ppo.miniBatches,
        stage: stageDefaults,
      },
    },
    shapes: { models: modelShapes, ppo, rounds, warmup },
    parts,
  };
}
