// Completions to rank sampled now from a checkpoint, through the real path: the host's
// CheckpointSampler asks a forked trainer (dist/trainer.js; run `npm run build` first) over IPC and
// the trainer keeps the model loaded. Then a dataset made through the Rank session from those samples
// trains a reward model with the trainer's reward stage, read as it is (no conversion).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Random } from '../../src/core';
import { CheckpointSampler } from '../../src/host/checkpointSampler';
import { PreferenceStore } from '../../src/host/preferenceStore';
import { RankSession } from '../../src/host/rankSession';
import { openRankSource } from '../../src/host/rankSources';
import { TrainerSupervisor } from '../../src/host/trainerSupervisor';
import { generateReviews } from '../../src/trainer/data/reviews';
import { sentimentScore } from '../../src/trainer/data/sentimentOracle';
import { ensureRankCheckpoint } from './rankCheckpoint';

const root = path.join(__dirname, '..', '..');
const trainerEntry = path.join(root, 'dist', 'trainer.js');
let supervisor: TrainerSupervisor;
let sampler: CheckpointSampler;
let checkpoint: string;

before(() => {
  assert.ok(existsSync(trainerEntry), `${trainerEntry} is missing: run npm run build first`);
  checkpoint = ensureRankCheckpoint();
  supervisor = new TrainerSupervisor(trainerEntry);
  sampler = new CheckpointSampler(supervisor, root);
});
after(async () => {
  await sampler.dispose();
  await supervisor.dispose();
});

test('a warm trainer samples K completions per request and keeps the checkpoint loaded for the next', async () => {
  const request = {
    checkpoint,
    prompt: 'review of the blender:',
    numSamples: 4,
    temperature: 1,
    topP: 1,
    maxNewTokens: 128,
    seed: 1,
    stopAtEos: false,
  };
  const first = await sampler.sample(request);
  assert.equal(first.completions.length, 4);
  assert.deepEqual(first.tokenCounts, [128, 128, 128, 128]);
  assert.ok(first.loadMs > 0);
  assert.equal(first.backend, 'wasm');
  const pid = sampler.pid;
  const second = await sampler.sample({ ...request, seed: 2 });
  assert.ok(second.loadMs < 5, `the second request reuses the loaded model (load ${second.loadMs} ms)`);
  assert.equal(sampler.pid, pid, 'the same trainer process serves both');
  assert.notDeepEqual(second.completions, first.completions, 'a new seed gives new completions');
  // Same seed, same completions: sampling is reproducible.
  assert.deepEqual((await sampler.sample({ ...request, seed: 2 })).completions, second.completions);
  // Stopping at EOS (the default) gives completions no longer than the budget.
  const stopped = await sampler.sample({ ...request, stopAtEos: undefined, maxNewTokens: 64 });
  assert.ok(stopped.tokenCounts.every((n) => n >= 1 && n <= 64));
});

test('a folder that is not a checkpoint is an error naming it, and the trainer keeps serving', async () => {
  const missing = path.join(tmpdir(), 'no-such-checkpoint');
  await assert.rejects(
    sampler.sample({
      checkpoint: missing,
      prompt: 'x',
      numSamples: 2,
      temperature: 1,
      topP: 1,
      maxNewTokens: 8,
      seed: 0,
    }),
    new RegExp(`${missing}: does not exist`),
  );
  const ok = await sampler.sample({
    checkpoint,
    prompt: 'x',
    numSamples: 2,
    temperature: 1,
    topP: 1,
    maxNewTokens: 8,
    seed: 0,
  });
  assert.equal(ok.completions.length, 2);
});

