/**
 * Does PPO learn the demo task as well with ONNX rollouts as with tfjs rollouts?
 *   node --import tsx bench/rolloutEngineComparison.ts [--quick]     (12–15 min on 2 cores; run it alone)
 * Trains the demo's SFT policy, simulated preferences and reward model once (demoConfig, seed 42),
 * then PPO at the demo's middle KL coefficient with `rollout_engine` "tfjs" and "onnx" for seeds 1–3,
 * each scored at the end on the same held-out prompts by the sentiment oracle. Prints the per-seed
 * table and the mean ± standard deviation per engine, and writes bench-results/rollout-engines.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { demoConfig, demoScales } from '../src/trainer/demo/demoConfig';
import { runPipeline } from '../src/trainer/pipeline';

const quick = process.argv.includes('--quick');
const scale = demoScales[quick ? 'quick' : 'full'];
const seeds = [1, 2, 3];
const engines = ['tfjs', 'onnx'] as const;
const evalPrompts = 128;

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const std = (values: number[]) =>
  Math.sqrt(values.reduce((a, b) => a + (b - mean(values)) ** 2, 0) / (values.length - 1));

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-engines-'));
  const runsRoot = path.join(dir, 'runs');
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify(value, null, 2));
    return file;
  };
  const log = (message: string) => process.stderr.write(`${message}\n`);

  // SFT, preferences and reward model: the demo's first three stages, once.
  const demo = demoConfig(scale, 'engines') as { stages: Record<string, unknown>[] } & Record<string, unknown>;
  const started = performance.now();
  const base = await runPipeline(
    { configFile: write('base.rlhf.json', { ...demo, stages: demo.stages.slice(0, 3) }), runsRoot },
    { log: () => undefined },
  );
  const sft = base.runs[0].result.outputs.checkpoint as string;
  const reward = base.runs[2].result.outputs.checkpoint as string;
  log(`SFT, preferences and reward model in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const ppoTemplate = demo.stages.find((stage) => stage.name === 'ppo-kl0.05') as Record<string, unknown>;

  const rows: {
    engine: string;
    seed: number;
    baseline: number;
    oracle: number;
    kl: number;
    seconds: number;
    rollout_s: number;
  }[] = [];
  for (const seed of seeds) {
    for (const engine of engines) {
      const t0 = performance.now();
      const stage = {
        ...ppoTemplate,
        name: `ppo-${engine}`,
        rollout_engine: engine,
        policy: sft,
        reward_model: reward,
        num_eval_prompts: evalPrompts,
      };
      const { runs } = await runPipeline(
        {
          configFile: write(`ppo-${engine}-${seed}.rlhf.json`, {
            ...demo,
            name: `engines-s${seed}`,
            seed,
            stages: [stage],
          }),
          runsRoot,
        },
        { log: () => undefined },
      );
      const metrics = readFileSync(path.join(runs[0].runDir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, number>);
      const first = metrics[0];
      const last = metrics[metrics.length - 1];
      const rollout = metrics.slice(1).reduce((total, row) => total + (row['time/rollout'] ?? 0), 0);
      rows.push({
        engine,
        seed,
        baseline: first['eval/oracle/score'],
        oracle: last['eval/oracle/score'],
        kl: last['eval/objective/kl'],
        seconds: (performance.now() - t0) / 1000,
        rollout_s: rollout,
      });
      log(
        `seed ${seed}, ${engine} rollouts: oracle ${first['eval/oracle/score'].toFixed(3)} → ` +
          `${last['eval/oracle/score'].toFixed(3)}, KL ${last['eval/objective/kl'].toFixed(2)}, ` +
          `${rows.at(-1)?.seconds.toFixed(0)} s (rollouts ${rollout.toFixed(1)} s)`,
      );
    }
  }

  console.log(
    `\nPPO on the demo task (${quick ? 'quick' : 'full'} scale, KL coefficient 0.05, ` +
      `${ppoTemplate.total_episodes} episodes), held-out oracle score on ${evalPrompts} prompts\n`,
  );
  console.log(
    '| rollouts | seed | oracle before | oracle after | KL to reference | PPO stage (s) | of which rollouts (s) |',
  );
  console.log(
    '| -------- | ---- | ------------- | ------------ | --------------- | ------------- | --------------------- |',
  );
  for (const row of rows)
    console.log(
      `| ${row.engine} | ${row.seed} | ${row.baseline.toFixed(3)} | ${row.oracle.toFixed(3)} | ` +
        `${row.kl.toFixed(2)} | ${row.seconds.toFixed(0)} | ${row.rollout_s.toFixed(1)} |`,
    );
  const summary = Object.fromEntries(
    engines.map((engine) => {
      const after = rows.filter((row) => row.engine === engine).map((row) => row.oracle);
      return [engine, { mean: mean(after), std: std(after) }];
    }),
  );
  console.log('');
  for (const engine of engines)
    console.log(
      `${engine}: oracle after PPO ${summary[engine].mean.toFixed(3)} ± ${summary[engine].std.toFixed(3)} ` +
        `(mean ± sd over ${seeds.length} seeds)`,
    );
  const out = path.join('bench-results', 'rollout-engines.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const record = {
    date: new Date().toISOString(),
    scale: quick ? 'quick' : 'full',
    eval_prompts: evalPrompts,
    rows,
    summary,
  };
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nwrote ${out}`);
}

void main();
