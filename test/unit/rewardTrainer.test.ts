// The reward-model stage end to end on the wasm backend with real files: a tiny SFT checkpoint, a
// preference file of demo reviews ranked by the sentiment oracle (with malformed lines, a TRL pairwise
// line and a prompt too long for the context), then learning, centering, checkpoints, traces, resume,
// leaks, and the tensor Bradley–Terry loss against core's.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { validate } from '../../src/shared/configSchema';
import { parsePreferenceLine, type Judgment } from '../../src/shared/preferences';
import {
  rewardStageSchema,
  sftStageSchema,
  type RewardStageConfig,
  type SftStageConfig,
} from '../../src/shared/runConfig';
import { decodeTrace, type RewardTraceRow } from '../../src/shared/traceFormat';
import { generateReviews } from '../../src/trainer/data/reviews';
import { sentimentScore } from '../../src/trainer/data/sentimentOracle';
import type { TrainingEngine } from '../../src/trainer/engine/engine';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { createRolloutEngine, createTrainingEngine } from '../../src/trainer/engineFactory';
import { sentimentTask } from '../../src/trainer/tasks/sentimentTask';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { runRewardStage } from '../../src/trainer/reward/rewardTrainer';
import { rewardInputs } from '../../src/trainer/data/sequences';
import { RunDirectory } from '../../src/trainer/run/runDirectory';
import { runSftStage } from '../../src/trainer/sft/sftTrainer';
import type { StageContext } from '../../src/trainer/stageContext';
import type { Tokenizer } from '../../src/trainer/tokenizer';
import { loadModel } from '../../src/trainer/checkpoint/loadGpt';
import { splitExamples } from '../../src/trainer/data/batching';

/** The training engine of the stages under test (tfjs on wasm), made once the backend is chosen. */
let engine: TrainingEngine;

const seed = 7;
// One layer of width 64 learns the reviews' word valences in ~160 steps; width 32 learned far slower, and a longer
// SFT did not help (measured).
const modelShape = { n_layer: 1, n_head: 4, n_embd: 64, block_size: 64, dropout: 0 };

function stageConfig<T>(schema: Parameters<typeof validate>[0], fields: Record<string, unknown>): T {
  const { value, problems } = validate(schema, fields);
  assert.deepEqual(problems, []);
  return value as T;
}

interface Fixture {
  dir: string;
  sftCheckpoint: string;
  preferenceFile: string;
  /** The same demo judgments with every fourth ranking reversed: labels that disagree with the oracle. */
  noisyFile: string;
  /** Every judgment of the file the stage can use, in file order. */
  judgments: Judgment[];
}
let fixture: Fixture;

/**
 * Judgments of 2–4 completions of one header prompt ("review of the blender:"), ranked by the oracle.
 * Easy on purpose: short single-polarity reviews (no negation, contrast or verdict; at most 50
 * characters), completions at least 0.3 apart in oracle score.
 */
function demoJudgments(count: number): Judgment[] {
  const hard = /\b(but|although|though|despite|however|overall|ultimately|not|never|no|nothing|without|hardly)\b|n't/;
  const byPrompt = new Map<string, string[]>();
  for (const review of generateReviews(60000, 11)) {
    if (!review.prompt.endsWith(':') || hard.test(review.completion) || review.completion.length > 50) continue;
    byPrompt.set(review.prompt, [...(byPrompt.get(review.prompt) ?? []), review.completion]);
  }
  const judgments: Judgment[] = [];
  for (const [prompt, completions] of byPrompt) {
    let next = 0;
    while (next < completions.length && judgments.length < count) {
      const k = 2 + (judgments.length % 3);
      const picked: string[] = [];
      const scores: number[] = [];
      while (next < completions.length && picked.length < k) {
        const completion = completions[next++];
        const score = sentimentScore(prompt + completion);
        if (scores.every((other) => Math.abs(other - score) >= 0.3)) {
          picked.push(completion);
          scores.push(score);
        }
      }
      if (picked.length < 2) break;
      const ranking = picked
        .map((_, i) => i)
        .sort((a, b) => scores[b] - scores[a])
        .map((i) => [i]);
      judgments.push({
        id: `demo-${judgments.length}`,
        prompt,
        completions: picked,
        ranking,
        annotator: 'oracle',
        time: '2026-01-01T00:00:00Z',
        source: { run: 'fixture', step: 0 },
      });
    }
  }
  assert.equal(judgments.length, count, 'not enough demo reviews for the fixture');
  return judgments;
}

