// PPO: the rollout math against hand-computed values, and the real PPO stage end to end on a tiny model (wasm):
// traces, resume after a stop and after kill -9, and a NaN reward stopping the run with the quantity and step named.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { classifyClip, Random } from '../../src/core';
import { decodeSafetensors, encodeSafetensors } from '../../src/shared/safetensors';
import { decodeTrace } from '../../src/shared/traceFormat';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { runPipeline } from '../../src/trainer/pipeline';
import { KlController } from '../../src/trainer/ppo/klController';
import { computeAdvantages } from '../../src/trainer/ppo/rollout';
import type { Rollout } from '../../src/trainer/rollout/rolloutEngine';
import { RunningMoments } from '../../src/trainer/ppo/runningMoments';

const close = (a: number, b: number, tolerance = 1e-5) =>
  assert.ok(Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

before(async () => {
  await selectBackend('wasm');
});

test('rewards put −β·KL on every token and the score on the last; advantages are whitened GAE', () => {
  const rollout = {
    logprobs: [[-1, -2], [-0.5]],
    refLogprobs: [[-1.5, -1], [-0.5]],
    values: [[0.1, 0.2], [0.3]],
  } as unknown as Rollout;
  const out = computeAdvantages(rollout, [1, -1], {
    klCoef: 0.5,
    klEstimator: 'k1',
    whitenRewards: false,
    whitenAdvantages: false,
    gamma: 1,
    lam: 1,
  });
  assert.deepEqual(out.kl, [[0.5, -1], [0]]);
  assert.deepEqual(out.rewards, [[-0.25, 0.5 + 1], [-1]]);
  // γ = λ = 1: A_t = Σ_{k≥t} r_k − V_t
  out.advantages[0].forEach((a, i) => close(a, [1.25 - 0.1, 1.5 - 0.2][i]));
  close(out.advantages[1][0], -1 - 0.3);
  out.returns[0].forEach((r, i) => close(r, [1.25, 1.5][i]));
  const whitened = computeAdvantages(rollout, [1, -1], {
    klCoef: 0.5,
    klEstimator: 'k1',
    whitenRewards: false,
    whitenAdvantages: true,
    gamma: 1,
    lam: 1,
  });
  const flat = whitened.advantages.flat();
  close(flat.reduce((a, b) => a + b, 0) / flat.length, 0, 1e-6);
});

test('the adaptive KL controller moves β toward the target by at most 20% of n/horizon', () => {
  const controller = new KlController(0.2, { target: 6, horizon: 10000 });
  controller.update(12, 256); // error clipped to +0.2
  close(controller.klCoef, 0.2 * (1 + (0.2 * 256) / 10000));
  controller.update(3, 256); // error −0.5 clipped to −0.2
  close(controller.klCoef, 0.2 * (1 + (0.2 * 256) / 10000) * (1 - (0.2 * 256) / 10000));
  const fixed = new KlController(0.05, undefined);
  fixed.update(100, 256);
  assert.equal(fixed.klCoef, 0.05);
});

test('running score moments equal the statistics of everything seen', () => {
  const moments = new RunningMoments();
  const all: number[] = [];
  const random = new Random(2);
  for (let i = 0; i < 4; i++) {
    const batch = Array.from({ length: 9 }, () => random.normal() * 3 + 1);
    all.push(...batch);
    moments.update(batch);
  }
  const m = all.reduce((a, b) => a + b, 0) / all.length;
  close(moments.mean, m, 1e-9);
  close(moments.std, Math.sqrt(all.reduce((a, b) => a + (b - m) ** 2, 0) / (all.length - 1)), 1e-9);
});

// --- the stage end to end ---------------------------------------------------------------------

let sftCheckpoint = '';
const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-ppo-'));

async function tinySft(): Promise<string> {
  if (sftCheckpoint) return sftCheckpoint;
  const configFile = path.join(workDir, 'sft.rlhf.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      name: 'sft',
      seed: 1,
      backend: 'wasm',
      model: { n_layer: 1, n_head: 2, n_embd: 32, block_size: 40 },
      tokenizer: { vocab_size: 300 },
      stages: [
        {
          type: 'sft',
          dataset: { source: 'demo', num_examples: 2000 },
          learning_rate: 0.005,
          max_steps: 60,
          warmup_steps: 5,
          save_steps: 60,
        },
      ],
    }),
  );
  const { runs } = await runPipeline({ configFile, runsRoot: path.join(workDir, 'runs') }, { log: () => undefined });
  sftCheckpoint = runs[0].result.outputs.checkpoint as string;
  return sftCheckpoint;
}

