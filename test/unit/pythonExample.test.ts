// The Python package's PyTorch example (python/examples/minimal_ppo.py, a PPO loop instrumented with RunWriter)
// run through /usr/bin/python3, and its run read with the extension's own readers (src/host/runData.ts): the data
// path the dashboard takes, checked against a run a real PyTorch trainer wrote. Skipped, saying why, where
// /usr/bin/python3 cannot import torch (`npm test`'s tools step installs Debian's python3-torch).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ClipClass, classifyClip } from '../../src/core/clipClass';
import { listTraceSteps, MetricsTail, readRunInfo, TraceCache } from '../../src/host/runData';
import { responseText, tokenFields } from '../../src/shared/packedTrace';

const python = '/usr/bin/python3';
const example = path.join('python', 'examples', 'minimal_ppo.py');
const torchCheck = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
const noTorch =
  torchCheck.status === 0
    ? false
    : `${python} cannot import torch (${(torchCheck.error?.message ?? torchCheck.stderr).trim().split('\n').pop()}); ` +
      'install Debian python3-torch (node scripts/ensureTestTools.mjs does)';

test(
  'the PyTorch PPO example’s run opens with the lens’s readers: header, metrics, per-token traces',
  { skip: noTorch },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-python-example-'));
    try {
      const runDir = path.join(dir, 'run');
      const iterations = 3;
      const result = spawnSync(python, [example, '--run-dir', runDir, '--iterations', `${iterations}`, '--seed', '1'], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      assert.equal(result.status, 0, `the example failed:\n${result.stdout}\n${result.stderr}`);

      const info = await readRunInfo(runDir);
      assert.equal(info.status, 'completed');
      assert.equal(info.stage, 'ppo');
      assert.equal(info.step, iterations);
      assert.equal(info.maxSteps, iterations);
      const eps: number = info.cliprange.value ?? assert.fail(`cliprange: ${JSON.stringify(info.cliprange)}`);
      const newTokens: number =
        info.maxNewTokens.value ?? assert.fail(`max_new_tokens: ${JSON.stringify(info.maxNewTokens)}`);

      const tail = new MetricsTail(path.join(runDir, 'metrics.jsonl'));
      const { points } = await tail.read();
      assert.deepEqual(tail.problems, []);
      assert.deepEqual(
        points.map((point) => point.step),
        [1, 2, 3],
      );
      for (const point of points)
        for (const name of [
          'objective/kl',
          'objective/scores',
          'policy/clipfrac_avg',
          'loss/policy_avg',
          'loss/value_avg',
        ])
          assert.equal(typeof point[name], 'number', `step ${point.step}: ${name}`);

      assert.deepEqual(await listTraceSteps(runDir), [1, 2, 3]);
      const cache = new TraceCache();
      for (const step of [1, 2, 3]) {
        assert.equal(await cache.kind(runDir, step), 'ppo');
        const packed = await cache.packed(runDir, step);
        assert.deepEqual(cache.problems, [], `step ${step}: lines the reader skipped`);
        const lines = readFileSync(path.join(runDir, 'traces', `step-${step}.jsonl`), 'utf8')
          .trim()
          .split('\n');
        const rows = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
        assert.equal(packed.numSamples, rows.length);
        assert.equal(packed.numTokens, rows.length * newTokens);
        const epochs = (rows[0].ratio as number[][]).length;
        assert.equal(packed.numEpochs, epochs);
        assert.ok(packed.clipClass, 'the clip classes the example wrote are read, not derived');
        let clipped = 0;
        rows.forEach((row, s) => {
          assert.equal(packed.prompts[s], row.prompt);
          assert.equal(responseText(packed, s), row.response);
          assert.ok(Math.abs(packed.score[s] - (row.score as number)) < 1e-6);
          const start = packed.tokenStart[s];
          assert.deepEqual([...packed.tokenIds.subarray(start, start + newTokens)], row.token_ids);
          for (const field of tokenFields) {
            const expected = row[field] as number[];
            expected.forEach((value, t) =>
              assert.ok(Math.abs(packed.values[field][start + t] - value) < 1e-5, `${field}[${t}]`),
            );
          }
          for (let e = 0; e < epochs; e++)
            for (let t = 0; t < newTokens; t++) {
              const index = e * packed.numTokens + start + t;
              const cls = packed.clipClass![index];
              assert.equal(cls, (row.clip_class as number[][])[e][t]);
              // The class the example wrote is the one the lens defines (clipClass.ts), on the numbers written.
              const ratio = (row.ratio as number[][])[e][t];
              assert.equal(cls, classifyClip(ratio, (row.advantage as number[])[t], eps));
              if (cls === ClipClass.clipped) clipped++;
            }
        });
        // policy/clipfrac_avg is the share of the traces' clipped tokens: the chart and the heatmap agree.
        const clipfrac = points[step - 1]['policy/clipfrac_avg'];
        assert.ok(Math.abs(clipfrac - clipped / (packed.numTokens * epochs)) < 1e-6, `step ${step}: clipfrac`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