function contextFor(run: RunDirectory, logs: string[], extra: Partial<StageContext> = {}): StageContext {
  return {
    run,
    configDir: fixture.dir,
    seed,
    model: modelShape,
    vocabSize: 512,
    log: (level, message) => logs.push(`${level}: ${message}`),
    engine,
    createRolloutEngine,
    task: sentimentTask,
    resolve: (reference) => reference,
    ...extra,
  };
}

function newRun(name: string): RunDirectory {
  return RunDirectory.create(path.join(fixture.dir, 'runs'), {
    id: name,
    name,
    stage: name,
    stage_index: 0,
    seed,
    config: {},
    versions: {},
  });
}

function rewardStage(fields: Record<string, unknown> = {}): RewardStageConfig {
  return stageConfig(rewardStageSchema, {
    init_from: fixture.sftCheckpoint,
    preferences: fixture.preferenceFile,
    eval_fraction: 0.15,
    learning_rate: 8e-3,
    num_train_epochs: 3,
    per_device_train_batch_size: 8,
    warmup_steps: 10,
    eval_steps: 80,
    save_steps: 80,
    ...fields,
  });
}

function metricsOf(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
}

/** Scores of prompt + completion texts, tokenized as the stage does ([BOS, prompt…, completion…, EOS]). */
async function scoreTexts(
  model: Gpt,
  tokenizer: Tokenizer,
  items: readonly { prompt: string; completion: string }[],
): Promise<number[]> {
  const out: number[] = [];
  for (let start = 0; start < items.length; start += 64) {
    const chunk = items.slice(start, start + 64).map((item) => ({
      prompt: tokenizer.encode(item.prompt, { bos: true }),
      response: [...tokenizer.encode(item.completion), tokenizer.eosId],
    }));
    const { ids, batchSize, length, lengths } = rewardInputs(chunk, tokenizer.padId);
    const scores = tf.tidy(() => model.score(tf.tensor2d(ids, [batchSize, length], 'int32'), lengths));
    out.push(...(await scores.data()));
    scores.dispose();
  }
  return out;
}

before(async () => {
  engine = createTrainingEngine(await selectBackend('wasm'));
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-reward-'));
  fixture = {
    dir,
    sftCheckpoint: '',
    preferenceFile: path.join(dir, 'preferences.jsonl'),
    noisyFile: path.join(dir, 'noisy.jsonl'),
    judgments: [],
  };

  // A short SFT: the reward model needs a trunk and a tokenizer, not a good language model.
  const sft = stageConfig<SftStageConfig>(sftStageSchema, {
    dataset: { source: 'demo', num_examples: 3000 },
    learning_rate: 0.005,
    max_steps: 40,
    warmup_steps: 10,
    eval_steps: 1000,
    save_steps: 1000,
  });
  const result = await runSftStage(sft, contextFor(newRun('sft'), []));
  fixture.sftCheckpoint = result.outputs.checkpoint as string;

  const demo = demoJudgments(500);
  const longPrompt: Judgment = {
    id: 'too-long',
    prompt: `review of ${'the very long film '.repeat(20)}:`,
    completions: [' it was great.', ' it was bad.'],
    ranking: [[0], [1]],
    annotator: 'oracle',
  };
  const trl = { prompt: 'review of the film:', chosen: ' i loved it.', rejected: ' it was dull.' };
  const lines = [
    ...demo.slice(0, 10).map((judgment) => JSON.stringify(judgment)),
    '{"prompt": "review of the film:", "completions": ["only one"], "ranking": [[0]]}', // line 11
    JSON.stringify(trl), // line 12
    '{"prompt": "review of', // line 13
    JSON.stringify(longPrompt), // line 14
    ...demo.slice(10).map((judgment) => JSON.stringify(judgment)),
  ];
  writeFileSync(fixture.preferenceFile, `${lines.join('\n')}\n`);
  const noisy = demo.map((judgment, i) =>
    i % 4 === 3 ? { ...judgment, ranking: [...judgment.ranking].reverse() } : judgment,
  );
  writeFileSync(fixture.noisyFile, `${noisy.map((judgment) => JSON.stringify(judgment)).join('\n')}\n`);
  const trlJudgment = parsePreferenceLine(JSON.stringify(trl), 12);
  assert.equal(trlJudgment.kind, 'judgment');
  fixture.judgments = [...demo.slice(0, 10), trlJudgment.judgment, ...demo.slice(10)];
});

