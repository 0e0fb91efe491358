// `rlhf-lens submit`'s errors, each with its message and no submission folder left behind: sbatch
// missing from PATH (the one case without the real scheduler: a PATH without it), a partition or an
// account Slurm does not know, a request it rejects, and a launcher or sweep the config checks refuse.
// Against the real cluster of this machine (run `npm run build` first); skipped, saying why, only when
// `sinfo` does not answer.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { cli, onCluster, project as projectIn, sftConfig, sinfo, trainer } from './slurmTestKit';

const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-slurm-errors-'));
const project = (name: string, config: unknown) => projectIn(workDir, name, config);

before(() => {
  assert.ok(existsSync(trainer), 'run npm run build first');
});

after(() => rmSync(workDir, { recursive: true, force: true }));

/** The submission folders of a project: none may be left by a submit that failed. */
const submissions = (dir: string) =>
  existsSync(path.join(dir, '.rlhf', 'jobs')) ? readdirSync(path.join(dir, '.rlhf', 'jobs')) : [];

test('sbatch missing from PATH: a clear error and no submission folder', () => {
  const { dir, configFile, runsDir } = project('no-sbatch', sftConfig('test-submit-no-sbatch'));
  const emptyBin = mkdtempSync(path.join(workDir, 'bin-'));
  const result = cli(['submit', configFile, '--runs-dir', runsDir], { ...process.env, PATH: emptyBin });
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    'error: sbatch is not on PATH: this machine has no Slurm client commands — submit from a machine of the ' +
      "cluster (its login node, over Remote-SSH), or add Slurm's bin folder to PATH\n",
  );
  assert.deepEqual(submissions(dir), []);
});

test('an unknown partition: sbatch quoted, the partitions listed, no submission folder', onCluster, () => {
  const config = sftConfig('test-submit-bad-partition');
  config.launcher = { ...config.launcher, partition: 'no-such-partition' } as typeof config.launcher;
  const { dir, configFile, runsDir } = project('bad-partition', config);
  const result = cli(['submit', configFile, '--runs-dir', runsDir]);
  assert.equal(result.code, 1);
  const partitions = [
    ...new Set(
      sinfo.stdout
        .split('\n')
        .map((line) => line.split(/\s+/)[0])
        .filter(Boolean),
    ),
  ];
  assert.equal(
    result.stderr,
    `error: ${configFile}: launcher.partition "no-such-partition": Slurm has no such partition (sbatch: invalid ` +
      'partition specified: no-such-partition; Batch job submission failed: Invalid partition name specified) — ' +
      `use one of the cluster's partitions: ${partitions.join(', ')} (* marks the default)\n`,
  );
  assert.deepEqual(submissions(dir), []);
});

test('a request Slurm rejects (more memory than any node has): sbatch quoted, no submission folder', onCluster, () => {
  const config = sftConfig('test-submit-too-much-memory');
  config.launcher = { ...config.launcher, mem: '999999G' } as typeof config.launcher;
  const { dir, configFile, runsDir } = project('too-much-memory', config);
  const result = cli(['submit', configFile, '--runs-dir', runsDir]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `error: ${configFile}: launcher Slurm refused the job (sbatch: Memory specification can not be satisfied; ` +
      'Batch job submission failed: Requested node configuration is not available) — change the launcher settings ' +
      'Slurm named (partition limits: `sinfo`, `scontrol show partition`)\n',
  );
  assert.deepEqual(submissions(dir), []);
});

// The test cluster keeps no accounts; its partition `lab` (scripts/slurmCluster.mjs) allows only the account lab-a,
// so Slurm itself refuses an account there, with the message a cluster that enforces accounts gives.
test('an account Slurm refuses: sbatch quoted with the field, no submission folder', onCluster, () => {
  const config = sftConfig('test-submit-bad-account');
  config.launcher = { ...config.launcher, partition: 'lab', account: 'no-such-account' } as typeof config.launcher;
  const { dir, configFile, runsDir } = project('bad-account', config);
  const result = cli(['submit', configFile, '--runs-dir', runsDir]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `error: ${configFile}: launcher.account "no-such-account": Slurm refused the account (sbatch: Batch job ` +
      'submission failed: Invalid account or account/partition combination specified) — use an account you belong ' +
      'to (`sacctmgr show associations user=$USER`)\n',
  );
  assert.deepEqual(submissions(dir), []);
});

test('an invalid launcher or sweep in the config: file, line and field, nothing submitted', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'bad-mem',
      { launcher: { type: 'slurm', mem: '8 gigabytes' } },
      /:\d+:\d+: launcher\.mem must match \^\[0-9\]\+\[KMGT\]\?\$, got "8 gigabytes"/,
    ],
    [
      'sweep-field',
      { sweep: { 'stages.sft.learning_rte': [0.1] } },
      /:\d+:\d+: sweep\.stages\.sft\.learning_rte "learning_rte" is not a setting of a sft stage/,
    ],
    [
      'sweep-stage',
      { sweep: { 'stages.ppo.init_kl_coef': [0.1] } },
      /\.init_kl_coef "stages\.ppo\.init_kl_coef" names no stage of this config \(its stages: "sft"\)/,
    ],
    [
      'sweep-value',
      { sweep: { 'stages.sft.learning_rate': [0.01, -1] } },
      /sweep element 1 \(stages\.sft\.learning_rate = -1\): stages\[0\]\.learning_rate must be > 0, got -1/,
    ],
    ['local', { launcher: { type: 'local' } }, /launcher\.type is "local": this config runs on this machine/],
  ];
  for (const [name, extra, message] of cases) {
    const { dir, configFile, runsDir } = project(`invalid-${name}`, sftConfig(`test-submit-${name}`, {}, extra));
    const result = cli(['submit', configFile, '--runs-dir', runsDir]);
    assert.equal(result.code, 1, name);
    assert.ok(result.stderr.includes(configFile), `${name}: names the file: ${result.stderr}`);
    assert.match(result.stderr, message, name);
    assert.deepEqual(submissions(dir), [], name);
  }
});
