// The main job, as the README runs it but at the quick scale: `npm run demo -- --quick` trains SFT,
// simulated preferences, a reward model, PPO at three KL coefficients and DPO at three β on the
// embedded demo, then reports. These checks are the RLHF loop working end to end: the reward model
// beats chance, and PPO and DPO both raise the held-out oracle score above the SFT policy's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { DemoReport } from '../../src/trainer/demo/demoCommand';

const root = path.join(__dirname, '..', '..');

// Margins set from measured quick runs (see the README's demo section for the figures): the
// smallest improvement seen was well above these, and the standard errors are about 0.02.
const minimumGain = { ppo: 0.05, dpo: 0.05 };
const minimumRewardAccuracy = 0.7;

test('npm run demo -- --quick runs the whole pipeline and RLHF improves on SFT', { timeout: 15 * 60_000 }, () => {
  // Kept after the test: the real-VS Code tests open these runs in the dashboard.
  const work = path.join(root, 'test-results', 'demo-quick');
  rmSync(work, { recursive: true, force: true });
  const out = path.join(work, 'demo');
  const started = Date.now();
  const run = spawnSync(
    process.execPath,
    [
      path.join(root, 'dist', 'trainer.js'),
      'demo',
      '--quick',
      '--runs-dir',
      path.join(work, '.rlhf', 'runs'),
      '--out',
      out,
    ],
    { cwd: root, encoding: 'utf8' },
  );
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(run.stdout);
  assert.equal(run.status, 0, run.stderr.slice(-4000));
  assert.match(run.stdout, /\| stage +\| backend +\| wall time \|/);
  assert.match(run.stdout, /\| policy +\| oracle score \(held-out\) +\| KL to SFT \(nats\) +\|/);
  assert.match(run.stdout, /frontier (dominates|does not|dominates the other)|Neither frontier dominates/);

  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as DemoReport;
  assert.equal(report.mode, 'quick');
  assert.deepEqual(
    report.stages.map((stage) => stage.stage),
    [
      'sft',
      'preferences',
      'reward',
      'ppo-kl0.02',
      'ppo-kl0.05',
      'ppo-kl0.2',
      'dpo-beta0.05',
      'dpo-beta0.1',
      'dpo-beta0.5',
      'evaluation',
    ],
  );
  const sft = report.policies.find((p) => p.family === 'SFT');
  assert.ok(sft);
  const best = (family: 'PPO' | 'DPO') =>
    Math.max(...report.policies.filter((p) => p.family === family).map((p) => p.oracle_score));
  process.stdout.write(
    `quick demo: ${seconds.toFixed(0)} s; SFT ${sft.oracle_score.toFixed(3)}, best PPO ` +
      `${best('PPO').toFixed(3)}, best DPO ${best('DPO').toFixed(3)}, RM accuracy ` +
      `${report.reward_model.eval_accuracy.toFixed(3)} (oracle ` +
      `${report.reward_model.eval_oracle_accuracy.toFixed(3)})\n`,
  );
  assert.ok(best('PPO') >= sft.oracle_score + minimumGain.ppo, `PPO ${best('PPO')} vs SFT ${sft.oracle_score}`);
  assert.ok(best('DPO') >= sft.oracle_score + minimumGain.dpo, `DPO ${best('DPO')} vs SFT ${sft.oracle_score}`);
  assert.ok(
    report.reward_model.eval_oracle_accuracy >= minimumRewardAccuracy,
    `reward model accuracy ${report.reward_model.eval_oracle_accuracy}`,
  );
  for (const policy of report.policies.filter((p) => p.family !== 'SFT'))
    assert.ok(Number.isFinite(policy.kl) && policy.kl > 0, `${policy.policy} moved away from SFT (KL ${policy.kl})`);
  const svg = readFileSync(path.join(out, 'frontier.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((svg.match(/<circle/g) ?? []).length, 4, 'SFT and three PPO points');
  assert.equal((svg.match(/<rect x="[\d.]+" y="[\d.]+" width="10"/g) ?? []).length, 3, 'three DPO points');
  assert.ok(existsSync(path.join(out, 'demo-quick.rlhf.json')), 'the config it ran is written beside the report');
});
