import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { listRuns } from '../../src/shared/runsFolder';
import { parseRunJson } from '../../src/shared/runSummary';
import { RunDirectory } from '../../src/trainer/run/runDirectory';

const fixtureRuns = path.join(__dirname, '..', 'fixtures', 'workspace', '.rlhf', 'runs');

test('lists the fixture runs newest first and names the unreadable run.json', async () => {
  const { runs, problems } = await listRuns(fixtureRuns);
  assert.deepEqual(
    runs.map((run) => [run.id, run.name, run.status]),
    [
      ['dpo-beta', 'dpo-beta-0.1', 'stopped'],
      ['demo-ppo', 'demo-ppo', 'completed'],
      ['sft-small', 'sft-small', 'failed'],
    ],
  );
  assert.equal(runs[2].error, 'NaN in loss/train at step 12');
  assert.equal(problems.length, 1);
  assert.equal(problems[0].file, path.join(fixtureRuns, 'broken-run', 'run.json'));
  assert.match(problems[0].message, /not valid JSON/);
});

test('a missing runs folder is an empty list, and a run directory without run.json is skipped', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'rlhf-runs-'));
  assert.deepEqual(await listRuns(path.join(root, 'absent')), { runs: [], problems: [] });
  await cp(fixtureRuns, root, { recursive: true });
  await mkdir(path.join(root, 'just-started'));
  await writeFile(path.join(root, 'a-file-not-a-run'), 'x');
  const { runs } = await listRuns(root);
  assert.equal(runs.length, 3);
});

test('a run folder still under its temporary name is not listed, and resuming it says why', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'rlhf-runs-'));
  await cp(path.join(fixtureRuns, 'demo-ppo'), path.join(root, 'demo-ppo'), { recursive: true });
  // What a trainer killed while creating its next stage's folder leaves: run.json inside a temporary-named folder.
  const halfMade = path.join(root, '.demo-ppo-2.4242-0123abcd.rlhf-tmp');
  await cp(path.join(fixtureRuns, 'demo-ppo'), halfMade, { recursive: true });
  const { runs, problems } = await listRuns(root);
  assert.deepEqual(
    runs.map((run) => run.id),
    ['demo-ppo'],
  );
  assert.deepEqual(problems, []);
  assert.throws(
    () => RunDirectory.open(halfMade),
    /Cannot resume .*\.rlhf-tmp: it is a run folder that was still being created when its trainer stopped/,
  );
});

test('run.json fields are checked and the problem says which', () => {
  assert.deepEqual(parseRunJson('[]', 'r'), { ok: false, message: 'must be a JSON object, got an array' });
  const badStatus = parseRunJson('{"status":"great","started_at":"2026-01-01T00:00:00Z"}', 'r');
  assert.equal(badStatus.ok, false);
  assert.match(
    !badStatus.ok ? badStatus.message : '',
    /^status must be one of created, running, completed, failed, stopped, got "great"$/,
  );
  const badDate = parseRunJson('{"status":"running","started_at":"yesterday"}', 'r');
  assert.match(!badDate.ok ? badDate.message : '', /^started_at must be an ISO 8601 date string, got "yesterday"$/);
  const good = parseRunJson('{"status":"running","started_at":"2026-01-01T00:00:00Z"}', 'run-7');
  assert.ok(good.ok);
  assert.equal(good.ok && good.run.name, 'run-7', 'the folder name stands in for a missing name');
  const onGpu = parseRunJson(
    '{"status":"running","started_at":"2026-01-01T00:00:00Z","backend":"webgpu",' +
      '"backend_adapter":"NVIDIA H200 (hopper) on vulkan"}',
    'gpu-run',
  );
  assert.equal(onGpu.ok && onGpu.run.backendAdapter, 'NVIDIA H200 (hopper) on vulkan');
});
