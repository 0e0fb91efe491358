/**
 * A transformers.js-style ONNX folder as the Rank view's source of completions: the trainer's
 * SampleServer, given an exported folder instead of a checkpoint, samples on onnxruntime-node — and
 * with the same seed writes the same completions as it does from the checkpoint on tfjs.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, test } from 'node:test';
import type { SampleRequestMessage } from '../../src/shared/protocol';
import { SampleServer } from '../../src/trainer/completions/sampleServer';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { exportCheckpoint } from '../../src/trainer/onnx/exportModel';
import { tinySft, workDir } from './onnxFixtures';

before(async () => {
  await selectBackend('wasm');
});

test("the Rank view's sampler serves completions from an ONNX folder, the same as from its checkpoint", async () => {
  const checkpoint = await tinySft();
  const folder = (await exportCheckpoint(checkpoint, path.join(workDir, 'rank-source'))).outDir;
  const server = new SampleServer();
  try {
    const request = (id: number, dir: string): SampleRequestMessage => ({
      type: 'sample/request',
      id,
      checkpoint: dir,
      prompt: 'The acting was',
      numSamples: 3,
      temperature: 1,
      topP: 0.95,
      maxNewTokens: 12,
      seed: 9,
    });
    const fromOnnx = await server.sample(request(1, folder));
    assert.equal(fromOnnx.backend, 'onnxruntime-node');
    assert.equal(fromOnnx.completions.length, 3);
    assert.ok(fromOnnx.tokenCounts.every((count) => count >= 1 && count <= 12));
    const again = await server.sample(request(2, folder));
    assert.ok(
      again.loadMs < 50,
      `the ONNX session stays loaded between requests (second load ${again.loadMs} ms, first ${fromOnnx.loadMs} ms)`,
    );
    const fromCheckpoint = await server.sample(request(3, checkpoint));
    assert.notEqual(fromCheckpoint.backend, 'onnxruntime-node');
    assert.deepEqual(fromOnnx.completions, fromCheckpoint.completions, 'same weights and seed, same completions');
  } finally {
    server.dispose();
  }
});
