/**
 * Which engine a run trains on: a pinned config wins, "auto" follows RLHF_LENS_ENGINE (the editor's
 * rlhf.defaultEngine) and otherwise means ONNX Runtime; the factory makes that engine; what a run records
 * as its backend is the engine's (ONNX Runtime: the CPU execution provider and its threads, from
 * RLHF_LENS_ORT_THREADS or the measured default of 1).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import {
  DEFAULT_INTRA_OP_THREADS,
  onnxThreadSetting,
  ortThreadsEnvironmentVariable,
} from '../../src/trainer/engine/onnxruntime/onnxThreads';
import {
  chooseEngine,
  createChosenEngine,
  engineEnvironmentVariable,
  runBackend,
} from '../../src/trainer/engineFactory';

test('"auto" picks ONNX Runtime, or the engine RLHF_LENS_ENGINE names; a pinned engine wins', () => {
  assert.equal(chooseEngine('auto', {}).name, 'onnxruntime');
  assert.equal(chooseEngine(undefined, {}).name, 'onnxruntime');
  assert.match(chooseEngine('auto', {}).reason, /"auto"/);
  const fromSetting = chooseEngine('auto', { [engineEnvironmentVariable]: 'tfjs' });
  assert.equal(fromSetting.name, 'tfjs');
  assert.match(fromSetting.reason, /rlhf\.defaultEngine/);
  assert.equal(chooseEngine('auto', { [engineEnvironmentVariable]: 'pytorch' }).name, 'onnxruntime');
  const pinned = chooseEngine('tfjs', { [engineEnvironmentVariable]: 'onnxruntime' });
  assert.equal(pinned.name, 'tfjs');
  assert.match(pinned.reason, /pins/);
  assert.equal(chooseEngine('onnxruntime', { [engineEnvironmentVariable]: 'tfjs' }).name, 'onnxruntime');
});

test('the factory makes the chosen engine; the backend recorded is the one the engine computes on', async () => {
  const backend = await selectBackend('wasm');
  const onnx = await createChosenEngine(backend, 'onnxruntime');
  assert.equal(onnx.name, 'onnxruntime');
  const onnxBackend = runBackend(onnx, backend);
  assert.equal(onnxBackend.name, 'cpu');
  // Whatever RLHF_LENS_ORT_THREADS says in this process, the reason names the provider and the threads.
  const threads = onnxThreadSetting();
  assert.equal(
    onnxBackend.reason,
    `onnxruntime-node's CPU execution provider, ${threads.description}: ${threads.reason}`,
  );
  const tfjs = await createChosenEngine(backend, 'tfjs');
  assert.equal(tfjs.name, 'tfjs');
  assert.deepEqual(runBackend(tfjs, backend), { name: 'wasm', reason: backend.reason });
});

test('ONNX Runtime threads: 1 intra-op thread by default, RLHF_LENS_ORT_THREADS overrides, 0: onnxruntime’s', () => {
  assert.equal(DEFAULT_INTRA_OP_THREADS, 1);
  const byDefault = onnxThreadSetting({});
  const withoutArena = { enableCpuMemArena: false };
  assert.deepEqual(byDefault.sessionOptions, { intraOpNumThreads: 1, interOpNumThreads: 1, ...withoutArena });
  assert.equal(byDefault.description, '1 intra-op thread');
  assert.match(byDefault.reason, /RLHF_LENS_ORT_THREADS unset/);
  const four = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: ' 4 ' });
  assert.deepEqual(four.sessionOptions, { intraOpNumThreads: 4, interOpNumThreads: 1, ...withoutArena });
  assert.equal(four.description, '4 intra-op threads');
  assert.equal(four.reason, 'RLHF_LENS_ORT_THREADS is "4"');
  const ortDefault = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: '0' });
  assert.deepEqual(ortDefault.sessionOptions, withoutArena);
  assert.match(ortDefault.description, /onnxruntime's default threads/);
  for (const unusable of ['two', '-1', '1.5']) {
    const ignored = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: unusable });
    assert.deepEqual(ignored.sessionOptions, byDefault.sessionOptions, unusable);
    assert.match(ignored.reason, new RegExp(`"${unusable.replace('.', '\\.')}" is not a thread count`));
  }
});
