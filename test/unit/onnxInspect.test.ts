/**
 * The inspection-only run (`rlhf-lens inspect`) over ONNX folders the project exports itself: a
 * nudged policy with a value head, the SFT model as reference, a reward model. The run folder reads
 * like a PPO run: run.json, TRL metrics, and per-step traces in the PPO schema whose KL is the policy
 * and reference log-probabilities' difference and whose last-token reward holds the score.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { parseRunJson } from '../../src/shared/runSummary';
import { decodeTrace } from '../../src/shared/traceFormat';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { exportCheckpoint } from '../../src/trainer/onnx/exportModel';
import { runInspection } from '../../src/trainer/onnx/inspectRun';
import { checkpointWithHeads, tinySft, workDir } from './onnxFixtures';

let folders: { policy: string; reference: string; reward: string };

before(async () => {
  await selectBackend('wasm');
  const policy = await checkpointWithHeads('inspect-policy', ['v_head'], undefined, 0.02);
  const reward = await checkpointWithHeads('inspect-reward', ['score']);
  policy.model.dispose();
  reward.model.dispose();
  folders = {
    policy: (await exportCheckpoint(policy.dir, path.join(workDir, 'inspect', 'policy'))).outDir,
    reference: (await exportCheckpoint(await tinySft(), path.join(workDir, 'inspect', 'reference'))).outDir,
    reward: (await exportCheckpoint(reward.dir, path.join(workDir, 'inspect', 'reward'))).outDir,
  };
});

test(
  'an inspection run writes PPO-schema traces with per-token ' +
    "KL between policy and reference and the reward model's score",
  async () => {
    const runsRoot = path.join(workDir, 'inspect-runs');
    const { runDir } = await runInspection({
      ...folders,
      name: 'inspect',
      runsRoot,
      steps: 2,
      batchSize: 4,
      klCoef: 0.1,
      klEstimator: 'k1',
      sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 10 },
      seed: 3,
    });
    const runJsonText = readFileSync(path.join(runDir, 'run.json'), 'utf8');
    const parsed = parseRunJson(runJsonText, path.basename(runDir));
    assert.ok(parsed.ok && parsed.run.status === 'completed' && parsed.run.backend === 'onnxruntime-node', runJsonText);
    assert.equal((JSON.parse(runJsonText) as { stage: string }).stage, 'inspect');
    const metrics = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, number>);
    assert.deepEqual(
      metrics.map((row) => row.step),
      [1, 2],
    );
    for (const step of [1, 2]) {
      const trace = decodeTrace(new Uint8Array(readFileSync(path.join(runDir, 'traces', `step-${step}.arrow`))));
      assert.equal(trace.kind, 'ppo');
      if (trace.kind !== 'ppo') continue;
      assert.equal(trace.rows.length, 4);
      let klTotal = 0;
      for (const row of trace.rows) {
        const n = row.tokens.length;
        for (const column of [
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
        row.kl.forEach((kl, t) =>
          assert.ok(Math.abs(kl - (row.logprob[t] - row.ref_logprob[t])) < 1e-5, 'k1 KL = log π − log π_ref'),
        );
        assert.ok(
          Math.abs(row.reward[n - 1] - (-0.1 * row.kl[n - 1] + row.score)) < 1e-5,
          'the score is added at the last token',
        );
        assert.ok(
          row.value.some((value) => value !== 0),
          "the policy's value head fills the value column",
        );
        assert.equal(typeof row.oracle_score, 'number');
        klTotal += row.kl.reduce((a, b) => a + Math.abs(b), 0);
      }
      assert.ok(klTotal > 0, 'a nudged policy differs from its reference');
      const scores = trace.rows.map((row) => row.score);
      assert.ok(Math.max(...scores) - Math.min(...scores) > 1e-4, 'the reward model scores completions differently');
      assert.ok(
        Math.abs(metrics[step - 1]['objective/scores'] - scores.reduce((a, b) => a + b, 0) / scores.length) < 1e-5,
      );
    }
  },
);

test('rlhf-lens inspect runs from the command line and rejects a reference with another tokenizer', async () => {
  const runsRoot = path.join(workDir, 'inspect-cli-runs');
  const prompts = path.join(workDir, 'inspect-prompts.jsonl');
  writeFileSync(prompts, '{"prompt": "The plot"}\n{"prompt": "I did not expect"}\n');
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/trainer/main.ts', 'inspect', ...args], {
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '../..'),
    });
  // A --name that is a path still gives a run folder inside the runs folder (runIds.ts).
  const ok = cli([
    '--policy',
    folders.policy,
    '--reference',
    folders.reference,
    '--prompts',
    prompts,
    '--batch-size',
    '2',
    '--max-new-tokens',
    '6',
    '--runs-dir',
    runsRoot,
    '--name',
    '../../escape',
  ]);
  assert.equal(ok.status, 0, ok.stderr);
  const runDir = ok.stdout.trim();
  assert.equal(path.dirname(runDir), runsRoot);
  assert.match(path.basename(runDir), /^escape-inspect-\d{8}-\d{6}$/);
  assert.deepEqual(
    readdirSync(path.dirname(runsRoot)).filter((name) => name.includes('escape')),
    [],
    'nothing beside the runs folder',
  );
  const trace = decodeTrace(new Uint8Array(readFileSync(path.join(runDir, 'traces', 'step-1.arrow'))));
  assert.equal(trace.kind, 'ppo');
  if (trace.kind === 'ppo') {
    assert.deepEqual(
      trace.rows.map((row) => row.prompt),
      ['The plot', 'I did not expect'],
    );
    assert.ok(
      trace.rows.every((row) => row.score === 0 && row.oracle_score === null),
      'no reward model, no oracle for user prompts',
    );
  }

  // A reference whose tokenizer.json differs.
  const otherReference = path.join(workDir, 'inspect', 'other-reference');
  spawnSync('cp', ['-r', folders.reference, otherReference]);
  const tokenizerFile = path.join(otherReference, 'tokenizer.json');
  const json = JSON.parse(readFileSync(tokenizerFile, 'utf8')) as { model: { merges: unknown[] } };
  json.model.merges = json.model.merges.slice(0, -1);
  writeFileSync(tokenizerFile, JSON.stringify(json));
  const bad = cli(['--policy', folders.policy, '--reference', otherReference, '--runs-dir', runsRoot]);
  assert.equal(bad.status, 1);
  assert.match(
    bad.stderr,
    new RegExp(
      /other-reference\/tokenizer\.json differs from .*policy\/tokenizer\.json: /.source +
        /per-token KL needs the policy and the reference to share a tokenizer/.source,
    ),
  );
  const usage = cli(['--policy', folders.policy]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /Usage: rlhf-lens inspect --policy/);
});
