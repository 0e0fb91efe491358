// What the Rank view does with a session, on real files and real sources: sets from a JSONL file and
// from a PPO step's Arrow trace, submit (fsynced, in DESIGN's format, shown order recorded), skip,
// undo (a retraction, and the set comes back), a reopened session (a window reload) that shows only
// sets not yet judged or skipped, the cycle warning, and the pure helpers behind them.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import * as path from 'node:path';
import { test } from 'node:test';
import { Random } from '../../src/core';
import { PreferenceStore } from '../../src/host/preferenceStore';
import { RankSession } from '../../src/host/rankSession';
import {
  openRankSource,
  readCompletionSets,
  traceCompletionSets,
  type RankSourceSpec,
} from '../../src/host/rankSources';
import { parseRankMessage } from '../../src/shared/protocol';
import type { Judgment } from '../../src/shared/preferences';
import {
  findPreferenceCycle,
  identicalGroups,
  randomOrder,
  rankingFromRanks,
  ranksFromRanking,
} from '../../src/shared/rankSet';
import { encodeTrace, type PpoTraceRow } from '../../src/shared/traceFormat';
import type { CheckpointSampler } from '../../src/host/checkpointSampler';

const temp = () => mkdtempSync(path.join(tmpdir(), 'rlhf-rank-session-'));
const noSampler = (): CheckpointSampler => {
  throw new Error('no checkpoint source in this test');
};

const setsFile = (dir: string) => {
  const file = path.join(dir, 'sets.jsonl');
  writeFileSync(
    file,
    [
      JSON.stringify({
        prompt: 'review of the kettle:',
        completions: ['boils fast.', 'leaks.', 'fine.', 'boils fast.'],
      }),
      '{"prompt": "broken line"',
      JSON.stringify({ prompt: 'review of the film:', completions: ['moving.', 'dull.'] }),
      JSON.stringify({ prompt: 'one only', completions: ['x'] }),
      JSON.stringify({ prompt: 'review of the lamp:', completions: ['bright.', 'dim.', 'flickers.'] }),
    ].join('\n'),
  );
  return file;
};

async function openSession(dir: string, spec: RankSourceSpec, skipped: string[] = []) {
  const store = new PreferenceStore(path.join(dir, '.rlhf', 'preferences', 'd.jsonl'));
  let savedSkips: readonly string[] = skipped;
  const session = new RankSession({ store, annotator: 'ada', skipped, onSkipped: (keys) => (savedSkips = keys) });
  await session.load();
  const { source, problems } = await openRankSource(spec, await session.doneKeys(), noSampler, new Random(5));
  await session.setSource(source, problems);
  return { session, store, skips: () => [...savedSkips] };
}

const rankingOf = (k: number) => Array.from({ length: k }, (_, i) => [i]);