test(
  'a reward model learns the oracle on held-out prompts, centers ' +
    'its rewards, and leaves a checkpoint, traces and metrics',
  async () => {
    const run = newRun('reward');
    const logs: string[] = [];
    const counts: number[] = [];
    const result = await runRewardStage(
      rewardStage(),
      contextFor(run, logs, { onStep: () => counts.push(tf.memory().numTensors) }),
    );
    const runJson = JSON.parse(readFileSync(path.join(run.dir, 'run.json'), 'utf8'));
    const summary = runJson.summary as Record<string, number>;
    const maxSteps = Math.ceil((3 * summary.train_judgments) / 8);
    assert.equal(result.status, 'completed');
    assert.equal(result.step, maxSteps);
    assert.equal(runJson.max_steps, maxSteps);
    assert.equal(summary.train_judgments + summary.eval_judgments, fixture.judgments.length);

    // Malformed lines are reported as file:line and the rest is kept; the over-long prompt is skipped by name.
    const warnings = logs.filter((line) => line.startsWith('warn: '));
    assert.ok(
      warnings.some((line) => line.startsWith(`warn: ${fixture.preferenceFile}:11: field "completions"`)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((line) => line.startsWith(`warn: ${fixture.preferenceFile}:13: not valid JSON`)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((line) => line.includes('"too-long"') && line.includes('no room for a completion')),
      warnings.join('\n'),
    );
    assert.equal(warnings.length, 3, warnings.join('\n'));

    // Learning: measured 0.91 held-out accuracy (labels = oracle order here) after 160 steps, 0.90–0.96 over
    // four seeds on the same kind of data; demand 0.85.
    const metrics = metricsOf(run.dir);
    assert.deepEqual(
      metrics.map((row) => row.step),
      Array.from({ length: maxSteps }, (_, i) => i + 1),
    );
    for (const key of ['time', 'loss/reward', 'rewards/accuracy', 'rewards/margin', 'lr', 'grad_norm', 'epoch'])
      assert.ok(Number.isFinite(metrics[0][key]), key);
    const evalSteps = [
      ...new Set([...Array.from({ length: Math.floor(maxSteps / 80) }, (_, i) => 80 * (i + 1)), maxSteps]),
    ];
    assert.deepEqual(
      metrics.filter((row) => 'eval/loss' in row).map((row) => row.step),
      evalSteps,
    );
    const last = metrics.at(-1) as Record<string, number>;
    assert.ok(last['eval/rewards/oracle_accuracy'] >= 0.85, `oracle accuracy ${last['eval/rewards/oracle_accuracy']}`);
    assert.ok(last['eval/rewards/accuracy'] >= 0.85, `accuracy ${last['eval/rewards/accuracy']}`);
    assert.ok(
      last['eval/loss'] < metrics[0]['loss/reward'] * 0.6,
      `eval loss ${last['eval/loss']} vs first train loss ${metrics[0]['loss/reward']}`,
    );
    assert.ok(last['eval/rewards/margin'] > 0.5);
    assert.equal(summary.eval_accuracy, last['eval/rewards/accuracy']);
    assert.equal(summary.eval_oracle_accuracy, last['eval/rewards/oracle_accuracy']);
    assert.ok(metrics[0].lr < metrics[9].lr && last.lr < 1e-4, 'warmup, then cosine to 0');

    // Traces: every eval, held-out pairs with scores and oracle scores.
    assert.deepEqual(
      readdirSync(path.join(run.dir, 'traces')).sort(),
      evalSteps.map((step) => `step-${step}.arrow`).sort(),
    );
    const trace = decodeTrace(new Uint8Array(readFileSync(path.join(run.dir, 'traces', `step-${maxSteps}.arrow`))));
    assert.equal(trace.kind, 'reward');
    const rows = trace.rows as RewardTraceRow[];
    assert.equal(rows.length, Math.min(256, summary.eval_pairs));
    for (const row of rows) {
      assert.equal(row.correct, row.margin > 0);
      // float32 in the file
      assert.equal(row.chosen_oracle_score, Math.fround(sentimentScore(row.prompt + row.chosen)));
    }
    if (rows.length === summary.eval_pairs)
      assert.ok(Math.abs(rows.filter((row) => row.correct).length / rows.length - summary.eval_accuracy) < 1e-9);

    // The checkpoint has the score head and scores exactly as the trainer did.
    const checkpoint = result.outputs.checkpoint as string;
    assert.equal(checkpoint, path.join(run.dir, 'checkpoints', `step-${maxSteps}`));
    const savedConfig = JSON.parse(readFileSync(path.join(checkpoint, 'config.json'), 'utf8'));
    assert.deepEqual(savedConfig.rlhf_lens.heads, ['score']);
    assert.deepEqual(savedConfig.architectures, ['GPT2ForSequenceClassification']);
    assert.equal(JSON.parse(readFileSync(path.join(checkpoint, 'trainer_state.json'), 'utf8')).global_step, maxSteps);
    const { model, checkpoint: contents } = await loadModel(checkpoint, ['score'], 0);
    try {
      const tokenizer = contents.tokenizer;
      const chosen = await scoreTexts(
        model,
        tokenizer,
        rows.map((row) => ({ prompt: row.prompt, completion: row.chosen })),
      );
      const rejected = await scoreTexts(
        model,
        tokenizer,
        rows.map((row) => ({ prompt: row.prompt, completion: row.rejected })),
      );
      rows.forEach((row, i) => {
        assert.ok(
          Math.abs(chosen[i] - row.chosen_score) <= 1e-5 * Math.max(1, Math.abs(row.chosen_score)),
          `row ${i}: ${chosen[i]} vs ${row.chosen_score}`,
        );
        assert.ok(
          Math.abs(rejected[i] - row.rejected_score) <= 1e-5 * Math.max(1, Math.abs(row.rejected_score)),
          `row ${i}: ${rejected[i]} vs ${row.rejected_score}`,
        );
      });

      // Centering: the mean reward over the training judgments' completions is 0 (recomputed here, independently).
      assert.ok(Math.abs(summary.reward_mean_shift) > 1e-3, `shift ${summary.reward_mean_shift}`);
      assert.ok(Math.abs(summary.reward_mean_after_centering) <= 1e-3);
      const train = splitExamples(fixture.judgments, 0.15, seed).train;
      assert.equal(train.length, summary.train_judgments);
      const trainScores = await scoreTexts(
        model,
        tokenizer,
        train.flatMap((judgment) =>
          judgment.completions.map((completion) => ({ prompt: judgment.prompt, completion })),
        ),
      );
      const mean = trainScores.reduce((a, b) => a + b, 0) / trainScores.length;
      assert.ok(Math.abs(mean) <= 1e-3, `mean training reward after centering ${mean}`);
    } finally {
      model.dispose();
    }

    // No tensor leaks: the count is the same after every warmed-up step, eval, trace and centering included.
    assert.equal(counts.length, maxSteps);
    assert.deepEqual(new Set(counts.slice(2)), new Set([counts[2]]), `tensor counts drifted: ${counts.join(',')}`);
  },
);

test(
  "score_pooling 'sum' is saved in the checkpoint, the loaded model " +
    'scores as the trainer did, and centering still zeroes the mean reward',
  async () => {
    const run = newRun('reward-sum');
    const result = await runRewardStage(
      rewardStage({ score_pooling: 'sum', num_train_epochs: 1, eval_steps: 1000, save_steps: 1000 }),
      contextFor(run, []),
    );
    assert.equal(result.status, 'completed');
    const checkpoint = result.outputs.checkpoint as string;
    assert.equal(JSON.parse(readFileSync(path.join(checkpoint, 'config.json'), 'utf8')).rlhf_lens.score_pooling, 'sum');
    const summary = JSON.parse(readFileSync(path.join(run.dir, 'run.json'), 'utf8')).summary as Record<string, number>;
    const steps = readdirSync(path.join(run.dir, 'traces'));
    const rows = decodeTrace(new Uint8Array(readFileSync(path.join(run.dir, 'traces', steps[0]))))
      .rows as RewardTraceRow[];
    const { model, checkpoint: contents } = await loadModel(checkpoint, ['score'], 0);
    try {
      assert.equal(model.config.score_pooling, 'sum');
      const chosen = await scoreTexts(
        model,
        contents.tokenizer,
        rows.map((row) => ({ prompt: row.prompt, completion: row.chosen })),
      );
      rows.forEach((row, i) =>
        assert.ok(
          Math.abs(chosen[i] - row.chosen_score) <= 1e-5 * Math.max(1, Math.abs(row.chosen_score)),
          `row ${i}: ${chosen[i]} vs ${row.chosen_score}`,
        ),
      );
      const train = splitExamples(fixture.judgments, 0.15, seed).train;
      const trainScores = await scoreTexts(
        model,
        contents.tokenizer,
        train.flatMap((judgment) =>
          judgment.completions.map((completion) => ({ prompt: judgment.prompt, completion })),
        ),
      );
      assert.ok(Math.abs(trainScores.reduce((a, b) => a + b, 0) / trainScores.length) <= 1e-3);
      assert.ok(Math.abs(summary.reward_mean_after_centering) <= 1e-3);
    } finally {
      model.dispose();
    }
  },
);

test(
  'a run stopped after k steps and resumed equals an uninterrupted run; ' +
    'oracle accuracy is measured against the oracle, not the noisy labels',
  async () => {
    const stage = rewardStage({
      preferences: fixture.noisyFile,
      num_train_epochs: 0.2,
      eval_steps: 4,
      save_steps: 100,
      center_rewards: false,
    }); // 11 steps
    const whole = newRun('reward-whole');
    const uninterrupted = await runRewardStage(stage, contextFor(whole, []));
    assert.equal(uninterrupted.status, 'completed');

    const parts = newRun('reward-parts');
    let steps = 0;
    const first = await runRewardStage(
      stage,
      contextFor(parts, [], { onStep: () => steps++, shouldStop: () => steps >= 5 }),
    );
    assert.equal(first.status, 'stopped');
    assert.equal(first.step, 5);
    assert.deepEqual(readdirSync(path.join(parts.dir, 'checkpoints')), ['step-5']);
    const logs: string[] = [];
    const second = await runRewardStage(stage, contextFor(parts, logs, { resume: true }));
    assert.equal(second.status, 'completed');
    assert.ok(logs.some((line) => line.includes('resuming from')));

    const skip = new Set(['time', 'pairs_per_s']);
    const expected = metricsOf(whole.dir);
    const resumed = metricsOf(parts.dir);
    assert.equal(resumed.length, expected.length);
    resumed.forEach((row, i) => {
      assert.deepEqual(Object.keys(row).sort(), Object.keys(expected[i]).sort());
      for (const key of Object.keys(row)) {
        if (skip.has(key)) continue;
        assert.ok(
          Math.abs(row[key] - expected[i][key]) <= 1e-5 * Math.max(1, Math.abs(expected[i][key])),
          `step ${row.step} ${key}: ${row[key]} vs ${expected[i][key]}`,
        );
      }
    });

    // With a quarter of the labels reversed, accuracy against the labels and against the oracle part ways
    // (the model is barely trained after 11 steps; what matters is that each is computed against its own truth).
    const last = resumed.at(-1) as Record<string, number>;
    const rows = decodeTrace(new Uint8Array(readFileSync(path.join(parts.dir, 'traces', `step-${second.step}.arrow`))))
      .rows as RewardTraceRow[];
    assert.ok(rows.length < 256, 'every held-out pair is in the trace');
    const byLabel = rows.filter((row) => row.margin > 0).length / rows.length;
    const ordered = rows.filter((row) => row.chosen_oracle_score !== row.rejected_oracle_score);
    const byOracle =
      ordered.filter(
        (row) =>
          Math.sign(row.margin) ===
          Math.sign((row.chosen_oracle_score as number) - (row.rejected_oracle_score as number)),
      ).length / ordered.length;
    assert.ok(
      Math.abs(last['eval/rewards/accuracy'] - byLabel) < 1e-9,
      `${last['eval/rewards/accuracy']} vs ${byLabel}`,
    );
    assert.ok(
      Math.abs(last['eval/rewards/oracle_accuracy'] - byOracle) < 1e-9,
      `${last['eval/rewards/oracle_accuracy']} vs ${byOracle}`,
    );
    assert.notEqual(byLabel, byOracle, 'the two accuracies coincide, so this data cannot tell them apart');
  },
);

test(
  'Ctrl+C reaches a reward stage between steps from the command ' +
    'line: it stops with a checkpoint, long before its last step',
  async () => {
    const trainer = path.join(__dirname, '..', '..', 'dist', 'trainer.js');
    assert.ok(existsSync(trainer), 'run npm run build first');
    const configFile = path.join(fixture.dir, 'interrupted.rlhf.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        name: 'interrupted',
        seed,
        backend: 'wasm',
        stages: [
          {
            type: 'reward',
            init_from: fixture.sftCheckpoint,
            preferences: fixture.preferenceFile,
            num_train_epochs: 20,
            eval_steps: 1000,
            save_steps: 1000,
          },
        ],
      }),
    );
    const runsRoot = path.join(fixture.dir, 'interrupted-runs');
    const child = spawn(process.execPath, [trainer, 'train', configFile, '--runs-dir', runsRoot], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const metricsLines = () => {
      const run = existsSync(runsRoot) ? readdirSync(runsRoot)[0] : undefined;
      const file = run ? path.join(runsRoot, run, 'metrics.jsonl') : '';
      return file && existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
    };
    const deadline = Date.now() + 60_000;
    while (metricsLines() < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 0, stderr.slice(-2000));
    const runDir = path.join(runsRoot, readdirSync(runsRoot)[0]);
    const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    assert.equal(runJson.status, 'stopped', stderr.slice(-2000));
    const stoppedAt = metricsOf(runDir).length;
    assert.ok(stoppedAt < runJson.max_steps / 4, `stopped at step ${stoppedAt} of ${runJson.max_steps}`);
    assert.ok(existsSync(path.join(runDir, 'checkpoints', `step-${stoppedAt}`)), `a checkpoint at step ${stoppedAt}`);
  },
);

test('a preference file without a usable pair fails, saying what a line needs', async () => {
  const file = path.join(fixture.dir, 'no-pairs.jsonl');
  writeFileSync(
    file,
    ['{"prompt": "x", "completions": ["a", "b"], "ranking": [[0, 1]]}', '{"prompt": "y"}', 'not json'].join('\n'),
  );
  const logs: string[] = [];
  await assert.rejects(
    runRewardStage(rewardStage({ preferences: file }), contextFor(newRun('reward-empty'), logs)),
    /no preference pairs to train on .*"chosen", "rejected"/,
  );
  assert.ok(logs.some((line) => line.startsWith(`warn: ${file}:2: `)));
  assert.ok(logs.some((line) => line.startsWith(`warn: ${file}:3: `)));
});
