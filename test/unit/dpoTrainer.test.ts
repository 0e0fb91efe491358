// DPO end to end on real files (wasm backend): a small SFT policy from the pipeline, preferences from
// its own samples ranked by the demo oracle, then DPO — learning, the oracle and KL at eval, the
// tensor loss against its core twin, exact resume, leaks, bad lines and the trace.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { validate } from '../../src/shared/configSchema';
import { dpoStageSchema, type DpoStageConfig } from '../../src/shared/runConfig';
import { decodeTrace, type DpoTraceRow } from '../../src/shared/traceFormat';
import { demoPrompts, heldOutPrompts } from '../../src/trainer/data/reviews';
import { sentimentScore } from '../../src/trainer/data/sentimentOracle';
import { evaluateGenerations } from '../../src/trainer/dpo/dpoEvaluation';
import { runDpoStage } from '../../src/trainer/dpo/dpoTrainer';
import type { TrainingEngine } from '../../src/trainer/engine/engine';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { createRolloutEngine, createTrainingEngine } from '../../src/trainer/engineFactory';
import { sentimentTask } from '../../src/trainer/tasks/sentimentTask';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { runPipeline } from '../../src/trainer/pipeline';
import { RunDirectory } from '../../src/trainer/run/runDirectory';
import { generate } from '../../src/trainer/sampling/sampler';
import type { StageContext, StageResult } from '../../src/trainer/stageContext';
import { loadModel } from '../../src/trainer/checkpoint/loadGpt';
import { loadEngineModel } from '../../src/trainer/checkpoint/modelLoading';
import { seeds } from '../../src/trainer/seeds';

/** The training engine of the stages under test (tfjs on wasm), made once the backend is chosen. */
let engine: TrainingEngine;

const seed = 7;
const model = { n_layer: 2, n_head: 4, n_embd: 64, block_size: 48, dropout: 0 };

interface Fixture {
  readonly dir: string;
  /** The SFT policy's final checkpoint. */
  readonly policy: string;
  /** Judgment lines: a prompt's positive samples (by the oracle) ranked above its negative ones. */
  readonly judgments: string[];
}

let fixture: Promise<Fixture> | undefined;

/** Trains the SFT policy once (through the pipeline) and labels its samples with the oracle. */
function sftFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-dpo-'));
    const configFile = path.join(dir, 'sft.rlhf.json');
    // 250 steps (~30 s): review-like text with sentiment words, far from fluent (eval loss ≈ 0.45 × unigram).
    // At 150 steps DPO still works, but its oracle gain (≈ +0.05) is too close to the eval's noise to test.
    const sft = {
      type: 'sft',
      dataset: { source: 'demo', num_examples: 5000 },
      learning_rate: 0.006,
      max_steps: 250,
      per_device_train_batch_size: 12,
      warmup_steps: 10,
      eval_steps: 250,
      save_steps: 250,
    };
    writeFileSync(
      configFile,
      JSON.stringify({
        name: 'dpo-fixture',
        seed,
        // The engine of the DPO stages under test: the fixture's policy is the one the bars below were set on.
        engine: 'tfjs',
        backend: 'wasm',
        model,
        tokenizer: { vocab_size: 512 },
        stages: [sft],
      }),
    );
    const { runs } = await runPipeline({ configFile, runsRoot: path.join(dir, 'runs') }, { log: () => {} });
    const policy = runs[0].result.outputs.checkpoint as string;

    // K = 4 samples per demo prompt; where some are positive and some negative by the oracle, a judgment
    // ranks the positive ones (tied) above the negative ones: every pair is (positive, negative).
    const { model: sampler, checkpoint } = await loadModel(policy, [], seed);
    const tokenizer = checkpoint.tokenizer;
    const prompts = demoPrompts(400, seed);
    const k = 4;
    const judgments: string[] = [];
    try {
      for (let start = 0; start < prompts.length; start += 100) {
        const batch = prompts.slice(start, start + 100);
        const ids = batch.flatMap((prompt) => Array.from({ length: k }, () => tokenizer.encode(prompt, { bos: true })));
        const samples = await generate(sampler, ids, {
          temperature: 1,
          topK: 0,
          topP: 1,
          maxNewTokens: 32,
          seed: seed + start,
          eosTokenId: tokenizer.eosId,
          padTokenId: tokenizer.padId,
        });
        batch.forEach((prompt, p) => {
          const completions = samples
            .slice(p * k, (p + 1) * k)
            .map((sample) => tokenizer.decode(sample.tokens, { skipSpecialTokens: true }));
          const scores = completions.map((completion) => sentimentScore(prompt + completion));
          const positive = completions.filter((_, i) => scores[i] > 0);
          const negative = completions.filter((_, i) => scores[i] < 0);
          if (positive.length === 0 || negative.length === 0) return;
          const ranking = [positive.map((_, i) => i), negative.map((_, i) => positive.length + i)];
          judgments.push(
            JSON.stringify({
              id: `j${start + p}`,
              prompt,
              completions: [...positive, ...negative],
              ranking,
              annotator: 'oracle',
            }),
          );
        });
      }
    } finally {
      sampler.dispose();
    }
    return { dir, policy, judgments };
  })();
  return fixture;
}

