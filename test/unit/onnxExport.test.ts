/**
 * ONNX export (src/trainer/onnx/): a trained tiny model exported by `exportCheckpoint` and by the
 * `rlhf-lens export` command, loaded with onnxruntime-node (OnnxCausalLm) and with transformers.js,
 * against the tfjs model it came from: logits, value and score heads to 1e-4, the KV-cache graph
 * against full forwards, greedy generation token for token, and errors that name the problem.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import type { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { exportCheckpoint, defaultExportDir } from '../../src/trainer/onnx/exportModel';
import { OnnxCausalLm } from '../../src/trainer/onnx/onnxCausalLm';
import { rewardScoresOnnx } from '../../src/trainer/onnx/onnxScoring';
import { rewardInputs } from '../../src/trainer/data/sequences';
import { generate } from '../../src/trainer/sampling/sampler';
import { BpeTokenizer } from '../../src/trainer/tokenizer';
import { checkpointWithHeads, workDir } from './onnxFixtures';

const tolerance = 1e-4;
const disposables: Gpt[] = [];

before(async () => {
  await selectBackend('wasm');
});
after(() => disposables.forEach((model) => model.dispose()));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** tfjs logits [B, T, V] and v_head values [B, T] of right-aligned equal-length rows. */
async function tfjsForward(model: Gpt, ids: number[][]): Promise<{ logits: Float32Array; values?: Float32Array }> {
  const [logits, values] = tf.tidy(() => {
    const out = model.forward(tf.tensor2d(ids, undefined, 'int32'));
    return model.heads.includes('v_head') ? [out.logits, model.scalarHead('v_head', out.hidden)] : [out.logits];
  });
  const result = {
    logits: (await logits.data()) as Float32Array,
    values: values ? ((await values.data()) as Float32Array) : undefined,
  };
  tf.dispose([logits, values].filter((t) => t !== undefined));
  return result;
}

async function tokenizerOf(dir: string): Promise<BpeTokenizer> {
  return BpeTokenizer.load(dir);
}

