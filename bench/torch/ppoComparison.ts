/**
 * One PPO iteration, ours (the real PPO stage, ONNX rollouts, the update on each training engine) against
 * PyTorch's (reference.py: the same model shapes, batch, new tokens, epochs and minibatches, one thread),
 * interleaved: each round runs one PPO stage of each of ours (its iterations after the first) and then as
 * many PyTorch iterations, so machine noise hits all sides of a round alike.
 */
import { formatSpread, spread, table, type Spread, type TorchReference } from './torchReference';

/** Milliseconds of one iteration by phase, as ppoStep.ts names them (time/…), plus their sum. */
export type PhaseTimes = Record<(typeof phaseNames)[number] | 'total_ms', number>;

export const phaseNames = ['rollout_generate', 'rollout_score', 'advantages', 'update', 'weight_sync'] as const;

/** PyTorch's side of the PPO stage the bench runs (runConfig's defaults where the bench sets nothing). */
export interface TorchPpoShape {
  readonly config: { vocab_size: number; block_size: number; n_layer: number; n_head: number; n_embd: number };
  readonly batch: number;
  readonly promptLength: number;
  readonly newTokens: number;
  readonly epochs: number;
  readonly miniBatches: number;
}

export const stageDefaults = {
  learning_rate: 3e-4,
  temperature: 1,
  kl_coef: 0.05,
  gamma: 1,
  lam: 0.95,
  cliprange: 0.2,
  cliprange_value: 0.2,
  vf_coef: 0.1,
  entropy_coef: 0,
  max_grad_norm: 1,
};

type Measure = 'total' | 'update' | 'rollout';

/** One of our variants against PyTorch: per round, our median iteration / PyTorch's, for each measure. */
export interface VariantComparison {
  ours_ms: PhaseTimes[][];
  ratio: Record<Measure, number[]>;
  summary: Record<Measure, { ours: Spread; ratio: Spread }>;
}

export interface PpoComparison {
  torch_version: string;
  blas: string;
  prompt_length: number;
  rounds: number;
  iterations_per_round: number;
  pytorch_ms: PhaseTimes[][];
  pytorch: Record<Measure, Spread>;
  /** By variant name (the training engine that ran the update). */
  variants: Record<string, VariantComparison>;
}

const rolloutMs = (t: PhaseTimes) => t.rollout_generate + t.rollout_score;
const medianOf = (rows: PhaseTimes[], f: (t: PhaseTimes) => number) => spread(rows.map(f)).median;
const measures: Record<Measure, (t: PhaseTimes) => number> = {
  total: (t) => t.total_ms,
  update: (t) => t.update,
  rollout: rolloutMs,
};
const measureNames = Object.keys(measures) as Measure[];