/** A DPO stage with the schema's defaults (validated, as the pipeline does) and `overrides`. */
function dpoConfig(overrides: Partial<DpoStageConfig>): DpoStageConfig {
  const { value, problems } = validate(dpoStageSchema, overrides);
  assert.deepEqual(problems, []);
  return value as DpoStageConfig;
}

/** A stage context over a fresh run directory (or `run`, to resume it); stage references are paths. */
function contextFor(
  dir: string,
  options: {
    run?: RunDirectory;
    resume?: boolean;
    logs?: string[];
    onStep?: StageContext['onStep'];
    shouldStop?: () => boolean;
  } = {},
): StageContext {
  const run =
    options.run ??
    RunDirectory.create(path.join(dir, 'runs'), {
      id: 'dpo',
      name: 'dpo',
      stage: 'dpo',
      stage_index: 0,
      seed,
      config: { name: 'dpo', stages: [{ type: 'dpo' }] },
      versions: {},
    }); // a config resume accepts
  return {
    run,
    configDir: dir,
    seed,
    model,
    vocabSize: 512,
    resume: options.resume,
    log: (level, message) => options.logs?.push(`${level}: ${message}`),
    onStep: options.onStep,
    shouldStop: options.shouldStop,
    engine,
    createRolloutEngine,
    task: sentimentTask,
    resolve: (reference) => path.resolve(dir, reference),
  };
}

before(async () => {
  engine = createTrainingEngine(await selectBackend('wasm'));
});

function metricsOf(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
}

test('a preference file without pairs fails clearly, naming the file and each malformed line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-dpo-empty-'));
  writeFileSync(
    path.join(dir, 'prefs.jsonl'),
    '{not json\n{"prompt": "a", "completions": ["x", "y"], "ranking": [[0, 1]]}\n',
  );
  const logs: string[] = [];
  await assert.rejects(
    runDpoStage(dpoConfig({ policy: 'none', preferences: 'prefs.jsonl' }), contextFor(dir, { logs })),
    /prefs\.jsonl: no preference pairs \(1 judgments, 1 malformed lines\)/,
  );
  assert.match(logs.join('\n'), /^warn: .*prefs\.jsonl:1: not valid JSON/m);
});