test(
  'a reward model trains on a dataset ranked in a ' + 'Rank session from sampled completions, read as it is',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-rank-reward-'));
    const store = new PreferenceStore(path.join(dir, '.rlhf', 'preferences', 'panel.jsonl'));
    const session = new RankSession({ store, annotator: 'tester' });
    await session.load();
    // Distinct prompts: the reward stage splits train and held-out by prompt and batches whole prompts.
    const prompts = [...new Set(generateReviews(400, 5).map((review) => review.prompt))].slice(0, 24);
    assert.equal(prompts.length, 24);
    const { source } = await openRankSource(
      { kind: 'checkpoint', checkpoint, prompts, k: 4, temperature: 1.2, topP: 1, maxNewTokens: 24 },
      new Set(),
      () => sampler,
      new Random(9),
    );
    await session.setSource(source);
    // Rank as an annotator who likes positive reviews would: by the demo oracle, then (when the oracle
    // cannot tell) the longer completion first; identical texts tie.
    const judged = 24;
    for (let i = 0; i < judged; i++) {
      const set = session.state().set;
      assert.ok(set, session.state().status);
      const scores = set.completions.map((completion) => sentimentScore(set.prompt + completion));
      const order = [...scores.keys()].sort(
        (a, b) => scores[b] - scores[a] || set.completions[b].length - set.completions[a].length,
      );
      const ranking: number[][] = [];
      for (const index of order) {
        const last = ranking.at(-1);
        if (last && set.completions[last[0]] === set.completions[index]) last.push(index);
        else ranking.push([index]);
      }
      await session.submit({ type: 'rank/submit', setId: set.id, ranking });
    }
    // One undone judgment: the reward stage must honour the retraction.
    await session.undo();
    session.dispose();

    const config = path.join(dir, 'reward.rlhf.json');
    writeFileSync(
      config,
      JSON.stringify({
        name: 'panel-reward',
        seed: 1,
        backend: 'wasm',
        stages: [
          {
            type: 'reward',
            init_from: checkpoint,
            preferences: store.file,
            num_train_epochs: 2,
            per_device_train_batch_size: 4,
            eval_fraction: 0.2,
            warmup_steps: 2,
          },
        ],
      }),
    );
    const runs = path.join(dir, '.rlhf', 'runs');
    const training = spawnSync(process.execPath, [trainerEntry, 'train', config, '--runs-dir', runs], {
      encoding: 'utf8',
      timeout: 10 * 60_000,
    });
    assert.equal(training.status, 0, training.stderr);
    const [run] = readdirSync(runs);
    const runJson = JSON.parse(readFileSync(path.join(runs, run, 'run.json'), 'utf8'));
    assert.equal(runJson.status, 'completed');
    const metrics = readFileSync(path.join(runs, run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.ok(metrics.length >= 4, `${metrics.length} optimizer steps; the trainer said:\n${training.stderr}`);
    assert.ok(
      metrics.every((m) => Number.isFinite(m['loss/reward'])),
      'a finite Bradley–Terry loss every step',
    );
    const checkpoints = readdirSync(path.join(runs, run, 'checkpoints'));
    assert.ok(checkpoints.length >= 1, 'a checkpoint was written');
    const state = JSON.parse(
      readFileSync(path.join(runs, run, 'checkpoints', checkpoints.at(-1) as string, 'trainer_state.json'), 'utf8'),
    );
    assert.equal(state.preferences, store.file);
    assert.equal(
      state.train_judgments + state.eval_judgments,
      judged - 1,
      'every live judgment of the panel file, the undone one left out',
    );
  },
);

test(
  'an ONNX model folder is a source too: ' +
    'the same warm trainer samples it on onnxruntime-node and the judgment names the folder',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-rank-onnx-'));
    const folder = path.join(dir, 'my-model');
    execFileSync(process.execPath, [trainerEntry, 'export', checkpoint, '--out', folder], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.ok(existsSync(path.join(folder, 'onnx', 'model.onnx')));
    const direct = await sampler.sample({
      checkpoint: folder,
      prompt: 'review of the lamp:',
      numSamples: 4,
      temperature: 1,
      topP: 1,
      maxNewTokens: 128,
      seed: 4,
      stopAtEos: false,
    });
    assert.equal(direct.backend, 'onnxruntime-node');
    assert.deepEqual(direct.tokenCounts, [128, 128, 128, 128]);
    const store = new PreferenceStore(path.join(dir, 'onnx.jsonl'));
    const session = new RankSession({ store, annotator: 'tester' });
    await session.load();
    const { source } = await openRankSource(
      { kind: 'onnx', folder, prompts: ['review of the lamp:'], k: 3, temperature: 1, topP: 1, maxNewTokens: 16 },
      new Set(),
      () => sampler,
      new Random(2),
    );
    await session.setSource(source);
    const set = session.state().set;
    assert.ok(set, session.state().status);
    assert.equal(set.completions.length, 3);
    assert.equal(set.sourceLabel, 'ONNX my-model · T 1 · 16 tokens');
    await session.submit({ type: 'rank/submit', setId: set.id, ranking: [[2], [0], [1]] });
    assert.deepEqual((await store.read()).judgments[0].source, { kind: 'onnx', model: folder });
    session.dispose();
  },
);
