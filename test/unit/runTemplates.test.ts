// The "on my model" New Run templates: rendered for a real Hugging Face folder (random GPT-2 and Llama weights in
// transformers' layout, our BPE as tokenizer.json) next to the config, they pass every check the editor runs, start
// every trained stage from the folder with LoRA adapters, and fit the folder's context.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { configFileChecks, readConfigText } from '../../src/shared/configFile';
import {
  modelRunTemplates,
  modelTemplateBlockSize,
  renderModelTemplate,
  runTemplates,
} from '../../src/shared/runTemplates';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { twinUnavailable, writeHfFolder } from '../fixtures/hf/hfTwin';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
const bpe = new BpeTokenizer(trainBpe(['the film was great and the cast was wonderful'], { vocabSize: 270 }));

async function workspaceWithModel(arch: 'gpt2' | 'llama', maxPositions: number): Promise<string> {
  const workspace = temporaryFolder('templates-');
  const folder = path.join(workspace, 'models', `tiny-${arch}`);
  mkdirSync(folder, { recursive: true });
  writeHfFolder({ arch, out: folder, vocab: bpe.vocabSize, hidden: 16, layers: 2, heads: 2, maxPositions });
  await bpe.save(folder, { modelMaxLength: maxPositions });
  return workspace;
}

test('"PPO on my model" and "DPO on my model" are offered after the demo templates', () => {
  assert.deepEqual(
    modelRunTemplates.map((t) => [t.id, t.label]),
    [
      ['ppo-my-model', 'PPO on my model'],
      ['dpo-my-model', 'DPO on my model'],
    ],
  );
  const ids = new Set<string>(runTemplates.map((t) => t.id));
  assert.ok(modelRunTemplates.every((t) => !ids.has(t.id)));
});

test(
  'each template for a gpt2 and a llama folder: no problem, LoRA on every trained stage, the folder relative',
  { skip },
  async () => {
    for (const arch of ['gpt2', 'llama'] as const) {
      const workspace = await workspaceWithModel(arch, 1024);
      const configFile = path.join(workspace, 'run.rlhf.json');
      for (const template of modelRunTemplates) {
        const text = renderModelTemplate(template.id, `mine-${arch}`, `models/tiny-${arch}`, 1024);
        writeFileSync(configFile, text);
        const { config, problems } = readConfigText(text, configFileChecks(configFile));
        assert.deepEqual(
          problems.map((p) => `${p.line}: ${p.severity} ${p.message}`),
          [],
          `${template.id} on ${arch}`,
        );
        assert.ok(config);
        assert.deepEqual(config.model.from, `models/tiny-${arch}`);
        assert.equal(config.model.block_size, modelTemplateBlockSize);
        const stages = config.stages.map((stage) => [stage.type, stage.type === 'preferences' ? null : stage.lora]);
        const lora = { r: 8, alpha: 16, dropout: 0.05 };
        assert.deepEqual(
          stages,
          template.id === 'ppo-my-model'
            ? [
                ['sft', lora],
                ['preferences', null],
                ['reward', lora],
                ['ppo', lora],
              ]
            : [
                ['sft', lora],
                ['preferences', null],
                ['dpo', lora],
              ],
        );
      }
    }
  },
);

test('a folder with a short context caps block_size at it; a bad run name is refused', { skip }, async () => {
  const workspace = await workspaceWithModel('gpt2', 64);
  const configFile = path.join(workspace, 'short.rlhf.json');
  const text = renderModelTemplate('dpo-my-model', 'short', 'models/tiny-gpt2', 64);
  const { config, problems } = readConfigText(text, configFileChecks(configFile));
  assert.deepEqual(problems, []);
  assert.equal(config?.model.block_size, 64);
  assert.throws(() => renderModelTemplate('ppo-my-model', 'has space', 'models/tiny-gpt2'), /cannot name a run/);
});
