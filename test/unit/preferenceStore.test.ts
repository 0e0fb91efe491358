// The Rank view's preference store on real files: one fsynced line per judgment, retractions that
// readers honour, a torn last line (a crash mid-write) kept apart from the next judgment, appends
// that never interleave, a judgment acknowledged to a process that is then SIGKILLed still on disk,
// and TRL pairwise export.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { PreferenceStore, preferenceFileOf, validDatasetName } from '../../src/host/preferenceStore';
import { exportTrlPairwise, formatPreferenceProblem, readPreferenceFile } from '../../src/shared/preferenceFile';
import type { Judgment } from '../../src/shared/preferences';

const temp = () => mkdtempSync(path.join(tmpdir(), 'rlhf-prefstore-'));

const judgment = (id: string, ranking: number[][] = [[2], [0, 3], [1]]): Judgment => ({
  id,
  prompt: `prompt ${id}`,
  completions: ['w', 'x', 'y', 'z'],
  ranking,
  annotator: 'ada',
  time: '2026-11-21T10:00:00.000Z',
  source: { run: 'sft-1', step: 120, model: '/ws/.rlhf/runs/sft-1/checkpoints/step-120' },
  shown_order: [3, 1, 0, 2],
  note: 'y is the clearest',
  confidence: 0.75,
});

test('dataset names map to .rlhf/preferences/<name>.jsonl; names that are not plain file names are refused', () => {
  assert.equal(preferenceFileOf('/ws', 'reviews-v2'), path.join('/ws', '.rlhf', 'preferences', 'reviews-v2.jsonl'));
  for (const bad of ['../escape', 'a/b', '', '.hidden', 'x'.repeat(101)]) {
    assert.ok(validDatasetName(bad), `"${bad}" is refused`);
    assert.throws(() => preferenceFileOf('/ws', bad), /Dataset name/);
  }
});

test(
  'each judgment is one line in the DESIGN format; a ' + 'retraction line removes it for readers, nothing is rewritten',
  async () => {
    const file = path.join(temp(), '.rlhf', 'preferences', 'd.jsonl');
    const store = new PreferenceStore(file);
    await store.append(judgment('a'));
    await store.append(judgment('b'));
    const before = readFileSync(file, 'utf8');
    assert.deepEqual(JSON.parse(before.split('\n')[0]), judgment('a'));
    await store.retract('a');
    const after = readFileSync(file, 'utf8');
    assert.ok(after.startsWith(before), 'the earlier lines are untouched: undo only appends');
    assert.deepEqual(Object.keys(JSON.parse(after.trim().split('\n')[2])).sort(), ['retracts', 'time']);
    const read = await store.read();
    assert.deepEqual(
      read.judgments.map((j) => j.id),
      ['b'],
    );
    assert.equal(read.retracted, 1);
    assert.deepEqual(read.problems, []);
  },
);

test(
  'a torn last line (a crash mid-write) does not swallow the next judgment; ' +
    'readers report it by line and keep the rest',
  async () => {
    const dir = temp();
    const file = path.join(dir, 'd.jsonl');
    writeFileSync(file, `${JSON.stringify(judgment('a'))}\n`);
    appendFileSync(file, JSON.stringify(judgment('b')).slice(0, 40)); // half a line, no newline
    const store = new PreferenceStore(file);
    await store.append(judgment('c'));
    const read = await store.read();
    assert.deepEqual(
      read.judgments.map((j) => j.id),
      ['a', 'c'],
    );
    assert.equal(read.problems.length, 1);
    assert.equal(read.problems[0].line, 2);
    assert.match(read.problems[0].message, /not valid JSON/);
  },
);

