// Durable writes on real files: a fault-injecting fs (a short write, ENOSPC at a chosen byte, a failing
// fsync) proves nothing appears under the final name and no temporary is left; a real 256 KiB tmpfs
// (when running as root) filled up proves run.json, a trace and a checkpoint keep their previous
// version and still decode; stale temporaries of another process are removed on resume, user files kept.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
  ftruncateSync,
  fstatSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';
import {
  appendLineDurable,
  createFolderDurableSync,
  DurableWriteError,
  FolderTakenError,
  isTemporaryName,
  nodeFs,
  removeStaleTemporaries,
  syncFile,
  writeFileDurable,
  writeFolderDurable,
  type DurableFs,
} from '../../src/shared/durableWrite';
import { decodeTrace, type RewardTraceRow } from '../../src/shared/traceFormat';
import { loadCheckpoint, saveCheckpoint } from '../../src/trainer/checkpoint/checkpoint';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import { checkpointConfig } from '../../src/trainer/checkpoint/modelLoading';
import { RunDirectory } from '../../src/trainer/run/runDirectory';
import { traceFile, writeTrace } from '../../src/trainer/run/traceWriter';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';

const scratch = () => mkdtempSync(path.join(tmpdir(), 'rlhf-durable-'));
const enospc = () =>
  Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
/** Everything in `dir`, recursively, as relative paths. */
const listing = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
const temporariesIn = (dir: string) => listing(dir).filter((name) => isTemporaryName(path.basename(name)));

/**
 * A node fs whose writes stop with ENOSPC once `limit` bytes were written (taking what still fits first, as a nearly
 * full disk does).
 */
function diskWithRoomFor(limit: number): DurableFs {
  let room = limit;
  return {
    ...nodeFs,
    writeSync: (fd, buffer, offset, length) => {
      if (room === 0) throw enospc();
      const count = nodeFs.writeSync(fd, buffer, offset, Math.min(length, room));
      room -= count;
      return count;
    },
  };
}

test(
  'a file is written whole under its name, with no temporary left; ' +
    'short writes are continued until every byte is there',
  () => {
    const dir = scratch();
    const file = path.join(dir, 'run.json');
    const bytes = new Uint8Array(100 * 1024).map((_, i) => (i * 31) % 251);
    let calls = 0;
    const trickling: DurableFs = {
      ...nodeFs,
      writeSync: (fd, buffer, offset, length) => (
        calls++,
        nodeFs.writeSync(fd, buffer, offset, Math.min(length, 1000))
      ),
    };
    writeFileDurable(file, bytes, trickling);
    assert.equal(calls, Math.ceil(bytes.length / 1000));
    assert.deepEqual(new Uint8Array(readFileSync(file)), bytes);
    assert.deepEqual(listing(dir), ['run.json']);
  },
);

test(
  'ENOSPC after 56 KiB of a 100 KiB write: the previous version stays under the name, ' +
    'the temporary is removed, the error names the path and what to do',
  () => {
    const dir = scratch();
    const file = path.join(dir, 'run.json');
    writeFileSync(file, '{"status": "running"}\n');
    assert.throws(
      () => writeFileDurable(file, 'x'.repeat(100 * 1024), diskWithRoomFor(56 * 1024)),
      (error: unknown) => {
        assert.ok(error instanceof DurableWriteError);
        assert.equal(error.path, file);
        assert.equal(error.code, 'ENOSPC');
        assert.equal(
          error.message,
          `could not write ${file}: no space left on device (ENOSPC) — free disk space, then try again (a ` +
            `stopped run continues with --resume)`,
        );
        return true;
      },
    );
    assert.equal(readFileSync(file, 'utf8'), '{"status": "running"}\n');
    assert.deepEqual(listing(dir), ['run.json']);
  },
);

