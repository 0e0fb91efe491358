// Every file a resume, sample or export reads is checked, and a damaged one is named with its field.
// A corpus of damaged files made from one real run (trained once by the real CLI: run `npm run build`
// first), read by the real readers, and a few of them through `node dist/trainer.js` itself, which must
// exit non-zero with the message and write nothing outside the runs folder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { parseJsonText } from '../../src/shared/runFiles';
import { parseRunJson } from '../../src/shared/runSummary';
import { runDirInside, sanitizeRunName } from '../../src/shared/runIds';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '../../src/shared/safetensors';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { newRunId, RunDirectory } from '../../src/trainer/run/runDirectory';

const trainer = path.join(__dirname, '..', '..', 'dist', 'trainer.js');
const work = mkdtempSync(path.join(tmpdir(), 'rlhf-validate-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A workspace with one completed SFT run of 4 steps, checkpoints at steps 2 and 4; copied for each case. */
const pristine = path.join(work, 'pristine');
let runId = '';

function cli(args: string[], cwd: string): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [trainer, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stderr: result.stderr };
}

before(() => {
  if (!existsSync(trainer)) throw new Error(`${trainer} is missing: run npm run build first`);
  mkdirSync(pristine);
  writeFileSync(
    path.join(pristine, 'tiny.rlhf.json'),
    JSON.stringify({
      name: 'tiny',
      seed: 1,
      backend: 'cpu',
      model: { n_layer: 1, n_head: 1, n_embd: 8, block_size: 16 },
      tokenizer: { vocab_size: 270 },
      stages: [
        {
          type: 'sft',
          dataset: { source: 'demo', num_examples: 100 },
          max_steps: 4,
          save_steps: 2,
          eval_steps: 4,
          warmup_steps: 0,
          per_device_train_batch_size: 2,
        },
      ],
    }),
  );
  const trained = cli(['train', 'tiny.rlhf.json'], pristine);
  assert.equal(trained.status, 0, trained.stderr);
  [runId] = readdirSync(path.join(pristine, '.rlhf', 'runs'));
});

let copies = 0;
/** A fresh copy of the workspace, alone in its own parent folder (so "nothing outside" can be checked). */
function workspace() {
  const parent = path.join(work, `case-${++copies}`);
  const root = path.join(parent, 'ws');
  cpSync(pristine, root, { recursive: true });
  const runDir = path.join(root, '.rlhf', 'runs', runId);
  return { parent, root, runDir, checkpoint: (step: number) => path.join(runDir, 'checkpoints', `step-${step}`) };
}

/** Every path under `dir` with its size, to show that a failed command changed nothing. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map(
      (name) => `${name} ${statSync(path.join(dir, name)).isDirectory() ? 'dir' : statSync(path.join(dir, name)).size}`,
    )
    .sort();
}

/** Marks the run as stopped by the user, as Stop Run leaves it: resume then continues from a checkpoint. */
function stopped(runDir: string): void {
  editJson(path.join(runDir, 'run.json'), (json) => ({ ...json, status: 'stopped' }));
}

function editJson(file: string, edit: (value: Record<string, unknown>) => unknown): void {
  const value = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(edit(value) ?? value));
}

function cut(file: string, bytes: number): void {
  writeFileSync(file, readFileSync(file).subarray(0, bytes));
}

/** The header of a safetensors file rewritten (a header that lies), the data bytes kept. */
function rewriteHeader(
  file: string,
  edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void,
): void {
  const bytes = readFileSync(file);
  const size = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + size).toString('utf8')) as Parameters<typeof edit>[0];
  edit(header);
  const text = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(file, Buffer.concat([prefix, text, bytes.subarray(8 + size)]));
}

/** Sets element 3 of the first tensor to `value`; returns the tensor's name. */
function plantInWeights(file: string, value: number): string {
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
  const name = Object.keys(tensors).sort()[0];
  (tensors[name].data as Float32Array)[3] = value;
  writeFileSync(file, encodeSafetensors(tensors as Record<string, SafetensorsTensor>, metadata));
  return name;
}

