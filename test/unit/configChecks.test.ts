// Run-config checks as the editor, "Start Run" and the CLI see them (readConfigText): every broken
// fixture gets a problem on the recorded line, quick fixes repair what they claim to, the templates
// and examples are valid, and the generated JSON Schema matches runConfig.ts.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { applyEdits, modify } from 'jsonc-parser';
import { pathKind, readConfigText, type CheckEnvironment } from '../../src/shared/configFile';
import { runConfigJsonSchema, runConfigSchemaFile } from '../../src/shared/runConfigJsonSchema';
import { renderTemplate, runTemplates } from '../../src/shared/runTemplates';

const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'broken-configs');
const manifest = JSON.parse(readFileSync(path.join(fixtures, 'manifest.json'), 'utf8')) as Record<
  string,
  { line: number; message: string }
>;
const environment: CheckEnvironment = { configDir: fixtures, kind: pathKind };

test('the broken-config fixtures number at least 30 and the manifest lists every one', () => {
  const files = readdirSync(fixtures)
    .filter((file) => file.endsWith('.rlhf.json'))
    .sort();
  assert.ok(files.length >= 30, `only ${files.length} fixtures`);
  assert.deepEqual(Object.keys(manifest).sort(), files);
});

for (const [file, expected] of Object.entries(manifest)) {
  test(`${file}: an error on line ${expected.line} saying "${expected.message}", and no config to train`, () => {
    const { config, problems } = readConfigText(readFileSync(path.join(fixtures, file), 'utf8'), environment);
    const hit = problems.find(
      (problem) => problem.line === expected.line && problem.message.includes(expected.message),
    );
    assert.ok(
      hit,
      `no problem on line ${expected.line} with "${expected.message}"; got:\n` +
        `${problems.map((p) => `  ${p.line}:${p.column} ${p.message}`).join('\n')}`,
    );
    assert.equal(hit.severity, 'error');
    assert.equal(config, undefined, 'a config with errors must not be trainable');
  });
}

test('every quick fix removes the problem it is attached to and introduces no new error', () => {
  let fixes = 0;
  for (const file of Object.keys(manifest)) {
    const text = readFileSync(path.join(fixtures, file), 'utf8');
    const before = readConfigText(text, environment).problems;
    for (const problem of before.filter((p) => p.fix)) {
      fixes++;
      const fixed = applyEdits(
        text,
        modify(text, problem.fix!.path as (string | number)[], problem.fix!.value, {
          formattingOptions: { insertSpaces: true, tabSize: 2 },
        }),
      );
      const after = readConfigText(fixed, environment).problems;
      assert.ok(
        !after.some((p) => p.message === problem.message),
        `${file}: "${problem.fix!.title}" left "${problem.message}"`,
      );
      const newErrors = after.filter((p) => p.severity === 'error' && !before.some((b) => b.message === p.message));
      assert.deepEqual(
        newErrors.map((p) => p.message),
        [],
        `${file}: "${problem.fix!.title}" caused new errors`,
      );
    }
  }
  assert.ok(fixes >= 12, `only ${fixes} fixtures offer a quick fix`);
});

test('the minibatch quick fix picks the largest divisor of the batch not above the value written', () => {
  const { problems } = readConfigText(
    readFileSync(path.join(fixtures, 'ppo-minibatches-not-dividing-batch.rlhf.json'), 'utf8'),
    environment,
  );
  const problem = problems.find((p) => p.path.at(-1) === 'num_mini_batches');
  assert.deepEqual(problem?.fix, {
    title: 'Set num_mini_batches to 2',
    path: ['stages', 3, 'num_mini_batches'],
    value: 2,
  });
});

test('warnings (an option that only applies with another) do not stop a run', () => {
  const text = JSON.stringify(
    {
      name: 'w',
      model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
      stages: [
        { type: 'sft', dataset: { source: 'demo' } },
        { type: 'preferences', prompts: { source: 'demo' }, max_new_tokens: 8 },
        { type: 'reward' },
        { type: 'ppo', prompts: { source: 'demo' }, target_kl: 0.5, max_new_tokens: 8 },
      ],
    },
    null,
    2,
  );
  const { config, problems } = readConfigText(text, environment);
  assert.ok(config, problems.map((p) => p.message).join('; '));
  const warning = problems.find((p) => p.path.at(-1) === 'target_kl');
  assert.equal(warning?.severity, 'warning');
  assert.match(warning!.message, /only applies with early_stopping/);
  assert.equal(warning!.line, text.split('\n').findIndex((line) => line.includes('"target_kl"')) + 1);
});

