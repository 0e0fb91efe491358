// The dashboard's data path in the host, on real files: metrics.jsonl read incrementally (partial
// lines, a restarted file), trace steps listed and packed from real Arrow files, a prompt's history
// across steps, run.json's clip range, the folder watcher's latency, the webview message validator,
// and the HTML export's page.
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildExportHtml } from '../../src/host/exportHtml';
import { listTraceSteps, MetricsTail, readRunInfo, stageSettings, TraceCache } from '../../src/host/runData';
import { RunFolderWatcher, type RunFolderChange } from '../../src/host/runFolderWatcher';
import { parseDashboardMessage } from '../../src/shared/protocol';
import { responseText, tokenTextAt } from '../../src/shared/packedTrace';
import { encodeTrace } from '../../src/shared/traceFormat';
import { fixtureRows } from '../webview/dashboardFixture';

const tempRun = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-dashboard-'));
  mkdirSync(path.join(dir, 'traces'));
  return dir;
};

test('MetricsTail returns only complete new lines, and starts over when the file is replaced', async () => {
  const dir = tempRun();
  const file = path.join(dir, 'metrics.jsonl');
  const tail = new MetricsTail(file);
  assert.deepEqual(await tail.read(), { reset: false, points: [] }, 'a missing file is no points yet');
  writeFileSync(file, '{"step":1,"objective/kl":0.5}\n{"step":2,"objective/kl":0.');
  assert.deepEqual((await tail.read()).points, [{ step: 1, 'objective/kl': 0.5 }], 'the half-written line waits');
  appendFileSync(file, '75,"note":"text is dropped"}\nnot json\n');
  const second = await tail.read();
  assert.deepEqual(second.points, [{ step: 2, 'objective/kl': 0.75 }]);
  assert.match(tail.problems[0], /metrics\.jsonl:3: not valid JSON/);
  assert.deepEqual(await tail.read(), { reset: false, points: [] });
  writeFileSync(file, '{"step":1,"lr":1}\n');
  assert.deepEqual(await tail.read(), { reset: true, points: [{ step: 1, lr: 1 }] });
});

test('trace steps are listed in order, packed from the Arrow files, and a prompt is followed across them', async () => {
  const dir = tempRun();
  for (const step of [10, 2, 1])
    writeFileSync(path.join(dir, 'traces', `step-${step}.arrow`), encodeTrace('ppo', fixtureRows(step)));
  writeFileSync(path.join(dir, 'traces', 'step-3.arrow.tmp'), 'half');
  assert.deepEqual(await listTraceSteps(dir), [1, 2, 10]);
  const cache = new TraceCache();
  const trace = await cache.packed(dir, 2);
  const rows = fixtureRows(2);
  assert.equal(trace.step, 2);
  assert.equal(trace.numSamples, rows.length);
  assert.equal(trace.numEpochs, 2);
  assert.equal(
    trace.numTokens,
    rows.reduce((n, row) => n + row.tokens.length, 0),
  );
  rows.forEach((row, s) => {
    assert.equal(responseText(trace, s), row.tokens.join(''));
    row.tokens.forEach((token, i) => {
      const t = trace.tokenStart[s] + i;
      assert.equal(tokenTextAt(trace, t), token);
      assert.ok(Math.abs(trace.values.advantage[t] - row.advantage[i]) < 1e-6);
      assert.ok(
        Math.abs(trace.ratio[trace.numTokens + t] - row.ratio[1][i]) < 1e-6,
        'epoch 2 ratios sit after epoch 1',
      );
      assert.equal(trace.clipClass?.[trace.numTokens + t], row.clip_class[1][i], 'the recorded clip class');
    });
  });
  assert.ok(Number.isNaN(trace.oracleScore[2]), 'a missing oracle score is NaN');
  const history = await cache.promptHistory(dir, [1, 2, 10], 'The film was');
  assert.deepEqual(
    history.map((entry) => [entry.step, entry.sample]),
    [
      [1, 0],
      [1, 1],
      [2, 0],
      [2, 1],
      [10, 0],
      [10, 1],
    ],
  );
  assert.deepEqual(history[0].tokens, rows[0].tokens);
  await assert.rejects(cache.packed(dir, 7), /ENOENT/);
  writeFileSync(path.join(dir, 'traces', 'step-11.arrow'), 'not arrow');
  await assert.rejects(cache.packed(dir, 11), /step-11\.arrow: Not an Arrow IPC trace file/);
});