/** A PPO config on the tiny SFT model; the reward model is the SFT trunk with a fresh (seeded) score head. */
async function ppoConfig(name: string, extra: Record<string, unknown> = {}, rewardModel?: string): Promise<string> {
  const sft = await tinySft();
  const file = path.join(workDir, `${name}.rlhf.json`);
  writeFileSync(
    file,
    JSON.stringify({
      name,
      seed: 4,
      backend: 'wasm',
      stages: [
        {
          type: 'ppo',
          policy: sft,
          reward_model: rewardModel ?? sft,
          prompts: { source: 'demo' },
          total_episodes: 48,
          batch_size: 8,
          num_mini_batches: 2,
          num_ppo_epochs: 2,
          max_new_tokens: 12,
          eval_steps: 3,
          num_eval_prompts: 8,
          save_steps: 3,
          adap_kl_ctrl: true,
          use_score_scaling: true,
          ...extra,
        },
      ],
    }),
  );
  return file;
}

const metricsOf = (runDir: string) =>
  readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
const deterministic = (rows: Record<string, number>[]) =>
  rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).filter(([key]) => key !== 'time' && key !== 'eps' && !key.startsWith('time/')),
    ),
  );

test('a PPO step writes TRL metrics and a trace with every per-token quantity and per-epoch ratios', async () => {
  const configFile = await ppoConfig('trace', { total_episodes: 16 });
  const { runs } = await runPipeline({ configFile, runsRoot: path.join(workDir, 'runs') }, { log: () => undefined });
  const runDir = runs[0].runDir;
  const metrics = metricsOf(runDir);
  assert.equal(metrics[0].step, 0, 'a step-0 eval of the starting policy comes first');
  for (const key of [
    'objective/kl',
    'objective/entropy',
    'objective/non_score_reward',
    'objective/rlhf_reward',
    'objective/scores',
    'objective/kl_coef',
    'policy/approxkl_avg',
    'policy/clipfrac_avg',
    'loss/policy_avg',
    'loss/value_avg',
    'val/clipfrac_avg',
    'val/ratio',
    'lr',
    'episode',
    'oracle/score',
  ]) {
    assert.ok(Number.isFinite(metrics[1][key]), `${key} in metrics.jsonl`);
  }
  const trace = decodeTrace(new Uint8Array(readFileSync(path.join(runDir, 'traces', 'step-1.arrow'))));
  assert.equal(trace.kind, 'ppo');
  assert.equal(trace.rows.length, 8);
  for (const row of trace.rows) {
    if (trace.kind !== 'ppo') break;
    const n = row.tokens.length;
    assert.ok(n >= 1);
    for (const column of [
      'token_ids',
      'logprob',
      'ref_logprob',
      'kl',
      'value',
      'reward',
      'advantage',
      'return',
      'entropy',
    ] as const)
      assert.equal(row[column].length, n, column);
    assert.equal(row.ratio.length, 2, 'one ratio list per PPO epoch');
    assert.ok(row.ratio.every((epoch) => epoch.length === n));
    assert.deepEqual(
      row.clip_class,
      row.ratio.map((epoch) => epoch.map((r, t) => classifyClip(r, row.advantage[t], 0.2))),
      'clip_class is the core classification of the stored ratio and advantage with the stage’s ε',
    );
    // The first epoch's first minibatch sees the rollout policy: ratios there are ~1.
    assert.equal(row.reward.at(-1) !== undefined, true);
    close(
      row.reward.slice(0, -1).reduce((a, b) => a + b, 0),
      row.kl.slice(0, -1).reduce((a, b) => a - metrics[1]['objective/kl_coef'] * b, 0),
      1e-4,
    );
  }
});

