/**
 * damaged-files: a stopped run, its checkpoint and an ONNX export, each copied and damaged one way
 * (damage.ts), then handed to `train --resume`, `sample`, `export` or `inspect`. Each must exit
 * non-zero with an `error:` naming the damaged file (its folder and name) and, where there is one,
 * the field or tensor; print no stack trace; and write nothing outside the runs folder.
 */
import * as assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { decodeSafetensors } from '../../src/shared/safetensors';
import {
  brokenHeaderJson,
  editJson,
  garbled,
  lyingHeader,
  remove,
  replaceWith,
  tensorEdit,
  truncateHalf,
  truncateTo,
  zeroed,
} from './damage';
import { ensureDir, Family, hasStackTrace, listTree, requireBuild, runCli, scratchDir, tail } from './harness';

const family = new Family('damaged-files');
const root = scratchDir('damaged');
const base = path.join(root, 'base');
let sftRun = '';

const config = {
  name: 'dmg',
  seed: 5,
  backend: 'wasm',
  model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 40 },
  tokenizer: { vocab_size: 280 },
  stages: [
    { type: 'sft', dataset: { source: 'demo', num_examples: 200 }, max_steps: 8, warmup_steps: 1, save_steps: 4 },
    {
      type: 'preferences',
      policy: 'sft',
      prompts: { source: 'demo' },
      num_prompts: 16,
      completions_per_prompt: 2,
      max_new_tokens: 8,
    },
  ],
};

/**
 * Trains the pipeline, then leaves its SFT run as a stop after step 4 leaves it (step 8 and the later stage gone), and
 * exports step 4 as ONNX.
 */
before(async () => {
  requireBuild();
  ensureDir(base);
  writeFileSync(path.join(base, 'dmg.rlhf.json'), JSON.stringify(config, null, 2));
  const trained = await runCli(['train', 'dmg.rlhf.json', '--runs-dir', 'runs'], { cwd: base });
  assert.equal(trained.code, 0, `training the base run failed: ${tail(trained.stderr)}`);
  const runs = readdirSync(path.join(base, 'runs'));
  sftRun = runs.find((name) => name.startsWith('dmg-sft-'))!;
  for (const name of runs.filter((name) => name !== sftRun)) rmSync(path.join(base, 'runs', name), { recursive: true });
  rmSync(path.join(base, 'runs', sftRun, 'checkpoints', 'step-8'), { recursive: true });
  editJson((run) => ({
    ...run,
    status: 'stopped',
    step: 4,
    last_checkpoint: 'checkpoints/step-4',
    outputs: undefined,
    ended_at: undefined,
  }))(path.join(base, 'runs', sftRun, 'run.json'));
  const exported = await runCli(['export', path.join('runs', sftRun, 'checkpoints', 'step-4'), '--out', 'onnx-sft'], {
    cwd: base,
  });
  assert.equal(exported.code, 0, `exporting the base checkpoint failed: ${tail(exported.stderr)}`);
});

after(() => {
  console.log(
    family.report(
      `${family.ratio('clear')} clear errors naming the file, ${family.sum('stackTraces')} stack traces, ` +
        `${family.sum('outside')} files written outside the runs folder`,
    ),
  );
  rmSync(root, { recursive: true, force: true });
});

type Command = 'resume' | 'sample' | 'export' | 'inspect';
interface DamageCase {
  readonly name: string;
  readonly command: Command;
  /** The damaged file or folder, relative to the sandbox ("@" stands for the SFT run folder). */
  readonly target: string;
  /** Damages the target; may return the name of the tensor it broke, which the error must then name. */
  readonly damage: (file: string) => string | void;
  /** A field the error must name (besides the file), or a pattern of the acceptable names. */
  readonly field?: string | RegExp;
  /** Extra arguments (inspect's --name). */
  readonly args?: readonly string[];
}