test(
  'a disk that takes 0 bytes, a file shorter than written after fsync, ' +
    'or a failing fsync: nothing appears under the final name',
  () => {
    const dir = scratch();
    const file = path.join(dir, 'step-3.arrow');
    const cases: [DurableFs, RegExp][] = [
      [
        {
          ...nodeFs,
          writeSync: (fd, buffer, offset, length) =>
            offset === 0 ? nodeFs.writeSync(fd, buffer, offset, length - 10) : 0,
        },
        /only 990 of 1000 bytes reached the file \(SHORT_WRITE\)/,
      ],
      [
        { ...nodeFs, fstatSync: (fd) => ({ size: nodeFs.fstatSync(fd).size - 1 }) },
        /only 999 of 1000 bytes reached the file \(SHORT_WRITE\)/,
      ],
      [
        {
          ...nodeFs,
          fsyncSync: () => {
            throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
          },
        },
        /: i\/o error \(EIO\) — check the disk/,
      ],
    ];
    for (const [io, reason] of cases) {
      assert.throws(
        () => writeFileDurable(file, new Uint8Array(1000), io),
        (error: Error) => error.message.startsWith(`could not write ${file}: `) && reason.test(error.message),
      );
      assert.deepEqual(listing(dir), []);
    }
  },
);

test(
  'a folder is written whole: a failure inside it leaves the previous ' +
    'folder as it was and no temporary folder; success replaces it',
  async () => {
    const dir = scratch();
    const target = path.join(dir, 'checkpoints', 'step-4');
    await writeFolderDurable(target, (folder) => {
      writeFileDurable(path.join(folder, 'model.safetensors'), 'old weights');
      writeFileDurable(path.join(folder, 'config.json'), '{}');
    });
    await assert.rejects(
      writeFolderDurable(target, (folder) => {
        writeFileDurable(path.join(folder, 'config.json'), '{"new": true}');
        writeFileDurable(path.join(folder, 'model.safetensors'), new Uint8Array(50_000), diskWithRoomFor(20_000));
      }),
      (error: Error) =>
        error instanceof DurableWriteError &&
        error.path === path.join(target, 'model.safetensors') &&
        /\(ENOSPC\)/.test(error.message),
    );
    // An error that is not about the disk (a check inside the writer) passes through unchanged.
    await assert.rejects(
      writeFolderDurable(target, () => {
        throw new Error('weights are not finite');
      }),
      /^Error: weights are not finite$/,
    );
    assert.deepEqual(listing(dir), [
      'checkpoints',
      'checkpoints/step-4',
      'checkpoints/step-4/config.json',
      'checkpoints/step-4/model.safetensors',
    ]);
    assert.equal(readFileSync(path.join(target, 'model.safetensors'), 'utf8'), 'old weights');

    await writeFolderDurable(target, (folder) =>
      writeFileDurable(path.join(folder, 'model.safetensors'), 'new weights'),
    );
    assert.deepEqual(listing(dir), ['checkpoints', 'checkpoints/step-4', 'checkpoints/step-4/model.safetensors']);
    assert.equal(readFileSync(path.join(target, 'model.safetensors'), 'utf8'), 'new weights');
  },
);

test(
  'appended lines: one whole line each; a torn last line is kept apart; ' +
    'a failed append is cut back off so the file is as before',
  () => {
    const dir = scratch();
    const file = path.join(dir, 'metrics.jsonl');
    appendLineDurable(file, '{"step":1}', { sync: true });
    writeFileSync(file, '{"step":2,"lo', { flag: 'a' }); // a crash cut the second line
    appendLineDurable(file, '{"step":3}');
    assert.equal(readFileSync(file, 'utf8'), '{"step":1}\n{"step":2,"lo\n{"step":3}\n');
    const before = readFileSync(file);
    assert.throws(
      () =>
        appendLineDurable(
          file,
          JSON.stringify({ step: 4, text: 'y'.repeat(5000) }),
          { sync: true },
          diskWithRoomFor(2000),
        ),
      (error: Error) => error.message.startsWith(`could not write ${file}: no space left on device (ENOSPC)`),
    );
    assert.deepEqual(readFileSync(file), before);
    assert.throws(() => appendLineDurable(file, '{"a":1}\n{"b":2}'), /must not contain a newline/);
  },
);

test('syncing an appended file: a missing file is fine, a failing fsync names the file', () => {
  const dir = scratch();
  const file = path.join(dir, 'metrics.jsonl');
  syncFile(file);
  appendLineDurable(file, '{"step":1}');
  syncFile(file);
  const failing: DurableFs = {
    ...nodeFs,
    fsyncSync: () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    },
  };
  assert.throws(
    () => syncFile(file, failing),
    (error: Error) =>
      error instanceof DurableWriteError && error.message.startsWith(`could not write ${file}: i/o error (EIO)`),
  );
});

