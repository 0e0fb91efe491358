// The memory estimate against reality for a Llama-family model: a random-weight folder in transformers' layout
// (grouped-query attention, SwiGLU, BF16 files widened on load) trained two full fine-tuning steps by the tfjs
// engine on wasm in a child process; its wasm heap (a fresh heap only grows: the steps' peak) is within the GPT
// calibration's band of the estimate, and the model has the parameters the estimate counts.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { readHfConfig, type LlamaFamilyArchitecture } from '../../src/trainer/hf';
import { estimateModelMemory, transformerParameters } from '../../src/trainer/memoryGuard';
import { llamaConfig } from '../../src/trainer/model/causalLmConfig';
import { twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';

const skip = twinUnavailable();
const workDir = mkdtempSync(path.join(tmpdir(), 'memory-llama-'));
after(() => rmSync(workDir, { recursive: true, force: true }));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

test(
  'calibration: a Llama-family training step on wasm grows the heap to 0.6–1.6× of its estimate',
  { skip },
  async (t) => {
    const folder = path.join(workDir, 'llama');
    writeHfFolder({
      arch: 'llama',
      out: folder,
      dtype: 'bf16',
      vocab: 4096,
      hidden: 256,
      layers: 4,
      heads: 8,
      kvHeads: 2,
      intermediate: 688,
      maxPositions: 256,
      tie: true,
    });
    const batch = 8;
    const length = 128;
    const probe = path.join(__dirname, 'memoryGuardLlamaProbe.ts');
    const request = JSON.stringify({ folder, backend: 'wasm', batch, length });
    const output = execFileSync(process.execPath, ['--import', 'tsx', probe, request], { encoding: 'utf8' });
    const { peak, heap, parameters } = JSON.parse(output) as { peak: number; heap: number; parameters: number };
    const architecture = (await readHfConfig(folder)) as LlamaFamilyArchitecture;
    const config = llamaConfig(architecture, { blockSize: length });
    assert.equal(parameters, transformerParameters(config));
    const estimate = estimateModelMemory({
      config,
      stage: 'sft',
      batchSize: batch,
      engine: 'tfjs',
      backend: 'wasm',
      freeBytes: 2 ** 40,
    }).bytes;
    t.diagnostic(`estimate ${mib(estimate)} MiB, wasm heap ${mib(heap)} MiB, RSS growth ${mib(peak)} MiB`);
    assert.ok(estimate / heap > 0.6 && estimate / heap < 1.6, `estimate ${mib(estimate)}, heap ${mib(heap)} MiB`);
  },
);