const checkpoint = '@/checkpoints/step-4';
const model = `${checkpoint}/model.safetensors`;
const optimizer = `${checkpoint}/optimizer.safetensors`;
const on = (
  command: Command,
  name: string,
  target: string,
  damage: DamageCase['damage'],
  field?: string | RegExp,
): DamageCase => ({ name: `${command}: ${name}`, command, target, damage, field });

const cases: DamageCase[] = [
  // model.safetensors, on resume
  on('resume', 'model.safetensors truncated to half', model, truncateHalf),
  on('resume', 'model.safetensors empty', model, truncateTo(0)),
  on('resume', 'model.safetensors 5 bytes', model, truncateTo(5)),
  on('resume', 'model.safetensors zeroed', model, zeroed),
  on('resume', 'model.safetensors garbage', model, garbled),
  on('resume', 'model.safetensors header size beyond the file', model, lyingHeader('size')),
  on('resume', 'model.safetensors header JSON broken', model, brokenHeaderJson),
  on('resume', 'model.safetensors header lies about offsets', model, lyingHeader('offsets')),
  on('resume', 'model.safetensors header lies about a dtype', model, lyingHeader('dtype')),
  on('resume', 'model.safetensors header lies about a shape', model, lyingHeader('shape')),
  on('resume', 'model.safetensors missing a tensor', model, tensorEdit('drop')),
  on('resume', 'model.safetensors with a transposed tensor', model, tensorEdit('transpose')),
  on('resume', 'model.safetensors holding NaN', model, tensorEdit('nan')),
  // optimizer.safetensors
  on('resume', 'optimizer.safetensors truncated', optimizer, truncateHalf),
  on('resume', 'optimizer.safetensors garbage', optimizer, garbled),
  on('resume', 'optimizer.safetensors missing a moment', optimizer, tensorEdit('drop')),
  on('resume', 'optimizer.safetensors holding NaN', optimizer, tensorEdit('nan')),
  // the checkpoint's JSON files
  on('resume', 'config.json truncated', `${checkpoint}/config.json`, truncateHalf),
  on(
    'resume',
    'config.json n_embd a string',
    `${checkpoint}/config.json`,
    editJson((c) => ({ ...c, n_embd: '16' })),
    'n_embd',
  ),
  on('resume', 'config.json an array', `${checkpoint}/config.json`, replaceWith('[]\n')),
  // Naming the embedding whose shape disagrees with vocab_size says the same.
  on(
    'resume',
    'config.json vocab_size not matching the weights',
    `${checkpoint}/config.json`,
    editJson((c) => ({ ...c, vocab_size: 999 })),
    /vocab_size|transformer\.wte\.weight/,
  ),
  on('resume', 'trainer_state.json truncated', `${checkpoint}/trainer_state.json`, truncateHalf),
  on(
    'resume',
    'trainer_state.json global_step a string',
    `${checkpoint}/trainer_state.json`,
    editJson((s) => ({ ...s, global_step: '4' })),
    'global_step',
  ),
  on(
    'resume',
    'trainer_state.json global_step past max_steps',
    `${checkpoint}/trainer_state.json`,
    editJson((s) => ({ ...s, global_step: 9999 })),
    'global_step',
  ),
  on('resume', 'trainer_state.json an array', `${checkpoint}/trainer_state.json`, replaceWith('[]\n')),
  on('resume', 'tokenizer.json truncated', `${checkpoint}/tokenizer.json`, truncateHalf),
  on(
    'resume',
    'tokenizer.json model of the wrong type',
    `${checkpoint}/tokenizer.json`,
    editJson((t) => ({ ...t, model: 5 })),
    'model',
  ),
  // files missing
  on('resume', 'model.safetensors missing', model, remove),
  on('resume', 'config.json missing', `${checkpoint}/config.json`, remove),
  on('resume', 'trainer_state.json missing', `${checkpoint}/trainer_state.json`, remove),
  on('resume', 'tokenizer.json missing', `${checkpoint}/tokenizer.json`, remove),
  // run.json
  on('resume', 'run.json truncated', '@/run.json', truncateHalf),
  on('resume', 'run.json an array', '@/run.json', replaceWith('[]\n')),
  on('resume', 'run.json not UTF-8', '@/run.json', replaceWith(Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x7d]))),
  on('resume', 'run.json missing', '@/run.json', remove),
  on(
    'resume',
    'run.json stage_index 99',
    '@/run.json',
    editJson((r) => ({ ...r, stage_index: 99 })),
    'stage_index',
  ),
  on(
    'resume',
    'run.json stage_index a string',
    '@/run.json',
    editJson((r) => ({ ...r, stage_index: '0' })),
    'stage_index',
  ),
  on(
    'resume',
    'run.json config.stages not a list',
    '@/run.json',
    editJson((r) => ({ ...r, config: { ...(r.config as object), stages: 'sft' } })),
    'stages',
  ),
  on(
    'resume',
    'run.json config.name climbing out (../../escape)',
    '@/run.json',
    editJson((r) => ({ ...r, config: { ...(r.config as object), name: '../../escape' } })),
    'name',
  ),
  // sample and export read the same files
  on('sample', 'model.safetensors truncated', model, truncateHalf),
  on('sample', 'model.safetensors holding NaN', model, tensorEdit('nan')),
  on(
    'sample',
    'config.json n_positions negative',
    `${checkpoint}/config.json`,
    editJson((c) => ({ ...c, n_positions: -1 })),
    'n_positions',
  ),
  on(
    'sample',
    'config.json rlhf_lens.block_size negative',
    `${checkpoint}/config.json`,
    editJson((c) => ({ ...c, rlhf_lens: { ...(c.rlhf_lens as object), block_size: -1 } })),
    'block_size',
  ),
  on('sample', 'tokenizer.json garbage', `${checkpoint}/tokenizer.json`, garbled),
  on('sample', 'a folder that is not a checkpoint', `${checkpoint}/model.safetensors`, remove),
  on('export', 'model.safetensors header lies about offsets', model, lyingHeader('offsets')),
  on('export', 'model.safetensors holding NaN', model, tensorEdit('nan')),
  on('export', 'config.json missing', `${checkpoint}/config.json`, remove),
  // inspect reads ONNX folders and names a run
  on('inspect', 'policy config.json truncated', 'onnx-sft/config.json', truncateHalf),
  on('inspect', 'policy onnx/model.onnx garbage', 'onnx-sft/onnx/model.onnx', garbled),
  on('inspect', 'policy tokenizer.json truncated', 'onnx-sft/tokenizer.json', truncateHalf),
  {
    name: 'inspect: --name climbing out (../../escape)',
    command: 'inspect',
    target: 'onnx-sft',
    damage: () => undefined,
    field: '--name',
    args: ['--name', '../../escape'],
  },
];

