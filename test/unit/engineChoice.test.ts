/**
 * Which engine a run trains on: a pinned config wins, "auto" follows RLHF_LENS_ENGINE (the editor's
 * rlhf.defaultEngine) and otherwise means ONNX Runtime; the factory makes that engine; what a run records
 * as its backend is the engine's (ONNX Runtime: the CPU execution provider and its threads, from
 * RLHF_LENS_ORT_THREADS or the measured default of 1).
 */
import * as assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { chooseOrtProvider } from '../../src/trainer/engine/onnxruntime/ortProvider';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import {
  decodeSessionOptions,
  defaultIntraOpThreads,
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
  // The provider this machine gives (ortProvider.ts: webgpu where the EP finds an adapter, else cpu and why).
  const provider = await chooseOrtProvider();
  assert.equal(onnxBackend.name, provider.label);
  // Whatever RLHF_LENS_ORT_THREADS says in this process, the reason names the provider, why, and the threads.
  const threads = onnxThreadSetting();
  const providerName = provider.name === 'webgpu' ? 'webgpu' : 'CPU';
  assert.equal(
    onnxBackend.reason,
    `onnxruntime-node's ${providerName} execution provider (${provider.reason}), ` +
      `${threads.description} for training, 1 for sampling: ${threads.reason}`,
  );
  const tfjs = await createChosenEngine(backend, 'tfjs');
  assert.equal(tfjs.name, 'tfjs');
  assert.deepEqual(runBackend(tfjs, backend), { name: 'wasm', reason: backend.reason });
});

test('ONNX Runtime threads: one per core, not spinning, unless RLHF_LENS_ORT_THREADS; 0: onnxruntime’s', () => {
  const cores = availableParallelism();
  assert.equal(defaultIntraOpThreads(), cores);
  const withoutArena = { enableCpuMemArena: false };
  const withoutSpinning = { extra: { session: { intra_op: { allow_spinning: '0' } } } };
  const threads = (count: number) => ({
    intraOpNumThreads: count,
    interOpNumThreads: 1,
    ...withoutArena,
    ...(count > 1 ? withoutSpinning : {}),
  });
  const byDefault = onnxThreadSetting({});
  assert.deepEqual(byDefault.sessionOptions, threads(cores));
  assert.equal(byDefault.description, cores === 1 ? '1 intra-op thread' : `${cores} intra-op threads (not spinning)`);
  assert.match(byDefault.reason, /one per core, not spinning \(RLHF_LENS_ORT_THREADS unset\)/);
  const four = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: ' 4 ' });
  assert.deepEqual(four.sessionOptions, threads(4));
  assert.equal(four.description, '4 intra-op threads (not spinning)');
  assert.equal(four.reason, 'RLHF_LENS_ORT_THREADS is "4"');
  const one = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: '1' });
  assert.deepEqual(one.sessionOptions, threads(1));
  assert.equal(one.description, '1 intra-op thread');
  const ortDefault = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: '0' });
  assert.deepEqual(ortDefault.sessionOptions, withoutArena);
  assert.match(ortDefault.description, /onnxruntime's default threads/);
  for (const unusable of ['two', '-1', '1.5']) {
    const ignored = onnxThreadSetting({ [ortThreadsEnvironmentVariable]: unusable });
    assert.deepEqual(ignored.sessionOptions, byDefault.sessionOptions, unusable);
    assert.match(ignored.reason, new RegExp(`"${unusable.replace('.', '\\.')}" is not a thread count`));
  }
  // Decode sessions: one thread whatever the setting.
  assert.deepEqual(decodeSessionOptions, threads(1));
});