test(
  'DPO raises held-out preference accuracy and the oracle score, ' + 'at a positive KL, without leaking tensors',
  async () => {
    const { dir, policy, judgments } = await sftFixture();
    // Two malformed lines among the judgments: reported as file:line, the rest kept.
    const lines = [
      ...judgments.slice(0, 2),
      '{"prompt": "x", "completions": "ab", "ranking": [[0]]}',
      ...judgments.slice(2, 9),
      '{oops',
      ...judgments.slice(9),
    ];
    const file = path.join(dir, 'main.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const logs: string[] = [];
    const counts: number[] = [];
    const steps: Record<string, number>[] = [];
    const before = tf.memory().numTensors;
    const context = contextFor(dir, {
      logs,
      onStep: (metrics) => (steps.push({ ...metrics }), counts.push(tf.memory().numTensors)),
    });
    const stage = dpoConfig({
      policy,
      preferences: 'main.jsonl',
      learning_rate: 2e-3,
      num_train_epochs: 2,
      per_device_train_batch_size: 16,
      eval_fraction: 0.2,
      eval_steps: 1000,
      save_steps: 1000,
      num_eval_prompts: 128,
    });
    const started = performance.now();
    const result: StageResult = await runDpoStage(stage, context);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(tf.memory().numTensors, before, 'every tensor the stage made is disposed');

    // Bad lines named, good ones used.
    assert.match(
      logs.join('\n'),
      new RegExp(`^warn: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: field "completions"`, 'm'),
    );
    assert.match(logs.join('\n'), /^warn: .*main\.jsonl:11: not valid JSON/m);
    const runJson = context.run.runJson;
    const pairsPerJudgment = judgments
      .map((line) => (JSON.parse(line) as { ranking: number[][] }).ranking)
      .map(([positive, negative]) => positive.length * negative.length);
    assert.equal(
      (runJson.train_examples ?? 0) + (runJson.eval_examples ?? 0),
      pairsPerJudgment.reduce((a, b) => a + b, 0),
    );

    // Metrics: TRL's names every step; the starting policy at step 0; evals at the end.
    const rows = metricsOf(context.run.dir);
    const totalSteps = Math.ceil((2 * (runJson.train_examples as number)) / 16);
    assert.equal(result.status, 'completed');
    assert.equal(result.step, totalSteps);
    assert.equal(runJson.max_steps, totalSteps);
    assert.deepEqual(
      rows.map((row) => row.step),
      Array.from({ length: totalSteps + 1 }, (_, i) => i),
    );
    for (const key of [
      'loss/dpo',
      'loss',
      'rewards/chosen',
      'rewards/rejected',
      'rewards/accuracies',
      'rewards/margins',
      'logps/chosen',
      'logps/rejected',
      'lr',
      'grad_norm',
      'epoch',
      'time',
      'step',
    ]) {
      assert.ok(Number.isFinite(rows[1][key]), `step 1 has ${key}`);
    }
    const start = rows[0];
    const end = rows[totalSteps];
    const pairs = `${runJson.train_examples} + ${runJson.eval_examples} pairs`;
    console.log(
      `DPO: ${judgments.length} judgments, ${pairs}, ${totalSteps} steps in ${seconds.toFixed(1)} s; ` +
        `held-out accuracy ${end['eval/rewards/accuracies'].toFixed(3)}, ` +
        `oracle ${start['eval/oracle/score'].toFixed(3)} → ${end['eval/oracle/score'].toFixed(3)}, ` +
        `KL ${end['eval/objective/kl'].toFixed(2)}`,
    );
    assert.ok(Math.abs(start['eval/loss/dpo'] - Math.log(2)) < 1e-9, 'at step 0 the policy is the reference');
    assert.equal(start['eval/objective/kl'], 0);
    assert.ok(end['eval/rewards/accuracies'] >= 0.6, `held-out accuracy ${end['eval/rewards/accuracies']}`);
    assert.ok(
      end['eval/rewards/margins'] > 0 && end['eval/loss/dpo'] < Math.log(2),
      `held-out margin ${end['eval/rewards/margins']}, loss ${end['eval/loss/dpo']}`,
    );
    assert.ok(
      end['eval/oracle/score'] > start['eval/oracle/score'] + 0.08,
      `oracle ${start['eval/oracle/score']} → ${end['eval/oracle/score']}`,
    );
    assert.ok(
      Number.isFinite(end['eval/objective/kl']) && end['eval/objective/kl'] > 0.5,
      `KL ${end['eval/objective/kl']}`,
    );
    assert.deepEqual(
      runJson.summary,
      Object.fromEntries(Object.entries(end).filter(([key]) => key.startsWith('eval/'))),
    );
    assert.ok(existsSync(result.outputs.checkpoint as string));

    // Step 0 is the SFT policy's own score under the same generation settings and seed.
    const { model: sft, checkpoint } = await loadEngineModel(engine, policy, [], seed);
    try {
      const baseline = await evaluateGenerations(sft, sft, checkpoint.tokenizer, heldOutPrompts(128), {
        maxNewTokens: stage.max_new_tokens,
        seed: seeds.evalGeneration(seed),
        oracle: sentimentTask,
      });
      assert.equal(baseline.score, start['eval/oracle/score']);
    } finally {
      sft.dispose();
    }

    // No tensor leaks across warmed-up training steps (the last one also evaluates).
    const trainCounts = counts.slice(4, -1);
    assert.ok(trainCounts.length >= 10);
    assert.deepEqual(
      new Set(trainCounts),
      new Set([trainCounts[0]]),
      `tensor counts drifted: ${trainCounts.join(',')}`,
    );

    // The trace of the last eval: held-out pairs with one log-ratio per response token.
    const trace = decodeTrace(
      new Uint8Array(readFileSync(path.join(context.run.dir, 'traces', `step-${totalSteps}.arrow`))),
    );
    assert.equal(trace.kind, 'dpo');
    const traceRows = trace.rows as DpoTraceRow[];
    assert.equal(traceRows.length, Math.min(256, runJson.eval_examples as number));
    for (const row of traceRows) {
      assert.equal(row.chosen_logratios.length, row.chosen_tokens.length);
      assert.equal(row.rejected_logratios.length, row.rejected_tokens.length);
      assert.ok(
        Math.abs(row.chosen_reward - stage.beta * row.chosen_logratios.reduce((a, b) => a + b, 0)) <
          1e-3 * Math.max(1, Math.abs(row.chosen_reward)),
      );
      // float32 in the file
      assert.equal(row.chosen_oracle_score, Math.fround(sentimentScore(row.prompt + row.chosen)));
    }
    assert.ok(traceRows.some((row) => row.chosen_logratios.some((value) => value !== 0)));
  },
);

test('a DPO run stopped at a checkpoint and resumed equals an uninterrupted run', async () => {
  const { dir, policy, judgments } = await sftFixture();
  writeFileSync(path.join(dir, 'small.jsonl'), `${judgments.slice(0, 40).join('\n')}\n`);
  const stage = dpoConfig({
    policy,
    preferences: 'small.jsonl',
    loss_type: 'ipo',
    learning_rate: 2e-3,
    num_train_epochs: 1,
    per_device_train_batch_size: 8,
    warmup_steps: 2,
    eval_steps: 4,
    save_steps: 3,
    num_eval_prompts: 8,
    max_new_tokens: 12,
  });

  const whole = contextFor(dir);
  await runDpoStage(stage, whole);

  let steps = 0;
  const parts = contextFor(dir, { onStep: (metrics) => (steps = metrics.step), shouldStop: () => steps >= 5 });
  const first = await runDpoStage(stage, parts);
  assert.equal(first.status, 'stopped');
  assert.equal(first.step, 5);
  const second = await runDpoStage(stage, contextFor(dir, { run: RunDirectory.open(parts.run.dir), resume: true }));
  assert.equal(second.status, 'completed');

  const comparable = (rows: Record<string, number>[]) =>
    rows.map((row) => Object.fromEntries(Object.entries(row).filter(([key]) => key !== 'time' && key !== 'step_time')));
  const expected = comparable(metricsOf(whole.run.dir));
  const resumed = comparable(metricsOf(parts.run.dir));
  assert.equal(resumed.length, expected.length);
  assert.ok(
    expected.some((row) => 'eval/oracle/score' in row && row.step > 5),
    'an eval after the resume is compared',
  );
  resumed.forEach((row, i) => {
    assert.deepEqual(Object.keys(row).sort(), Object.keys(expected[i]).sort());
    for (const key of Object.keys(expected[i]))
      assert.ok(
        Math.abs(row[key] - expected[i][key]) <= 1e-5 * Math.max(1, Math.abs(expected[i][key])),
        `step ${expected[i].step} ${key}: ${row[key]} vs ${expected[i][key]}`,
      );
  });
});
