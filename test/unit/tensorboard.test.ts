// TensorBoard event files → metric points (src/shared/importers/tensorboard.ts), against files written by Debian's
// Python the way TensorBoard's writers write them (test/fixtures/tensorboardFixtures.ts): transformers'
// TensorBoardCallback (its
// `rewrite_logs` and `add_scalar(tag, value, state.global_step)`, huggingface/transformers,
// src/transformers/integrations/integration_utils.py) into `<output_dir>/runs/<date>_<host>/`, and TF2-style scalar
// tensors. Values are float32 where the writer stores float32 (`simple_value`, DT_FLOAT), so they read back as
// Math.fround of what Python logged.
import {
  tensorboardFixture,
  transformersTensorboardCallback as trainerCallback,
} from '../fixtures/tensorboardFixtures';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { MetricPoint } from '../../src/shared/dashboardMessages';
import { findEventFiles, metricNameOfTag, readTensorboardScalars } from '../../src/shared/importers/tensorboard';
import { decodeTrainerState } from '../../src/shared/importers/trlTrainerState';

const f32 = Math.fround;
/** Bytes before a record's data: uint64 length + its CRC. */
const headerBytes = 12;

/** Writes the offsets of `writer`'s records to `<out>/offsets.json` (not an event file: the reader skips it). */
const saveOffsets = `json.dump({"path": w.path, "offsets": w.offsets}, open(os.path.join(out, "offsets.json"), "w"))`;

function offsetsOf(out: string): { path: string; offsets: number[] } {
  return JSON.parse(readFileSync(path.join(out, 'offsets.json'), 'utf8'));
}

function flipByte(file: string, offset: number): void {
  const bytes = readFileSync(file);
  bytes[offset] ^= 0xff;
  writeFileSync(file, bytes);
}

test("TensorBoardCallback: each logged number under TRL's name at its step, as in log_history", async () => {
  const out = tensorboardFixture(`${trainerCallback}
w = EventFileWriter(os.path.join(out, "runs", "Nov30_12-00-00_node7"))
w.add_text("train/args", '{"output_dir": "out"}', 0)
on_log(w, {"loss": 0.0123, "grad_norm": 1.5, "learning_rate": 1e-06, "num_tokens": 512.0,
           "completions/mean_length": 17.25, "rewards/accuracy_reward/mean": 0.5, "reward": 0.5, "kl": 0.0,
           "clip_ratio/region_mean": 0.0, "entropy": 1.2, "epoch": 0.1}, 1)
on_log(w, {"loss": 0.0456, "grad_norm": 2.25, "learning_rate": 2e-06, "num_tokens": 1024.0,
           "completions/mean_length": 18.5, "rewards/accuracy_reward/mean": 0.75, "reward": 0.75, "kl": 0.003,
           "clip_ratio/region_mean": 0.125, "entropy": 1.1, "epoch": 0.2}, 2)
on_log(w, {"eval_loss": 0.3, "eval_reward": 0.4, "eval_runtime": 1.5, "epoch": 0.2}, 2)
on_log(w, {"train_runtime": 12.5, "train_samples_per_second": 3.2, "train_loss": 0.029, "epoch": 0.3}, 3)
w.close()
json.dump({"log_history": log_history}, open(os.path.join(out, "trainer_state.json"), "w"), indent=2)
`);
  const { points, problems, changed } = await readTensorboardScalars(out);
  assert.deepEqual(problems, []);
  assert.equal(changed, true);
  assert.deepEqual(points, [
    {
      loss: f32(0.0123),
      grad_norm: 1.5,
      learning_rate: f32(1e-6),
      num_tokens: 512,
      'completions/mean_length': 17.25,
      'rewards/accuracy_reward/mean': 0.5,
      reward: 0.5,
      kl: 0,
      'clip_ratio/region_mean': 0,
      entropy: f32(1.2),
      epoch: f32(0.1),
      step: 1,
    },
    {
      loss: f32(0.0456),
      grad_norm: 2.25,
      learning_rate: f32(2e-6),
      num_tokens: 1024,
      'completions/mean_length': 18.5,
      'rewards/accuracy_reward/mean': 0.75,
      reward: 0.75,
      kl: f32(0.003),
      'clip_ratio/region_mean': 0.125,
      entropy: f32(1.1),
      epoch: f32(0.2),
      eval_loss: f32(0.3),
      eval_reward: f32(0.4),
      eval_runtime: 1.5,
      step: 2,
    },
    { train_runtime: 12.5, train_samples_per_second: f32(3.2), train_loss: f32(0.029), epoch: f32(0.3), step: 3 },
  ]);
  // The same names as the trainer_state.json importer gives the same logs: each log_history entry's numbers are in
  // the point of its step.
  const history = decodeTrainerState(readFileSync(path.join(out, 'trainer_state.json'), 'utf8'), 'trainer_state.json');
  assert.equal(history.points.length, 4);
  for (const entry of history.points) {
    const point: MetricPoint | undefined = points.find((candidate) => candidate.step === entry.step);
    for (const [name, value] of Object.entries(entry)) assert.equal(point?.[name], f32(value), `${name}`);
  }
});