test('readRunInfo reads the PPO stage’s clip range from run.json and names the file when it is broken', async () => {
  const dir = tempRun();
  writeFileSync(
    path.join(dir, 'run.json'),
    JSON.stringify({
      id: 'x',
      name: 'x · ppo',
      status: 'running',
      started_at: '2026-11-21T10:00:00Z',
      stage: 'ppo',
      stage_index: 1,
      step: 3,
      max_steps: 8,
      config: { stages: [{ type: 'sft' }, { type: 'ppo', cliprange: 0.1, max_new_tokens: 24 }] },
    }),
  );
  const info = await readRunInfo(dir);
  assert.deepEqual(info.cliprange, { value: 0.1, source: 'run.json config.stages[1].cliprange' });
  assert.deepEqual(info.maxNewTokens, { value: 24, source: 'run.json config.stages[1].max_new_tokens' });
  assert.equal(info.step, 3);
  assert.equal(info.status, 'running');
  writeFileSync(path.join(dir, 'run.json'), '{"status": 5}');
  await assert.rejects(readRunInfo(dir), (error: Error) =>
    error.message.startsWith(`${path.join(dir, 'run.json')}: status must be one of`),
  );
});

test('the header’s stage settings are validated, and say why they are missing instead of defaulting', () => {
  const ppo = { type: 'ppo', cliprange: 0.3, max_new_tokens: 16 };
  const settings = (json: Record<string, unknown>) => stageSettings(json);
  // A later stage (DPO after PPO): ε comes from the PPO stage that wrote the PPO traces.
  assert.deepEqual(settings({ stage_index: 2, config: { stages: [{ type: 'sft' }, ppo, { type: 'dpo' }] } }), {
    cliprange: { value: 0.3, source: 'run.json config.stages[1].cliprange' },
    maxNewTokens: { missing: "run.json's config.stages[2].max_new_tokens is missing" },
  });
  assert.deepEqual(settings({ name: 'from another trainer' }), {
    cliprange: { missing: 'run.json has no config.stages (a run from another trainer?)' },
    maxNewTokens: { missing: 'run.json has no config.stages (a run from another trainer?)' },
  });
  assert.deepEqual(settings({ stage_index: 0, config: { stages: [{ type: 'ppo', cliprange: '0.2' }] } }).cliprange, {
    missing: 'run.json\'s config.stages[0].cliprange must be a number ≥ 0, got "0.2"',
  });
  assert.deepEqual(settings({ stage_index: 0, config: { stages: [{ type: 'ppo' }] } }).cliprange, {
    missing: "run.json's config.stages[0].cliprange is missing",
  });
  assert.deepEqual(
    settings({ stage_index: 0, config: { stages: [{ type: 'inspect', max_new_tokens: 12 }] } }),
    {
      cliprange: { missing: "run.json's config has no PPO stage up to the current one (stage_index 0)" },
      maxNewTokens: { value: 12, source: 'run.json config.stages[0].max_new_tokens' },
    },
    'an inspection run trains nothing: no ε',
  );
  assert.deepEqual(settings({ stage_index: 3, config: { stages: [ppo] } }).cliprange, {
    missing: "run.json's stage_index 3 is beyond its 1 config stages",
  });
  assert.equal(settings({ config: { stages: [ppo] } }).cliprange.value, 0.3, 'one stage is the current one');
  assert.deepEqual(settings({ config: { stages: [{ type: 'sft' }, ppo] } }).cliprange, {
    missing: 'run.json has no stage_index to pick one of its 2 config stages',
  });
});