test(
  'PPO stopped at a checkpoint and resumed equals an uninterrupted run ' + '(KL controller and optimizer restored)',
  async () => {
    const whole = await runPipeline(
      { configFile: await ppoConfig('whole'), runsRoot: path.join(workDir, 'runs') },
      { log: () => undefined },
    );
    let steps = 0;
    const parts = await runPipeline(
      { configFile: await ppoConfig('parts'), runsRoot: path.join(workDir, 'runs') },
      { log: () => undefined, onStep: () => steps++, shouldStop: () => steps >= 4 },
    );
    assert.equal(parts.stopped, true);
    const runDir = parts.runs[0].runDir;
    await runPipeline({ resumeDir: runDir, runsRoot: path.join(workDir, 'runs') }, { log: () => undefined });
    const expected = deterministic(metricsOf(whole.runs[0].runDir));
    const resumed = deterministic(metricsOf(runDir));
    assert.equal(resumed.length, expected.length);
    resumed.forEach((row, i) => Object.keys(expected[i]).forEach((key) => close(row[key], expected[i][key], 1e-4)));
  },
);

test('a PPO trainer killed with SIGKILL resumes from its last checkpoint from the command line', async () => {
  const trainer = path.join(__dirname, '..', '..', 'dist', 'trainer.js');
  assert.ok(existsSync(trainer), 'run npm run build first');
  const configFile = await ppoConfig('killed', { total_episodes: 64, save_steps: 2 });
  const runsRoot = path.join(workDir, 'killed-runs');
  const child = spawn(process.execPath, [trainer, 'train', configFile, '--runs-dir', runsRoot], { stdio: 'ignore' });
  const deadline = Date.now() + 60_000;
  let runDir = '';
  while (Date.now() < deadline) {
    runDir = existsSync(runsRoot) ? path.join(runsRoot, readdirSync(runsRoot)[0] ?? '') : '';
    if (runDir && existsSync(path.join(runDir, 'checkpoints', 'step-2'))) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(existsSync(path.join(runDir, 'checkpoints', 'step-2')), 'a checkpoint was written before the kill');
  assert.equal(
    JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')).status,
    'running',
    'a killed trainer could not mark its run',
  );
  const resumed = spawn(process.execPath, [trainer, 'train', '--resume', runDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  resumed.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise((resolve) => resumed.once('exit', resolve));
  assert.equal(code, 0, stderr);
  assert.match(stderr, /resuming from .*step-\d+ \(step \d+, β = /);
  const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(runJson.status, 'completed');
  const steps = metricsOf(runDir).map((row) => row.step);
  assert.deepEqual(
    steps,
    Array.from({ length: 9 }, (_, i) => i),
    'every step once, none lost or doubled',
  );
});

test('a NaN score stops PPO before the update, naming the quantity and step, and marks the run failed', async () => {
  const sft = await tinySft();
  // A reward model whose score head outputs NaN from finite weights (a checkpoint holding NaN is refused
  // when loaded): ±3e38 weights overflow to +Infinity and -Infinity across the width, whose sum is NaN.
  const broken = path.join(workDir, 'nan-reward');
  const { cpSync } = await import('node:fs');
  cpSync(sft, broken, { recursive: true });
  const model = decodeSafetensors(new Uint8Array(readFileSync(path.join(broken, 'model.safetensors'))));
  const width = model.tensors['transformer.wte.weight'].shape[1];
  model.tensors['score.weight'] = { dtype: 'F32', shape: [width, 1], data: new Float32Array(width).fill(3e38) };
  model.tensors['score.bias'] = { dtype: 'F32', shape: [1], data: new Float32Array([0]) };
  writeFileSync(path.join(broken, 'model.safetensors'), encodeSafetensors(model.tensors));
  const configFile = await ppoConfig('nan', { use_score_scaling: false }, broken);
  const runsRoot = path.join(workDir, 'nan-runs');
  await assert.rejects(
    runPipeline({ configFile, runsRoot }, { log: () => undefined }),
    /objective\/scores is NaN at step 1; stopped without applying that update/,
  );
  const runDir = path.join(runsRoot, readdirSync(runsRoot)[0]);
  const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(runJson.status, 'failed');
  assert.match(runJson.error, /objective\/scores is NaN at step 1/);
});