test(
  'an exported policy loads in onnxruntime-node and matches tfjs logits and values to 1e-4, ' +
    'with and without the KV cache',
  async () => {
    const { dir, model } = await checkpointWithHeads('policy', ['v_head']);
    disposables.push(model);
    const result = await exportCheckpoint(dir, path.join(workDir, 'exports', 'policy'));
    for (const file of [
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'onnx/model.onnx',
    ])
      assert.ok(existsSync(path.join(result.outDir, file)), file);
    const config = JSON.parse(readFileSync(path.join(result.outDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.model_type, 'gpt2');
    assert.deepEqual(config.rlhf_lens_heads, ['v_head']);

    const tokenizer = await tokenizerOf(result.outDir);
    const texts = ['The film was a quiet', 'I loved every minute of this '];
    const encoded = texts.map((text) => [tokenizer.bosId, ...tokenizer.encode(text)]);
    const length = Math.min(...encoded.map((ids) => ids.length));
    const ids = encoded.map((row) => row.slice(0, length));
    const expected = await tfjsForward(model, ids);

    const lm = await OnnxCausalLm.fromFolder(result.outDir);
    try {
      assert.ok(lm.info.hasCache, 'the exported graph has past_key_values inputs');
      const full = await lm.forward({ batch: 2, length, ids: ids.flat() });
      const logitsDiff = maxAbsDiff(full.logits, expected.logits);
      assert.ok(logitsDiff <= tolerance, `logits differ by ${logitsDiff}`);
      const valuesDiff = maxAbsDiff(full.scalars.values, expected.values as Float32Array);
      assert.ok(valuesDiff <= tolerance, `values differ by ${valuesDiff}`);

      // The same rows through the cache: the first 3 positions, then one position at a time.
      let step = await lm.forward({ batch: 2, length: 3, ids: ids.flatMap((row) => row.slice(0, 3)) });
      const vocab = lm.info.vocabSize;
      for (let t = 3; t < length; t++) {
        step = await lm.forward({ batch: 2, length: 1, ids: ids.map((row) => row[t]), past: step.present });
        for (let b = 0; b < 2; b++) {
          const want = expected.logits.subarray((b * length + t) * vocab, (b * length + t + 1) * vocab);
          const diff = maxAbsDiff(step.logits.subarray(b * vocab, (b + 1) * vocab), want);
          assert.ok(diff <= tolerance, `cached logits at position ${t} differ by ${diff}`);
        }
      }
      assert.equal(step.present?.length, length);
    } finally {
      await lm.release();
    }
  },
);

test('an exported reward model scores like Gpt.score to 1e-4, with last-token and summed pooling', async () => {
  for (const pooling of ['last', 'sum'] as const) {
    const { dir, model } = await checkpointWithHeads(`reward-${pooling}`, ['score'], pooling);
    disposables.push(model);
    const result = await exportCheckpoint(dir, path.join(workDir, 'exports', `reward-${pooling}`));
    const tokenizer = await tokenizerOf(result.outDir);
    const items = ['A dull and tired plot.', 'Wonderful acting, a joy', 'It was fine'].map((text) => {
      const ids = tokenizer.encode(text);
      return { prompt: [tokenizer.bosId, ...ids.slice(0, 2)], response: ids.slice(2) };
    });
    const input = rewardInputs(items, tokenizer.padId);
    const scoreTensor = tf.tidy(() =>
      model.score(tf.tensor2d(input.ids, [input.batchSize, input.length], 'int32'), input.lengths),
    );
    const expected = Array.from(await scoreTensor.data());
    scoreTensor.dispose();
    const lm = await OnnxCausalLm.fromFolder(result.outDir);
    try {
      assert.equal(lm.info.scorePooling, pooling);
      const scores = await rewardScoresOnnx(lm, items, tokenizer.padId);
      const diff = maxAbsDiff(scores, expected);
      assert.ok(diff <= tolerance, `${pooling} scores differ by ${diff}: ${scores} vs ${expected}`);
      assert.ok(
        Math.abs(expected[0] - expected[1]) > 1e-3,
        'the scores differ between texts, so the comparison means something',
      );
    } finally {
      await lm.release();
    }
  }
});

test(
  'transformers.js loads the exported folder, matches ' + 'tfjs logits to 1e-4 and generates the same greedy tokens',
  async () => {
    const { dir, model } = await checkpointWithHeads('policy-tjs', ['v_head']);
    disposables.push(model);
    const root = path.join(workDir, 'tjs-models');
    const result = await exportCheckpoint(dir, path.join(root, 'tiny-policy'));
    const transformers = await import('@huggingface/transformers');
    transformers.env.allowRemoteModels = false;
    transformers.env.localModelPath = `${root}/`;
    const tokenizer = await transformers.AutoTokenizer.from_pretrained('tiny-policy');
    const lm = await transformers.AutoModelForCausalLM.from_pretrained('tiny-policy', { dtype: 'fp32' });
    try {
      const ours = await tokenizerOf(result.outDir);
      const prompt = 'The film was';
      const ids = [ours.bosId, ...ours.encode(prompt)];
      const inputs = tokenizer(`<|bos|>${prompt}`, { add_special_tokens: false });
      assert.deepEqual(
        (inputs.input_ids.tolist() as bigint[][])[0].map(Number),
        ids,
        'transformers.js tokenizes like the trainer',
      );

      const output = await lm(inputs);
      const expected = await tfjsForward(model, [ids]);
      const diff = maxAbsDiff(output.logits.data as Float32Array, expected.logits);
      assert.ok(diff <= tolerance, `transformers.js logits differ from tfjs by ${diff}`);

      const generated = (await lm.generate({ ...inputs, max_new_tokens: 10, do_sample: false })) as {
        tolist(): bigint[][];
      };
      const theirs = generated.tolist()[0].map(Number).slice(ids.length);
      const [greedy] = await generate(model, [ids], {
        temperature: 0,
        topK: 0,
        topP: 1,
        maxNewTokens: 10,
        seed: 1,
        padTokenId: ours.padId,
      });
      assert.deepEqual(theirs, greedy.tokens, 'greedy continuations agree');
    } finally {
      await lm.dispose();
    }
  },
);

test('rlhf-lens export writes the folder for a run directory and names what is wrong with a bad input', async () => {
  const { dir, model } = await checkpointWithHeads('policy-cli', ['v_head']);
  model.dispose();
  // A run folder: its latest checkpoint is exported to <run>/onnx/step-<n>.
  const runDir = path.join(workDir, 'cli-run');
  mkdirSync(path.join(runDir, 'checkpoints'), { recursive: true });
  const checkpointDir = path.join(runDir, 'checkpoints', 'step-3');
  spawnSync('cp', ['-r', dir, checkpointDir]);
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/trainer/main.ts', 'export', ...args], {
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '../..'),
    });
  const ok = cli([runDir]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), defaultExportDir(checkpointDir));
  assert.equal(ok.stdout.trim(), path.join(runDir, 'onnx', 'step-3'));
  assert.ok(existsSync(path.join(runDir, 'onnx', 'step-3', 'onnx', 'model.onnx')));

  const missing = cli([path.join(workDir, 'nowhere')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nowhere is neither a checkpoint \(no model\.safetensors\) nor a run folder/);

  const broken = path.join(workDir, 'broken-onnx');
  mkdirSync(path.join(broken, 'onnx'), { recursive: true });
  writeFileSync(path.join(broken, 'config.json'), '{"model_type": "gpt2", "vocab_size": 10}');
  writeFileSync(path.join(broken, 'onnx', 'model.onnx'), 'not a model');
  await assert.rejects(OnnxCausalLm.fromFolder(broken), /config\.json: field "n_layer" is missing/);
  await assert.rejects(
    OnnxCausalLm.fromFolder(path.join(workDir, 'nowhere')),
    /is not a transformers\.js-style ONNX folder: config\.json is missing/,
  );
});
