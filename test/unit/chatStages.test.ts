/**
 * Chat templates through the stages, with a SmolLM2-shaped folder (a real tokenizer and a ChatML template) whose
 * tokenizer adds BOS, as Llama 3's does: what SFT trains on and what PPO and DPO start from is the tokenizer's
 * encoding of the template's rendering, with no special token added (the template writes BOS and each turn's end),
 * as TRL tokenizes conversational data; plain text still gets BOS. A run whose model folder has no template while
 * a dataset sets `"chat_template": true` fails before training, naming tokenizer_config.json.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { formatExample, formatPreference } from '../../src/trainer/data/chatExamples';
import { encodePrompt } from '../../src/trainer/data/chatTokens';
import { loadPrompts } from '../../src/trainer/data/prompts';
import { loadSftExamples, makeBatch, tokenizeExample } from '../../src/trainer/data/textExamples';
import { readDpoPairs, tokenizePair } from '../../src/trainer/dpo/dpoData';
import { runPipeline } from '../../src/trainer/pipeline';
import { HfTokenizerAdapter } from '../../src/trainer/tokenizer';
import { twinUnavailable } from '../fixtures/hf/hfTwin';
import { writePretrainedFolder } from '../fixtures/hf/pretrainedFolders';
import { temporaryFolder } from './hfFolderWriter';

const skip = twinUnavailable();
const blockSize = 96;
const seed = 3;
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const place = { file: 'test', line: 1 };

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

/** The SmolLM2-shaped folder, its tokenizer adding BOS before every sequence (a TemplateProcessing post-processor). */
async function folderWithBos(dir: string): Promise<{ folder: string; tokenizer: HfTokenizerAdapter }> {
  const folder = await writePretrainedFolder('smollm2', path.join(dir, 'smollm2'));
  const file = path.join(folder, 'tokenizer.json');
  const json = readJson(file);
  const bos = '<|bos|>';
  const bosId = (json.added_tokens as { id: number; content: string }[]).find((token) => token.content === bos)?.id;
  assert.ok(bosId !== undefined, 'the fixture tokenizer has <|bos|>');
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
  writeFileSync(file, JSON.stringify(json));
  const tokenizer = await HfTokenizerAdapter.load(folder);
  assert.equal(tokenizer.bosId, bosId, 'the tokenizer adds BOS');
  return { folder, tokenizer };
}

function writeLines(file: string, lines: readonly unknown[]): void {
  writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
}

test('an SFT batch is the encoding of the template rendering, with no BOS or EOS added', { skip }, async () => {
  const dir = temporaryFolder('chat-sft-');
  const { tokenizer } = await folderWithBos(dir);
  const conversation = [user('Review: the film'), assistant('was wonderful.')];
  writeLines(path.join(dir, 'chat.jsonl'), [
    { messages: conversation },
    { prompt: [conversation[0]], completion: [conversation[1]] },
  ]);
  const dataset = { source: 'jsonl', path: 'chat.jsonl', chat_template: true } as const;
  const { examples } = await loadSftExamples(dataset, dir, seed, tokenizer.hf);
  const tokenized = examples.map((example) => tokenizeExample(tokenizer, example, true, blockSize + 1));
  const batch = makeBatch(tokenized, blockSize, tokenizer.padId);

  const whole = tokenizer.hf.formatChat(conversation, { addGenerationPrompt: false });
  const expected = tokenizer.hf.encode(whole, { addSpecialTokens: false });
  assert.equal(expected.filter((id) => id === tokenizer.bosId).length, 3, 'the template wrote a BOS per turn');
  const row = (b: number, of: Int32Array) => Array.from(of.slice(b * blockSize, b * blockSize + expected.length - 1));
  for (const b of [0, 1]) {
    assert.deepEqual(row(b, batch.inputs), expected.slice(0, -1), `example ${b}: inputs`);
    assert.deepEqual(row(b, batch.targets), expected.slice(1), `example ${b}: targets`);
  }
  // The whole conversation trains on every token; prompt/completion on what the assistant's turn adds.
  const mask = (b: number) => Array.from(batch.mask.slice(b * blockSize, b * blockSize + expected.length - 1));
  assert.ok(mask(0).every((value) => value === 1));
  const prompt = tokenizer.hf.formatChat([conversation[0]], { addGenerationPrompt: true });
  const promptTokens = tokenizer.hf.encode(prompt, { addSpecialTokens: false }).length;
  assert.deepEqual(
    mask(1),
    expected.slice(1).map((_, t) => (t + 1 >= promptTokens ? 1 : 0)),
    'the completion: targets from the first token after the generation prompt',
  );
});

