// The demo's closing evaluation through the engine seam, on a tiny SFT model trained by the pipeline
// (wasm): a policy against itself has exactly zero KL, the oracle is the Task passed in and scores
// every held-out prompt once (across generation chunks), and the numbers are a pure function of the seed.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { mean } from '../../src/core';
import { heldOutPrompts } from '../../src/trainer/data/reviews';
import { evaluatePolicy, type Evaluator } from '../../src/trainer/demo/evaluatePolicies';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { createTrainingEngine } from '../../src/trainer/engineFactory';
import { sentimentTask } from '../../src/trainer/tasks/sentimentTask';
import type { Task } from '../../src/trainer/tasks/task';
import { checkpointWithHeads, tinySft } from './onnxFixtures';

/** More than one generation chunk (64 prompts), so the chunked seeds and the concatenation are exercised. */
const settings = { prompts: 70, maxNewTokens: 6, seed: 2024 };

/** The demo's oracle, recording every text it scores. */
function recordingTask(): Task & { readonly texts: string[]; readonly scores: number[] } {
  const texts: string[] = [];
  const scores: number[] = [];
  return {
    name: 'recording sentiment',
    texts,
    scores,
    score(text) {
      const value = sentimentTask.score(text);
      texts.push(text);
      scores.push(value);
      return value;
    },
  };
}

let evaluatorWith: (task: Task) => Evaluator;
before(async () => {
  const engine = createTrainingEngine(await selectBackend('wasm'));
  evaluatorWith = (task) => ({ engine, task });
});

test('a policy against itself: zero KL, every prompt scored once by the task, the same numbers again', async () => {
  const sft = await tinySft();
  const task = recordingTask();
  const evaluation = await evaluatePolicy(evaluatorWith(task), sft, sft, settings);
  assert.equal(evaluation.kl, 0);
  assert.equal(evaluation.klStderr, 0);
  const prompts = heldOutPrompts(settings.prompts);
  assert.equal(task.texts.length, prompts.length);
  task.texts.forEach((text, i) => assert.ok(text.startsWith(prompts[i]), `text ${i} continues its prompt`));
  assert.equal(evaluation.oracleScore, mean(task.scores));
  assert.ok(evaluation.oracleStderr > 0 && Number.isFinite(evaluation.oracleStderr));
  assert.ok(evaluation.responseLength > 0 && evaluation.responseLength <= settings.maxNewTokens);

  const again = await evaluatePolicy(evaluatorWith(recordingTask()), sft, sft, settings);
  assert.deepEqual(again, evaluation);
});

test('a moved policy has a KL to the reference that is finite and not zero', async () => {
  const sft = await tinySft();
  const { dir, model } = await checkpointWithHeads('nudged', [], undefined, 0.02);
  model.dispose();
  const evaluation = await evaluatePolicy(evaluatorWith(recordingTask()), dir, sft, settings);
  assert.ok(Number.isFinite(evaluation.kl) && evaluation.kl !== 0, `KL ${evaluation.kl}`);
  assert.ok(evaluation.klStderr > 0, `KL stderr ${evaluation.klStderr}`);
});
