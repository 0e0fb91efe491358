/**
 * Broken run configs of the kind a hostile (or unlucky) user writes, each with the line the error
 * must name. They start from a small valid config and break one thing: syntax, encoding, sizes,
 * types at every level, names that would leave the runs folder, a model that cannot fit in memory,
 * data files that are not there. The existing fixtures (test/fixtures/broken-configs) come on top.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';

export interface HostileConfig {
  readonly name: string;
  /** The config's bytes. */
  readonly bytes: Buffer;
  /**
   * The line the error must name: one line, or the lines of a block (the memory guard may name the model or a field in
   * it).
   */
  readonly lines: readonly number[];
  /** Text the error must contain besides file:line (case-insensitive), when the cause has an obvious word. */
  readonly mentions?: RegExp;
  /** Files next to the config the case needs (a folder posing as a dataset). */
  readonly setup?: (dir: string) => void;
}

/** A valid one-stage config; its pretty-printed lines are what the line numbers below refer to. */
const base = {
  name: 'hostile',
  seed: 1,
  backend: 'wasm',
  model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
  tokenizer: { vocab_size: 280 },
  stages: [{ type: 'sft', dataset: { source: 'demo', num_examples: 50 }, max_steps: 2, warmup_steps: 1 }],
};
/*
 *  1 {                         10   },                     19         "num_examples": 50
 *  2   "name": "hostile",      11   "tokenizer": {         20       },
 *  3   "seed": 1,              12     "vocab_size": 280    21       "max_steps": 2,
 *  4   "backend": "wasm",      13   },                     22       "warmup_steps": 1
 *  5   "model": {              14   "stages": [            23     }
 *  6     "n_layer": 1,         15     {                    24   ]
 *  7     "n_head": 2,          16       "type": "sft",     25 }
 *  8     "n_embd": 16,         17       "dataset": {
 *  9     "block_size": 32      18         "source": "demo",
 */
const placeholder = '"@@RAW@@"';

/**
 * The base config with the value at `at` replaced by raw JSON text (which may be invalid JSON), and the line it lands
 * on.
 */
