/**
 * A Hugging Face gpt2 folder as the run's model (`"model": {"from": …}`): the SFT stage starts from its weights
 * and tokenizer instead of a fresh GPT and a trained BPE, runs through the real pipeline with traces and
 * checkpoints, and its checkpoint is a gpt2 folder with the source's tokenizer files that loads back.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { HfTokenizerAdapter } from '../../src/trainer/tokenizer';
import { isLlamaConfig } from '../../src/trainer/model/causalLmConfig';
import { runPipeline } from '../../src/trainer/pipeline';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
const steps = 3;
const blockSize = 32;
const folderPositions = 64;

test(
  'SFT from a gpt2 folder (model.from) runs end to end and checkpoints a gpt2 folder that loads back',
  { skip },
  async () => {
    const dir = temporaryFolder('hf-stages-');
    const source = path.join(dir, 'gpt2-tiny');
    writeHfFolder({
      arch: 'gpt2',
      vocab: 320,
      hidden: 16,
      heads: 2,
      layers: 2,
      maxPositions: folderPositions,
      out: source,
    });
    const bpe = new BpeTokenizer(
      trainBpe(['the film was great and the cast was wonderful. '.repeat(30)], { vocabSize: 300 }),
    );
    await bpe.save(source);
    const config = {
      name: 'from-gpt2',
      seed: 3,
      backend: 'wasm',
      model: { from: 'gpt2-tiny', block_size: blockSize },
      stages: [
        {
          type: 'sft',
          dataset: { source: 'demo', num_examples: 200 },
          learning_rate: 0.001,
          max_steps: steps,
          per_device_train_batch_size: 4,
          warmup_steps: 1,
          eval_steps: steps,
          save_steps: steps,
          logging_steps: 1,
        },
      ],
    };
    const configFile = path.join(dir, 'run.rlhf.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const logs: string[] = [];
    const { runs } = await runPipeline(
      { configFile, runsRoot: path.join(dir, '.rlhf', 'runs') },
      { log: (level, message) => logs.push(`${level}: ${message}`) },
    );
    const runDir = runs[0].runDir;
    const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(runJson.status, 'completed', logs.join('\n'));
    assert.ok(
      logs.some((line) => line.includes('(model.from)')),
      'the stage says where it started',
    );
    assert.ok(!logs.some((line) => line.includes('trained a byte-level BPE')), 'no tokenizer is trained');
    const metrics = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(metrics.length >= steps, true);
    assert.ok(
      metrics.every((line) => Number.isFinite((JSON.parse(line) as Record<string, number>)['loss/train'] ?? 0)),
    );

    const checkpoint = path.join(runDir, 'checkpoints', `step-${steps}`);
    const json = JSON.parse(readFileSync(path.join(checkpoint, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([json.model_type, json.n_positions, json.vocab_size], ['gpt2', blockSize, 320]);
    assert.deepEqual(json.rlhf_lens, { heads: [], block_size: blockSize, tokenizer: 'hf' });
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      assert.ok(existsSync(path.join(checkpoint, name)), name);
      assert.deepEqual(readFileSync(path.join(checkpoint, name)), readFileSync(path.join(source, name)), name);
    }
    const loaded = await loadCheckpoint(checkpoint);
    assert.ok(!isLlamaConfig(loaded.config.model));
    assert.equal(loaded.config.model.block_size, blockSize);
    assert.deepEqual(loaded.weights.get('transformer.wpe.weight')?.shape, [blockSize, 16]);
    assert.ok(loaded.tokenizer instanceof HfTokenizerAdapter);
    assert.deepEqual(loaded.tokenizer.encode('the film'), bpe.encode('the film'));
    assert.equal(loaded.trainerState.global_step, steps);
  },
);