test('TF2 scalar tensors (plugin "scalars", metadata once): float and double, content or *_val', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(os.path.join(out, "logs"))
w.tf2_scalar("policy/kl", 0.1, 0)
w.tf2_scalar("policy/kl", 0.2, 1, in_content=False)
w.tf2_scalar("value/loss", 0.1, 0, double=True)
w.tf2_scalar("value/loss", 0.3, 1, double=True, in_content=False)
w.tf2_scalar("shaped", 2.5, 1, dims=(1, 1))
w.add_text("notes", "not a scalar", 1)
w.tf2_scalar("policy/kl", 0.4, 2, dims=(3,))
w.close()
`);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(points, [
    { 'policy/kl': f32(0.1), 'value/loss': 0.1, step: 0 },
    { 'policy/kl': f32(0.2), 'value/loss': 0.3, shaped: 2.5, step: 1 },
  ]);
  assert.equal(problems.length, 1);
  const [file] = await findEventFiles(out);
  assert.match(
    problems[0],
    new RegExp(`^${file}: byte \\d+: step 2: tag "policy/kl": a scalar tensor must have one element, not 3`),
  );
});

test('several files and launches merge by step; a step logged again by a resumed launch: the later value', async () => {
  const out = tensorboardFixture(`
first = EventFileWriter(os.path.join(out, "runs", "Nov30_10-00-00_node1"), wall_time=1000)
for step, loss in ((1, 0.5), (2, 0.25), (3, 0.125)):
    first.add_scalar("train/loss", loss, step, wall_time=1000 + step)
first.close()
other = EventFileWriter(os.path.join(out, "runs", "Nov30_10-00-00_node1"), wall_time=1000)
other.tf2_scalar("rollout/reward", 0.75, 1, wall_time=1001)
other.tf2_scalar("rollout/reward", 1.5, 4, wall_time=1004)
other.close()
resumed = EventFileWriter(os.path.join(out, "runs", "Nov30_11-00-00_node1"), wall_time=2000)
for step, loss in ((3, 0.375), (4, 0.0625)):
    resumed.add_scalar("train/loss", loss, step, wall_time=2000 + step)
resumed.close()
`);
  assert.equal((await findEventFiles(out)).length, 3);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(problems, []);
  assert.deepEqual(points, [
    { loss: 0.5, 'rollout/reward': 0.75, step: 1 },
    { loss: 0.25, step: 2 },
    { loss: 0.375, step: 3 },
    { loss: 0.0625, 'rollout/reward': 1.5, step: 4 },
  ]);
});

const threeSteps = `
w = EventFileWriter(out)
for step in (1, 2, 3):
    w.add_scalar("train/loss", step / 4, step)
w.close()
${saveOffsets}
`;

test("a flipped data byte: a problem naming the file and the record's offset, the records before it kept", async () => {
  const out = tensorboardFixture(threeSteps);
  const { path: file, offsets } = offsetsOf(out);
  flipByte(file, offsets[2] + headerBytes + 1);
  const size = readFileSync(file).byteLength;
  const first = await readTensorboardScalars(out);
  assert.deepEqual(first.points, [{ loss: 0.25, step: 1 }]);
  assert.deepEqual(first.problems, [
    `${file}: byte ${offsets[2]}: the record's data checksum does not match (a damaged file); ` +
      `the ${size - offsets[2]} bytes from there on are not read`,
  ]);
  // Reading stopped there: a later poll neither reads on nor repeats the problem.
  appendFileSync(file, readFileSync(file).subarray(offsets[1], offsets[2]));
  const again = await readTensorboardScalars(out, first.state);
  assert.equal(again.changed, false);
  assert.deepEqual(again.points, first.points);
  assert.deepEqual(again.problems, first.problems);
});