async function rejectsNaming(load: () => Promise<unknown>, file: string, message: RegExp): Promise<void> {
  await assert.rejects(load, (error: Error) => {
    assert.ok(error.message.startsWith(file), `expected the message to start with ${file}: ${error.message}`);
    assert.match(error.message.slice(file.length), message);
    return true;
  });
}

// ---------------------------------------------------------------- checkpoint files, read directly

test('model.safetensors cut at any of several offsets is named with what is wrong', async () => {
  const { checkpoint } = workspace();
  const file = path.join(checkpoint(4), 'model.safetensors');
  const whole = readFileSync(file);
  const headerEnd = 8 + Number(whole.readBigUInt64LE(0));
  for (const [bytes, message] of [
    [0, /the file is 0 bytes, too short for the 8-byte header size/],
    [5, /the file is 5 bytes, too short for the 8-byte header size/],
    [8, /the file is truncated/],
    [headerEnd - 1, /the file is truncated/],
    [headerEnd + 3, /run past the end of the \d+-byte buffer: the file is truncated/],
    [whole.length - 1, /run past the end .*truncated/],
  ] as const) {
    writeFileSync(file, whole.subarray(0, bytes));
    await rejectsNaming(
      () => loadCheckpoint(checkpoint(4)),
      file,
      new RegExp(`^: invalid safetensors file: .*${message.source}`),
    );
  }
});

test(
  'a safetensors header that lies about offsets, dtype ' + 'or its own length is refused, naming the tensor',
  async () => {
    const { checkpoint } = workspace();
    const file = path.join(checkpoint(4), 'model.safetensors');
    const whole = readFileSync(file);
    const shifted = (header: Parameters<Parameters<typeof rewriteHeader>[1]>[0]) =>
      Object.entries(header).find(([name]) => name !== '__metadata__') as [
        string,
        { dtype: string; data_offsets: number[] },
      ];
    rewriteHeader(file, (header) => {
      const [, info] = shifted(header);
      info.data_offsets = [info.data_offsets[0] + 4, info.data_offsets[1] + 4];
    });
    await rejectsNaming(
      () => loadCheckpoint(checkpoint(4)),
      file,
      /invalid safetensors file: tensor ".+": data_offsets .*(overlap|unused|past the end)/,
    );
    writeFileSync(file, whole);
    let renamed = '';
    rewriteHeader(file, (header) => {
      const [name, info] = shifted(header);
      info.dtype = 'I32';
      renamed = name;
    });
    await rejectsNaming(
      () => loadCheckpoint(checkpoint(4)),
      file,
      new RegExp(`: tensor "${renamed.replace(/\./g, '\\.')}" is I32; RLHF Lens checkpoints hold F32`),
    );
    const huge = Buffer.from(whole);
    huge.writeBigUInt64LE(2n ** 40n, 0);
    writeFileSync(file, huge);
    await rejectsNaming(
      () => loadCheckpoint(checkpoint(4)),
      file,
      /header size 1099511627776 is over the 100000000-byte limit/,
    );
  },
);