function commandLine(kind: Command, sandbox: string, extra: readonly string[]): string[] {
  const runDir = path.join(sandbox, 'runs', sftRun);
  switch (kind) {
    case 'resume':
      return ['train', '--resume', runDir];
    case 'sample':
      return [
        'sample',
        path.join(runDir, 'checkpoints', 'step-4'),
        '--num-samples',
        '1',
        '--max-new-tokens',
        '4',
        '--backend',
        'wasm',
      ];
    case 'export':
      return ['export', path.join(runDir, 'checkpoints', 'step-4')];
    case 'inspect':
      return [
        'inspect',
        '--policy',
        path.join(sandbox, 'onnx-sft'),
        '--reference',
        path.join(sandbox, 'onnx-sft'),
        '--steps',
        '1',
        '--batch-size',
        '2',
        '--runs-dir',
        path.join(sandbox, 'runs'),
        ...extra,
      ];
  }
}

/** Every safetensors file of the runs folder holds finite numbers only. */
function allFinite(runsRoot: string): boolean {
  return listTree(runsRoot)
    .filter((file) => file.endsWith('.safetensors'))
    .every((file) =>
      Object.values(decodeSafetensors(new Uint8Array(readFileSync(path.join(runsRoot, file)))).tensors).every(
        (tensor) => !(tensor.data instanceof Float32Array) || tensor.data.every(Number.isFinite),
      ),
    );
}