test(
  'stale temporaries of another process (this version and earlier ones) ' +
    'are removed when a run is opened to resume; user files that look alike are kept',
  () => {
    const root = scratch();
    // A run.json that resume accepts: open() checks it before it sweeps.
    const config = {
      name: 'demo',
      model: { n_layer: 1, n_head: 1, n_embd: 8, block_size: 16 },
      tokenizer: { vocab_size: 270 },
      stages: [{ type: 'sft', dataset: { source: 'demo', num_examples: 100 }, max_steps: 4, warmup_steps: 0 }],
    };
    const run = RunDirectory.create(root, {
      id: 'demo-sft-20260101-000000',
      name: 'demo',
      stage: 'sft',
      stage_index: 0,
      seed: 1,
      config,
      versions: {},
    });
    // Writers that have exited: no pid is above the kernel's largest pid_max (2^22), so none of these runs.
    const stale = [
      '.run.json.4194399-0badf00d.rlhf-tmp',
      '.metrics.jsonl.4194399.1700000000000.tmp',
      'checkpoints/.step-5.4194399-deadbeef.rlhf-tmp/',
      'checkpoints/.step-3.4194399.tmp/',
      'traces/.step-2.arrow.4194399-cafe0123.rlhf-tmp',
      'onnx/step-3.4194399.tmp/',
    ];
    const kept = [
      'notes.tmp',
      '.step-5.tmp',
      'my.rlhf-tmp',
      '.hidden',
      'checkpoints/step-5/model.safetensors',
      'traces/step-2.arrow',
      'checkpoints/step-5/.x.1-0badf00d.rlhf-tmp',
    ];
    for (const name of [...stale, ...kept]) {
      const full = path.join(run.dir, name);
      if (name.endsWith('/')) {
        mkdirSync(full, { recursive: true });
        writeFileSync(path.join(full, 'model.safetensors'), 'partial');
      } else {
        mkdirSync(path.dirname(full), { recursive: true });
        writeFileSync(full, 'x');
      }
    }
    RunDirectory.open(run.dir);
    for (const name of stale)
      assert.equal(existsSync(path.join(run.dir, name)), false, `${name} should have been removed`);
    for (const name of kept) assert.equal(existsSync(path.join(run.dir, name)), true, `${name} should have been kept`);
    assert.deepEqual(removeStaleTemporaries(run.dir), []);
  },
);

test(
  'in the shared runs folder only temporaries of exited writers are swept: ' +
    "a half-made run folder of a killed trainer goes, a live writer's stays",
  async () => {
    const runsRoot = scratch();
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      const exited = execFileSync(process.execPath, ['-p', 'process.pid'], { encoding: 'utf8' }).trim();
      const orphan = `.demo-sft-20260101-000000.${exited}-0badf00d.rlhf-tmp`;
      const writing = `.demo-ppo-20260101-000000.${live.pid}-cafe0123.rlhf-tmp`;
      for (const name of [orphan, writing]) {
        mkdirSync(path.join(runsRoot, name, 'checkpoints'), { recursive: true });
        writeFileSync(path.join(runsRoot, name, '.run.json.1-deadbeef.rlhf-tmp'), '{"id":');
      }
      assert.deepEqual(removeStaleTemporaries(runsRoot, { keepLiveOwners: true }), [path.join(runsRoot, orphan)]);
      assert.equal(existsSync(path.join(runsRoot, writing)), true, "a live trainer's folder in the making is kept");
    } finally {
      live.kill('SIGKILL');
    }
  },
);

test(
  'a new run folder appears whole, with run.json and the ' + 'failure reserve; ending the stage removes the reserve',
  () => {
    const root = scratch();
    const config = {
      name: 'demo',
      model: { n_layer: 1, n_head: 1, n_embd: 8, block_size: 16 },
      tokenizer: { vocab_size: 270 },
      stages: [{ type: 'sft', dataset: { source: 'demo', num_examples: 100 }, max_steps: 4, warmup_steps: 0 }],
    };
    const run = RunDirectory.create(root, {
      id: 'demo-sft-20260101-000000',
      name: 'demo',
      stage: 'sft',
      stage_index: 0,
      seed: 1,
      config,
      versions: {},
    });
    assert.deepEqual(readdirSync(root), ['demo-sft-20260101-000000'], 'no temporary left beside it');
    assert.deepEqual(readdirSync(run.dir).sort(), ['.failure-reserve', 'checkpoints', 'run.json']);
    run.update({ status: 'completed' });
    assert.deepEqual(readdirSync(run.dir).sort(), ['checkpoints', 'run.json']);
  },
);

