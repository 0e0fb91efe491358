// Forks the real built trainer (dist/trainer.js): run `npm run build` first (npm test does).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { TrainerSupervisor } from '../../src/host/trainerSupervisor';
import type { TrainerExit } from '../../src/host/trainerProcess';
import { CheckpointSampler } from '../../src/host/checkpointSampler';

const trainerEntry = path.join(__dirname, '..', '..', 'dist', 'trainer.js');
let supervisor: TrainerSupervisor;

before(() => {
  assert.ok(existsSync(trainerEntry), `${trainerEntry} is missing: run npm run build first`);
  supervisor = new TrainerSupervisor(trainerEntry);
});
after(() => supervisor.dispose());

test('a trainer starts, says ready, answers a ping and stops on request without a crash report', async () => {
  const crashes: TrainerExit[] = [];
  const off = supervisor.onDidCrash((exit) => crashes.push(exit));
  const trainer = supervisor.start({ label: 'round-trip' });
  const ready = await trainer.ready;
  assert.equal(ready.pid, trainer.pid);
  const pong = new Promise((resolve) =>
    trainer.onMessage((message) => message.type === 'trainer/pong' && resolve(message.id)),
  );
  assert.ok(trainer.send({ type: 'control/ping', id: 41 }));
  assert.equal(await pong, 41);
  const exit = await trainer.stop();
  assert.equal(exit.code, 0);
  assert.equal(exit.crashed, false);
  assert.equal(supervisor.trainers.length, 0);
  off();
  assert.deepEqual(crashes, []);
});

test('SIGKILL is reported as a crash naming the signal, and the next trainer starts fine', async () => {
  const crashed = new Promise<TrainerExit>((resolve) => {
    const off = supervisor.onDidCrash((exit) => {
      off();
      resolve(exit);
    });
  });
  const victim = supervisor.start({ label: 'victim' });
  await victim.ready;
  victim.kill('SIGKILL');
  const exit = await crashed;
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.crashed, true);
  assert.match(
    exit.description,
    new RegExp(`RLHF trainer "victim" \\(pid ${victim.pid}\\) was killed by signal SIGKILL`),
  );

  const next = supervisor.start({ label: 'next' });
  assert.equal((await next.ready).type, 'trainer/ready');
  assert.equal((await next.stop()).crashed, false);
});

test('a trainer that exits non-zero before it is ready is a crash with its code and output', async () => {
  const trainer = supervisor.start({
    label: 'no-ipc',
    modulePath: path.join(__dirname, '..', 'fixtures', 'exitWithCode.js'),
  });
  await assert.rejects(trainer.ready, /exited with code 3 before it was ready/);
  const exit = await trainer.exited;
  assert.equal(exit.code, 3);
  assert.equal(exit.crashed, true);
  assert.match(exit.stderrTail, /fixture trainer failing on purpose/);
});

test('a trainer that ignores stop is killed at the deadline and not reported as a crash', async () => {
  const trainer = supervisor.start({
    label: 'stubborn',
    modulePath: path.join(__dirname, '..', 'fixtures', 'ignoreStop.js'),
  });
  await trainer.ready;
  const exit = await trainer.stop(300);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.requested, true);
  assert.equal(exit.crashed, false);
});

test('dispose stops every running trainer', async () => {
  const local = new TrainerSupervisor(trainerEntry);
  const trainers = [local.start({ label: 'a' }), local.start({ label: 'b' })];
  await Promise.all(trainers.map((trainer) => trainer.ready));
  await local.dispose();
  assert.deepEqual(
    trainers.map((trainer) => trainer.isRunning),
    [false, false],
  );
  assert.throws(() => local.start({ label: 'late' }), /shutting down/);
});

test(
  'in an untrusted workspace no trainer starts, whoever asks (runs, ' +
    'the Rank view sampler), and trust is asked at each start',
  async () => {
    let trusted = false;
    const gated = new TrainerSupervisor(trainerEntry, () => trusted);
    try {
      assert.throws(() => gated.start({ label: 'rank sampler' }), /starts "rank sampler" only in a trusted workspace/);
      assert.equal(gated.trainers.length, 0, 'nothing was forked');
      const sampler = new CheckpointSampler(gated);
      await assert.rejects(
        sampler.sample({
          checkpoint: 'unused',
          prompt: 'x',
          numSamples: 1,
          temperature: 1,
          topP: 1,
          maxNewTokens: 1,
          seed: 1,
        }),
        /only in a trusted workspace/,
      );
      assert.equal(sampler.pid, undefined);
      trusted = true; // the user trusted the folder: the next start goes through
      const trainer = gated.start({ label: 'after trust' });
      assert.equal((await trainer.ready).type, 'trainer/ready');
      assert.equal((await trainer.stop()).crashed, false);
    } finally {
      await gated.dispose();
    }
  },
);
