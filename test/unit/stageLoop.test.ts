// The one stage loop (src/trainer/loop/stageLoop.ts) with a plain counting algorithm on a real run
// directory: cadences of metrics, evals and checkpoints; a stop request; a NaN; a resume.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { TrainingEngine } from '../../src/trainer/engine/engine';
import { runStageLoop, type StageAlgorithm } from '../../src/trainer/loop/stageLoop';
import { RunDirectory } from '../../src/trainer/run/runDirectory';
import { NonFiniteError, type StageContext } from '../../src/trainer/stageContext';
import { sentimentTask } from '../../src/trainer/tasks/sentimentTask';

function newRun(): RunDirectory {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-loop-'));
  return RunDirectory.create(dir, {
    id: 'loop',
    name: 'loop',
    stage: 'loop',
    stage_index: 0,
    seed: 1,
    config: {},
    versions: {},
  });
}

function contextFor(run: RunDirectory, extra: Partial<StageContext> = {}): StageContext {
  return {
    run,
    configDir: run.dir,
    seed: 1,
    model: { n_layer: 1, n_head: 1, n_embd: 4, block_size: 4, dropout: 0 },
    vocabSize: 8,
    // The loop never touches the engine: the algorithm does.
    engine: {} as TrainingEngine,
    createRolloutEngine: () => Promise.reject(new Error('no rollouts here')),
    task: sentimentTask,
    log: () => undefined,
    resolve: (reference) => reference,
    ...extra,
  };
}

/** An algorithm whose step s has loss s + 1 (or `lossAt(step)`), recording what the loop asked of it. */
function counting(overrides: Partial<StageAlgorithm> & { lossAt?: (step: number) => number } = {}) {
  const calls = { steps: [] as number[], evals: [] as number[], checkpoints: [] as number[], lastStep: 0 };
  const algorithm: StageAlgorithm = {
    startStep: 0,
    maxSteps: 7,
    loggingSteps: 2,
    evalSteps: 3,
    saveSteps: 4,
    step: async (step) => {
      calls.steps.push(step);
      const loss = overrides.lossAt?.(step) ?? step + 1;
      return { metrics: { loss }, checked: { loss } };
    },
    afterLastStep: async () => {
      calls.lastStep++;
    },
    evaluate: async (done) => {
      calls.evals.push(done);
      return { 'eval/loss': done / 10 };
    },
    checkpoint: async (step) => {
      calls.checkpoints.push(step);
      return `checkpoint-${step}`;
    },
    ...overrides,
  };
  return { algorithm, calls };
}

const metricsOf = (run: RunDirectory) =>
  readFileSync(run.metricsFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);

test(
  'the loop logs, evaluates and checkpoints at its ' + 'cadences (logging, eval, save steps) and at the end',
  async () => {
    const run = newRun();
    const { algorithm, calls } = counting();
    const seen: number[] = [];
    const result = await runStageLoop(algorithm, contextFor(run, { onStep: (metrics) => seen.push(metrics.step) }));
    assert.deepEqual(calls.steps, [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(calls.evals, [3, 6, 7]);
    assert.deepEqual(calls.checkpoints, [4, 7]);
    assert.equal(calls.lastStep, 1);
    const logged = metricsOf(run);
    // steps 2, 4, 6 (logging_steps), 3 (an eval) and 7 (the last)
    assert.deepEqual(
      logged.map((metrics) => metrics.step),
      [2, 3, 4, 6, 7],
    );
    assert.deepEqual(seen, [2, 3, 4, 6, 7]);
    assert.deepEqual(Object.keys(logged[1]), ['step', 'time', 'loss', 'eval/loss']);
    assert.equal(logged[1].loss, 3);
    assert.equal(result.status, 'completed');
    assert.equal(result.step, 7);
    assert.equal(result.outputs.checkpoint, 'checkpoint-7');
    assert.equal(result.lastMetrics.loss, 7);
  },
);

test('a stop request checkpoints the steps taken and returns stopped', async () => {
  const run = newRun();
  const { algorithm, calls } = counting();
  let polls = 0;
  const result = await runStageLoop(algorithm, contextFor(run, { shouldStop: () => ++polls > 5 }));
  assert.deepEqual(calls.steps, [0, 1, 2, 3, 4]);
  assert.deepEqual(calls.checkpoints, [4, 5]);
  assert.equal(result.status, 'stopped');
  assert.equal(result.step, 5);
  assert.equal(result.outputs.checkpoint, 'checkpoint-5');
});

test('a NaN stops the run with NonFiniteError naming the quantity and the step, before its metrics', async () => {
  const run = newRun();
  const { algorithm, calls } = counting({ lossAt: (step) => (step === 4 ? NaN : step + 1) });
  await assert.rejects(runStageLoop(algorithm, contextFor(run)), (error: unknown) => {
    assert.ok(error instanceof NonFiniteError);
    assert.equal(error.quantity, 'loss');
    assert.equal(error.step, 5);
    return true;
  });
  assert.deepEqual(calls.checkpoints, [4]);
  assert.deepEqual(
    metricsOf(run).map((metrics) => metrics.step),
    [2, 3, 4],
  );
});

test('a resumed loop starts at its checkpoint step and cuts the metrics written after it', async () => {
  const run = newRun();
  for (let step = 1; step <= 6; step++) run.appendMetrics({ step, loss: step });
  const { algorithm, calls } = counting({ startStep: 4, loggingSteps: 1 });
  const result = await runStageLoop(algorithm, contextFor(run, { resume: true }));
  assert.deepEqual(calls.steps, [4, 5, 6]);
  assert.deepEqual(
    metricsOf(run).map((metrics) => metrics.step),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(result.status, 'completed');
  assert.equal(result.outputs.checkpoint, 'checkpoint-7');
});

test('a fresh stage with a baseline writes the starting model as step 0; a resumed one does not', async () => {
  const run = newRun();
  const { algorithm } = counting({ maxSteps: 1, baseline: async () => ({ 'eval/loss': 9 }) });
  await runStageLoop(algorithm, contextFor(run));
  assert.deepEqual(metricsOf(run)[0].step, 0);
  assert.deepEqual(metricsOf(run)[0]['eval/loss'], 9);
  const resumed = newRun();
  resumed.appendMetrics({ step: 1, loss: 1 });
  await runStageLoop({ ...algorithm, startStep: 1, maxSteps: 2 }, contextFor(resumed, { resume: true }));
  assert.deepEqual(
    metricsOf(resumed).map((metrics) => metrics.step),
    [1, 2],
  );
});

test('a stage without checkpoints leaves its named outputs, and logs its own stop message', async () => {
  const run = newRun();
  const { algorithm, calls } = counting();
  const logs: string[] = [];
  const outputOnly: StageAlgorithm = {
    ...algorithm,
    checkpoint: undefined,
    saveSteps: undefined,
    outputs: { preferences: 'judgments.jsonl' },
    stopMessage: (step) => `stopped after ${step} batches`,
  };
  const completed = await runStageLoop(outputOnly, contextFor(run));
  assert.deepEqual(completed.outputs, { preferences: 'judgments.jsonl' });
  let polls = 0;
  const stopped = await runStageLoop(
    outputOnly,
    contextFor(newRun(), { shouldStop: () => ++polls > 2, log: (_, message) => logs.push(message) }),
  );
  assert.equal(stopped.status, 'stopped');
  assert.equal(stopped.step, 2);
  assert.deepEqual(stopped.outputs, { preferences: 'judgments.jsonl' });
  assert.deepEqual(logs, ['stopped after 2 batches']);
  assert.deepEqual(calls.checkpoints, []);
});
