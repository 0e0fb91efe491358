// What the Runs view reads of a run: stage, step of total, config file and the latest metrics, from
// real files, including a metrics line cut by a crash and a metrics file longer than the tail read.
import * as assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { formatKeyMetrics, readRunDetails } from '../../src/shared/runDetails';

const root = mkdtempSync(path.join(tmpdir(), 'rlhf-run-details-'));
after(() => rmSync(root, { recursive: true, force: true }));

function runDir(name: string, runJson: object, metricsLines: string[]): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify(runJson));
  if (metricsLines.length > 0) writeFileSync(path.join(dir, 'metrics.jsonl'), metricsLines.join('\n'));
  return dir;
}

test('the step and metrics come from the last whole metrics line; a line cut by a crash is skipped', async () => {
  const dir = runDir(
    'cut',
    { stage: 'sft', step: 100, max_steps: 600, config_file: '/w/a.rlhf.json', last_checkpoint: 'checkpoints/step-100' },
    [
      JSON.stringify({ step: 119, time: 1, 'loss/train': 2.5 }),
      JSON.stringify({ step: 120, time: 2, 'loss/train': 2.31, 'loss/eval': 2.4, note: 'text is dropped' }),
      '{"step": 121, "loss/tr',
    ],
  );
  const details = await readRunDetails(dir);
  assert.deepEqual(details, {
    stage: 'sft',
    step: 120,
    maxSteps: 600,
    configFile: '/w/a.rlhf.json',
    lastCheckpoint: 'checkpoints/step-100',
    metrics: { step: 120, time: 2, 'loss/train': 2.31, 'loss/eval': 2.4 },
  });
  assert.equal(formatKeyMetrics(details.metrics), 'loss/train 2.31 · loss/eval 2.40');
});

test('a long metrics file is read from its tail', async () => {
  const dir = runDir('long', { stage: 'ppo', max_steps: 50000 }, []);
  const line = (step: number) =>
    `${JSON.stringify({ step, 'objective/kl': 0.1 + step / 1e6, padding: 'x'.repeat(100) })}\n`;
  for (let step = 1; step <= 20000; step += 1000)
    appendFileSync(path.join(dir, 'metrics.jsonl'), Array.from({ length: 1000 }, (_, i) => line(step + i)).join(''));
  const details = await readRunDetails(dir);
  assert.equal(details.step, 20000);
  assert.equal(formatKeyMetrics(details.metrics), 'objective/kl 0.12');
});

test("before the first metrics line, run.json's step is used; missing files give empty details", async () => {
  assert.equal((await readRunDetails(runDir('fresh', { stage: 'dpo', step: 0, max_steps: 40 }, []))).step, 0);
  assert.deepEqual(await readRunDetails(path.join(root, 'absent')), {
    stage: undefined,
    step: undefined,
    maxSteps: undefined,
    configFile: undefined,
    lastCheckpoint: undefined,
    metrics: {},
  });
});