test('config.json that is {}, [] or cut short is named with the field or the line and column', async () => {
  const { checkpoint } = workspace();
  const file = path.join(checkpoint(4), 'config.json');
  const whole = readFileSync(file);
  writeFileSync(file, '{}');
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    file,
    /^: model_type must be one of gpt2, llama, qwen2, mistral, rlhf-lens-gpt, got nothing/,
  );
  writeFileSync(file, '[]');
  await rejectsNaming(() => loadCheckpoint(checkpoint(4)), file, /^: must be a JSON object, got an array/);
  writeFileSync(file, whole.subarray(0, 60));
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    file,
    /^:\d+:\d+: not valid JSON \(.+\) — the file is damaged or cut short/,
  );
  writeFileSync(file, whole);
  editJson(file, (config) => ({ ...config, n_head: 3, pad_token_id: 100000 }));
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    file,
    /n_embd 8 must be divisible by n_head 3; pad_token_id must be a whole number from 0 to \d+, got 100000/,
  );
  // A config.json that disagrees with the weights is named before any model is built from it.
  const weights = path.join(checkpoint(4), 'model.safetensors');
  writeFileSync(file, whole);
  editJson(file, (config) => ({ ...config, n_layer: 1000 }));
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    weights,
    /^: weight "transformer\.h\.1\.ln_1\.weight" is missing, though .*config\.json describes it/,
  );
  writeFileSync(file, whole);
  editJson(file, (config) => ({ ...config, vocab_size: 300 }));
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    weights,
    /^: weight "transformer\.wte\.weight" has shape \[270, 8\] but .*config\.json gives \[300, 8\]/,
  );
});

test('JSON that does not parse is named with its line, column and what is wrong there', () => {
  assert.throws(() => parseJsonText('{\n  "a": [1, 2', 'x.json'), {
    message:
      'x.json:2:13: not valid JSON ("]" expected, at the end of the file: is it cut short?) — the file is ' +
      'damaged or cut short; restore it or write it again',
  });
  assert.throws(() => parseJsonText('{"a" 1}', 'x.json'), { message: /^x\.json:1:6: not valid JSON \(":" expected\)/ });
});

test('trainer_state.json with a string, negative or too large step is refused naming global_step', async () => {
  const { checkpoint } = workspace();
  const file = path.join(checkpoint(4), 'trainer_state.json');
  const cases: [unknown, RegExp][] = [
    ['100', /^: global_step must be a whole number ≥ 0, got "100"/],
    [-1, /^: global_step must be a whole number ≥ 0, got -1/],
    [9999, /^: global_step 9999 is beyond max_steps 4/],
  ];
  for (const [step, message] of cases) {
    editJson(file, (state) => ({ ...state, global_step: step }));
    await rejectsNaming(() => loadCheckpoint(checkpoint(4)), file, message);
  }
  writeFileSync(file, '');
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    file,
    /^:1:1: not valid JSON \(a value expected, the file is empty\)/,
  );
});

test('tokenizer.json cut short or without model.vocab, and a wrong tokenizer_config.json, are named', async () => {
  const { checkpoint } = workspace();
  const file = path.join(checkpoint(4), 'tokenizer.json');
  const whole = readFileSync(file);
  cut(file, 500);
  await rejectsNaming(() => loadCheckpoint(checkpoint(4)), file, /^:\d+:\d+: not valid JSON/);
  writeFileSync(file, whole);
  editJson(file, (json) => {
    delete (json.model as Record<string, unknown>).vocab;
  });
  await rejectsNaming(() => loadCheckpoint(checkpoint(4)), file, /^: model\.vocab is not an object/);
  writeFileSync(file, whole);
  const configFile = path.join(checkpoint(4), 'tokenizer_config.json');
  editJson(configFile, (config) => ({ ...config, model_max_length: 'long', eos_token: 7 }));
  await rejectsNaming(
    () => loadCheckpoint(checkpoint(4)),
    configFile,
    /^: eos_token must be a string or \{"content": string\}, got 7; model_max_length must be a number ≥ 1, got "long"/,
  );
});

// ---------------------------------------------------------------- finite weights

