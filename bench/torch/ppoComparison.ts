/**
 * One PPO iteration, ours (the real PPO stage, ONNX rollouts) against PyTorch's (reference.py: the same
 * model shapes, batch, new tokens, epochs and minibatches, one thread), interleaved: each round runs one
 * PPO stage of ours (its iterations after the first) and then as many PyTorch iterations.
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

const stageDefaults = {
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

export interface PpoComparison {
  torch_version: string;
  blas: string;
  prompt_length: number;
  rounds: number;
  iterations_per_round: number;
  ours_ms: PhaseTimes[][];
  pytorch_ms: PhaseTimes[][];
  /** Per round: median iteration of ours / median iteration of PyTorch's, for total, update and rollouts. */
  ratio: { total: number[]; update: number[]; rollout: number[] };
  summary: Record<'total' | 'update' | 'rollout', { ours: Spread; pytorch: Spread; ratio: Spread }>;
}

const rolloutMs = (t: PhaseTimes) => t.rollout_generate + t.rollout_score;
const medianOf = (rows: PhaseTimes[], f: (t: PhaseTimes) => number) => spread(rows.map(f)).median;
const measures = { total: (t: PhaseTimes) => t.total_ms, update: (t: PhaseTimes) => t.update, rollout: rolloutMs };

export async function comparePpoWithTorch(
  torch: TorchReference,
  shape: TorchPpoShape,
  rounds: number,
  ourRound: () => Promise<PhaseTimes[]>,
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
  const torchIteration = async () => {
    const reply = await torch.request('ppo_iteration', { key });
    return { ...Object.fromEntries(phaseNames.map((phase) => [phase, Number(reply[phase] ?? 0)])) } as PhaseTimes;
  };
  await torchIteration(); // warm-up, as ours drops its first iteration
  const ours: PhaseTimes[][] = [];
  const pytorch: PhaseTimes[][] = [];
  const ratio = { total: [] as number[], update: [] as number[], rollout: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const oursRound = await ourRound();
    const torchRound: PhaseTimes[] = [];
    for (let i = 0; i < oursRound.length; i++) {
      const t = await torchIteration();
      torchRound.push({ ...t, total_ms: phaseNames.reduce((sum, phase) => sum + t[phase], 0) });
    }
    ours.push(oursRound);
    pytorch.push(torchRound);
    for (const [name, f] of Object.entries(measures))
      ratio[name as keyof typeof ratio].push(medianOf(oursRound, f) / medianOf(torchRound, f));
    console.log(
      `PPO round ${round + 1}/${rounds}: ours ${medianOf(oursRound, measures.total).toFixed(0)} ms ` +
        `(update ${medianOf(oursRound, measures.update).toFixed(0)}), PyTorch ` +
        `${medianOf(torchRound, measures.total).toFixed(0)} ms (update ` +
        `${medianOf(torchRound, measures.update).toFixed(0)}), ours/PyTorch ${ratio.total[round].toFixed(2)}×`,
    );
  }
  await torch.request('release', { key });
  const summary = Object.fromEntries(
    Object.entries(measures).map(([name, f]) => [
      name,
      {
        ours: spread(ours.map((round) => medianOf(round, f))),
        pytorch: spread(pytorch.map((round) => medianOf(round, f))),
        ratio: spread(ratio[name as keyof typeof ratio]),
      },
    ]),
  ) as PpoComparison['summary'];
  return {
    torch_version: torch.info.torch,
    blas: torch.info.blas.library,
    prompt_length: shape.promptLength,
    rounds,
    iterations_per_round: ours[0]?.length ?? 0,
    ours_ms: ours,
    pytorch_ms: pytorch,
    ratio,
    summary,
  };
}

export function printPpoComparison(comparison: PpoComparison): void {
  console.log(
    `\nOne PPO iteration against PyTorch ${comparison.torch_version} (CPU, 1 thread): ` +
      `${comparison.rounds} interleaved rounds of ${comparison.iterations_per_round} iterations, ` +
      'per round the median iteration; median (min–max) over rounds, ms.\nOurs as the product runs it: ' +
      'rollouts and scoring on onnxruntime-node (its default threads: all cores), update on tfjs-wasm (1 thread).\n',
  );
  const labels = { total: 'whole iteration', update: 'PPO update', rollout: 'rollouts (generate + score)' };
  console.log(
    table(
      ['work', 'ours (ms)', 'PyTorch (ms)', 'ours / PyTorch'],
      Object.entries(labels).map(([name, label]) => {
        const s = comparison.summary[name as keyof typeof labels];
        return [label, formatSpread(s.ours, 0), formatSpread(s.pytorch, 0), formatSpread(s.ratio, 2, '×')];
      }),
    ),
  );
  const share = (side: 'ours' | 'pytorch') =>
    ((100 * comparison.summary.update[side].median) / comparison.summary.total[side].median).toFixed(0);
  console.log(`\nupdate share of the iteration (medians): ours ${share('ours')} %, PyTorch ${share('pytorch')} %`);
}