test('a reference that is an existing path (a checkpoint folder, a preference file) is accepted', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-config-'));
  try {
    mkdirSync(path.join(dir, 'ckpt'));
    writeFileSync(path.join(dir, 'labels.jsonl'), '');
    const text = JSON.stringify({
      name: 'p',
      model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
      stages: [{ type: 'dpo', policy: 'ckpt', preferences: 'labels.jsonl', max_new_tokens: 8 }],
    });
    const { config, problems } = readConfigText(text, { configDir: dir, kind: pathKind });
    assert.deepEqual(
      problems.map((p) => p.message),
      [],
    );
    assert.ok(config);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const small = {
  name: 'n',
  model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
  stages: [{ type: 'sft', dataset: { source: 'demo' }, max_steps: 2, warmup_steps: 1 }],
};

test('a 50 MB name is refused for its length, the value quoted cut to 200 characters', () => {
  const text = JSON.stringify({ ...small, name: 'x'.repeat(50 * 1024 * 1024) });
  const { config, problems } = readConfigText(text, environment);
  assert.equal(config, undefined);
  assert.equal(problems.length, 1);
  assert.match(
    problems[0].message,
    /^must have at most 64 characters, got 52428800: "x{199}… \(52428602 more characters\)$/,
  );
  assert.deepEqual(problems[0].path, ['name']);
  // The limits are in the editor's JSON Schema too.
  const schema = runConfigJsonSchema() as { properties: Record<string, { maxLength?: number }> };
  assert.equal(schema.properties.name.maxLength, 64);
  // A name of exactly the limit is fine; stage names and paths have limits of their own.
  assert.ok(readConfigText(JSON.stringify({ ...small, name: 'a'.repeat(64) }), environment).config);
  const longStage = readConfigText(
    JSON.stringify({ ...small, stages: [{ ...small.stages[0], name: 's'.repeat(65) }] }),
    environment,
  ).problems;
  assert.deepEqual(
    longStage.map((p) => [p.path.join('.'), p.message.slice(0, 31)]),
    [['stages.0.name', 'must have at most 64 characters']],
  );
  const longPath = readConfigText(
    JSON.stringify({
      ...small,
      stages: [{ ...small.stages[0], dataset: { source: 'jsonl', path: 'd/'.repeat(2049) } }],
    }),
    environment,
  ).problems;
  assert.deepEqual(
    longPath.map((p) => p.message.slice(0, 33)),
    ['must have at most 4096 characters'],
  );
});

test('a key written twice, at any depth, is an error on the second one naming the first line', () => {
  const lines = [
    '{',
    '  "name": "n",',
    '  "model": { "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32 },',
    '  "stages": [',
    '    {',
    '      "type": "sft",',
    '      "dataset": { "source": "demo", "source": "demo" },',
    '      "max_steps": 2,',
    '      "warmup_steps": 1,',
    '      "max_steps": 3',
    '    }',
    '  ],',
    '  "name": "m"',
    '}',
  ];
  const { config, problems } = readConfigText(lines.join('\n'), environment);
  assert.equal(config, undefined);
  const duplicates = problems.filter((p) => p.message.startsWith('duplicate key'));
  assert.deepEqual(
    duplicates.map((p) => [p.line, p.column, p.path.join('.'), p.message]),
    [
      [
        7,
        38,
        'stages.0.dataset',
        'duplicate key "source" (first on line 7): the later value would silently win — remove one',
      ],
      [
        10,
        7,
        'stages.0',
        'duplicate key "max_steps" (first on line 8): the later value would silently win — remove one',
      ],
      [13, 3, '', 'duplicate key "name" (first on line 2): the later value would silently win — remove one'],
    ],
  );
  assert.ok(
    duplicates.every((p) => p.severity === 'error' && p.source === 'semantic'),
    'the editor shows them among its own diagnostics',
  );
  // The same key in two different objects is no duplicate.
  assert.deepEqual(
    readConfigText(
      JSON.stringify({ ...small, stages: [small.stages[0], { ...small.stages[0], name: 'second' }] }),
      environment,
    ).problems,
    [],
  );
});

test('files a config names must be of the right kind: datasets and preference files files, checkpoints folders', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-kind-'));
  try {
    mkdirSync(path.join(dir, 'data.jsonl'));
    writeFileSync(path.join(dir, 'ckpt'), '');
    mkdirSync(path.join(dir, 'labels'));
    const kindEnvironment = { configDir: dir, kind: pathKind };
    const sft = {
      ...small,
      stages: [{ ...small.stages[0], dataset: { source: 'jsonl', path: 'data.jsonl' }, init_from: 'ckpt' }],
    };
    assert.deepEqual(
      readConfigText(JSON.stringify(sft), kindEnvironment)
        .problems.filter((p) => p.severity === 'error')
        .map((p) => `${p.path.join('.')}: ${p.message}`),
      [
        `stages.0.dataset.path: the JSONL file "data.jsonl" is a folder, not a file (` +
          `${path.join(dir, 'data.jsonl')}); name the file itself`,
        'stages.0.init_from: "ckpt" is a file, not a folder: name an earlier stage or a checkpoint folder',
      ],
    );
    const dpo = { ...small, stages: [{ type: 'dpo', policy: 'labels', preferences: 'labels', max_new_tokens: 8 }] };
    assert.deepEqual(
      readConfigText(JSON.stringify(dpo), kindEnvironment).problems.map((p) => `${p.path.join('.')}: ${p.message}`),
      ['stages.0.preferences: "labels" is a folder, not a file: name an earlier stage or a preference file'],
    );
    assert.equal(pathKind(path.join(dir, 'ckpt', 'below-a-file')), 'missing');
    assert.equal(pathKind('/dev/null'), 'other');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every New Run template renders a config with no problem at all', () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'rlhf-template-'));
  try {
    assert.deepEqual(
      runTemplates.map((t) => t.id),
      ['demo-pipeline', 'sft', 'reward', 'ppo', 'dpo'],
    );
    for (const template of runTemplates) {
      const text = renderTemplate(template.id, `my-${template.id}`);
      const { config, problems } = readConfigText(text, { configDir: empty, kind: pathKind });
      assert.deepEqual(
        problems.map((p) => `${p.line}: ${p.message}`),
        [],
        template.id,
      );
      assert.equal(config?.name, `my-${template.id}`);
    }
    assert.throws(() => renderTemplate('sft', 'has space'), /cannot name a run/);
    assert.throws(() => renderTemplate('sft', 'a'.repeat(65)), /cannot name a run: use up to 64/);
    assert.ok(readConfigText(renderTemplate('sft', 'a'.repeat(64)), environment).config);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('the example configs have no problem', () => {
  const examples = path.join(import.meta.dirname, '..', '..', 'examples');
  for (const file of readdirSync(examples).filter((f) => f.endsWith('.rlhf.json'))) {
    const { problems } = readConfigText(readFileSync(path.join(examples, file), 'utf8'), {
      configDir: examples,
      kind: pathKind,
    });
    assert.deepEqual(
      problems.map((p) => p.message),
      [],
      file,
    );
  }
});

test('the built JSON Schema is the one runConfig.ts generates, with TRL names, defaults and enums in its docs', () => {
  const built = path.join(import.meta.dirname, '..', '..', runConfigSchemaFile);
  assert.ok(existsSync(built), `${built} is missing: run npm run build`);
  const schema = runConfigJsonSchema();
  assert.deepEqual(JSON.parse(readFileSync(built, 'utf8')), schema);
  const stage = (
    schema.properties as Record<
      string,
      {
        items: {
          allOf: {
            if: { properties: { type: { const: string } } };
            then: { properties: Record<string, Record<string, unknown>> };
          }[];
        };
      }
    >
  ).stages.items.allOf;
  const fields = (type: string) => stage.find((variant) => variant.if.properties.type.const === type)!.then.properties;
  assert.equal(
    fields('ppo').cliprange.markdownDescription,
    'ε of the clipped policy objective: ratios outside [1−ε, 1+ε] stop pulling. TRL: `cliprange`. Default: `0.2`.',
  );
  assert.deepEqual(fields('ppo').kl_estimator.enum, ['k1', 'k2', 'k3', 'abs']);
  assert.equal((fields('ppo').kl_estimator.markdownEnumDescriptions as string[]).length, 4);
  assert.deepEqual(fields('dpo').loss_type.enum, ['sigmoid', 'hinge', 'ipo']);
  assert.deepEqual((schema.properties as Record<string, { enum?: string[] }>).backend.enum, [
    'auto',
    'tfjs-node-gpu',
    'webgpu',
    'tfjs-node',
    'wasm',
    'cpu',
  ]);
  const engine = (schema.properties as Record<string, { enum?: string[]; default?: string }>).engine;
  assert.deepEqual(engine.enum, ['auto', 'onnxruntime', 'tfjs']);
  assert.equal(engine.default, 'auto');
  // Every leaf setting has a one-line effect in its hover docs.
  const undocumented: string[] = [];
  const walk = (node: Record<string, unknown>, at: string) => {
    if (node.type && node.type !== 'object' && node.type !== 'array' && !node.description && at !== '$schema')
      undocumented.push(at);
    for (const [key, child] of Object.entries((node.properties as Record<string, Record<string, unknown>>) ?? {}))
      walk(child, `${at}.${key}`);
    for (const variant of (node.allOf as { then: Record<string, unknown> }[]) ?? []) walk(variant.then, at);
    if (node.items) walk(node.items as Record<string, unknown>, `${at}[]`);
  };
  walk(schema, '');
  assert.deepEqual(
    undocumented.filter((at) => !at.endsWith('.type') && !at.endsWith('.source')),
    [],
  );
});

test('"engine" takes auto, onnxruntime or tfjs (auto when left out) and refuses anything else', () => {
  const configText = (engine: unknown) =>
    JSON.stringify({
      name: 'e',
      ...(engine === undefined ? {} : { engine }),
      model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
      stages: [{ type: 'sft', dataset: { source: 'demo' } }],
    });
  for (const engine of ['auto', 'onnxruntime', 'tfjs']) {
    const { config, problems } = readConfigText(configText(engine), environment);
    assert.equal(config?.engine, engine, problems.map((p) => p.message).join('; '));
  }
  assert.equal(readConfigText(configText(undefined), environment).config?.engine, 'auto');
  for (const engine of ['pytorch', 3]) {
    const { config, problems } = readConfigText(configText(engine), environment);
    assert.equal(config, undefined);
    assert.ok(problems.some((p) => p.path.at(-1) === 'engine' && p.severity === 'error'));
  }
});
