// Datasets, prompts and preference lines with "chat_template": true, rendered through a real tokenizer folder
// (our BPE saved as transformers saves a tokenizer) whose tokenizer_config.json holds SmolLM2-Instruct's ChatML
// template or Llama 3 Instruct's, verbatim. The expected texts are written out by hand from TRL's rules: the prompt
// with the generation prompt, the completion as what the whole conversation's rendering adds to it.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadHfTokenizer, type HfTokenizer } from '../../src/trainer/hf';
import { formatPreference } from '../../src/trainer/data/chatExamples';
import { readTextDataset } from '../../src/trainer/data/jsonlDataset';
import { loadPrompts } from '../../src/trainer/data/prompts';
import { loadSftExamples } from '../../src/trainer/data/textExamples';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { temporaryFolder } from './hfFolderWriter';

const bpe = new BpeTokenizer(trainBpe(['what colour is the sky? it is blue, not green.'], { vocabSize: 280 }));

/** SmolLM2-360M-Instruct's chat_template, as its tokenizer_config.json holds it. */
const smolLm2Template =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n" +
  "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const smolSystem =
  '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';

/** Meta-Llama-3-8B-Instruct's chat_template. */
const llama3Template =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + " +
  "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}" +
  '{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}' +
  "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
const llamaUser = (text: string) => `<|start_header_id|>user<|end_header_id|>\n\n${text}<|eot_id|>`;
const llamaAssistant = '<|start_header_id|>assistant<|end_header_id|>\n\n';

const sky = [{ role: 'user', content: 'What color is the sky?' }];
const blue = [{ role: 'assistant', content: 'It is blue.' }];
const green = [{ role: 'assistant', content: 'It is green.' }];