test(
  'a NaN checkpoint is refused by loadCheckpoint and skipped by the latest-good search, ' +
    'which warns naming file and tensor',
  async () => {
    const { runDir, checkpoint } = workspace();
    const file = path.join(checkpoint(4), 'model.safetensors');
    const name = plantInWeights(file, Number.NaN);
    await rejectsNaming(
      () => loadCheckpoint(checkpoint(4)),
      file,
      new RegExp(`^: weight "${name.replace(/\./g, '\\.')}" holds NaN at element 3`),
    );
    const warnings: string[] = [];
    assert.deepEqual(
      latestCheckpoint(runDir, (message) => warnings.push(message)),
      { dir: checkpoint(2), step: 2 },
    );
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0].startsWith(`${file}: weight "${name}" holds NaN at element 3; skipping`), warnings[0]);
    plantInWeights(path.join(checkpoint(2), 'model.safetensors'), Number.POSITIVE_INFINITY);
    assert.equal(
      latestCheckpoint(runDir, () => undefined),
      undefined,
      'no finite checkpoint: nothing to resume from',
    );
  },
);

test('saveCheckpoint refuses NaN or infinite weights, naming the weight, and writes nothing', async () => {
  const { checkpoint } = workspace();
  const contents = await loadCheckpoint(checkpoint(2));
  const [name, tensor] = [...contents.weights][1];
  tensor.data[0] = Number.NEGATIVE_INFINITY;
  const target = path.join(path.dirname(checkpoint(2)), 'step-6');
  await assert.rejects(saveCheckpoint(target, contents), (error: Error) => {
    assert.equal(
      error.message.split(';')[0],
      `${path.join(target, 'model.safetensors')}: weight "${name}" holds -Infinity at element 0`,
    );
    assert.match(
      error.message,
      /the checkpoint was not written\. Training diverged: try a lower learning_rate or max_grad_norm/,
    );
    return true;
  });
  assert.deepEqual(readdirSync(path.dirname(target)).sort(), ['step-2', 'step-4'], 'no step-6 and no temporary folder');
});

// ---------------------------------------------------------------- run.json and run ids

test('RunDirectory.open refuses a damaged or planted run.json, naming the field, and leaves it as it was', () => {
  const { runDir } = workspace();
  const file = path.join(runDir, 'run.json');
  const original = readFileSync(file, 'utf8');
  const cases: [string | ((json: Record<string, unknown>) => unknown), RegExp][] = [
    ['[]', /^: must be a JSON object, got an array/],
    [original.slice(0, 40), /^:\d+:\d+: not valid JSON/],
    [
      (json) => ({ ...json, stage_index: 99 }),
      /^: stage_index 99 is out of range: config\.stages has 1 stage \(0 to 0\)/,
    ],
    [(json) => ({ ...json, stage_index: '0' }), /^: stage_index must be a whole number ≥ 0, got "0"/],
    [
      (json) => ({ ...json, config: { ...(json.config as object), name: '../../escape' } }),
      /^: config\.name must match .*, got "\.\.\/\.\.\/escape"/,
    ],
    [
      (json) => ({
        ...json,
        config: {
          ...(json.config as { stages: object[] }),
          stages: [{ ...(json.config as { stages: object[] }).stages[0], max_steps: 'many' }],
        },
      }),
      /^: config\.stages\[0\]\.max_steps must be a whole number, got "many" — /,
    ],
    [(json) => ({ ...json, id: '../../escape' }), /^: id: run id "\.\.\/\.\.\/escape" is a path, not a folder name/],
    [(json) => ({ ...json, step: 40, max_steps: 4 }), /^: step 40 is beyond max_steps 4/],
    [(json) => ({ ...json, stage: 'ppo' }), /^: stage "ppo" is not config\.stages\[0\], which is "sft"/],
  ];
  for (const [damage, message] of cases) {
    const text =
      typeof damage === 'string' ? damage : JSON.stringify(damage(JSON.parse(original) as Record<string, unknown>));
    writeFileSync(file, text);
    assert.throws(
      () => RunDirectory.open(runDir),
      (error: Error) => {
        assert.ok(error.message.startsWith(file), error.message);
        assert.match(error.message.slice(file.length), message);
        return true;
      },
    );
    assert.equal(readFileSync(file, 'utf8'), text, 'run.json is left as it was');
  }
});

