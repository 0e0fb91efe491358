// The tokenizer of a model folder: this project's BPE saved in Hugging Face's format (tokenizer.json,
// tokenizer_config.json), loaded with @huggingface/tokenizers; chat templates written in the style of SmolLM2's
// (ChatML) and Llama 3's (header tokens), rendered as transformers renders them.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadHfTokenizer, type ChatMessage } from '../../src/trainer/hf';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { temporaryFolder } from './hfFolderWriter';

const corpus = [
  'the film was wonderful and the cast was great',
  'the plot was dull and the ending was worse',
  'a great film with a wonderful cast',
  'hello there, how are you today?',
];
const bpe = new BpeTokenizer(trainBpe(corpus, { vocabSize: 300 }));

/** ChatML with a default system turn, in the manner of SmolLM2's template. */
const chatMlTemplate = [
  '{%- for message in messages %}',
  "{%- if loop.first and message['role'] != 'system' %}",
  "{{- '<|im_start|>system\\nYou are a concise assistant.<|im_end|>\\n' }}",
  '{%- endif %}',
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}",
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('\n');

/** Header tokens around each role, the beginning-of-text token first, in the manner of Llama 3's template. */
const headerTemplate = [
  '{{- bos_token }}',
  '{%- for message in messages %}',
  "{%- if message.role not in ['system', 'user', 'assistant'] %}",
  "{{- raise_exception('Unknown role: ' + message.role) }}",
  '{%- endif %}',
  "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + eos_token }}",
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
].join('\n');

const conversation: ChatMessage[] = [
  { role: 'user', content: 'Was the film good? ' },
  { role: 'assistant', content: 'Yes, the cast was great.' },
  { role: 'user', content: 'And the plot?' },
];

/** A folder with our BPE saved as transformers reads it, tokenizer_config.json changed by `edit`. */
async function tokenizerFolder(edit: (config: Record<string, unknown>) => void = () => {}): Promise<string> {
  const folder = temporaryFolder('hf-tokenizer-');
  await bpe.save(folder, { modelMaxLength: 64 });
  const configFile = join(folder, 'tokenizer_config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  return folder;
}

async function problemOf(run: () => unknown): Promise<string> {
  const error = await Promise.resolve()
    .then(run)
    .then(
      () => assert.fail('expected an error'),
      (caught: Error) => caught,
    );
  assert.equal(error.name, 'UserError', error.stack);
  return error.message;
}

test("our BPE's tokenizer.json gives the same ids and text through @huggingface/tokenizers", async () => {
  const tokenizer = await loadHfTokenizer(await tokenizerFolder());
  for (const text of [...corpus, 'unseen words: zebra, quixotic!', '  spaced  out ', 'naïve café ☕']) {
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    assert.deepEqual(ids, bpe.encode(text), text);
    assert.equal(tokenizer.decode(ids), text);
  }
  assert.deepEqual(tokenizer.specialTokens, { bos_token: '<|bos|>', eos_token: '<|eos|>', pad_token: '<|pad|>' });
  assert.deepEqual([tokenizer.tokenId('<|bos|>'), tokenizer.tokenId('<|eos|>')], [bpe.bosId, bpe.eosId]);
  assert.deepEqual([tokenizer.addBosToken, tokenizer.addEosToken, tokenizer.chatTemplateNames], [null, null, []]);
});

test('a header-style template renders with bos_token, eos_token and add_generation_prompt', async () => {
  const tokenizer = await loadHfTokenizer(await tokenizerFolder((config) => (config.chat_template = headerTemplate)));
  const turns =
    '<|bos|><|start_header_id|>user<|end_header_id|>\n\nWas the film good?<|eos|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\nYes, the cast was great.<|eos|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nAnd the plot?<|eos|>';
  assert.equal(tokenizer.formatChat(conversation, { addGenerationPrompt: false }), turns);
  assert.equal(
    tokenizer.formatChat(conversation, { addGenerationPrompt: true }),
    `${turns}<|start_header_id|>assistant<|end_header_id|>\n\n`,
  );
});

test('a ChatML template adds its default system turn; tokenizer_config.json AddedToken objects are read', async () => {
  const folder = await tokenizerFolder((config) => {
    config.chat_template = chatMlTemplate;
    config.bos_token = { __type: 'AddedToken', content: '<|bos|>', lstrip: false, normalized: false };
    config.add_bos_token = false;
  });
  const tokenizer = await loadHfTokenizer(folder);
  assert.equal(tokenizer.specialTokens.bos_token, '<|bos|>');
  assert.equal(tokenizer.addBosToken, false);
  assert.equal(
    tokenizer.formatChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }),
    '<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' +
      '<|im_start|>assistant\n',
  );
});

test('a list of named templates: "default" unless another is named; an unknown name lists them', async () => {
  const folder = await tokenizerFolder((config) => {
    config.chat_template = [
      { name: 'default', template: chatMlTemplate },
      { name: 'plain', template: '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}' },
    ];
  });
  const tokenizer = await loadHfTokenizer(folder);
  assert.deepEqual(tokenizer.chatTemplateNames, ['default', 'plain']);
  const hi = [{ role: 'user', content: 'Hi' }];
  assert.match(tokenizer.formatChat(hi, { addGenerationPrompt: false }), /^<\|im_start\|>system/);
  assert.equal(tokenizer.formatChat(hi, { addGenerationPrompt: false, template: 'plain' }), 'user: Hi\n');
  const message = await problemOf(() => tokenizer.formatChat(hi, { addGenerationPrompt: false, template: 'tools' }));
  assert.match(
    message,
    /tokenizer_config\.json: chat_template has no template named "tools" — templates: default, plain/,
  );
});