// ---------------------------------------------------------------------------------------------
// A real full disk

const isRoot = process.getuid?.() === 0;
const notRoot = isRoot
  ? false
  : 'mounting a tmpfs needs root; the fault-injecting cases above cover the same code paths';

/** Runs `body` on a fresh 256 KiB tmpfs, unmounted afterwards whatever happens. */
async function onTinyDisk(body: (disk: string) => Promise<void>): Promise<void> {
  const disk = scratch();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', disk]);
  try {
    await body(disk);
  } finally {
    execFileSync('umount', [disk]);
    rmdirSync(disk);
  }
}

/** Fills the disk with `filler`, then frees `spare` bytes: the next big write gets partway, then ENOSPC. */
function fillDisk(disk: string, spare: number): void {
  const fd = openSync(path.join(disk, 'filler'), 'w');
  try {
    const chunk = new Uint8Array(4096);
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
    ftruncateSync(fd, Math.max(0, fstatSync(fd).size - spare));
  } finally {
    closeSync(fd);
  }
}

const diskFull = (file: string) => (error: Error) =>
  error instanceof DurableWriteError &&
  error.path === file &&
  error.code === 'ENOSPC' &&
  error.message.includes(`could not write ${file}: no space left on device (ENOSPC)`);

test(
  'a full disk (tmpfs): a bigger run.json fails with ENOSPC, the previous run.json is intact and parses',
  { skip: notRoot },
  () =>
    onTinyDisk(async (disk) => {
      const run = RunDirectory.create(disk, {
        id: 'full',
        name: 'full',
        stage: 'sft',
        stage_index: 0,
        seed: 1,
        config: {},
        versions: {},
      });
      const file = path.join(run.dir, 'run.json');
      const previous = readFileSync(file, 'utf8');
      fillDisk(disk, 16 * 1024);
      const summary = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`metric/${i}`, i / 3]));
      assert.throws(() => run.update({ summary }), diskFull(file));
      assert.equal(readFileSync(file, 'utf8'), previous);
      assert.equal(JSON.parse(previous).status, 'running');
      assert.deepEqual(temporariesIn(disk), []);
    }),
);

test(
  'a full disk (tmpfs): rewriting a trace fails with ENOSPC, the previous trace is intact and decodes',
  { skip: notRoot },
  () =>
    onTinyDisk(async (disk) => {
      const row = (sample: number, text: string): RewardTraceRow => ({
        step: 1,
        sample,
        prompt: `p${sample}`,
        chosen: text,
        rejected: 'no',
        chosen_score: 1,
        rejected_score: 0,
        margin: 1,
        correct: true,
        chosen_oracle_score: null,
        rejected_oracle_score: null,
      });
      writeTrace(disk, 1, 'reward', [row(0, 'small')]);
      fillDisk(disk, 16 * 1024);
      const file = traceFile(disk, 1);
      assert.throws(
        () =>
          writeTrace(
            disk,
            1,
            'reward',
            Array.from({ length: 20 }, (_, i) => row(i, 'z'.repeat(5000))),
          ),
        diskFull(file),
      );
      const decoded = decodeTrace(new Uint8Array(readFileSync(file)));
      assert.deepEqual(
        decoded.rows.map((r) => (r as RewardTraceRow).chosen),
        ['small'],
      );
      assert.deepEqual(temporariesIn(disk), []);
    }),
);

before(async () => {
  if (isRoot) await selectBackend('wasm');
});

