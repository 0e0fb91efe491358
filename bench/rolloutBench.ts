/**
 * `npm run bench:rollout`: the rollout engines side by side.
 *   1. Sampling 16 prompts × 64 new tokens from the ~110k-parameter GPT (vocab 96, d 64, 2 layers,
 *      4 heads; context 65 so a BOS prompt has room for 64 new tokens): tfjs-wasm without a KV cache
 *      (the baseline), tfjs-wasm with its cache, onnxruntime-node without and with the cache.
 *   2. Weight sync after a PPO update, both ways: re-export (rebuild the graph, new session) against
 *      weights fed as graph inputs — the sync itself, then a 16 × 64 sampling pass with each,
 *      interleaved, on the 110k model and an 850k one.
 *   3. One full PPO iteration by phase (generation, scoring passes, advantages, PPO update, weight
 *      sync) on the real PPO stage, tfjs rollouts against ONNX rollouts: a demo-tokenizer model of
 *      the same shape (vocab 300, context 96), batch 16, 64 new tokens, 4 epochs × 2 minibatches.
 *      When Debian's python3 has torch, the ONNX-rollout iterations are interleaved round by round with the
 *      same iteration in PyTorch (bench/torch/reference.py, one thread): ratios per round, update vs rollouts.
 *      Our side runs twice per round, ONNX rollouts both times: the update on tfjs-wasm and on the ONNX
 *      Runtime engine (the config's `engine`, made by the product's createChosenEngine).
 * Prints tables of medians and writes bench-results/rollout.json. `-- --ppo-only` runs section 3 alone.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { Random } from '../src/core/random';
import { selectBackend } from '../src/trainer/engine/tfjs/backend';
import { tf } from '../src/trainer/engine/tfjs/tfRuntime';
import { Gpt } from '../src/trainer/engine/tfjs/gpt';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import type { EngineName } from '../src/shared/backendNames';
import { OnnxCausalLm, type WeightSyncMode } from '../src/trainer/onnx/onnxCausalLm';
import { generateOnnx } from '../src/trainer/onnx/onnxSampler';
import { runPipeline } from '../src/trainer/pipeline';
import { generate, sampleToken, type SamplingOptions } from '../src/trainer/sampling/sampler';
import { comparePpoWithTorch, phaseNames, printPpoComparison, type PhaseTimes } from './torch/ppoComparison';
import { table, TorchReference } from './torch/torchReference';

const config: GptConfig = { vocab_size: 96, block_size: 65, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 };
const batch = 16;
const newTokens = 64;
const sampling: SamplingOptions = {
  temperature: 1,
  topK: 0,
  topP: 1,
  maxNewTokens: newTokens,
  seed: 1,
  padTokenId: 0,
};
const prompts = Array.from({ length: batch }, () => [1]);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function timed(repetitions: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** tfjs sampling without a cache: the whole sequence through the model for every new token. */
async function sampleWithoutCache(model: Gpt): Promise<number[][]> {
  const random = new Random(sampling.seed);
  const rows = prompts.map((prompt) => [...prompt]);
  for (let i = 0; i < newTokens; i++) {
    const length = rows[0].length;
    const last = tf.tidy(() =>
      tf.slice(
        model.forward(tf.tensor2d(rows, undefined, 'int32')).logits,
        [0, length - 1, 0],
        [batch, 1, config.vocab_size],
      ),
    );
    const logits = (await last.data()) as Float32Array;
    last.dispose();
    rows.forEach((row, b) =>
      row.push(
        sampleToken(logits.subarray(b * config.vocab_size, (b + 1) * config.vocab_size), sampling, random).token,
      ),
    );
  }
  return rows;
}

