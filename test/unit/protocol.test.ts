import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDashboardMessage, parseHostMessage, parseTrainerMessage } from '../../src/shared/protocol';

test('dashboard messages: known types pass, anything else is refused', () => {
  assert.deepEqual(parseDashboardMessage({ type: 'webview/ready' }), { type: 'webview/ready' });
  assert.deepEqual(parseDashboardMessage({ type: 'dashboard/refresh' }), { type: 'dashboard/refresh' });
  for (const bad of [
    null,
    'webview/ready',
    [],
    {},
    { type: 'dashboard/delete' },
    { type: 'dashboard/refresh', path: '/etc' },
    { type: 7 },
  ]) {
    assert.equal(parseDashboardMessage(bad), undefined, JSON.stringify(bad));
  }
});

test('trainer messages are validated field by field', () => {
  assert.deepEqual(parseTrainerMessage({ type: 'trainer/ready', pid: 12, nodeVersion: 'v20' }), {
    type: 'trainer/ready',
    pid: 12,
    nodeVersion: 'v20',
  });
  assert.deepEqual(parseTrainerMessage({ type: 'run/log', level: 'warn', message: 'x' }), {
    type: 'run/log',
    level: 'warn',
    message: 'x',
  });
  assert.deepEqual(parseTrainerMessage({ type: 'trainer/exit', code: 0, reason: 'done' }), {
    type: 'trainer/exit',
    code: 0,
    reason: 'done',
  });
  assert.equal(parseTrainerMessage({ type: 'trainer/ready', pid: '12', nodeVersion: 'v20' }), undefined);
  assert.equal(parseTrainerMessage({ type: 'run/log', level: 'loud', message: 'x' }), undefined);
  assert.equal(parseTrainerMessage({ type: 'run/error', message: 'x', detail: 3 }), undefined);
  assert.equal(parseTrainerMessage({ type: 'run/unknown' }), undefined);
});

test('control messages are validated in the trainer', () => {
  assert.deepEqual(parseHostMessage({ type: 'control/stop' }), { type: 'control/stop' });
  assert.deepEqual(parseHostMessage({ type: 'control/ping', id: 3 }), { type: 'control/ping', id: 3 });
  assert.equal(parseHostMessage({ type: 'control/ping' }), undefined);
  assert.equal(parseHostMessage({ type: 'control/format-disk' }), undefined);
});

test('run/started names the engine and the backend, each with its reason, and nothing is optional', () => {
  const started = {
    type: 'run/started',
    runId: 'demo-sft-1',
    runDir: '/runs/demo-sft-1',
    stage: 'sft',
    backend: 'wasm',
    backendReason: 'the best available',
    engine: 'onnxruntime',
    engineReason: '"engine" is "auto"',
    maxSteps: 250,
  };
  assert.deepEqual(parseTrainerMessage(started), started);
  for (const key of ['engine', 'engineReason', 'backend', 'backendReason', 'maxSteps']) {
    const { [key]: _dropped, ...rest } = started as Record<string, unknown>;
    assert.equal(parseTrainerMessage(rest), undefined, `without ${key}`);
  }
  assert.equal(parseTrainerMessage({ ...started, engine: 1 }), undefined);
  assert.equal(parseTrainerMessage({ ...started, engineReason: null }), undefined);
});
