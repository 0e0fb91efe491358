/**
 * The GPU check's dry run, as a GPU machine would run it but with small shapes: the check bundled as in the
 * kit (scripts/gpuKit.mjs --bundle-only), started by scripts/gpu-check.sh, must print one JSON object with
 * every part present, the CPU engines measured, and each GPU part either measured or saying why not.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkPlan } from '../../bench/gpuCheckPlan';

const repo = path.join(__dirname, '..', '..');
/** The dry run's own deadline (gpuCheckPlan.ts) plus the bundling and Node's start. */
const timeoutMs = 300_000;

interface PartRecord {
  status: string;
  reason?: string;
  error?: string;
  result?: Record<string, unknown>;
}

test(
  'gpu-check.sh --dry-run prints one JSON object with every part, the CPU parts measured',
  { timeout: timeoutMs },
  () => {
    const out = mkdtempSync(path.join(tmpdir(), 'rlhf-gpu-check-test-'));
    try {
      execFileSync(process.execPath, ['scripts/gpuKit.mjs', '--bundle-only', path.join(repo, 'out', 'gpu-check')], {
        cwd: repo,
      });
      const stdout = execFileSync('bash', ['scripts/gpu-check.sh', '--dry-run'], {
        cwd: repo,
        encoding: 'utf8',
        env: { ...process.env, TMPDIR: out },
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: timeoutMs,
      });
      const lines = stdout.trim().split('\n');
      assert.equal(lines.length, 1, `one line of JSON on stdout, got:\n${stdout.slice(0, 2000)}`);
      const report = JSON.parse(lines[0]) as { dry_run: boolean; parts: Record<string, PartRecord> };
      assert.equal(report.dry_run, true);
      const plan = checkPlan(true);
      assert.deepEqual(Object.keys(report.parts).sort(), plan.parts.map((part) => part.name).sort());
      for (const [name, part] of Object.entries(report.parts)) {
        // A GPU part may be unavailable (no adapter, or an engine without a GPU path), never failed.
        assert.ok(['ok', 'unavailable'].includes(part.status), `${name}: ${part.status} ${part.error ?? ''}`);
        if (part.status === 'unavailable') assert.match(part.reason ?? '', /\S/, `${name} says why it did not run`);
      }
      for (const name of ['train:onnxruntime:cpu:850k', 'train:tfjs:wasm:850k']) {
        const result = report.parts[name].result as { step_ms: { median: number }; tokens_per_s: number };
        assert.equal(report.parts[name].status, 'ok', name);
        assert.ok(result.step_ms.median > 0 && result.tokens_per_s > 0, `${name} measured a step`);
      }
      assert.equal(report.parts['ppo:onnxruntime:cpu'].status, 'ok');
      const dawn = (report.parts.adapters.result as { dawn: Record<string, unknown> }).dawn;
      assert.ok('backend=vulkan' in dawn && 'backend=opengles' in dawn, 'Dawn was asked for each of its backends');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
);