test('the host reads run.json with the same validator', () => {
  const parsed = parseRunJson('{"name":"a","status":"running","started_at":"2026-01-01T00:00:00Z","step":"100"}', 'a');
  assert.deepEqual(parsed, { ok: false, message: 'step must be a whole number ≥ 0, got "100"' });
  assert.deepEqual(
    parseRunJson(
      '{"name":"a","status":"running","started_at":"2026-01-01T00:00:00Z","stage_outputs":{"sft":{"checkpoint":7}}}',
      'a',
    ),
    { ok: false, message: 'stage_outputs.sft.checkpoint must be a string, got 7' },
  );
  const header = '"name":"a","status":"running","started_at":"2026-01-01T00:00:00Z"';
  const onEngine = parseRunJson(`{${header},"engine":"onnxruntime","engine_reason":"auto","backend":"wasm"}`, 'a');
  assert.equal(onEngine.ok && onEngine.run.engine, 'onnxruntime');
  assert.equal(onEngine.ok && onEngine.run.backend, 'wasm');
  assert.deepEqual(parseRunJson(`{${header},"engine":3}`, 'a'), {
    ok: false,
    message: 'engine must be a string, got 3',
  });
  assert.deepEqual(parseRunJson(`{${header},"engine_reason":false}`, 'a'), {
    ok: false,
    message: 'engine_reason must be a string, got false',
  });
});

test('run names become ids that stay inside the runs folder: "..", absolute paths, NUL, a 50 MB name', () => {
  assert.equal(sanitizeRunName('../../escape'), 'escape');
  assert.equal(sanitizeRunName('/etc/passwd'), 'etc-passwd');
  assert.equal(sanitizeRunName('a\0b/..\\c'), 'a-b-.-c');
  assert.equal(sanitizeRunName('...'), 'run');
  assert.equal(sanitizeRunName('my run.v2'), 'my-run.v2');
  const huge = 'x'.repeat(50 * 1024 * 1024);
  const id = newRunId(huge, 'sft', new Date('2026-01-02T03:04:05Z'));
  assert.equal(id, `${'x'.repeat(80)}-sft-20260102-030405`);
  assert.equal(newRunId('../../x', 'inspect', new Date('2026-01-02T03:04:05Z')), 'x-inspect-20260102-030405');
  assert.equal(
    newRunId('demo', 'sft', new Date('2026-01-02T03:04:05Z')),
    'demo-sft-20260102-030405',
    'a valid name is kept as it is',
  );

  const runsRoot = path.join(work, 'ids', 'runs');
  for (const bad of ['../../escape', '..', '.', '/tmp/abs', 'a/b', 'a\\b', 'a\0b', huge]) {
    assert.throws(() => runDirInside(runsRoot, bad), /run id|path|NUL|characters/, JSON.stringify(bad.slice(0, 20)));
  }
  assert.equal(runDirInside(runsRoot, 'demo-sft-1'), path.join(runsRoot, 'demo-sft-1'));
  const run = RunDirectory.create(runsRoot, {
    id: newRunId('../../escape', 'inspect'),
    name: '../../escape',
    stage: 'inspect',
    stage_index: 0,
    seed: 0,
    config: {},
    versions: {},
  });
  assert.equal(path.dirname(run.dir), runsRoot);
  assert.deepEqual(readdirSync(path.join(work, 'ids')), ['runs'], 'nothing beside the runs folder');
  assert.throws(
    () =>
      RunDirectory.create(runsRoot, {
        id: '../escape',
        name: 'x',
        stage: 'sft',
        stage_index: 0,
        seed: 0,
        config: {},
        versions: {},
      }),
    /is a path, not a folder name/,
  );
});

// ---------------------------------------------------------------- through the real CLI

