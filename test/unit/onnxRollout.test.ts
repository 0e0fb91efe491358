/**
 * The ONNX rollout engine against the tfjs one it replaces: the KV-cache sampler draws the same tokens
 * with the same log-probabilities (left-padded prompts, top-k, top-p, EOS), the rollout's
 * log-probabilities, reference log-probabilities, values, entropies and scores agree to 1e-4, both
 * weight-sync modes follow a tfjs update, and a PPO stage with `rollout_engine: "onnx"` trains and
 * writes traces whose first-epoch ratios are 1 (the ONNX log-probs are the ones tfjs trains on).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { decodeTrace } from '../../src/shared/traceFormat';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { OnnxCausalLm } from '../../src/trainer/onnx/onnxCausalLm';
import { OnnxRolloutEngine } from '../../src/trainer/onnx/onnxRolloutEngine';
import { generateOnnx } from '../../src/trainer/onnx/onnxSampler';
import { runPipeline } from '../../src/trainer/pipeline';
import { TfjsModel } from '../../src/trainer/engine/tfjs/tfjsEngine';
import { collectRollout } from '../../src/trainer/rollout/engineRollout';
import { generate, type SamplingOptions } from '../../src/trainer/sampling/sampler';
import { checkpointWithHeads, tinySft, workDir } from './onnxFixtures';
import { loadModel } from '../../src/trainer/checkpoint/loadGpt';

const tolerance = 1e-4;
const models: Gpt[] = [];

before(async () => {
  await selectBackend('wasm');
});
after(() => models.forEach((model) => model.dispose()));

const maxRowDiff = (a: number[][], b: number[][]) => {
  assert.deepEqual(
    a.map((row) => row.length),
    b.map((row) => row.length),
    'row lengths',
  );
  return Math.max(0, ...a.flatMap((row, i) => row.map((value, t) => Math.abs(value - b[i][t]))));
};

async function threeModels(): Promise<{
  policy: Gpt;
  reference: Gpt;
  reward: Gpt;
  eosId: number;
  padId: number;
  prompts: number[][];
}> {
  const sft = await tinySft();
  const { model: policy, checkpoint } = await loadModel(sft, ['v_head'], 3);
  const { model: reference } = await loadModel(sft, [], 3);
  const { model: reward } = await checkpointWithHeads('rollout-reward', ['score']);
  models.push(policy, reference, reward);
  const tokenizer = checkpoint.tokenizer;
  const prompts = ['The film', 'I was bored by the', 'A', 'Great cast and a story that'].map((text) =>
    tokenizer.encode(text, { bos: true }),
  );
  return { policy, reference, reward, eosId: tokenizer.eosId, padId: tokenizer.padId, prompts };
}

test(
  'the ONNX sampler, with and without a KV cache, ' +
    "draws the tfjs sampler's tokens and log-probabilities for the same seed",
  async () => {
    const { policy, eosId, padId, prompts } = await threeModels();
    const lm = await OnnxCausalLm.fromGpt(policy.config, policy.heads, await policy.readWeights(), { kvCache: true });
    // A graph without past_key_values (as some users' exports are) reruns the whole sequence per token.
    const withoutCache = await OnnxCausalLm.fromGpt(policy.config, policy.heads, await policy.readWeights(), {
      kvCache: false,
    });
    try {
      for (const warp of [
        { temperature: 1, topK: 0, topP: 1 },
        { temperature: 0.7, topK: 20, topP: 0.9 },
        { temperature: 0, topK: 0, topP: 1 },
      ]) {
        const options: SamplingOptions = {
          ...warp,
          maxNewTokens: 16,
          seed: 11,
          eosTokenId: eosId,
          padTokenId: padId,
        };
        const expected = await generate(policy, prompts, options);
        const actual = await generateOnnx(lm, prompts, options);
        assert.deepEqual(
          actual.map((s) => s.tokens),
          expected.map((s) => s.tokens),
          `tokens at ${JSON.stringify(warp)}`,
        );
        assert.deepEqual(
          actual.map((s) => s.finishedByEos),
          expected.map((s) => s.finishedByEos),
        );
        const diff = maxRowDiff(
          actual.map((s) => s.logprobs),
          expected.map((s) => s.logprobs),
        );
        assert.ok(diff <= tolerance, `sampling log-probs differ by ${diff}`);
        const rerun = await generateOnnx(withoutCache, prompts, options);
        assert.deepEqual(
          rerun.map((s) => s.tokens),
          expected.map((s) => s.tokens),
          `tokens without a KV cache at ${JSON.stringify(warp)}`,
        );
      }
    } finally {
      await Promise.all([lm.release(), withoutCache.release()]);
    }
  },
);

test(
  "an ONNX rollout's log-probs, reference log-probs, values, entropies and scores " + 'agree with tfjs to 1e-4',
  async () => {
    const { policy, reference, reward, eosId, padId, prompts } = await threeModels();
    const sampling: SamplingOptions = {
      temperature: 0.9,
      topK: 0,
      topP: 1,
      maxNewTokens: 14,
      seed: 5,
      eosTokenId: eosId,
      padTokenId: padId,
    };
    const engine = await OnnxRolloutEngine.create({ policy, reference, reward });
    try {
      const onnx = await engine.collect(prompts, sampling, eosId);
      const seam = (gpt: typeof policy) => new TfjsModel(gpt, generate);
      const models = { policy: seam(policy), reference: seam(reference), reward: seam(reward) };
      const tfjs = await collectRollout(models, prompts, sampling, eosId);
      assert.deepEqual(onnx.items, tfjs.items, 'the same samples');
      for (const key of ['logprobs', 'refLogprobs', 'values', 'entropy'] as const) {
        const diff = maxRowDiff(onnx[key], tfjs[key]);
        assert.ok(diff <= tolerance, `${key} differ by ${diff}`);
      }
      const scoreDiff = Math.max(...onnx.rawScores.map((score, i) => Math.abs(score - tfjs.rawScores[i])));
      assert.ok(scoreDiff <= tolerance, `scores differ by ${scoreDiff}`);
      assert.deepEqual(onnx.endedWithEos, tfjs.endedWithEos);
      assert.ok(onnx.timings.generate > 0 && onnx.timings.score > 0);
    } finally {
      await engine.release();
    }
  },
);

test('both weight-sync modes follow an update of the tfjs weights', async () => {
  const { policy, prompts } = await threeModels();
  const ids = prompts[1];
  const logitsOf = async () => {
    const t = tf.tidy(() => policy.forward(tf.tensor2d([ids], undefined, 'int32')).logits);
    const data = (await t.data()) as Float32Array;
    t.dispose();
    return data;
  };
  const before = await logitsOf();
  const sessions = await Promise.all(
    (['reexport', 'inputs'] as const).map(async (mode) =>
      OnnxCausalLm.fromGpt(policy.config, policy.heads, await policy.readWeights(), {
        kvCache: true,
        weightSync: mode,
      }),
    ),
  );
  try {
    // An "update": every weight nudged, as an optimizer step would.
    const weights = await policy.readWeights();
    for (const { data } of weights.values()) data.forEach((value, i) => (data[i] = value + 0.01 * Math.sin(i)));
    policy.assign(weights);
    const after = await logitsOf();
    const moved = Math.max(...after.map((value, i) => Math.abs(value - before[i])));
    assert.ok(moved > 1e-2, `the update moves the logits (by ${moved})`);
    for (const session of sessions) {
      await session.updateWeights(await policy.readWeights());
      const out = await session.forward({ batch: 1, length: ids.length, ids });
      const diff = Math.max(...out.logits.map((value, i) => Math.abs(value - after[i])));
      assert.ok(diff <= tolerance, `synced logits differ from tfjs by ${diff}`);
    }
  } finally {
    await Promise.all(sessions.map((session) => session.release()));
  }
});

test('a PPO stage with rollout_engine "onnx" trains, writes traces, and its first-epoch ratios are 1', async () => {
  const sft = await tinySft();
  const { dir: rewardDir } = await checkpointWithHeads('ppo-reward', ['score']);
  const configFile = path.join(workDir, 'onnx-ppo.rlhf.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      name: 'onnx-ppo',
      seed: 4,
      backend: 'wasm',
      stages: [
        {
          type: 'ppo',
          rollout_engine: 'onnx',
          policy: sft,
          reward_model: rewardDir,
          prompts: { source: 'demo' },
          total_episodes: 24,
          batch_size: 8,
          num_mini_batches: 1,
          num_ppo_epochs: 2,
          max_new_tokens: 12,
          eval_steps: 3,
          num_eval_prompts: 8,
          save_steps: 3,
        },
      ],
    }),
  );
  const { runs } = await runPipeline({ configFile, runsRoot: path.join(workDir, 'runs') }, { log: () => undefined });
  const runDir = runs[0].runDir;
  const metrics = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
  assert.deepEqual(
    metrics.map((row) => row.step),
    [0, 1, 2, 3],
  );
  for (const row of metrics.slice(1)) {
    for (const key of ['objective/kl', 'objective/scores', 'loss/policy_avg', 'time/rollout', 'time/weight_sync'])
      assert.ok(Number.isFinite(row[key]), `${key} at step ${row.step}`);
  }
  assert.ok(metrics[3]['objective/kl'] !== 0, 'the policy moved away from the reference');
  for (const step of [1, 2, 3]) {
    const trace = decodeTrace(new Uint8Array(readFileSync(path.join(runDir, 'traces', `step-${step}.arrow`))));
    assert.equal(trace.kind, 'ppo');
    if (trace.kind !== 'ppo') continue;
    assert.equal(trace.rows.length, 8);
    for (const row of trace.rows) {
      // One minibatch: the first epoch's update sees exactly the rollout policy,
      // so π/π_old is 1 up to the engines' float differences.
      for (const ratio of row.ratio[0])
        assert.ok(Math.abs(ratio - 1) < 1e-3, `step ${step} first-epoch ratio ${ratio}`);
      assert.equal(row.value.length, row.tokens.length);
    }
  }
});