async function samplingRows(model: Gpt) {
  const weights = await model.readWeights();
  const onnxCached = await OnnxCausalLm.fromGpt(config, [], weights, { kvCache: true });
  const onnxPlain = await OnnxCausalLm.fromGpt(config, [], weights, { kvCache: false });
  const rows = [
    { engine: 'tfjs-wasm', kv_cache: false, ms: await timed(3, () => sampleWithoutCache(model)) },
    { engine: 'tfjs-wasm', kv_cache: true, ms: await timed(5, () => generate(model, prompts, sampling)) },
    {
      engine: 'onnxruntime-node',
      kv_cache: false,
      ms: await timed(5, () => generateOnnx(onnxPlain, prompts, sampling)),
    },
    {
      engine: 'onnxruntime-node',
      kv_cache: true,
      ms: await timed(10, () => generateOnnx(onnxCached, prompts, sampling)),
    },
  ];
  await Promise.all([onnxCached.release(), onnxPlain.release()]);
  const baseline = rows[0].ms;
  return rows.map((row) => ({
    ...row,
    tokens_per_s: (batch * newTokens) / (row.ms / 1000),
    speedup_vs_tfjs_no_cache: baseline / row.ms,
  }));
}

/**
 * Weight sync both ways, interleaved (re-export, inputs, re-export, …) so machine noise hits both
 * alike: a sync of the current weights, then a 16 × 64 sampling pass; on the 110k model and on an
 * 850k one (vocab 512, d 128, 4 layers) where constant folding of larger weights could matter more.
 */
async function weightSyncRows() {
  const out: { model: string; mode: WeightSyncMode; sync_ms: number; total_ms: number; sample_ms: number }[] = [];
  const shapes: Record<string, GptConfig> = {
    '110k': config,
    '850k': { vocab_size: 512, block_size: 65, n_layer: 4, n_head: 4, n_embd: 128, dropout: 0 },
  };
  for (const [name, shape] of Object.entries(shapes)) {
    const model = Gpt.create(shape, { seed: 0, heads: ['v_head'] });
    const modes: WeightSyncMode[] = ['reexport', 'inputs'];
    const sessions = await Promise.all(
      modes.map(async (mode) =>
        OnnxCausalLm.fromGpt(shape, ['v_head'], await model.readWeights(), { kvCache: true, weightSync: mode }),
      ),
    );
    const sync: number[][] = [[], []];
    const total: number[][] = [[], []];
    for (let repetition = 0; repetition <= 20; repetition++) {
      for (let m = 0; m < modes.length; m++) {
        const t0 = performance.now();
        await sessions[m].updateWeights(await model.readWeights());
        const t1 = performance.now();
        await generateOnnx(sessions[m], prompts, { ...sampling, seed: repetition });
        if (repetition > 0) {
          sync[m].push(t1 - t0);
          total[m].push(performance.now() - t0);
        }
      }
    }
    modes.forEach((mode, m) =>
      out.push({
        model: name,
        mode,
        sync_ms: median(sync[m]),
        total_ms: median(total[m]),
        sample_ms: median(total[m]) - median(sync[m]),
      }),
    );
    await Promise.all(sessions.map((session) => session.release()));
    model.dispose();
  }
  return out;
}

const ppoModel = { n_layer: 2, n_head: 4, n_embd: 64, block_size: 96 };
const ppoVocab = 300;
const ppoShape = { epochs: 4, miniBatches: 2 };
/** Interleaved rounds against PyTorch; each runs one PPO stage of ours (its iterations after the first). */
const torchRounds = 5;
/**
 * PyTorch's prompts: random tokens of this length. The demo's prompts are 6–21 tokens with BOS (mean 12),
 * and the product left-pads a batch of 16 to its longest: about 18.
 */
const torchPromptLength = 18;

/** Which engines a measured PPO stage uses: rollouts (`rollout_engine`) and the update (`engine`). */
interface PpoEngines {
  readonly rollouts: 'tfjs' | 'onnx' | 'training';
  readonly update: EngineName;
}