function withRaw(at: readonly (string | number)[], raw: string): { text: string; line: number } {
  const copy = structuredClone(base) as Record<string, unknown>;
  let parent = copy as Record<string | number, unknown>;
  for (const key of at.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  parent[at.at(-1)!] = JSON.parse(placeholder);
  const text = JSON.stringify(copy, null, 2);
  const line = text.slice(0, text.indexOf(placeholder)).split('\n').length;
  return { text: text.replace(placeholder, () => raw), line };
}

function raw(
  name: string,
  at: readonly (string | number)[],
  value: string,
  extra: Partial<HostileConfig> = {},
): HostileConfig {
  const { text, line } = withRaw(at, value);
  return { name, bytes: Buffer.from(text, 'utf8'), lines: [line], ...extra };
}

const valid = JSON.stringify(base, null, 2);
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const linesOf = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function hostileConfigs(): HostileConfig[] {
  const depth = 200_000;
  return [
    // --- syntax and encoding
    { name: 'empty-file', bytes: Buffer.alloc(0), lines: [1] },
    { name: 'whitespace-only', bytes: utf8('\n\n   \n'), lines: [1, 2, 3, 4] },
    {
      name: 'nesting-200k-deep',
      bytes: utf8(`{\n  "name": ${'['.repeat(depth)}${']'.repeat(depth)}\n}\n`),
      lines: [2],
    },
    raw('name-50MB-string', ['name'], JSON.stringify('x'.repeat(50 * 1024 * 1024))),
    {
      name: 'non-utf8-bytes-in-name',
      bytes: Buffer.concat([
        utf8(valid.slice(0, valid.indexOf('hostile'))),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        utf8(valid.slice(valid.indexOf('hostile') + 'hostile'.length)),
      ]),
      lines: [2],
      mentions: /utf-?8/i,
    },
    {
      name: 'utf16-encoded-file',
      bytes: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(valid, 'utf16le')]),
      lines: [1],
      mentions: /utf-?8|utf-?16|encod/i,
    },
    // A BOM (Windows editors write one) must not shift or hide the real error; refusing the BOM itself on line 1 is
    // clear too.
    {
      name: 'bom-then-wrong-type-on-line-21',
      bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(withRaw(['stages', 0, 'max_steps'], '"2"').text)]),
      lines: [1, 21],
      mentions: /max_steps|BOM|byte order mark/i,
    },
    raw('nan-literal', ['stages', 0, 'max_steps'], 'NaN'),
    raw('infinity-literal', ['stages', 0, 'warmup_steps'], 'Infinity'),
    raw('number-overflowing-to-infinity', ['stages', 0, 'max_steps'], '1e400', { mentions: /max_steps/ }),
    raw('integer-beyond-2^53', ['seed'], '123456789012345678901234567890', { mentions: /seed/ }),
    {
      name: 'duplicate-top-level-key',
      bytes: utf8(valid.replace('"seed": 1,', '"seed": 1,\n  "seed": 2,')),
      lines: [4],
      mentions: /seed/,
    },
    {
      name: 'duplicate-key-in-stage',
      bytes: utf8(valid.replace('"max_steps": 2,', '"max_steps": 2,\n      "max_steps": 3,')),
      lines: [22],
      mentions: /max_steps/,
    },
    { name: 'garbage-after-the-object', bytes: utf8(`${valid}\n}garbage\n`), lines: [26] },
    { name: 'unterminated-comment', bytes: utf8(`${valid}\n/* never closed\n`), lines: [26] },
    { name: 'unterminated-string', bytes: utf8(valid.replace('"hostile",', '"hostile,')), lines: [2] },
    { name: 'nul-byte-in-name', bytes: utf8(valid.replace('hostile', 'host\u0000ile')), lines: [2] },
    // --- wrong types at each level
    { name: 'top-level-array', bytes: utf8('[]\n'), lines: [1] },
    { name: 'top-level-null', bytes: utf8('null\n'), lines: [1] },
    { name: 'top-level-string', bytes: utf8('"a config"\n'), lines: [1] },
    raw('name-is-a-number', ['name'], '42', { mentions: /name/ }),
    raw('seed-is-boolean', ['seed'], 'true', { mentions: /seed/ }),
    raw('backend-is-number', ['backend'], '7', { mentions: /backend/ }),
    raw('model-is-string', ['model'], '"big"', { mentions: /model/ }),
    raw('n_layer-fractional', ['model', 'n_layer'], '1.5', { mentions: /n_layer/ }),
    raw('n_head-zero', ['model', 'n_head'], '0', { mentions: /n_head/ }),
    raw('vocab_size-is-string', ['tokenizer', 'vocab_size'], '"280"', { mentions: /vocab_size/ }),
    raw('stages-is-object', ['stages'], '{}', { mentions: /stages/ }),
    raw('stage-is-number', ['stages', 0], '5'),
    raw('dataset-is-array', ['stages', 0, 'dataset'], '[]', { mentions: /dataset/ }),
    raw('num_examples-1e15', ['stages', 0, 'dataset', 'num_examples'], '1e15', { mentions: /num_examples/ }),
    // --- names that would leave the runs folder
    raw('run-name-path-traversal', ['name'], '"../../escape"', { mentions: /name/ }),
    raw('run-name-absolute-path', ['name'], '"/tmp/rlhf-reliability-absolute"', { mentions: /name/ }),
    raw('run-name-with-slash', ['name'], '"a/b"', { mentions: /name/ }),
    {
      name: 'stage-name-path-traversal',
      bytes: utf8(valid.replace('"type": "sft",', '"type": "sft",\n      "name": "../../stage-escape",')),
      lines: [17],
      mentions: /name/,
    },
    // --- memory bombs the schema accepted (the guard must refuse before any run folder, naming the model)
    raw(
      'memory-bomb-48-layers-4096-wide',
      ['model'],
      '{ "n_layer": 48, "n_head": 32, "n_embd": 4096, "block_size": 1024 }',
      { mentions: /memory|GiB|MiB|fit/i },
    ),
    {
      name: 'memory-bomb-block-4096-batch-4096',
      bytes: utf8(
        withRaw(['model', 'block_size'], '4096').text.replace(
          '"max_steps": 2,',
          '"max_steps": 2,\n      "per_device_train_batch_size": 4096,',
        ),
      ),
      lines: linesOf(5, 23),
      mentions: /memory|GiB|MiB|fit/i,
    },
    raw('memory-bomb-vocab-1e9', ['tokenizer', 'vocab_size'], '1000000000', { mentions: /vocab_size|memory|GiB/i }),
    // --- data files that are not there, or are not files
    raw('dataset-path-missing', ['stages', 0, 'dataset'], '{ "source": "jsonl", "path": "no/such/data.jsonl" }', {
      mentions: /no\/such\/data\.jsonl/,
    }),
    raw('dataset-path-is-a-folder', ['stages', 0, 'dataset'], '{ "source": "jsonl", "path": "data" }', {
      mentions: /data/,
      setup: (dir) => mkdirSync(path.join(dir, 'data'), { recursive: true }),
    }),
    raw(
      'sft-init_from-missing-checkpoint',
      ['stages', 0, 'dataset'],
      '{ "source": "demo" }, "init_from": "checkpoints/none"',
      { mentions: /checkpoints\/none/ },
    ),
  ];
}
