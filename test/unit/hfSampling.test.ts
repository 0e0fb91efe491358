/**
 * Everything that samples or reads a model, on Hugging Face folders of both families (a SmolLM2-shaped and a
 * GPT-2-shaped one, random weights, real tokenizers): the Rank view's sampler (SampleServer, here in-process),
 * `rlhf-lens sample`, and `rlhf-lens inspect` over the folders' ONNX exports. The sampled ids are checked against an
 * independent greedy decode: the PyTorch twin's argmax, step by step.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeTrace } from '../../src/shared/traceFormat';
import { SampleServer } from '../../src/trainer/completions/sampleServer';
import { sampleFromCheckpoint } from '../../src/trainer/completions/sampleCommand';
import { encodePrompt } from '../../src/trainer/data/chatTokens';
import { exportHfOnnx } from '../../src/trainer/onnx/hfOnnxExport';
import { runInspection } from '../../src/trainer/onnx/inspectRun';
import { OnnxCompletionSource } from '../../src/trainer/onnx/onnxCompletions';
import { HfTokenizerAdapter, type Tokenizer } from '../../src/trainer/tokenizer';
import { twinLogits, twinUnavailable } from '../fixtures/hf/hfTwin';
import { writePretrainedFolder, type PretrainedShape } from '../fixtures/hf/pretrainedFolders';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
const shapes: readonly PretrainedShape[] = ['smollm2', 'gpt2'];
const prompt = 'the film was';
const newTokens = 5;

/** The twin's greedy continuation of `ids` (argmax of the last position, `count` times). */
function twinGreedy(folder: string, ids: readonly number[], count: number): number[] {
  const sequence = [...ids];
  for (let i = 0; i < count; i++) {
    const { shape, logits } = twinLogits(folder, [sequence]);
    const vocab = shape[2];
    const last = logits.subarray((sequence.length - 1) * vocab, sequence.length * vocab);
    sequence.push(last.indexOf(Math.max(...last)));
  }
  return sequence.slice(ids.length);
}

async function folderOf(shape: PretrainedShape): Promise<{ folder: string; tokenizer: Tokenizer; greedy: number[] }> {
  const folder = await writePretrainedFolder(shape, path.join(temporaryFolder(`hf-sampling-${shape}-`), shape));
  const tokenizer = await HfTokenizerAdapter.load(folder);
  return { folder, tokenizer, greedy: twinGreedy(folder, encodePrompt(tokenizer, prompt), newTokens) };
}

const greedyRequest = (checkpoint: string) => ({
  type: 'sample/request' as const,
  id: 1,
  checkpoint,
  prompt,
  numSamples: 2,
  temperature: 0,
  topP: 1,
  maxNewTokens: newTokens,
  seed: 1,
  stopAtEos: false,
});

for (const shape of shapes) {
  test(
    `${shape}-shaped folder: the Rank view's sampler and rlhf-lens sample decode as the twin`,
    { skip },
    async () => {
      const { folder, tokenizer, greedy } = await folderOf(shape);
      const expected = tokenizer.decode(greedy, { skipSpecialTokens: true });
      const server = new SampleServer();
      try {
        const result = await server.sample(greedyRequest(folder));
        assert.deepEqual(result.completions, [expected, expected], 'greedy: the twin’s argmax tokens');
        assert.deepEqual(result.tokenCounts, [newTokens, newTokens]);
      } finally {
        server.dispose();
      }
      let printed = '';
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string) => {
        printed += chunk;
        return true;
      }) as typeof process.stdout.write;
      try {
        const args = [folder, '--prompt', prompt, '--temperature', '0', '--max-new-tokens', String(newTokens)];
        assert.equal(await sampleFromCheckpoint([...args, '--backend', 'wasm']), 0);
      } finally {
        process.stdout.write = write;
      }
      assert.equal(printed, `${prompt}${expected}\n`);
    },
  );

  test(
    `${shape}-shaped folder: its ONNX export samples and inspects with the folder's tokenizer`,
    { skip },
    async () => {
      const { folder, tokenizer, greedy } = await folderOf(shape);
      const onnx = (await exportHfOnnx(folder, path.join(path.dirname(folder), 'onnx'))).outDir;
      const source = await OnnxCompletionSource.load(onnx);
      try {
        const { sequences, texts } = await source.complete(prompt, 1, {
          temperature: 0,
          topK: 0,
          topP: 1,
          maxNewTokens: newTokens,
          seed: 1,
          stopAtEos: false,
        });
        assert.deepEqual(sequences[0].tokens, greedy, "the ONNX export's greedy tokens are the twin's");
        assert.equal(texts[0], tokenizer.decode(greedy, { skipSpecialTokens: true }));
      } finally {
        await source.release();
      }
      const { runDir } = await runInspection({
        policy: onnx,
        reference: onnx,
        name: `inspect-${shape}`,
        runsRoot: path.join(path.dirname(folder), 'runs'),
        steps: 1,
        batchSize: 2,
        klCoef: 0.1,
        klEstimator: 'k1',
        sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: newTokens },
        seed: 3,
      });
      const trace = decodeTrace(new Uint8Array(readFileSync(path.join(runDir, 'traces', 'step-1.arrow'))));
      assert.equal(trace.kind, 'ppo');
      if (trace.kind !== 'ppo') return;
      for (const row of trace.rows) {
        assert.deepEqual(
          row.tokens,
          row.token_ids.map((id) => tokenizer.tokenText(id)),
          "token texts from the folder's tokenizer",
        );
        assert.ok(
          row.kl.every((kl) => Math.abs(kl) < 1e-5),
          'the policy is its own reference',
        );
      }
    },
  );
}