for (const damage of cases) {
  test(`damaged ${damage.name}: a clear error naming the file, nothing written outside the runs folder`, async () => {
    const caseDir = ensureDir(path.join(root, damage.name.replace(/[^a-z0-9]+/gi, '-')));
    const sandbox = path.join(caseDir, 'sandbox');
    cpSync(base, sandbox, { recursive: true });
    // The copy's run.json must point at the copy, not at the shared base.
    const runJson = path.join(sandbox, 'runs', sftRun, 'run.json');
    writeFileSync(runJson, readFileSync(runJson, 'utf8').replaceAll(base, sandbox));
    const target = path.join(sandbox, damage.target.replace('@', path.join('runs', sftRun)));
    const tensor = damage.damage(target);
    const work = ensureDir(path.join(sandbox, 'work'));
    const existing = new Set(listTree(caseDir));
    const result = await runCli(commandLine(damage.command, sandbox, damage.args ?? []), {
      cwd: work,
      timeoutMs: 120_000,
    });

    const failures: string[] = [];
    const errorStart = result.stderr.search(/^error: /m);
    const errorText = errorStart >= 0 ? result.stderr.slice(errorStart) : '';
    const fileName = `${path.basename(path.dirname(target))}/${path.basename(target)}`;
    const stack = hasStackTrace(result.stderr);
    const outside = listTree(caseDir).filter((entry) => !existing.has(entry) && !entry.startsWith('sandbox/runs/'));
    // A NaN model checkpoint on resume may instead be skipped for the last finite one, if that is said and the result
    // is finite.
    const skippedNaN =
      damage.command === 'resume' &&
      damage.name.includes('NaN') &&
      result.code === 0 &&
      result.stderr.includes(fileName) &&
      allFinite(path.join(sandbox, 'runs'));
    // A climbing --name may instead be cut down to a safe one by the run-name sanitiser: then the run must land inside
    // the runs folder.
    const sanitisedName =
      damage.args?.includes('--name') === true &&
      result.code === 0 &&
      outside.length === 0 &&
      listTree(path.join(sandbox, 'runs')).every((entry) => !entry.includes('..'));
    if (!skippedNaN && !sanitisedName) {
      if (result.timedOut) failures.push('still running after 120 s');
      else if (result.code === 0) failures.push(`exit 0: the damage went unnoticed (${tail(result.stderr, 2)})`);
      if (!errorText) failures.push(`no "error:" line; stderr: ${tail(result.stderr, 3) || '(empty)'}`);
      else {
        // "folder/name", or the folder's path and the file's name ("…/step-4 is not a checkpoint: config.json is
        // missing").
        const named =
          errorText.includes(fileName) ||
          (errorText.includes(path.dirname(target)) && errorText.includes(path.basename(target)));
        if (!named && !(damage.target === 'onnx-sft' && /--name/.test(errorText)))
          failures.push(`the error does not name ${fileName}: ${tail(errorText, 2)}`);
        if (
          damage.field &&
          !(typeof damage.field === 'string' ? errorText.includes(damage.field) : damage.field.test(errorText))
        )
          failures.push(`the error does not name the field ${damage.field}`);
        if (tensor && !errorText.includes(tensor)) failures.push(`the error does not name the tensor ${tensor}`);
      }
    }
    if (stack) failures.push('a stack trace was printed');
    if (outside.length > 0) failures.push(`wrote outside the runs folder: ${outside.slice(0, 3).join(', ')}`);
    family.record(
      damage.name,
      {
        clear: failures.length === 0,
        stackTraces: stack ? 1 : 0,
        outside: outside.filter((entry) => !entry.endsWith('/')).length,
      },
      failures,
    );
    assert.deepEqual(failures, []);
  });
}