async function tokenizerWith(template: string | undefined, bosToken = '<|bos|>'): Promise<HfTokenizer> {
  const folder = temporaryFolder('chat-data-');
  await bpe.save(folder, { modelMaxLength: 64 });
  const configFile = join(folder, 'tokenizer_config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  if (template !== undefined) config.chat_template = template;
  config.bos_token = bosToken;
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  return loadHfTokenizer(folder);
}

function jsonlFile(lines: readonly unknown[], name = 'data.jsonl'): string {
  const file = join(temporaryFolder('chat-lines-'), name);
  writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
  return file;
}

async function userErrorOf(run: () => unknown): Promise<Error> {
  const error = await Promise.resolve()
    .then(run)
    .then(
      () => assert.fail('expected an error'),
      (caught: Error) => caught,
    );
  assert.equal(error.name, 'UserError', error.stack);
  return error;
}

test('SFT lines in every shape through the SmolLM2 template: messages, conversational pairs, plain pairs', async () => {
  const tokenizer = await tokenizerWith(smolLm2Template);
  const file = jsonlFile([
    { messages: [...sky, ...blue] },
    { prompt: sky, completion: blue },
    { prompt: 'What color is the sky?', completion: 'It is blue.' },
    { text: 'left as it is' },
  ]);
  const dataset = { source: 'jsonl', path: file, chat_template: true } as const;
  const { examples } = await loadSftExamples(dataset, '/', 1, tokenizer);
  const prompt = `${smolSystem}<|im_start|>user\nWhat color is the sky?<|im_end|>\n<|im_start|>assistant\n`;
  assert.deepEqual(examples, [
    { completion: `${prompt}It is blue.<|im_end|>\n`, chatFormatted: true },
    { prompt, completion: 'It is blue.<|im_end|>\n', chatFormatted: true },
    { prompt, completion: 'It is blue.<|im_end|>\n', chatFormatted: true },
    { completion: 'left as it is' },
  ]);
  // Without chat_template a plain pair is used as written, and a conversational line has nothing to render it.
  const plain = await loadSftExamples({ source: 'jsonl', path: jsonlFile([{ prompt: 'a', completion: 'b' }]) }, '/', 1);
  assert.deepEqual(plain.examples, [{ prompt: 'a', completion: 'b' }]);
  const error = await userErrorOf(() => loadSftExamples({ source: 'jsonl', path: file }, '/', 1, tokenizer));
  assert.equal(
    error.message,
    `${file}:1: messages is a list of messages, which needs the model's chat template — set "chat_template": true ` +
      'on this dataset (with a "model": {"from": …} folder that has a template)',
  );
});

test('Llama 3: BOS from the template, trimmed content, and a prompt that continues an assistant turn', async () => {
  const tokenizer = await tokenizerWith(llama3Template, '<|begin_of_text|>');
  const file = jsonlFile([
    { prompt: sky },
    { prompt: [...sky, { role: 'assistant', content: 'The sky is ' }] },
    { prompt: 'Plain text becomes a user turn' },
  ]);
  const prompts = await loadPrompts({ source: 'jsonl', path: file, chat_template: true }, '/', 10, 1, 1, tokenizer);
  const opening = `<|begin_of_text|>${llamaUser('What color is the sky?')}`;
  assert.deepEqual(
    [...prompts.train, ...prompts.heldOut],
    [
      `${opening}${llamaAssistant}`,
      // transformers' continue_final_message: cut after the last turn's stripped content, no end-of-turn token.
      `${opening}${llamaAssistant}The sky is`,
      `<|begin_of_text|>${llamaUser('Plain text becomes a user turn')}${llamaAssistant}`,
    ],
  );
  assert.deepEqual(prompts.messages, []);
});

test('preference lines: explicit prompt, implicit prompt (the shared turns), and plain strings', async () => {
  const tokenizer = await tokenizerWith(llama3Template, '<|begin_of_text|>');
  const place = { file: 'prefs.jsonl', line: 1 };
  const prompt = `<|begin_of_text|>${llamaUser('What color is the sky?')}${llamaAssistant}`;
  const expected = { prompt, chosen: 'It is blue.<|eot_id|>', rejected: 'It is green.<|eot_id|>', chatFormatted: true };
  const options = { chatTemplate: true, place };
  assert.deepEqual(formatPreference({ prompt: sky, chosen: blue, rejected: green }, tokenizer, options), expected);
  const implicit = { chosen: [...sky, ...blue], rejected: [...sky, ...green] };
  assert.deepEqual(formatPreference(implicit, tokenizer, options), expected);
  const strings = { prompt: 'What color is the sky?', chosen: 'It is blue.', rejected: 'It is green.' };
  assert.deepEqual(formatPreference(strings, tokenizer, options), expected);
  // Without the template, TRL's extract_prompt on text: the common start, the space going with the answers.
  assert.deepEqual(
    formatPreference({ chosen: 'The sky is blue.', rejected: 'The sky is green.' }, undefined, {
      chatTemplate: false,
      place,
    }),
    { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.', chatFormatted: false },
  );
  const unrelated = await userErrorOf(() =>
    formatPreference({ chosen: blue, rejected: [...sky, ...green] }, tokenizer, options),
  );
  assert.match(unrelated.message, /^prefs\.jsonl:1: chosen and "rejected" share no opening turn/);
});

test('a malformed message is a problem naming file, line and field; the good lines are kept', async () => {
  const file = jsonlFile([
    { messages: [...sky, { content: 'no role' }] },
    { prompt: sky, completion: [{ role: 'assistant', content: 7 }] },
    { messages: [] },
    { prompt: sky },
    { messages: sky, text: 'both' },
    { messages: [...sky, ...blue] },
  ]);
  const read = await readTextDataset(file);
  const shape = '; expected [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]';
  assert.deepEqual(
    read.problems.map((problem) => [problem.line, problem.field, problem.message]),
    [
      [
        1,
        'messages[1].role',
        `field "messages[1].role" must be a role such as "user" or "assistant", got nothing${shape}`,
      ],
      [2, 'completion[0].content', `field "completion[0].content" must be a string, got 7${shape}`],
      [3, 'messages', `field "messages" is an empty list of messages${shape}`],
      [4, 'completion', 'field "completion" is missing; a pair needs both "prompt" and "completion"'],
      [5, 'text', 'has both "messages" and "text"; keep one conversation per line'],
    ],
  );
  assert.deepEqual(
    read.examples.map((example) => [example.line, example.kind]),
    [[6, 'messages']],
  );
});

test('chat_template without a template in the folder, or without a model folder, says which file to fix', async () => {
  const tokenizer = await tokenizerWith(undefined);
  const file = jsonlFile([{ prompt: sky, completion: blue }]);
  const dataset = { source: 'jsonl', path: file, chat_template: true } as const;
  const missing = await userErrorOf(() => loadSftExamples(dataset, '/', 1, tokenizer));
  assert.equal(
    missing.message,
    `${tokenizer.folder}/tokenizer_config.json: has no "chat_template", and the dataset sets "chat_template": true ` +
      '— use a model folder with a chat template (an instruct model), or set "chat_template": false',
  );
  const noFolder = await userErrorOf(() => loadSftExamples(dataset, '/', 1));
  assert.equal(
    noFolder.message,
    `${file}:1: prompt needs a chat template, and the run has no Hugging Face tokenizer — set "model": {"from": ` +
      '"<model folder>"}, or "chat_template": false',
  );
});