test(
  'PPO prompts and DPO pairs rendered by the template get no second BOS; plain text gets one',
  {
    skip,
  },
  async () => {
    const dir = temporaryFolder('chat-prompts-');
    const { tokenizer } = await folderWithBos(dir);
    writeLines(path.join(dir, 'prompts.jsonl'), [
      { prompt: [user('Review: the cast')] },
      { prompt: 'Review: the plot' },
      { prompt: [user('Review: the score')] },
    ]);
    const prompts = await loadPrompts(
      { source: 'jsonl', path: 'prompts.jsonl', chat_template: true },
      dir,
      3,
      1,
      seed,
      tokenizer.hf,
    );
    assert.equal(prompts.chatFormatted, true);
    const rendered = tokenizer.hf.formatChat([user('Review: the cast')], { addGenerationPrompt: true });
    assert.equal(prompts.train[0], rendered);
    assert.equal(prompts.train[1], tokenizer.hf.formatChat([user('Review: the plot')], { addGenerationPrompt: true }));
    const renderedIds = tokenizer.hf.encode(rendered, { addSpecialTokens: false });
    assert.deepEqual(encodePrompt(tokenizer, prompts.train[0], prompts.chatFormatted), renderedIds);
    assert.deepEqual(encodePrompt(tokenizer, prompts.train[0]), renderedIds, 'recognised by its leading special token');
    assert.deepEqual(encodePrompt(tokenizer, 'the film'), tokenizer.hf.encode('the film', { addSpecialTokens: true }));

    const pair = formatPreference(
      { prompt: [user('Review: the film')], chosen: [assistant('was great.')], rejected: [assistant('was dull.')] },
      tokenizer.hf,
      { chatTemplate: true, place },
    );
    const tokenized = tokenizePair(tokenizer, { ...pair, judgmentId: 'x' }, blockSize);
    assert.deepEqual(tokenized.promptIds, tokenizer.hf.encode(pair.prompt, { addSpecialTokens: false }));
  },
);