test(
  'JSONL sets: bad lines are reported as file:line with the field; ' +
    'a submitted judgment is on disk in DESIGN format before submit resolves',
  async () => {
    const dir = temp();
    const file = setsFile(dir);
    const parsed = await readCompletionSets(file);
    assert.equal(parsed.sets.length, 3);
    assert.equal(parsed.problems.length, 2);
    assert.match(parsed.problems[0], /sets\.jsonl:2: not valid JSON/);
    assert.equal(parsed.problems[1], `${file}:4: field "completions" has 1; rank 2 to 8 at a time`);

    const { session, store } = await openSession(dir, { kind: 'jsonl', file });
    const state = session.state();
    assert.equal(state.set?.prompt, 'review of the kettle:');
    assert.deepEqual(state.set?.identical, [[0, 3]], 'the two identical completions are flagged');
    assert.deepEqual([...(state.set?.shownOrder ?? [])].sort(), [0, 1, 2, 3]);
    assert.match(state.warnings.join('\n'), /sets\.jsonl:2: not valid JSON/);
    assert.equal(state.status, '2 more after this one');

    const written = await session.submit({
      type: 'rank/submit',
      setId: state.set!.id,
      ranking: [[0, 3], [2], [1]],
      note: 'leaks is worst',
      confidence: 0.5,
    });
    const lines: Record<string, unknown>[] = readFileSync(store.file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(lines.length, 1, 'the line is there the moment submit resolves');
    assert.deepEqual(Object.keys(lines[0]).sort(), [
      'annotator',
      'completions',
      'confidence',
      'id',
      'note',
      'prompt',
      'ranking',
      'shown_order',
      'source',
      'time',
    ]);
    assert.deepEqual(lines[0].shown_order, state.set!.shownOrder);
    assert.deepEqual(lines[0].source, { kind: 'jsonl', model: file });
    assert.deepEqual(lines[0], written);
    assert.equal(session.state().judgments, 1);
    assert.equal(session.state().set?.prompt, 'review of the film:');
  },
);

test(
  'skip moves on without writing; undo appends a retraction and shows the undone set again; ' +
    'a reopened session skips what is judged or skipped',
  async () => {
    const dir = temp();
    const file = setsFile(dir);
    const first = await openSession(dir, { kind: 'jsonl', file });
    const kettle = first.session.state().set!;
    await first.session.submit({ type: 'rank/submit', setId: kettle.id, ranking: rankingOf(4) });
    const film = first.session.state().set!;
    await first.session.skip(film.id);
    assert.equal(first.session.state().set?.prompt, 'review of the lamp:');
    const lamp = first.session.state().set!;
    await first.session.submit({ type: 'rank/submit', setId: lamp.id, ranking: [[2], [0, 1]] });
    assert.equal(first.session.state().set, undefined);
    assert.match(first.session.state().status, /All sets of this source are ranked or skipped/);

    // Undo: the lamp judgment is retracted (a new line), and the lamp set is on screen again.
    const undone = await first.session.undo();
    assert.equal(undone?.prompt, 'review of the lamp:');
    const lines = readFileSync(first.store.file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[2].retracts, undone?.id);
    assert.equal(first.session.state().set?.prompt, 'review of the lamp:');
    assert.equal(first.session.state().judgments, 1);

    // A window reload: a new session on the same file and source, with the skips the view saved.
    first.session.dispose();
    const second = await openSession(dir, { kind: 'jsonl', file }, first.skips());
    assert.equal(
      second.session.state().set?.prompt,
      'review of the lamp:',
      'the kettle is judged and the film skipped; the undone lamp is left',
    );
    assert.equal(second.session.state().judgments, 1);
  },
);

test('a stale or malformed submit changes nothing', async () => {
  const dir = temp();
  const { session, store } = await openSession(dir, { kind: 'jsonl', file: setsFile(dir) });
  assert.equal(await session.submit({ type: 'rank/submit', setId: 'not-on-screen', ranking: rankingOf(4) }), undefined);
  await assert.rejects(
    session.submit({ type: 'rank/submit', setId: session.state().set!.id, ranking: [[0], [1]] }),
    /each of the 4 completions exactly once/,
  );
  assert.equal((await store.read()).judgments.length, 0);
  // The host validates what the webview posts before the session sees it.
  assert.equal(parseRankMessage({ type: 'rank/submit', setId: 's', ranking: [[0], [0]] }), undefined);
  assert.equal(parseRankMessage({ type: 'rank/submit', setId: 's', ranking: [[0], []] }), undefined);
  assert.equal(parseRankMessage({ type: 'rank/submit', setId: 's', ranking: [[0], [1]], confidence: 2 }), undefined);
  assert.equal(parseRankMessage({ type: 'rank/skip', setId: 's', extra: 1 }), undefined);
  assert.deepEqual(parseRankMessage({ type: 'rank/submit', setId: 's', ranking: [[1], [0]], note: 'n' }), {
    type: 'rank/submit',
    setId: 's',
    ranking: [[1], [0]],
    note: 'n',
    confidence: undefined,
  });
});

test(
  'a PPO step trace gives one set per prompt with two or more responses (up to 8), ' +
    'with run and step in the source',
  async () => {
    const dir = temp();
    const row = (sample: number, prompt: string, response: string): PpoTraceRow => ({
      step: 3,
      sample,
      prompt,
      response,
      score: 0,
      oracle_score: null,
      tokens: [response],
      token_ids: [1],
      logprob: [0],
      ref_logprob: [0],
      kl: [0],
      value: [0],
      reward: [0],
      advantage: [0],
      return: [0],
      entropy: [0],
      ratio: [[1]],
      clip_class: [[0]],
    });
    const rows = [
      row(0, 'p1:', 'a'),
      row(1, 'p2:', 'b'),
      row(2, 'p1:', 'c'),
      row(3, 'p3:', 'd'),
      ...Array.from({ length: 9 }, (_, i) => row(4 + i, 'p2:', `r${i}`)),
    ];
    const traceFile = path.join(dir, '.rlhf', 'runs', 'ppo-1', 'traces', 'step-3.arrow');
    mkdirSync(path.dirname(traceFile), { recursive: true });
    writeFileSync(traceFile, encodeTrace('ppo', rows));
    const parsed = await traceCompletionSets(new Uint8Array(readFileSync(traceFile)));
    assert.deepEqual(
      parsed.sets.map((set) => [set.prompt, set.completions.length]),
      [
        ['p1:', 2],
        ['p2:', 8],
        ['p2:', 2],
      ],
    );
    assert.equal(parsed.skippedSingles, 1);
    const { session, store } = await openSession(dir, { kind: 'trace', file: traceFile });
    assert.equal(session.state().set?.sourceLabel, 'run ppo-1 · trace step 3');
    await session.submit({ type: 'rank/submit', setId: session.state().set!.id, ranking: [[1], [0]] });
    assert.deepEqual((await store.read()).judgments[0].source, { kind: 'trace', run: 'ppo-1', step: 3 });
  },
);

test(
  'judgments of one annotator that form a cycle (A > B, ' + 'B > C, C > A) raise a warning; undoing one clears it',
  async () => {
    const dir = temp();
    const file = path.join(dir, 'pairs.jsonl');
    writeFileSync(
      file,
      ['["A","B"]', '["B","C"]', '["C","A"]']
        .map((pair) => JSON.stringify({ prompt: 'p', completions: JSON.parse(pair) }))
        .join('\n'),
    );
    const { session } = await openSession(dir, { kind: 'jsonl', file });
    for (let i = 0; i < 3; i++) {
      const set = session.state().set!;
      // The first completion of each line wins: A > B, B > C, C > A.
      await session.submit({ type: 'rank/submit', setId: set.id, ranking: [[0], [1]] });
      assert.equal(session.state().warnings.length, i === 2 ? 1 : 0);
    }
    assert.match(
      session.state().warnings[0],
      /Your judgments of "p" form a cycle: "[ABC]" > "[ABC]" > "[ABC]" > "[ABC]"/,
    );
    await session.undo();
    assert.deepEqual(session.state().warnings, []);
  },
);

test(
  'pure helpers: random order is a permutation, identical ' + 'groups, ranks ⇄ ranking with ties and gaps, cycles',
  () => {
    const random = new Random(1);
    for (let k = 2; k <= 8; k++) assert.deepEqual([...randomOrder(k, random)].sort(), [...Array(k).keys()]);
    const orders = new Set(Array.from({ length: 50 }, () => randomOrder(4, random).join()));
    assert.ok(orders.size > 10, 'orders vary from judgment to judgment');
    assert.deepEqual(identicalGroups(['a', 'b', 'a', 'c', 'b']), [
      [0, 2],
      [1, 4],
    ]);
    assert.deepEqual(rankingFromRanks([2, 1, 2, 5]), [[1], [0, 2], [3]]);
    assert.equal(rankingFromRanks([1, undefined]), undefined);
    assert.deepEqual(ranksFromRanking([[1], [0, 2], [3]], 4), [2, 1, 2, 3]);
    const j = (completions: string[], ranking: number[][], annotator = 'ada'): Judgment => ({
      id: Math.random().toString(),
      prompt: 'p',
      completions,
      ranking,
      annotator,
    });
    assert.equal(
      findPreferenceCycle([j(['a', 'b', 'c'], [[0], [1], [2]]), j(['a', 'c'], [[0], [1]])], 'ada', 'p'),
      undefined,
    );
    assert.deepEqual(
      findPreferenceCycle(
        [j(['a', 'b'], [[0], [1]]), j(['b', 'c'], [[0], [1]]), j(['c', 'a'], [[0], [1]])],
        'ada',
        'p',
      ),
      ['a', 'b', 'c'],
    );
    assert.equal(
      findPreferenceCycle(
        [j(['a', 'b'], [[0], [1]]), j(['b', 'c'], [[0], [1]]), j(['c', 'a'], [[0], [1]], 'bob')],
        'ada',
        'p',
      ),
      undefined,
      'per annotator',
    );
    assert.equal(findPreferenceCycle([j(['a', 'b'], [[0, 1]])], 'ada', 'p'), undefined, 'ties are no preference');
  },
);

test(
  'JSONL sets: a line that is not UTF-8 is reported as file:line: ' +
    'not UTF-8 and skipped, not read with replacement characters',
  async () => {
    const file = path.join(temp(), 'latin1.jsonl');
    const good = JSON.stringify({ prompt: 'review of the kettle:', completions: ['fine', 'bad'] });
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from(`${good}\n`),
        Buffer.from('{"prompt": "caf\xe9", "completions": ["a", "b"]}\n', 'latin1'),
      ]),
    );
    const parsed = await readCompletionSets(file);
    assert.deepEqual(
      parsed.sets.map((set) => set.prompt),
      ['review of the kettle:'],
    );
    assert.equal(parsed.problems.length, 1);
    assert.match(parsed.problems[0], new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: not UTF-8`));
  },
);

test('a JSONL trace (.jsonl, .jsonl.gz) of the Python package is a rank source; a bad line is a problem', async () => {
  const dir = temp();
  const traces = path.join(dir, '.rlhf', 'runs', 'py-1', 'traces');
  mkdirSync(traces, { recursive: true });
  const lines = [
    { step: 5, sample: 0, prompt: 'p1:', response: 'a' },
    { step: 5, sample: 1, prompt: 'p1:', response: 'b' },
    { step: 5, sample: 2, prompt: 'p2:', response: 'c' },
  ].map((line) => JSON.stringify(line));
  const text = [...lines, '{"step": 5, "sample": "x"}'].join('\n') + '\n';
  const plain = path.join(traces, 'step-5.jsonl');
  writeFileSync(plain, text);
  const zipped = path.join(traces, 'step-5.rank-1.jsonl.gz');
  writeFileSync(zipped, gzipSync(text));
  for (const file of [plain, zipped]) {
    const parsed = await traceCompletionSets(new Uint8Array(readFileSync(file)), file);
    assert.deepEqual(parsed.sets, [{ prompt: 'p1:', completions: ['a', 'b'] }], file);
    assert.equal(parsed.step, 5);
    assert.equal(parsed.skippedSingles, 1);
    assert.deepEqual(parsed.problems, [`${file}:4: field "sample" must be a whole number ≥ 0, not "x"; line skipped`]);
  }
  const { session } = await openSession(dir, { kind: 'trace', file: plain });
  assert.equal(session.state().set?.sourceLabel, 'run py-1 · trace step 5');
});