/** Runs one PPO stage (4 iterations) on `engines`, as the product does; the phase times of its iterations 2–4. */
async function ppoStageTimes(
  engines: PpoEngines,
  checkpoint: string,
  write: (name: string, value: unknown) => string,
  runsRoot: string,
): Promise<PhaseTimes[]> {
  const stage = {
    type: 'ppo',
    rollout_engine: engines.rollouts,
    policy: checkpoint,
    reward_model: checkpoint,
    prompts: { source: 'demo' },
    total_episodes: 4 * batch,
    batch_size: batch,
    num_mini_batches: ppoShape.miniBatches,
    num_ppo_epochs: ppoShape.epochs,
    max_new_tokens: newTokens,
    stop_token: 'none',
    eval_steps: 1000,
    num_eval_prompts: 4,
    save_steps: 1000,
  };
  const name = `ppo-${engines.rollouts}-${engines.update}`;
  // `engine` pinned: the pipeline makes it with createChosenEngine, the product's own path.
  const config = { name, seed: 1, backend: 'wasm', engine: engines.update, model: ppoModel, stages: [stage] };
  const { runs } = await runPipeline(
    { configFile: write(`${name}.rlhf.json`, config), runsRoot },
    { log: () => undefined },
  );
  return readFileSync(path.join(runs[0].runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>)
    .filter((row) => row.step >= 2)
    .map((row) => {
      const phases = Object.fromEntries(phaseNames.map((phase) => [phase, (row[`time/${phase}`] ?? 0) * 1000]));
      const total = phaseNames.reduce((sum, phase) => sum + phases[phase], 0);
      return { ...phases, total_ms: total } as PhaseTimes;
    });
}

/** Median of each phase over iterations. */
const medianPhases = (rows: PhaseTimes[]) =>
  Object.fromEntries(
    [...phaseNames, 'total_ms' as const].map((phase) => [phase, median(rows.map((row) => row[phase]))]),
  ) as PhaseTimes;

async function ppoIterationRows(torch: TorchReference | undefined) {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-rollout-bench-'));
  const runsRoot = path.join(dir, 'runs');
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify(value));
    return file;
  };
  const sft = await runPipeline(
    {
      configFile: write('sft.rlhf.json', {
        name: 'sft',
        seed: 1,
        backend: 'wasm',
        model: ppoModel,
        tokenizer: { vocab_size: ppoVocab },
        stages: [
          { type: 'sft', dataset: { source: 'demo', num_examples: 500 }, max_steps: 2, warmup_steps: 1, save_steps: 2 },
        ],
      }),
      runsRoot,
    },
    { log: () => undefined },
  );
  const checkpoint = sft.runs[0].result.outputs.checkpoint as string;
  const rows: ({ engine: string } & PhaseTimes)[] = [];
  const tfjsRollouts = await ppoStageTimes({ rollouts: 'tfjs', update: 'tfjs' }, checkpoint, write, runsRoot);
  rows.push({ engine: 'tfjs rollouts, tfjs update', ...medianPhases(tfjsRollouts) });
  process.stderr.write('measured a PPO iteration with tfjs rollouts\n');
  // ONNX rollouts with the update on each training engine, and the product's default (the ONNX Runtime engine
  // sampling and scoring itself: rollout_engine "training"), interleaved round by round with PyTorch.
  const variantEngines: Record<string, PpoEngines> = {
    'onnx rollouts, tfjs update': { rollouts: 'onnx', update: 'tfjs' },
    'onnx rollouts, onnxruntime update': { rollouts: 'onnx', update: 'onnxruntime' },
    'onnxruntime engine alone (the default)': { rollouts: 'training', update: 'onnxruntime' },
  };
  const iterations = new Map<string, PhaseTimes[]>(Object.keys(variantEngines).map((name) => [name, []]));
  const variantRound = (name: string) => async () => {
    const times = await ppoStageTimes(variantEngines[name], checkpoint, write, runsRoot);
    iterations.get(name)!.push(...times);
    return times;
  };
  const variants = Object.fromEntries(Object.keys(variantEngines).map((name) => [name, variantRound(name)]));
  const shape = {
    config: { vocab_size: ppoVocab, ...ppoModel },
    batch,
    promptLength: torchPromptLength,
    newTokens,
    ...ppoShape,
  };
  const pytorch = torch ? await comparePpoWithTorch(torch, shape, torchRounds, variants) : undefined;
  if (!pytorch) for (const run of Object.values(variants)) await run();
  for (const name of Object.keys(variantEngines)) rows.push({ engine: name, ...medianPhases(iterations.get(name)!) });
  process.stderr.write('measured a PPO iteration with ONNX rollouts\n');
  return { rows, pytorch };
}