test(
  'a trace format 1 file (clip, no clip_class) packs with ' + 'clipClass null; the current format packs its classes',
  async () => {
    const dir = tempRun();
    copyFileSync(
      path.join(__dirname, '..', 'fixtures', 'traces', 'ppo-v1-step-3.arrow'),
      path.join(dir, 'traces', 'step-3.arrow'),
    );
    writeFileSync(path.join(dir, 'traces', 'step-4.arrow'), encodeTrace('ppo', fixtureRows(4)));
    const cache = new TraceCache();
    const old = await cache.packed(dir, 3);
    const current = await cache.packed(dir, 4);
    assert.equal(old.clipClass, null);
    assert.ok(current.clipClass);
    assert.deepEqual([...old.ratio], [...current.ratio], 'the same rows, written by both versions');
    assert.deepEqual(
      [...current.clipClass.subarray(current.numTokens, current.numTokens + 4)],
      [2, 2, 1, 0],
      'sample 0 at epoch 2: clipped, clipped, outside kept, inside',
    );
  },
);

test('the run folder watcher reports an appended metrics line and a new trace within a second', async () => {
  const dir = tempRun();
  writeFileSync(path.join(dir, 'metrics.jsonl'), '');
  const watcher = new RunFolderWatcher(dir);
  try {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = (wanted: RunFolderChange) =>
      new Promise<number>((resolve, reject) => {
        const started = performance.now();
        const timer = setTimeout(() => reject(new Error(`no ${wanted} change within 1 s`)), 1000);
        const remove = watcher.onDidChange((change) => {
          if (change !== wanted) return;
          clearTimeout(timer);
          remove();
          resolve(performance.now() - started);
        });
      });
    const metrics = next('metrics');
    appendFileSync(path.join(dir, 'metrics.jsonl'), '{"step":1}\n');
    assert.ok((await metrics) < 1000);
    const traces = next('traces');
    writeFileSync(path.join(dir, 'traces', 'step-1.arrow'), encodeTrace('ppo', fixtureRows(1)));
    assert.ok((await traces) < 1000);
  } finally {
    watcher.dispose();
  }
});

test('the host acts only on well-formed dashboard messages', () => {
  assert.deepEqual(parseDashboardMessage({ type: 'dashboard/requestTrace', step: 4 }), {
    type: 'dashboard/requestTrace',
    step: 4,
  });
  assert.equal(parseDashboardMessage({ type: 'dashboard/requestTrace', step: -1 }), undefined);
  assert.equal(parseDashboardMessage({ type: 'dashboard/requestTrace', step: 1.5 }), undefined);
  assert.equal(parseDashboardMessage({ type: 'dashboard/requestTrace', step: 1, extra: true }), undefined);
  assert.deepEqual(parseDashboardMessage({ type: 'dashboard/compare', runIds: ['a-ppo', 'b'] }), {
    type: 'dashboard/compare',
    runIds: ['a-ppo', 'b'],
  });
  assert.equal(
    parseDashboardMessage({ type: 'dashboard/compare', runIds: ['../escape'] }),
    undefined,
    'run ids cannot leave the runs folder',
  );
  assert.equal(parseDashboardMessage({ type: 'dashboard/openRun', runId: '..' }), undefined);
  assert.equal(
    parseDashboardMessage({ type: 'dashboard/exportHtml', title: 't', body: 'b', themeCss: '', bodyClass: 1 }),
    undefined,
  );
  assert.deepEqual(parseDashboardMessage({ type: 'dashboard/requestPromptHistory', prompt: 'The film' }), {
    type: 'dashboard/requestPromptHistory',
    prompt: 'The film',
  });
  assert.equal(parseDashboardMessage({ type: 'dashboard/unknown' }), undefined);
});

test('the exported page is self-contained: styles inlined, no scripts or handlers survive', () => {
  const html = buildExportHtml({
    title: 'run <1>',
    body:
      '<div class="sample-row" onclick="alert(1)">hi<script>alert(2)</script></div><a ' +
      'href="javascript:alert(3)">x</a>',
    themeCss: ':root { --vscode-foreground: #fff; }',
    bodyClass: 'vscode-dark',
    css: '.tok { color: red; }',
  });
  assert.match(html, /<title>run &lt;1&gt;<\/title>/);
  assert.match(html, /<style>:root \{ --vscode-foreground: #fff; \}<\/style>/);
  assert.match(html, /\.tok \{ color: red; \}/);
  assert.match(html, /<div class="sample-row">hi<\/div>/);
  assert.doesNotMatch(html, /<script|onclick|javascript:/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"/);
});
