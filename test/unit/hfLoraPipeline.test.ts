/**
 * LoRA through the real pipeline from a SmolLM2-shaped and a GPT-2-shaped folder (random weights, a real tokenizer):
 * SFT (lora) → preferences (simulated annotator) → reward model (lora) → PPO (lora), and DPO (lora) from the SFT,
 * on the default engine (ONNX Runtime). Each LoRA stage's checkpoint is a PEFT adapter folder naming its base, never a
 * copy of the base weights; the base folder's tensors never change; traces carry the folder's token texts; the
 * exported PPO checkpoint computes the merged model's logits.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '../../src/shared/safetensors';
import { decodeTrace, type PpoTraceRow } from '../../src/shared/traceFormat';
import { exportCheckpoint } from '../../src/trainer/onnx/exportModel';
import { OnnxCausalLm } from '../../src/trainer/onnx/onnxCausalLm';
import { traceFile } from '../../src/trainer/run/traceWriter';
import { HfTokenizerAdapter } from '../../src/trainer/tokenizer';
import { readModelSource } from '../../src/trainer/checkpoint/modelLoading';
import { runPipeline } from '../../src/trainer/pipeline';
import { peftPrefix } from '../../src/trainer/lora/peftAdapter';
import { twinLogits, twinUnavailable } from '../fixtures/hf/hfTwin';
import { writePretrainedFolder, type PretrainedShape } from '../fixtures/hf/pretrainedFolders';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
const lora = { r: 4, alpha: 8, dropout: 0 };
const blockSize = 48;

function pipelineConfig(shape: PretrainedShape): Record<string, unknown> {
  return {
    name: `lora-${shape}`,
    seed: 5,
    model: { from: shape, block_size: blockSize },
    stages: [
      {
        type: 'sft',
        dataset: { source: 'demo', num_examples: 64 },
        learning_rate: 0.01,
        max_steps: 2,
        per_device_train_batch_size: 4,
        warmup_steps: 0,
        eval_steps: 2,
        save_steps: 2,
        lora,
      },
      {
        type: 'preferences',
        policy: 'sft',
        prompts: { source: 'demo' },
        num_prompts: 8,
        completions_per_prompt: 2,
        max_new_tokens: 6,
      },
      {
        type: 'reward',
        init_from: 'sft',
        preferences: 'preferences',
        num_train_epochs: 1,
        per_device_train_batch_size: 4,
        eval_steps: 1,
        save_steps: 1,
        lora,
      },
      {
        type: 'ppo',
        policy: 'sft',
        reward_model: 'reward',
        prompts: { source: 'demo' },
        total_episodes: 8,
        batch_size: 4,
        num_mini_batches: 1,
        num_ppo_epochs: 1,
        max_new_tokens: 6,
        eval_steps: 2,
        num_eval_prompts: 4,
        save_steps: 2,
        lora,
      },
      {
        type: 'dpo',
        policy: 'sft',
        preferences: 'preferences',
        max_steps: 2,
        warmup_steps: 0,
        per_device_train_batch_size: 2,
        eval_steps: 2,
        save_steps: 2,
        num_eval_prompts: 2,
        lora,
      },
    ],
  };
}

const tensorsOf = (file: string) => decodeSafetensors(new Uint8Array(readFileSync(file))).tensors;

for (const shape of ['smollm2', 'gpt2'] as const)
  test(`SFT → preferences → reward → PPO and DPO, all with LoRA, from a ${shape}-shaped folder`, { skip }, async () => {
    const dir = temporaryFolder('hf-lora-pipeline-');
    const base = await writePretrainedFolder(shape, path.join(dir, shape));
    const baseBytes = readFileSync(path.join(base, 'model.safetensors'));
    const configFile = path.join(dir, 'run.rlhf.json');
    writeFileSync(configFile, JSON.stringify(pipelineConfig(shape), null, 2));
    const logs: string[] = [];
    const { runs } = await runPipeline(
      { configFile, runsRoot: path.join(dir, '.rlhf', 'runs') },
      { log: (level, message) => logs.push(`${level}: ${message}`) },
    );
    assert.equal(runs.length, 5, logs.join('\n'));
    assert.deepEqual(readFileSync(path.join(base, 'model.safetensors')), baseBytes, 'the base weights never change');

    const [sft, , reward, ppo, dpo] = runs.map((run) => run.runDir);
    for (const runDir of [sft, reward, ppo, dpo]) {
      const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(runJson.status, 'completed', logs.join('\n'));
      const checkpoint = path.join(runDir, runJson.last_checkpoint as string);
      const adapterConfig = JSON.parse(readFileSync(path.join(checkpoint, 'adapter_config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.equal(adapterConfig.peft_type, 'LORA');
      assert.equal(adapterConfig.r, lora.r);
      assert.ok(path.isAbsolute(adapterConfig.base_model_name_or_path as string));
      const names = Object.keys(tensorsOf(path.join(checkpoint, 'adapter_model.safetensors')));
      assert.ok(names.length > 0 && names.every((name) => name.startsWith(peftPrefix)), names.join(', '));
      assert.ok(names.some((name) => name.endsWith('.lora_A.weight')));
      // No copy of the base weights: model.safetensors, where present, is TRL's value head alone.
      const modelFile = path.join(checkpoint, 'model.safetensors');
      if (existsSync(modelFile))
        assert.deepEqual(Object.keys(tensorsOf(modelFile)).sort(), ['v_head.summary.bias', 'v_head.summary.weight']);
      for (const file of ['optimizer.safetensors', 'trainer_state.json', 'tokenizer.json', 'config.json'])
        assert.ok(existsSync(path.join(checkpoint, file)), `${checkpoint}: ${file}`);
      const moments = Object.keys(tensorsOf(path.join(checkpoint, 'optimizer.safetensors')));
      assert.ok(
        moments.every((name) => /lora_[AB]|v_head|score/.test(name)),
        moments.join(', '),
      );
      const metrics = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
      assert.ok(metrics.length > 0);
    }
    assert.ok(existsSync(path.join(ppo, 'checkpoints', 'step-2', 'model.safetensors')), "the policy's value head");
    const rewardAdapter = tensorsOf(
      path.join(reward, 'checkpoints', readdirSync(path.join(reward, 'checkpoints'))[0], 'adapter_model.safetensors'),
    );
    assert.ok(`${peftPrefix}score.weight` in rewardAdapter, 'the score head as modules_to_save');
    // The later stages' base is the SFT checkpoint, read merged.
    const sftLast = JSON.parse(readFileSync(path.join(sft, 'run.json'), 'utf8')) as { last_checkpoint: string };
    const merged = await readModelSource(path.join(sft, sftLast.last_checkpoint), { seed: 1 });
    assert.equal(merged.lora, undefined);
    assert.ok(![...merged.weights.keys()].some((name) => name.includes('lora_')));
    assert.ok(
      logs.some((line) => line.includes('reference = the policy with its LoRA adapters off')),
      logs.join('\n'),
    );

    // Traces: the PPO rollouts' token texts are the folder tokenizer's.
    const tokenizer = await HfTokenizerAdapter.load(base);
    const trace = decodeTrace(new Uint8Array(readFileSync(traceFile(ppo, 1)))).rows as PpoTraceRow[];
    assert.ok(trace.length > 0);
    for (const row of trace) {
      assert.equal(row.tokens.length, row.token_ids.length);
      assert.deepEqual(
        row.tokens,
        row.token_ids.map((id) => tokenizer.tokenText(id)),
      );
      assert.ok(
        row.tokens.some((text) => /[a-z]/.test(text)),
        'texts, not ids',
      );
    }

    // The exported PPO checkpoint computes the merged model: base + SFT adapters, then + PPO adapters.
    const ppoCheckpoint = path.join(ppo, 'checkpoints', 'step-2');
    const exported = await exportCheckpoint(ppoCheckpoint, path.join(dir, 'ppo-onnx'));
    assert.ok(exported.mergedWeights.length > 0);
    const mergedPolicy = await readModelSource(ppoCheckpoint, { seed: 1 });
    const mergedFolder = path.join(dir, 'merged');
    mkdirSync(mergedFolder);
    // The merged model's config: the base's, its context the run's (a GPT-2 keeps block_size position rows).
    const mergedConfig = JSON.parse(readFileSync(path.join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
    if (shape === 'gpt2') Object.assign(mergedConfig, { n_positions: blockSize, n_ctx: blockSize });
    writeFileSync(path.join(mergedFolder, 'config.json'), JSON.stringify(mergedConfig));
    const trunk: Record<string, SafetensorsTensor> = {};
    for (const [name, { shape, data }] of mergedPolicy.weights)
      if (!name.startsWith('v_head.')) trunk[name] = { dtype: 'F32', shape, data };
    writeFileSync(path.join(mergedFolder, 'model.safetensors'), encodeSafetensors(trunk, { format: 'pt' }));
    const ids = [tokenizer.encode('the film was', { bos: true })];
    const expected = twinLogits(mergedFolder, ids).logits;
    const session = await OnnxCausalLm.fromFolder(exported.outDir);
    const { logits } = await session.forward({ batch: 1, length: ids[0].length, ids: ids[0] });
    assert.ok(maxAbsDiff(logits, expected) < logitTolerance, `exported vs merged: ${maxAbsDiff(logits, expected)}`);
    const baseLogits = twinLogits(base, ids).logits;
    assert.ok(maxAbsDiff(baseLogits, expected) > logitTolerance, 'the adapters moved the model');
    await session.release();

    // The run folder moves with its base: the checkpoints find it relative to themselves (rlhf_lens.lora_base).
    const moved = `${dir}-moved`;
    renameSync(dir, moved);
    const relocated = path.join(moved, path.relative(dir, ppoCheckpoint));
    const reread = await readModelSource(relocated, { seed: 1 });
    assert.equal(reread.weights.size, mergedPolicy.weights.size);
    for (const [name, tensor] of mergedPolicy.weights)
      assert.deepEqual(reread.weights.get(name)?.data, tensor.data, name);
  });

const logitTolerance = 1e-4;
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
};
