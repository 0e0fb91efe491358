// The editor's checks of a config that starts from a Hugging Face model folder (model.from), renders data with its
// chat template, or trains LoRA adapters: real folders in transformers' layout (random weights written by the
// PyTorch twin's writer, config.json as save_pretrained writes it, our BPE saved as tokenizer.json), read the way
// the editor reads them (readConfigText with configFileChecks).
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { configFileChecks, readConfigText } from '../../src/shared/configFile';
import { hfLinearModuleNames, hfModelTypes } from '../../src/shared/hfModelFolder';
import { readHfConfig, supportedModelTypes, type LlamaFamilyArchitecture } from '../../src/trainer/hf';
import { linearModules } from '../../src/trainer/lora/loraTargets';
import { llamaConfig } from '../../src/trainer/model/causalLmConfig';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { twinUnavailable, writeHfFolder, type HfArchitecture } from '../fixtures/hf/hfTwin';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
const bpe = new BpeTokenizer(trainBpe(['a tiny corpus for a tiny tokenizer'], { vocabSize: 270 }));
const chatTemplate = "{% for m in messages %}{{ m.role + ': ' + m.content + '\\n' }}{% endfor %}";
const workDir = temporaryFolder('hf-config-checks-');
const maxPositions = 32;

/** A model folder next to the config file: weights, config.json and the tokenizer files. */
async function modelFolder(arch: HfArchitecture, name: string, template?: string): Promise<string> {
  const out = path.join(workDir, name);
  writeHfFolder({ arch, out, vocab: bpe.vocabSize, hidden: 16, layers: 2, heads: 2, maxPositions, seed: 1 });
  await bpe.save(out, { modelMaxLength: maxPositions });
  if (template !== undefined) {
    const file = path.join(out, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...config, chat_template: template }));
  }
  return name;
}

const sft = ({ dataset, ...extra }: Record<string, unknown> = {}) => ({
  type: 'sft',
  dataset: { source: 'jsonl', path: 'data.jsonl', ...(dataset as object) },
  max_steps: 20,
  warmup_steps: 2,
  ...extra,
});

/** Problems of a config whose file sits in the work folder, as `line: severity message` with the path. */
function problemsOf(config: Record<string, unknown>): { at: string; severity: string; message: string }[] {
  const file = path.join(workDir, 'run.rlhf.json');
  const { problems } = readConfigText(JSON.stringify({ name: 'checks', ...config }, null, 2), configFileChecks(file));
  return problems.map((problem) => ({
    at: problem.path.join('.'),
    severity: problem.severity,
    message: problem.message,
  }));
}

writeFileSync(path.join(workDir, 'data.jsonl'), '{"text": "a tiny corpus"}\n');

test(
  'the host-side lists agree with the trainer: model types and the linear layers LoRA can adapt',
  { skip },
  async () => {
    assert.deepEqual([...hfModelTypes], [...supportedModelTypes]);
    const llama = await readHfConfig(path.join(workDir, await modelFolder('llama', 'lists-llama')));
    const fromTrainer = linearModules(llamaConfig(llama as LlamaFamilyArchitecture)).map((target) => target.module);
    assert.deepEqual(hfLinearModuleNames('llama', 2), fromTrainer);
    const gpt = { vocab_size: 270, block_size: 16, n_layer: 3, n_head: 2, n_embd: 16, dropout: 0 };
    assert.deepEqual(
      hfLinearModuleNames('gpt2', 3),
      linearModules(gpt).map((target) => target.module),
    );
  },
);

test(
  'model.from: a gpt2 or llama folder with its tokenizer is accepted; shape fields next to it are ignored',
  { skip },
  async () => {
    for (const arch of ['gpt2', 'llama'] as const) {
      const from = await modelFolder(arch, `ok-${arch}`);
      assert.deepEqual(problemsOf({ model: { from, block_size: 16 }, stages: [sft()] }), [], arch);
    }
    const from = await modelFolder('gpt2', 'shaped');
    assert.deepEqual(
      problemsOf({
        model: { from, n_layer: 4, n_embd: 30, block_size: 64 },
        tokenizer: { vocab_size: 300 },
        stages: [sft()],
      }),
      [
        {
          at: 'model.n_layer',
          severity: 'warning',
          message:
            'is ignored: "from" names a model folder, whose config.json gives the shape (only block_size applies, ' +
            'capping the context)',
        },
        {
          at: 'model.n_embd',
          severity: 'warning',
          message:
            'is ignored: "from" names a model folder, whose config.json gives the shape (only block_size applies, ' +
            'capping the context)',
        },
        {
          at: 'model.block_size',
          severity: 'error',
          message: '(64) is longer than the context the gpt2 model in "from" was built for (32)',
        },
        {
          at: 'tokenizer',
          severity: 'warning',
          message: 'is ignored: the model folder of "model.from" brings its own tokenizer',
        },
      ],
    );
  },
);