test('chat_template.jinja, where transformers now saves the template, wins over tokenizer_config.json', async () => {
  const folder = await tokenizerFolder((config) => (config.chat_template = chatMlTemplate));
  writeFileSync(join(folder, 'chat_template.jinja'), '{{ messages[0].content }}!');
  const tokenizer = await loadHfTokenizer(folder);
  assert.equal(tokenizer.formatChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false }), 'Hi!');
  writeFileSync(join(folder, 'chat_template.jinja'), '{{ messages[0].content }');
  const broken = await loadHfTokenizer(folder);
  assert.match(
    await problemOf(() => broken.formatChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false })),
    /chat_template\.jinja: does not parse: .+/,
  );
});

test('templates that fail name their file and the Jinja message', async () => {
  const hi = [{ role: 'user', content: 'Hi' }];
  const none = await loadHfTokenizer(await tokenizerFolder());
  assert.match(
    await problemOf(() => none.formatChat(hi, { addGenerationPrompt: false })),
    /tokenizer_config\.json: has no chat_template: the tokenizer has no chat template — format prompts/,
  );
  const broken = await loadHfTokenizer(await tokenizerFolder((config) => (config.chat_template = '{% for m in %}')));
  assert.match(
    await problemOf(() => broken.formatChat(hi, { addGenerationPrompt: false })),
    /tokenizer_config\.json: chat_template does not parse: .+/,
  );
  const named = await loadHfTokenizer(
    await tokenizerFolder((config) => (config.chat_template = [{ name: 'plain', template: '{{ nope(' }])),
  );
  assert.match(
    await problemOf(() => named.formatChat(hi, { addGenerationPrompt: false, template: 'plain' })),
    /tokenizer_config\.json: chat_template "plain" does not parse: .+/,
  );
  const strict = await loadHfTokenizer(await tokenizerFolder((config) => (config.chat_template = headerTemplate)));
  assert.match(
    await problemOf(() => strict.formatChat([{ role: 'tool', content: '{}' }], { addGenerationPrompt: false })),
    /tokenizer_config\.json: chat_template failed to render: .*Unknown role: tool/,
  );
});

test('malformed tokenizer files are named', async () => {
  const cases: [(config: Record<string, unknown>) => void, RegExp][] = [
    [(config) => (config.chat_template = 42), /tokenizer_config\.json: chat_template must be a template string/],
    [(config) => (config.chat_template = [{ name: 'x' }]), /chat_template\[0\] must be \{"name": string/],
    [(config) => (config.eos_token = 7), /tokenizer_config\.json: eos_token must be a token string/],
    [(config) => (config.add_bos_token = 'yes'), /tokenizer_config\.json: add_bos_token must be true or false/],
  ];
  for (const [edit, expected] of cases) {
    const folder = await tokenizerFolder(edit);
    assert.match(await problemOf(() => loadHfTokenizer(folder)), expected);
  }
  const folder = await tokenizerFolder();
  writeFileSync(join(folder, 'tokenizer.json'), '{"version": ');
  assert.match(await problemOf(() => loadHfTokenizer(folder)), /tokenizer\.json: is not valid JSON/);
  writeFileSync(join(folder, 'tokenizer.json'), '{"model": {"type": "Nonexistent"}}');
  assert.match(await problemOf(() => loadHfTokenizer(folder)), /tokenizer\.json: is not a tokenizer the lens can load/);
  assert.match(await problemOf(() => loadHfTokenizer(temporaryFolder())), /tokenizer\.json: does not exist/);
});

test("a Llama-3-style post-processor adds BOS unless told not to; a chat's special tokens are ids", async () => {
  const folder = await tokenizerFolder((config) => (config.chat_template = headerTemplate));
  const jsonFile = join(folder, 'tokenizer.json');
  const json = JSON.parse(readFileSync(jsonFile, 'utf8')) as Record<string, unknown>;
  json.post_processor = {
    type: 'Sequence',
    processors: [
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: '<|bos|>', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<|bos|>', type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { '<|bos|>': { id: '<|bos|>', ids: [bpe.bosId], tokens: ['<|bos|>'] } },
      },
    ],
  };
  writeFileSync(jsonFile, JSON.stringify(json));
  const tokenizer = await loadHfTokenizer(folder);
  const text = 'the cast was great';
  assert.deepEqual(tokenizer.encode(text), [bpe.bosId, ...bpe.encode(text)]);
  assert.deepEqual(tokenizer.encode(text, { addSpecialTokens: false }), bpe.encode(text));
  // transformers encodes a rendered chat with add_special_tokens=False: its BOS comes from the template.
  const ids = tokenizer.encode(tokenizer.formatChat([{ role: 'user', content: text }], { addGenerationPrompt: true }), {
    addSpecialTokens: false,
  });
  assert.equal(ids[0], bpe.bosId);
  assert.equal(ids.filter((id) => id === bpe.bosId).length, 1);
  assert.ok(ids.includes(bpe.eosId));
});
