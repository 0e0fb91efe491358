// The batch script `rlhf-lens submit` writes (its words exactly: users read what they submitted), and
// the sweep's elements: their order, their settings written into the config, their run names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchScript, shellQuote } from '../../src/trainer/cluster/batchScript';
import { applySweepElement, sweepElementName, sweepElements } from '../../src/shared/sweep';

test('the batch script: #SBATCH lines from every launcher setting, a job array, the signal and requeue', () => {
  const script = batchScript({
    jobName: 'rlhf-lens-demo',
    launcher: {
      partition: 'gpu',
      gres: 'gpu:1',
      cpus_per_task: 4,
      mem: '8G',
      time: '01:00:00',
      account: 'lab',
      qos: 'normal',
      extra_args: ['--constraint=a100', "--comment=it's mine"],
      signal_before_end_s: 120,
      requeue: true,
    },
    nodeExecutable: '/usr/bin/node',
    trainerScript: '/opt/rlhf lens/dist/trainer.js',
    configFile: '/home/me/demo.rlhf.json',
    runsDir: '/home/me/.rlhf/runs',
    submissionDir: '/home/me/.rlhf/jobs/demo-20261130-120000',
    arraySize: 3,
  });
  const lines = script.split('\n');
  assert.deepEqual(lines.slice(0, 15), [
    '#!/bin/bash',
    '#SBATCH --job-name=rlhf-lens-demo',
    '#SBATCH --partition=gpu',
    '#SBATCH --gres=gpu:1',
    '#SBATCH --cpus-per-task=4',
    '#SBATCH --mem=8G',
    '#SBATCH --time=01:00:00',
    '#SBATCH --account=lab',
    '#SBATCH --qos=normal',
    '#SBATCH --array=0-2',
    '#SBATCH --signal=B:USR1@120',
    '#SBATCH --requeue',
    '#SBATCH --open-mode=append',
    '#SBATCH --output=/home/me/.rlhf/jobs/demo-20261130-120000/slurm-%A_%a.out',
    `# sbatch was also given: '--constraint=a100' '--comment=it'\\''s mine'`,
  ]);
  assert.ok(
    lines.includes(
      "'/usr/bin/node' '/opt/rlhf lens/dist/trainer.js' 'train' '/home/me/demo.rlhf.json' '--runs-dir' " +
        "'/home/me/.rlhf/runs' '--submission' '/home/me/.rlhf/jobs/demo-20261130-120000' " +
        '--sweep-index "$SLURM_ARRAY_TASK_ID" &',
    ),
    script,
  );
  assert.ok(lines.includes('trap \'if [ -n "$trainer" ]; then kill -USR1 "$trainer"; fi\' USR1'));
  assert.ok(script.includes('if [ "$status" -eq 75 ]; then'));
  assert.ok(
    script.includes('  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"\nfi\nexit "$status"\n'),
    'an array task requeues itself alone',
  );
});

test('without a sweep: one job, its output slurm-<job>.out; requeue off leaves the requeue out', () => {
  const script = batchScript({
    jobName: 'rlhf-lens-one',
    launcher: { signal_before_end_s: 300, requeue: false },
    nodeExecutable: '/usr/bin/node',
    trainerScript: '/t/trainer.js',
    configFile: '/c.rlhf.json',
    runsDir: '/r',
    submissionDir: '/j/one',
    arraySize: undefined,
  });
  assert.deepEqual(script.split('\n').slice(0, 6), [
    '#!/bin/bash',
    '#SBATCH --job-name=rlhf-lens-one',
    '#SBATCH --signal=B:USR1@300',
    '#SBATCH --no-requeue',
    '#SBATCH --open-mode=append',
    '#SBATCH --output=/j/one/slurm-%j.out',
  ]);
  assert.ok(!script.includes('--sweep-index'));
  assert.ok(!script.includes('scontrol requeue'));
  const requeueing = batchScript({
    jobName: 'rlhf-lens-one',
    launcher: { signal_before_end_s: 300, requeue: true },
    nodeExecutable: '/usr/bin/node',
    trainerScript: '/t/trainer.js',
    configFile: '/c.rlhf.json',
    runsDir: '/r',
    submissionDir: '/j/one',
    arraySize: undefined,
  });
  assert.ok(requeueing.includes('  scontrol requeue "$SLURM_JOB_ID"\nfi\nexit "$status"\n'));
  assert.equal(shellQuote("a'b"), `'a'\\''b'`);
});

test('sweep elements: every combination, the first setting slowest; settings written in; names', () => {
  const sweep = { 'stages.ppo.init_kl_coef': [0.02, 0.05], 'stages.sft.max_steps': [10, 20, 30] };
  const elements = sweepElements(sweep);
  assert.deepEqual(
    elements.map((element) => Object.values(element.settings)),
    [
      [0.02, 10],
      [0.02, 20],
      [0.02, 30],
      [0.05, 10],
      [0.05, 20],
      [0.05, 30],
    ],
  );
  assert.deepEqual(sweepElements(undefined), []);
  const raw = {
    name: 'demo',
    sweep,
    stages: [
      { type: 'sft', max_steps: 5 },
      { type: 'ppo', name: 'ppo' },
    ],
  };
  assert.deepEqual(applySweepElement(raw, elements[4]), {
    name: 'demo-init_kl_coef-0.05-max_steps-20',
    stages: [
      { type: 'sft', max_steps: 20 },
      { type: 'ppo', name: 'ppo', init_kl_coef: 0.05 },
    ],
  });
  assert.equal(raw.stages[0].max_steps, 5, 'the raw config is not changed');
  const long = { index: 7, settings: { 'stages.sft.learning_rate': 'x'.repeat(80) } };
  assert.equal(sweepElementName('demo', long), 'demo-sweep7');
  assert.equal(sweepElementName('d', { index: 0, settings: { 'stages.a.b': 'x y/z' } }), 'd-b-x_y_z');
});