/** Sections 1 and 2 (sampling, weight sync); skipped with --ppo-only. */
async function rolloutRows() {
  const model = Gpt.create(config, { seed: 0, heads: ['v_head'] });
  process.stderr.write(`model: ${model.parameterCount.toLocaleString('en-US')} parameters (trunk and value head)\n`);
  const sample = await samplingRows(model);
  process.stderr.write('measured sampling\n');
  const sync = await weightSyncRows();
  process.stderr.write('measured weight sync\n');
  model.dispose();
  return { sample, sync };
}

function printRolloutRows(
  sample: Awaited<ReturnType<typeof samplingRows>>,
  sync: Awaited<ReturnType<typeof weightSyncRows>>,
) {
  console.log(
    `\nSampling ${batch} × ${newTokens} new tokens, ${config.n_layer} layers, d ${config.n_embd}, vocab ` +
      `${config.vocab_size} (medians)\n`,
  );
  console.log(
    table(
      ['engine', 'KV cache', 'time (ms)', 'tokens/s', 'speed-up vs tfjs-wasm, no cache'],
      sample.map((r) => [
        r.engine,
        r.kv_cache ? 'yes' : 'no',
        r.ms.toFixed(0),
        r.tokens_per_s.toFixed(0),
        `${r.speedup_vs_tfjs_no_cache.toFixed(1)}×`,
      ]),
    ),
  );
  console.log(
    '\nWeight sync after an update, then one 16 × 64 sampling pass (medians of 20, the two modes interleaved)\n',
  );
  console.log(
    table(
      ['model', 'mode', 'sync (ms)', 'sampling (ms)', 'sync + sampling (ms)'],
      sync.map((r) => [r.model, r.mode, r.sync_ms.toFixed(1), r.sample_ms.toFixed(1), r.total_ms.toFixed(1)]),
    ),
  );
}

async function main(): Promise<void> {
  await selectBackend('wasm');
  const ppoOnly = process.argv.includes('--ppo-only');
  const rollout = ppoOnly ? undefined : await rolloutRows();
  const torch = await TorchReference.start();
  const { rows: ppo, pytorch } = await ppoIterationRows(torch);
  await torch?.close();

  if (rollout) printRolloutRows(rollout.sample, rollout.sync);
  console.log(
    `\nOne PPO iteration by phase (batch ${batch}, ${newTokens} new tokens, 4 epochs × 2 minibatches; medians ` +
      `of steps 2–4, ms)\n`,
  );
  console.log(
    table(
      ['engines', 'generate', 'score (policy, ref, reward)', 'advantages', 'update', 'weight sync', 'total'],
      ppo.map((r) => [r.engine, ...[...phaseNames, 'total_ms' as const].map((k) => r[k].toFixed(0))]),
    ),
  );
  if (pytorch) printPpoComparison(pytorch);
  const out = path.join('bench-results', 'rollout.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const record = {
    date: new Date().toISOString(),
    node: process.version,
    cores: availableParallelism(),
    model: config,
    batch,
    new_tokens: newTokens,
    ...(rollout && { sampling: rollout.sample, weight_sync: rollout.sync }),
    ppo_iteration_ms: ppo,
    ...(pytorch && { ppo_iteration_vs_pytorch: pytorch }),
  };
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nwrote ${out}`);
}

void main();
