/**
 * Which engine a run trains on: a pinned config wins, "auto" follows RLHF_LENS_ENGINE (the editor's
 * rlhf.defaultEngine) and otherwise means ONNX Runtime; the factory makes that engine.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { chooseEngine, createChosenEngine, engineEnvironmentVariable } from '../../src/trainer/engineFactory';

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

test('the factory makes the chosen engine', async () => {
  const backend = await selectBackend('wasm');
  assert.equal((await createChosenEngine(backend, 'onnxruntime')).name, 'onnxruntime');
  assert.equal((await createChosenEngine(backend, 'tfjs')).name, 'tfjs');
});
