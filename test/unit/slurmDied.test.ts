// Jobs that die before the trainer starts, on the real Slurm cluster of this machine (the test command brings it up;
// run `npm run build` first): submitted with the real `rlhf-lens submit`, they end FAILED with no run folder, and
// the elements built as the Runs view builds them (listSubmissionElements, as clusterRuns.ts calls it) say "failed
// before the trainer started" with Slurm's exit code and the end of the job's output. Two ways a user meets it:
// the `node` that submitted is not there when the job starts (a Node.js installed only on the login node, or
// removed since), and an output file Slurm cannot open (an `--output` in extra_args naming a folder that does not
// exist on the node). Jobs are named rlhf-lens-test-slurmdied-… and take a second of one CPU.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { diedBeforeTrainerMessage } from '../../src/host/cluster/clusterElements';
import { listSubmissionElements } from '../../src/host/cluster/clusterListing';
import { scontrolShowJobs } from '../../src/host/cluster/slurmCommands';
import { parseScontrolJobs } from '../../src/host/cluster/slurmJobState';
import { jobsFolderOf, readSubmissions } from '../../src/host/cluster/submissions';
import { assertSlurmAvailable, cancelTestJobs, waitForJobState } from '../fixtures/slurm/slurm';
import { project as projectIn, sftConfig, trainer } from './slurmTestKit';

const PREFIX = 'rlhf-lens-test-slurmdied-';
const workDir = mkdtempSync(path.join(tmpdir(), 'rlhf-slurm-died-'));
const project = (name: string, config: unknown) => projectIn(workDir, name, config);

before(() => {
  assertSlurmAvailable();
  assert.ok(existsSync(trainer), `${trainer} is missing: run \`npm run build\` first`);
});
after(() => {
  cancelTestJobs(PREFIX);
  rmSync(workDir, { recursive: true, force: true });
});

/** A tiny SFT config named `test-slurmdied-<name>` (job rlhf-lens-test-slurmdied-<name>) with these sbatch args. */
function diesConfig(name: string, extraArgs: string[]) {
  const launcher = { type: 'slurm', time: '00:05:00', cpus_per_task: 1, extra_args: extraArgs };
  return sftConfig(`test-slurmdied-${name}`, {}, { launcher });
}

/** `<node> dist/trainer.js submit <config> --runs-dir <runs>`, as a user types it; its stdout. */
function submitWith(node: string, configFile: string, runsDir: string, json: boolean): string {
  const args = [trainer, 'submit', configFile, '--runs-dir', runsDir, ...(json ? ['--json'] : [])];
  const result = spawnSync(node, args, { encoding: 'utf8', timeout: 90_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** The project's one submission, listed as the Runs view lists it (after the controller's latest states). */
async function listedElement(dir: string) {
  const { submissions, problems } = await readSubmissions(jobsFolderOf(dir));
  assert.deepEqual(problems, []);
  assert.equal(submissions.length, 1);
  const jobs = parseScontrolJobs(await scontrolShowJobs());
  const elements = await listSubmissionElements(submissions[0], jobs);
  assert.equal(elements.length, 1);
  return elements[0];
}

test('the node that submitted is gone when the job starts: exit 127, its output says the node is missing', async () => {
  // A node of its own (a hard link, so that process.execPath names it), removed while the job is held: the
  // batch script then names a node that does not exist, as on a compute node without the login node's Node.js.
  const nodeDir = path.join(workDir, 'node-on-login-node');
  mkdirSync(nodeDir);
  const node = path.join(nodeDir, 'node');
  linkSync(process.execPath, node);
  const { dir, configFile, runsDir } = project('nonode', diesConfig('nonode', ['--hold']));
  const stdout = submitWith(node, configFile, runsDir, false);
  const jobId = /^submitted job (\d+)\n/.exec(stdout)?.[1];
  assert.ok(jobId, stdout);
  // The CLI says where the job's output goes: where a job that dies early says why.
  const submission = path.dirname(/^ {2}batch script (.+)$/m.exec(stdout)?.[1] ?? '');
  const outputFile = path.join(submission, `slurm-${jobId}.out`);
  assert.match(stdout, new RegExp(`^  output ${outputFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  rmSync(node);
  const release = spawnSync('scontrol', ['release', jobId], { encoding: 'utf8' });
  assert.equal(release.status, 0, release.stderr);
  const info = await waitForJobState(jobId, ['FAILED'], 90_000);
  assert.equal(info.exitCode, '127:0');
  assert.equal(existsSync(runsDir) ? readdirSync(runsDir).length : 0, 0, 'no run folder: the trainer never ran');

  const element = await listedElement(dir);
  assert.equal(element.diedBeforeTrainer, true);
  assert.equal(element.phase, 'failed');
  assert.equal(element.description, 'failed before the trainer started (exit 127)');
  assert.equal(element.outputFile, outputFile);
  const lines = element.outputTail?.lines ?? [];
  assert.equal(element.outputTail?.exists, true);
  assert.match(lines[0], new RegExp(`^rlhf-lens: job ${jobId} on \\S+, restart 0$`), lines.join('\n'));
  assert.match(lines.at(-1) ?? '', new RegExp(`: ${node}: No such file or directory$`), lines.join('\n'));
  assert.equal(
    diedBeforeTrainerMessage(element),
    `Job ${jobId} (run) failed before the trainer started: ${lines.at(-1)}`,
  );
});

test('Slurm cannot open the output file: a launch failure, and the element says there is no output file', async () => {
  const missingFolder = path.join(workDir, 'not-on-the-node');
  const { dir, configFile, runsDir } = project(
    'nooutput',
    diesConfig('nooutput', [`--output=${missingFolder}/slurm-%j.out`]),
  );
  const { job_id: jobId, output } = JSON.parse(submitWith(process.execPath, configFile, runsDir, true)) as {
    job_id: string;
    output: string;
  };
  // What submit recorded (sbatch's own --output from extra_args wins over the script's #SBATCH line).
  assert.equal(output, path.join(dir, '.rlhf', 'jobs', readdirSync(jobsFolderOf(dir))[0], `slurm-${jobId}.out`));
  const info = await waitForJobState(jobId, ['FAILED'], 90_000);
  assert.equal(info.reason, 'JobLaunchFailure');
  assert.equal(info.exitCode, '0:53');

  const element = await listedElement(dir);
  assert.equal(element.diedBeforeTrainer, true);
  // The controller's StdOut names the file Slurm tried to write.
  assert.equal(element.outputFile, path.join(missingFolder, `slurm-${jobId}.out`));
  assert.deepEqual(element.outputTail, { exists: false, lines: [] });
  assert.equal(element.description, 'failed before the trainer started (launch failed, signal 53) · no output file');
  assert.equal(
    diedBeforeTrainerMessage(element),
    `Job ${jobId} (run) failed before the trainer started: its output file ${element.outputFile} does not exist`,
  );
});