test('the preferences stage renders a file of conversational lines that DPO trains on', { skip }, async () => {
  const dir = temporaryFolder('chat-preferences-');
  await folderWithBos(dir);
  const tokenizer = await HfTokenizerAdapter.load(path.join(dir, 'smollm2'));
  const lines = [
    { prompt: [user('Review: the film')], chosen: [assistant('was great.')], rejected: [assistant('was dull.')] },
    { prompt: 'Review: the cast', chosen: 'shone.', rejected: 'slept.' },
    {
      chosen: [user('Review: the plot'), assistant('held up.')],
      rejected: [user('Review: the plot'), assistant('fell apart.')],
    },
    { prompt: 'Review: the sound', completions: ['was loud.', 'was clear.', 'was fine.'], ranking: [[1], [2], [0]] },
  ];
  writeLines(path.join(dir, 'pairs.jsonl'), lines);
  const config = {
    name: 'chat-preferences',
    seed,
    backend: 'wasm',
    model: { from: 'smollm2', block_size: blockSize },
    stages: [
      {
        type: 'preferences',
        policy: 'smollm2',
        prompts: { source: 'demo' },
        annotator: 'file',
        file: 'pairs.jsonl',
        chat_template: true,
      },
      {
        type: 'dpo',
        policy: 'smollm2',
        max_steps: 1,
        warmup_steps: 0,
        eval_fraction: 0,
        per_device_train_batch_size: 2,
        num_eval_prompts: 1,
        max_new_tokens: 4,
        eval_steps: 1,
        save_steps: 1,
      },
    ],
  };
  const configFile = path.join(dir, 'run.rlhf.json');
  writeFileSync(configFile, JSON.stringify(config));
  const logs: string[] = [];
  const { runs } = await runPipeline(
    { configFile, runsRoot: path.join(dir, 'runs') },
    { log: (level, message) => logs.push(`${level}: ${message}`) },
  );
  for (const run of runs)
    assert.equal(readJson(path.join(run.runDir, 'run.json')).status, 'completed', logs.join('\n'));
  const renderedFile = path.join(runs[0].runDir, 'preferences.jsonl');
  const rendered = readFileSync(renderedFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const options = { chatTemplate: true, place };
  const asTurns = (value: unknown) => value as never;
  const expected = formatPreference(
    { prompt: asTurns(lines[0].prompt), chosen: asTurns(lines[0].chosen), rejected: asTurns(lines[0].rejected) },
    tokenizer.hf,
    options,
  );
  assert.deepEqual(
    [rendered[0].prompt, rendered[0].chosen, rendered[0].rejected],
    [expected.prompt, expected.chosen, expected.rejected],
  );
  assert.equal(rendered[1].prompt, tokenizer.hf.formatChat([user('Review: the cast')], { addGenerationPrompt: true }));
  assert.equal(
    rendered[2].prompt,
    tokenizer.hf.formatChat([user('Review: the plot')], { addGenerationPrompt: true }),
    "the implicit prompt: the turns both conversations share (TRL's extract_prompt)",
  );
  const sound = formatExample({ prompt: 'Review: the sound', completion: 'was loud.' }, tokenizer.hf, options);
  assert.deepEqual([rendered[3].prompt, rendered[3].completions[0]], [sound.prompt, sound.completion]);
  assert.deepEqual(rendered[3].ranking, [[1], [2], [0]], 'the ranking kept');
  const pairs = await readDpoPairs(renderedFile, 0, seed, () => undefined);
  assert.equal(pairs.trainPairs.length, 3 + 3, 'three pairs and a ranking of three');
  for (const pair of pairs.trainPairs)
    assert.notEqual(tokenizePair(tokenizer, pair, blockSize).promptIds[1], tokenizer.bosId, 'one BOS, the template’s');
});

test(
  'chat_template with a model folder that has no template fails before training, naming the file',
  {
    skip,
  },
  async () => {
    const dir = temporaryFolder('chat-missing-');
    const { folder } = await folderWithBos(dir);
    const tokenizerConfig = path.join(folder, 'tokenizer_config.json');
    const json = readJson(tokenizerConfig);
    delete json.chat_template;
    writeFileSync(tokenizerConfig, JSON.stringify(json));
    writeLines(path.join(dir, 'chat.jsonl'), [{ messages: [user('a'), assistant('b')] }]);
    const config = {
      name: 'no-template',
      seed,
      backend: 'wasm',
      model: { from: 'smollm2', block_size: blockSize },
      stages: [{ type: 'sft', dataset: { source: 'jsonl', path: 'chat.jsonl', chat_template: true }, max_steps: 2 }],
    };
    const configFile = path.join(dir, 'run.rlhf.json');
    writeFileSync(configFile, JSON.stringify(config));
    const logs: string[] = [];
    const result = await runPipeline(
      { configFile, runsRoot: path.join(dir, 'runs') },
      { log: (level, message) => logs.push(`${level}: ${message}`) },
    ).catch((error: Error) => error);
    const runDir = result instanceof Error ? undefined : result.runs[0]?.runDir;
    const message = result instanceof Error ? result.message : String(readJson(path.join(runDir!, 'run.json')).error);
    assert.match(message, /tokenizer_config\.json/);
    assert.match(message, /chat_template/);
    if (runDir) assert.equal(existsSync(path.join(runDir, 'checkpoints')), false, 'nothing trained');
  },
);