test(
  'CLI: resume of a run.json with stage_index 99 or a planted name exits non-zero, ' +
    'names the field, and changes nothing',
  () => {
    const damages: [(json: Record<string, unknown>) => unknown, string][] = [
      [(json) => ({ ...json, stage_index: 99 }), 'stage_index 99 is out of range'],
      [(json) => ({ ...json, config: { ...(json.config as object), name: '../../escape' } }), 'config.name must match'],
    ];
    for (const [damage, message] of damages) {
      const { parent, root, runDir } = workspace();
      editJson(path.join(runDir, 'run.json'), damage);
      const before = tree(parent);
      const result = cli(['train', '--resume', runDir], root);
      assert.equal(result.status, 1, result.stderr);
      assert.ok(result.stderr.includes(`error: ${path.join(runDir, 'run.json')}: ${message}`), result.stderr);
      assert.deepEqual(tree(parent), before, 'no file written or changed, inside the runs folder or out of it');
    }
  },
);

test('CLI: resume from a checkpoint whose trainer_state.json says "100" fails naming the file and field', () => {
  const { root, runDir, checkpoint } = workspace();
  const file = path.join(checkpoint(4), 'trainer_state.json');
  editJson(file, (state) => ({ ...state, global_step: '100' }));
  stopped(runDir); // a completed stage has nothing to resume; a stopped one loads its checkpoint
  const result = cli(['train', '--resume', runDir], root);
  assert.equal(result.status, 1);
  assert.ok(result.stderr.includes(`${file}: global_step must be a whole number ≥ 0, got "100"`), result.stderr);
  const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')) as {
    status: string;
    step: number;
    error: string;
  };
  assert.equal(runJson.status, 'failed');
  assert.equal(runJson.step, 4, 'the step is not rewritten from the damaged file');
  assert.match(runJson.error, /global_step must be a whole number/);
});

test('CLI: sample of a cut model.safetensors and export of a config.json that is [] fail naming the file', () => {
  const { parent, root, runDir, checkpoint } = workspace();
  const weights = path.join(checkpoint(4), 'model.safetensors');
  cut(weights, 1000);
  const before = tree(parent);
  const sampled = cli(['sample', checkpoint(4), '--num-samples', '1', '--max-new-tokens', '2'], root);
  assert.notEqual(sampled.status, 0);
  assert.match(
    sampled.stderr,
    new RegExp(
      `${weights.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid safetensors file: the header size says \\d+ ` +
        `bytes but only 992 follow: the file is truncated`,
    ),
  );
  cpSync(path.join(pristine, '.rlhf', 'runs', runId, 'checkpoints', 'step-4', 'model.safetensors'), weights);
  writeFileSync(path.join(checkpoint(4), 'config.json'), '[]');
  const exported = cli(['export', runDir], root);
  assert.equal(exported.status, 1);
  assert.ok(
    exported.stderr.includes(`error: ${path.join(checkpoint(4), 'config.json')}: must be a JSON object, got an array`),
    exported.stderr,
  );
  assert.deepEqual(
    tree(parent).filter((entry) => !entry.includes('config.json') && !entry.includes('model.safetensors')),
    before.filter((entry) => !entry.includes('config.json') && !entry.includes('model.safetensors')),
    'no export folder written',
  );
});

test(
  'CLI: resume skips a NaN checkpoint with a warning ' + 'and continues from the one before, to a finite end',
  async () => {
    const { root, runDir, checkpoint } = workspace();
    const file = path.join(checkpoint(4), 'model.safetensors');
    const name = plantInWeights(file, Number.NaN);
    stopped(runDir);
    const result = cli(['train', '--resume', runDir], root);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(
      result.stderr.includes(
        `warn: ${file}: weight "${name}" holds NaN at element 3; skipping this checkpoint for the one before`,
      ),
      result.stderr,
    );
    assert.ok(result.stderr.includes(`resuming from ${checkpoint(2)} (step 2)`), result.stderr);
    const resumed = await loadCheckpoint(checkpoint(4));
    assert.equal(resumed.trainerState.global_step, 4);
    assert.ok([...resumed.weights.values()].every(({ data }) => data.every(Number.isFinite)));
  },
);