test(
  'a full disk (tmpfs): a new checkpoint and a rewrite of the last one fail with ENOSPC; ' +
    'the last checkpoint is intact and loads',
  { skip: notRoot },
  () =>
    onTinyDisk(async (disk) => {
      const tokenizer = new BpeTokenizer(
        trainBpe(['the blender works well', 'the hotel was quiet'], { vocabSize: 280 }),
      );
      const model = Gpt.create(
        { vocab_size: tokenizer.vocabSize, block_size: 16, n_layer: 1, n_head: 2, n_embd: 16, dropout: 0 },
        { seed: 3 },
      );
      const weights = await model.readWeights();
      const contents = (step: number) => ({
        config: checkpointConfig(model, tokenizer),
        weights,
        trainerState: { global_step: step, max_steps: 10, stage: 'sft', seed: 3 },
        tokenizer,
      });
      model.dispose();
      const checkpoints = path.join(disk, 'checkpoints');
      await saveCheckpoint(path.join(checkpoints, 'step-1'), contents(1));
      fillDisk(disk, 16 * 1024);
      await assert.rejects(
        saveCheckpoint(path.join(checkpoints, 'step-2'), contents(2)),
        diskFull(path.join(checkpoints, 'step-2', 'model.safetensors')),
      );
      await assert.rejects(
        saveCheckpoint(path.join(checkpoints, 'step-1'), contents(9)),
        diskFull(path.join(checkpoints, 'step-1', 'model.safetensors')),
      );
      assert.deepEqual(readdirSync(checkpoints), ['step-1']);
      assert.deepEqual(temporariesIn(disk), []);
      const loaded = await loadCheckpoint(path.join(checkpoints, 'step-1'));
      assert.equal(loaded.trainerState.global_step, 1);
      assert.deepEqual([...loaded.weights.keys()].sort(), [...weights.keys()].sort());
      for (const [name, { data }] of weights) assert.deepEqual(loaded.weights.get(name)!.data, data);
      assert.equal(loaded.tokenizer.vocabSize, tokenizer.vocabSize);
    }),
);

test(
  'a full disk (tmpfs): too full to start a stage, its run folder still appears, ' +
    'saying failed with ENOSPC; with room after that, a failure is recorded from the reserve',
  { skip: notRoot },
  () =>
    onTinyDisk(async (disk) => {
      const config = {
        name: 'demo',
        model: { n_layer: 1, n_head: 1, n_embd: 8, block_size: 16 },
        tokenizer: { vocab_size: 270 },
        stages: [{ type: 'sft', dataset: { source: 'demo', num_examples: 100 }, max_steps: 4, warmup_steps: 0 }],
      };
      const fields = { name: 'demo', stage: 'sft', stage_index: 0, seed: 1, config, versions: {} };
      fillDisk(disk, 24 * 1024); // room for run.json, not for the 64 KiB reserve
      assert.throws(
        () => RunDirectory.create(disk, { id: 'too-full', ...fields }),
        /could not write .*\.failure-reserve: no space left on device \(ENOSPC\)/,
      );
      const recorded = JSON.parse(readFileSync(path.join(disk, 'too-full', 'run.json'), 'utf8')) as {
        status: string;
        error: string;
      };
      assert.equal(recorded.status, 'failed');
      assert.match(recorded.error, /ENOSPC/);
      assert.deepEqual(temporariesIn(disk), []);

      rmSync(path.join(disk, 'filler'));
      const run = RunDirectory.create(disk, { id: 'fills-up', ...fields });
      fillDisk(disk, 0); // the stage fills the disk to the last byte
      assert.throws(() => run.update({ summary: { 'a/b': 1 } }), /ENOSPC/);
      assert.equal(
        run.markFailed('could not write x: no space left on device (ENOSPC)'),
        undefined,
        'recorded, in the room the reserve kept',
      );
      assert.equal(
        (JSON.parse(readFileSync(path.join(run.dir, 'run.json'), 'utf8')) as { status: string }).status,
        'failed',
      );
    }),
);

test(
  'a new folder never replaces one that appeared meanwhile (two trainers taking one run id): ' +
    "FolderTakenError, the other's files intact",
  () => {
    const root = scratch();
    const target = path.join(root, 'demo-sft-20260101-000000');
    assert.throws(
      () =>
        createFolderDurableSync(target, (folder) => {
          writeFileDurable(path.join(folder, 'run.json'), '{"mine":true}\n');
          // Another trainer finishes making the same folder while this one fills its temporary copy.
          mkdirSync(target);
          writeFileSync(path.join(target, 'run.json'), '{"theirs":true}\n');
        }),
      (error: Error) => error instanceof FolderTakenError && error.path === target,
    );
    assert.equal(readFileSync(path.join(target, 'run.json'), 'utf8'), '{"theirs":true}\n');
    assert.deepEqual(readdirSync(root), ['demo-sft-20260101-000000'], 'no temporary left');
  },
);