test("a flipped length byte: the length checksum problem at that record's offset, earlier records kept", async () => {
  const out = tensorboardFixture(threeSteps);
  const { path: file, offsets } = offsetsOf(out);
  flipByte(file, offsets[3]);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(points, [
    { loss: 0.25, step: 1 },
    { loss: 0.5, step: 2 },
  ]);
  assert.equal(problems.length, 1);
  assert.ok(problems[0].startsWith(`${file}: byte ${offsets[3]}: the record's length checksum does not match`));
});

test('a record longer than one read (a 9 MiB graph) is read whole, and the scalars after it too', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(out)
w.add_scalar("train/loss", 0.5, 1)
w.write_event(Event(wall_time=1.0, graph_def=bytes(9 * 1024 * 1024)))
w.add_scalar("train/loss", 0.25, 2)
w.close()
`);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(problems, []);
  assert.deepEqual(points, [
    { loss: 0.5, step: 1 },
    { loss: 0.25, step: 2 },
  ]);
  rmSync(out, { recursive: true });
});

test('a record that frames but is not an Event is a problem; the records after it are read', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(out)
w.add_scalar("train/loss", 0.5, 1)
w.write_record(b"\\xff\\xff\\xff\\xff")
w.add_scalar("train/loss", 0.25, 2)
w.close()
${saveOffsets}
`);
  const { path: file, offsets } = offsetsOf(out);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(points, [
    { loss: 0.5, step: 1 },
    { loss: 0.25, step: 2 },
  ]);
  assert.equal(problems.length, 1);
  assert.ok(problems[0].startsWith(`${file}: byte ${offsets[2]}: not a TensorBoard Event (`), problems[0]);
});

test('a live file: a half-written record is no problem, read once whole; only appended bytes are read', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(out)
for step in (1, 2, 3, 4):
    w.add_scalar("train/reward", step / 2, step)
w.close()
${saveOffsets}
`);
  const { path: file, offsets } = offsetsOf(out);
  const whole = readFileSync(file);
  const writeUpTo = (from: number, to: number) =>
    from === 0 ? writeFileSync(file, whole.subarray(0, to)) : appendFileSync(file, whole.subarray(from, to));
  const cutInHeader = offsets[3] + 5;
  const cutInData = offsets[3] + headerBytes + 3;
  writeUpTo(0, cutInHeader);
  const a = await readTensorboardScalars(out);
  assert.deepEqual(a.problems, []);
  assert.deepEqual(a.points, [
    { reward: 0.5, step: 1 },
    { reward: 1, step: 2 },
  ]);
  writeUpTo(cutInHeader, cutInData);
  const b = await readTensorboardScalars(out, a.state);
  assert.equal(b.changed, false);
  assert.deepEqual(b.problems, []);
  assert.equal(b.points.length, 2);
  writeUpTo(cutInData, offsets[4]);
  const c = await readTensorboardScalars(out, b.state);
  assert.equal(c.changed, true);
  assert.deepEqual(c.points.at(-1), { reward: 1.5, step: 3 });
  // Damage a record already read, then append: the next poll starts where the last one ended, so it never sees it.
  flipByte(file, offsets[1] + headerBytes);
  writeUpTo(offsets[4], whole.byteLength);
  const d = await readTensorboardScalars(out, c.state);
  assert.deepEqual(d.problems, []);
  assert.deepEqual(
    d.points.map((point) => point.step),
    [1, 2, 3, 4],
  );
  // Read from scratch, the same file shows the damage: the byte really was flipped.
  const fresh = await readTensorboardScalars(out);
  assert.ok(fresh.problems[0]?.startsWith(`${file}: byte ${offsets[1]}: the record's data checksum`));
});