export async function comparePpoWithTorch(
  torch: TorchReference,
  shape: TorchPpoShape,
  rounds: number,
  ourRounds: Record<string, () => Promise<PhaseTimes[]>>,
): Promise<PpoComparison> {
  const key = 'ppo';
  await torch.request('ppo_setup', {
    key,
    config: shape.config,
    batch: shape.batch,
    prompt_length: shape.promptLength,
    new_tokens: shape.newTokens,
    epochs: shape.epochs,
    mini_batches: shape.miniBatches,
    stage: stageDefaults,
    seed: 1,
  });
  const torchIteration = async (): Promise<PhaseTimes> => {
    const reply = await torch.request('ppo_iteration', { key });
    const t = Object.fromEntries(phaseNames.map((phase) => [phase, Number(reply[phase] ?? 0)]));
    return { ...t, total_ms: phaseNames.reduce((sum, phase) => sum + t[phase], 0) } as PhaseTimes;
  };
  await torchIteration(); // warm-up, as ours drops its first iteration
  const pytorch: PhaseTimes[][] = [];
  const variants: Record<string, Omit<VariantComparison, 'summary'>> = Object.fromEntries(
    Object.keys(ourRounds).map((name) => [name, { ours_ms: [], ratio: { total: [], update: [], rollout: [] } }]),
  );
  for (let round = 0; round < rounds; round++) {
    const oursThisRound: Record<string, PhaseTimes[]> = {};
    for (const [name, run] of Object.entries(ourRounds)) oursThisRound[name] = await run();
    const iterations = Math.max(...Object.values(oursThisRound).map((rows) => rows.length));
    const torchRound: PhaseTimes[] = [];
    for (let i = 0; i < iterations; i++) torchRound.push(await torchIteration());
    pytorch.push(torchRound);
    const cells = [`PyTorch ${medianOf(torchRound, measures.total).toFixed(0)} ms`];
    for (const [name, rows] of Object.entries(oursThisRound)) {
      const variant = variants[name];
      variant.ours_ms.push(rows);
      for (const measure of measureNames)
        variant.ratio[measure].push(medianOf(rows, measures[measure]) / medianOf(torchRound, measures[measure]));
      const [total, update] = [measures.total, measures.update].map((f) => medianOf(rows, f).toFixed(0));
      cells.push(`${name} ${total} ms (update ${update}) ${variant.ratio.total[round].toFixed(2)}×`);
    }
    console.log(`PPO round ${round + 1}/${rounds}: ${cells.join(', ')}`);
  }
  await torch.request('release', { key });
  const summarize = (variant: Omit<VariantComparison, 'summary'>): VariantComparison => ({
    ...variant,
    summary: Object.fromEntries(
      measureNames.map((measure) => [
        measure,
        {
          ours: spread(variant.ours_ms.map((round) => medianOf(round, measures[measure]))),
          ratio: spread(variant.ratio[measure]),
        },
      ]),
    ) as VariantComparison['summary'],
  });
  return {
    torch_version: torch.info.torch,
    blas: torch.info.blas.library,
    prompt_length: shape.promptLength,
    rounds,
    iterations_per_round: pytorch[0]?.length ?? 0,
    pytorch_ms: pytorch,
    pytorch: Object.fromEntries(
      measureNames.map((measure) => [measure, spread(pytorch.map((round) => medianOf(round, measures[measure])))]),
    ) as Record<Measure, Spread>,
    variants: Object.fromEntries(Object.entries(variants).map(([name, variant]) => [name, summarize(variant)])),
  };
}

export function printPpoComparison(comparison: PpoComparison): void {
  console.log(
    `\nOne PPO iteration against PyTorch ${comparison.torch_version} (CPU, 1 thread): ` +
      `${comparison.rounds} interleaved rounds of ${comparison.iterations_per_round} iterations, ` +
      'per round the median iteration; median (min–max) over rounds, ms; the ratio is taken per round.\n' +
      'Ours as the product runs it, with the rollout and update engines named in the first column.\n',
  );
  const labels: Record<Measure, string> = {
    total: 'whole iteration',
    update: 'PPO update',
    rollout: 'rollouts (generate + score)',
  };
  const lines: string[][] = [];
  for (const [name, variant] of Object.entries(comparison.variants))
    for (const measure of measureNames) {
      const s = variant.summary[measure];
      lines.push([
        name,
        labels[measure],
        formatSpread(s.ours, 0),
        formatSpread(comparison.pytorch[measure], 0),
        formatSpread(s.ratio, 2, '×'),
      ]);
    }
  console.log(table(['engines', 'work', 'ours (ms)', 'PyTorch (ms)', 'ours / PyTorch'], lines));
  const share = (ms: number, total: number) => `${((100 * ms) / total).toFixed(0)} %`;
  const shares = Object.entries(comparison.variants).map(
    ([name, v]) => `${name} ${share(v.summary.update.ours.median, v.summary.total.ours.median)}`,
  );
  const torchShare = share(comparison.pytorch.update.median, comparison.pytorch.total.median);
  console.log(`\nupdate share of the iteration (medians): ${shares.join(', ')}, PyTorch ${torchShare}`);
}
