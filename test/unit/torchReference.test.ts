// The benches' PyTorch yardstick, the parts that need no torch: the JSON-lines replies of
// bench/torch/reference.py, the weights file it reads (our safetensors), and the median/min/max of rounds.
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseReply, spread, writeWeights } from '../../bench/torch/torchReference';
import { decodeSafetensors } from '../../src/shared/safetensors';

test('a reply line parses into its id, status and results', () => {
  assert.deepEqual(parseReply('{"id": 3, "ok": true, "ms": 12.5}'), { id: 3, ok: true, ms: 12.5 });
  assert.deepEqual(parseReply('{"id": 4, "ok": false, "error": "KeyError: \'ppo\'"}'), {
    id: 4,
    ok: false,
    error: "KeyError: 'ppo'",
  });
});

test('lines that are not replies are refused, naming the line', () => {
  assert.throws(() => parseReply('Traceback (most recent call last):'), SyntaxError);
  assert.throws(() => parseReply('[1, 2]'), /not a reply of the PyTorch reference: \[1, 2\]/);
  assert.throws(() => parseReply('{"ok": true}'), /not a reply/);
  assert.throws(() => parseReply('{"id": 1, "ms": 3}'), /reply without "ok"/);
});

test('the weights file holds every weight by name, shape and float32 values', () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'torch-reference-')), 'w.safetensors');
  const weights = new Map([
    ['transformer.wte.weight', { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6.5]) }],
    ['transformer.ln_f.bias', { shape: [3], data: new Float32Array([-0.25, 0, 1e-7]) }],
  ]);
  const decoded = decodeSafetensors(new Uint8Array(readFileSync(writeWeights(file, weights)))).tensors;
  assert.deepEqual(Object.keys(decoded).sort(), [...weights.keys()].sort());
  for (const [name, { shape, data }] of weights) {
    assert.equal(decoded[name].dtype, 'F32');
    assert.deepEqual(decoded[name].shape, shape);
    assert.deepEqual(decoded[name].data, data);
  }
});

test('rounds summarise as median, min and max', () => {
  assert.deepEqual(spread([5, 1, 3]), { median: 3, min: 1, max: 5 });
  assert.deepEqual(spread([4, 1, 2, 10]), { median: 3, min: 1, max: 10 });
});