test(
  'model.from: a missing folder, an unsupported model_type and a folder without tokenizer.json',
  { skip },
  async () => {
    const [missing] = problemsOf({ model: { from: 'nowhere' }, stages: [sft()] });
    assert.equal(missing.at, 'model.from');
    assert.match(missing.message, /^the model folder "nowhere" does not exist \(looked for .*nowhere\)$/);

    const bert = await modelFolder('gpt2', 'bert');
    const configFile = path.join(workDir, bert, 'config.json');
    writeFileSync(configFile, JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), model_type: 'bert' }));
    assert.deepEqual(problemsOf({ model: { from: bert }, stages: [sft()] }), [
      {
        at: 'model.from',
        severity: 'error',
        message:
          `"bert": ${configFile}: model_type "bert" is not an architecture the lens loads ` +
          '(supported: gpt2, llama, qwen2, mistral)',
      },
    ]);

    const untokenized = await modelFolder('qwen2', 'no-tokenizer');
    rmSync(path.join(workDir, untokenized, 'tokenizer.json'));
    assert.deepEqual(problemsOf({ model: { from: untokenized, block_size: 16 }, stages: [sft()] }), [
      {
        at: 'model.from',
        severity: 'error',
        message: '"no-tokenizer" has no tokenizer.json: the lens needs the model\'s own tokenizer',
      },
    ]);
  },
);

test('"chat_template": true needs model.from, and a folder whose tokenizer has a template', { skip }, async () => {
  const withChat = { dataset: { chat_template: true } };
  const [noFolder] = problemsOf({ stages: [sft(withChat)] });
  assert.equal(noFolder.at, 'stages.0.dataset.chat_template');
  assert.match(noFolder.message, /^needs a model with a chat template, and the lens's own GPT has none/);

  const plain = await modelFolder('llama', 'no-template');
  const [noTemplate] = problemsOf({ model: { from: plain }, stages: [sft(withChat)] });
  assert.equal(
    noTemplate.message,
    'needs a chat template, and the model folder "no-template" has none (no "chat_template" in its ' +
      'tokenizer_config.json, no chat_template.jinja): use an instruct model\'s folder, or remove "chat_template"',
  );
  const instruct = await modelFolder('llama', 'instruct', chatTemplate);
  const prompts = { source: 'jsonl', path: 'data.jsonl', chat_template: true };
  const preferences = { type: 'preferences', prompts, chat_template: true, max_new_tokens: 8 };
  assert.deepEqual(problemsOf({ model: { from: instruct, block_size: 16 }, stages: [sft(withChat), preferences] }), []);
});

test(
  '"chat_template": true on a stage that starts from a checkpoint folder looks for the template there',
  { skip },
  async () => {
    const withChat = { dataset: { chat_template: true } };
    const plain = await modelFolder('gpt2', 'checkpoint-plain');
    const [problem] = problemsOf({ stages: [sft({ ...withChat, init_from: `./${plain}` })] });
    assert.deepEqual(problem, {
      at: 'stages.0.dataset.chat_template',
      severity: 'error',
      message: 'needs a chat template, and the folder "./checkpoint-plain" this stage starts from has none',
    });
    const chat = await modelFolder('gpt2', 'checkpoint-chat', chatTemplate);
    assert.deepEqual(problemsOf({ stages: [sft({ ...withChat, init_from: `./${chat}` })] }), []);
  },
);

test(
  'lora.target_modules must name layers of the model: GPT-2 names for our GPT, Llama names for llama',
  { skip },
  async () => {
    const lora = (target_modules: string[]) => ({ lora: { target_modules } });
    assert.deepEqual(problemsOf({ stages: [sft(lora(['c_attn', 'mlp.c_proj']))] }), []);
    assert.deepEqual(problemsOf({ stages: [sft(lora(['q_proj']))] }), [
      {
        at: 'stages.0.lora.target_modules.0',
        severity: 'error',
        message:
          '"q_proj" matches no linear layer of the lens\'s own GPT (GPT-2\'s layer names); its layers: c_attn, ' +
          'c_proj, c_fc',
      },
    ]);
    const from = await modelFolder('llama', 'lora-llama');
    const model = { from, block_size: 16 };
    assert.deepEqual(problemsOf({ model, stages: [sft(lora(['q_proj', 'self_attn.v_proj', 'gate_proj']))] }), []);
    assert.deepEqual(
      problemsOf({ model, stages: [sft(lora(['q_proj', 'c_attn']))] }).map((p) => [p.at, p.message]),
      [
        [
          'stages.0.lora.target_modules.1',
          '"c_attn" matches no linear layer of this llama model; its layers: q_proj, k_proj, v_proj, o_proj, ' +
            'gate_proj, up_proj, down_proj',
        ],
      ],
    );
    assert.deepEqual(
      problemsOf({ model, stages: [sft(lora(['all-linear', 'q_proj']))] }).map((p) => [p.at, p.message]),
      [
        [
          'stages.0.lora.target_modules',
          '"all-linear" already names every linear layer: give it alone, or list layers without it',
        ],
      ],
    );
  },
);