test('a line that is not UTF-8 is reported by line and skipped (not read with U+FFFD in it)', async () => {
  const file = path.join(temp(), 'd.jsonl');
  const latin1 = Buffer.from(JSON.stringify(judgment('b')).replace('prompt b', 'caf\u00e9'), 'latin1');
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from(`${JSON.stringify(judgment('a'))}\n`),
      latin1,
      Buffer.from(`\n${JSON.stringify(judgment('c'))}\n`),
    ]),
  );
  const read = await new PreferenceStore(file).read();
  assert.deepEqual(
    read.judgments.map((j) => j.id),
    ['a', 'c'],
  );
  assert.deepEqual(read.problems.map(formatPreferenceProblem), [
    `${file}:2: not UTF-8 (byte 0xE9 at byte ${latin1.indexOf(0xe9) + 1} of the line); save the file as UTF-8`,
  ]);
});

test('concurrent appends come out as whole lines, none lost', async () => {
  const file = path.join(temp(), 'd.jsonl');
  const store = new PreferenceStore(file);
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => store.append({ ...judgment(`j${i}`), note: 'x'.repeat(5000) })),
  );
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines.length, 40);
  assert.deepEqual(new Set(lines.map((line) => JSON.parse(line).id)).size, 40);
});

test('a judgment acknowledged to a process that is killed with SIGKILL right after is on disk, whole', async () => {
  const file = path.join(temp(), 'd.jsonl');
  // A child process appends through the real store, prints "saved" once append resolved, then spins
  // until the parent kills it: what a crashed extension host looks like.
  const storeModule = path.join(__dirname, '..', '..', 'src', 'host', 'preferenceStore.ts');
  const script = `
    const { PreferenceStore } = require(${JSON.stringify(storeModule)});
    const store = new PreferenceStore(${JSON.stringify(file)});
    (async () => {
      for (let i = 0; ; i++) {
        const ranking = [[i % 2], [1 - (i % 2)]];
        const note = 'n'.repeat(2000);
        await store.append({ id: 'k' + i, prompt: 'p', completions: ['a', 'b'], ranking, annotator: 'ada', note });
        process.stdout.write('saved k' + i + '\\n');
      }
    })();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let acknowledged: string[] = [];
  await new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      acknowledged = acknowledged.concat(
        chunk
          .split('\n')
          .filter((line) => line.startsWith('saved'))
          .map((line) => line.slice(6)),
      );
      if (acknowledged.length >= 25) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await new Promise((resolve) => child.once('exit', resolve));
  const read = await readPreferenceFile(file);
  const onDisk = new Set(read.judgments.map((j) => j.id));
  for (const id of acknowledged) assert.ok(onDisk.has(id), `acknowledged judgment ${id} is in the file`);
  // The kill may land mid-write of the next line; a reader then reports at most that one line.
  assert.ok(read.problems.length <= 1, JSON.stringify(read.problems));
});

test(
  'export writes TRL pairwise lines: all K(K-1)/2 pairs of each live judgment, ' +
    'ties skipped, retracted ones left out',
  async () => {
    const dir = temp();
    const file = path.join(dir, 'd.jsonl');
    const store = new PreferenceStore(file);
    await store.append(judgment('a')); // [[2],[0,3],[1]]: 5 pairs (0–3 tie skipped)
    await store.append(judgment('b', [[0], [1], [2], [3]])); // 6 pairs
    await store.append(judgment('c', [[1], [0]])); // retracted below
    await store.retract('c');
    const output = path.join(dir, 'out.jsonl');
    const result = await exportTrlPairwise(file, output);
    assert.equal(result.pairs, 11);
    assert.equal(result.judgments, 2);
    const rows = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(rows[0], { prompt: 'prompt a', chosen: 'y', rejected: 'w' });
    assert.ok(rows.every((row) => Object.keys(row).join() === 'prompt,chosen,rejected'));
    assert.ok(!rows.some((row) => row.prompt === 'prompt c'));
    // The exported file reads back as judgments too (TRL lines are K = 2 judgments).
    assert.equal((await readPreferenceFile(output)).judgments.length, 11);
    // And the real `node` can parse every line (no BOM, no trailing garbage).
    execFileSync(process.execPath, [
      '-e',
      `require('fs').readFileSync(${JSON.stringify(output)}, 'utf8').trim().split('\\n').forEach((l) => JSON.parse(l))`,
    ]);
  },
);
