/**
 * Submit Run to Cluster's child process: the trainer CLI's answer read back, its error passed on with the config's
 * name; and the CodeLens's test for a Slurm launcher.
 */
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchesOnSlurm, parseSubmitOutput, runSubmit } from '../../src/host/cluster/submitProcess';

const trainer = join(import.meta.dirname, '..', '..', 'dist', 'trainer.js');

test('submit --json output: the whole text or its last line; without a job id it is no answer', () => {
  assert.deepEqual(parseSubmitOutput('{\n  "submission": "/w/.rlhf/jobs/a",\n  "job_id": "12"\n}\n'), {
    submission: '/w/.rlhf/jobs/a',
    job_id: '12',
  });
  assert.deepEqual(parseSubmitOutput('Submitted batch job 12\n{"submission":"/w/.rlhf/jobs/a","job_id":12}\n'), {
    submission: '/w/.rlhf/jobs/a',
    job_id: '12',
  });
  assert.equal(parseSubmitOutput('Submitted batch job 12\n'), undefined);
  assert.equal(parseSubmitOutput('{"submission":"/w/.rlhf/jobs/a"}'), undefined);
});

test("the trainer's refusal comes back as an error naming the config and what the trainer said", async () => {
  assert.ok(existsSync(trainer), `${trainer} is missing: run npm run build first`);
  const config = join(import.meta.dirname, 'no-such-config.rlhf.json');
  await assert.rejects(runSubmit(trainer, config, undefined), (error: Error) => {
    assert.match(error.message, /^Could not submit no-such-config\.rlhf\.json to the cluster: \S/);
    return true;
  });
});

test('the CodeLens offers Submit for a Slurm launcher only', () => {
  assert.equal(launchesOnSlurm('{ "launcher": { "partition": "gpu", "type": "slurm" }, "stages": [] }'), true);
  assert.equal(launchesOnSlurm('{ "launcher": { "type": "local" } }'), false);
  assert.equal(launchesOnSlurm('{ "name": "slurm", "type": "slurm" }'), false);
});
