// Starting a run from the editor: the real trainer process trains a tiny config, the status bar shows
// its stage, step and backend, and the run directory records the backend and why it was chosen.
import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RlhfLensApi } from '../../../src/extension';
import { until } from './until';

suite('runs started from the editor', () => {
  test('RLHF: Start Run trains a config in a child process; the status bar shows step and backend', async function () {
    this.timeout(120_000);
    const extension = vscode.extensions.getExtension<RlhfLensApi>('rlhf-lens.rlhf-lens');
    assert.ok(extension);
    const lens = await extension.activate();
    const root = vscode.workspace.workspaceFolders?.[0].uri.fsPath;
    assert.ok(root, 'the test workspace is open');
    const configFile = path.join(root, 'status-bar.rlhf.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        name: 'status-bar',
        seed: 1,
        model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
        tokenizer: { vocab_size: 300 },
        stages: [
          {
            type: 'sft',
            dataset: { source: 'demo', num_examples: 400 },
            max_steps: 40,
            warmup_steps: 2,
            per_device_train_batch_size: 4,
            eval_steps: 20,
            save_steps: 40,
          },
        ],
      }),
    );
    const finished = new Promise<{ runId: string; status: string }>((resolve) => lens.runs.onDidFinishStage(resolve));
    await vscode.commands.executeCommand('rlhf.startRun', vscode.Uri.file(configFile));
    const shown = await until(
      () =>
        / · sft \d+\/40.* · onnxruntime · cpu$/.test(lens.runs.statusText ?? '') ? lens.runs.statusText : undefined,
      'the status bar to show progress',
      60_000,
    );
    assert.match(shown, /^\$\(sync~spin\) RLHF status-bar · sft \d+\/40/);
    const { runId, status } = await finished;
    assert.equal(status, 'completed');

    const runDir = path.join(root, '.rlhf', 'runs', runId);
    const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    assert.equal(runJson.status, 'completed');
    // "engine" is left at "auto": ONNX Runtime; with no GPU adapter here, on its CPU execution provider, saying why,
    // one thread per core.
    assert.equal(runJson.engine, 'onnxruntime');
    assert.equal(runJson.backend, 'cpu');
    assert.match(
      runJson.backend_reason,
      new RegExp(
        /^onnxruntime-node's CPU execution provider \(RLHF_LENS_ORT_PROVIDER is "auto" \(the default\) and no /.source +
          /WebGPU adapter is usable \(.+\)\), \d+ intra-op threads?( \(not spinning\))? for training, /.source +
          /1 for sampling: the default/.source,
      ),
    );
    assert.deepEqual(readdirSync(path.join(runDir, 'checkpoints')), ['step-40']);
    assert.equal(readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 40);
    await until(() => (lens.runs.running === 0 ? true : undefined), 'the trainer to exit', 60_000);
  });
});