test('a file rewritten shorter is read again from its start; a file removed drops its values', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(os.path.join(out, "a"))
for step in (1, 2, 3):
    w.add_scalar("train/loss", step / 8, step)
w.close()
v = EventFileWriter(os.path.join(out, "b"))
v.add_scalar("eval/loss", 0.5, 2)
v.close()
${saveOffsets}
`);
  const { path: file, offsets } = offsetsOf(out);
  const first = await readTensorboardScalars(out);
  assert.equal(first.points.length, 3);
  writeFileSync(file, readFileSync(file).subarray(0, offsets[2]));
  const shorter = await readTensorboardScalars(out, first.state);
  assert.equal(shorter.changed, true);
  assert.deepEqual(shorter.points, [
    { loss: 0.125, step: 1 },
    { eval_loss: 0.5, step: 2 },
  ]);
  rmSync(path.join(out, 'b'), { recursive: true });
  const removed = await readTensorboardScalars(out, shorter.state);
  assert.equal(removed.changed, true);
  assert.deepEqual(removed.points, [{ loss: 0.125, step: 1 }]);
});

test('NaN and ±Infinity read back as themselves, from simple_value and from scalar tensors', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(out)
w.add_scalar("train/loss", float("nan"), 1)
w.add_scalar("train/grad_norm", float("inf"), 1)
w.add_scalar("train/kl", float("-inf"), 1)
w.tf2_scalar("value/loss", float("nan"), 2, double=True)
w.tf2_scalar("policy/entropy", float("-inf"), 2, in_content=False)
w.close()
`);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(problems, []);
  assert.deepEqual(points, [
    { loss: NaN, grad_norm: Infinity, kl: -Infinity, step: 1 },
    { 'value/loss': NaN, 'policy/entropy': -Infinity, step: 2 },
  ]);
  assert.ok(Number.isNaN(points[0].loss) && Number.isNaN(points[1]['value/loss']));
});

test('an empty event file and one cut inside its first header are no problem; the other files are read', async () => {
  const out = tensorboardFixture(`
w = EventFileWriter(os.path.join(out, "runs", "live"))
w.add_scalar("train/loss", 0.5, 1)
w.close()
open(os.path.join(out, "events.out.tfevents.1764500000.node1.1.1"), "wb").close()
open(os.path.join(out, "events.out.tfevents.1764500000.node1.1.2"), "wb").write(b"\\x10\\x00\\x00")
`);
  assert.equal((await findEventFiles(out)).length, 3);
  const { points, problems } = await readTensorboardScalars(out);
  assert.deepEqual(problems, []);
  assert.deepEqual(points, [{ loss: 0.5, step: 1 }]);
});

test('a folder without event files: no points, no problems; a missing folder: an error naming it', async () => {
  const out = tensorboardFixture(`
os.makedirs(os.path.join(out, "checkpoint-10"))
json.dump({"log_history": []}, open(os.path.join(out, "checkpoint-10", "trainer_state.json"), "w"))
`);
  mkdirSync(path.join(out, 'runs'));
  const result = await readTensorboardScalars(out);
  assert.deepEqual([result.points, result.problems, result.changed], [[], [], false]);
  const missing = path.join(out, 'no-such-folder');
  await assert.rejects(readTensorboardScalars(missing), (error: Error) => error.message.includes(missing));
});

test("metricNameOfTag undoes transformers' rewrite_logs and keeps other tags", () => {
  assert.equal(metricNameOfTag('train/loss'), 'loss');
  assert.equal(metricNameOfTag('train/objective/kl'), 'objective/kl');
  assert.equal(metricNameOfTag('train/train_runtime'), 'train_runtime');
  assert.equal(metricNameOfTag('eval/loss'), 'eval_loss');
  assert.equal(metricNameOfTag('eval/objective/kl'), 'eval_objective/kl');
  assert.equal(metricNameOfTag('test/accuracy'), 'test_accuracy');
  assert.equal(metricNameOfTag('policy/kl'), 'policy/kl');
  assert.equal(metricNameOfTag('train/'), 'train/');
});
