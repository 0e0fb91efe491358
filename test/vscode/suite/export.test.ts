// "RLHF: Export Model to ONNX" in the real extension host: a tiny run trained from the editor is
// exported by the command into <run>/onnx/step-<n>, a transformers.js-style folder; a folder that is
// not a checkpoint gets an error that names it.
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RlhfLensApi } from '../../../src/extension';
import { until } from './until';

suite('export to ONNX', () => {
  test(
    'RLHF: Export Model to ONNX writes config.json, ' + 'tokenizer files and onnx/model.onnx for a run',
    async function () {
      this.timeout(120_000);
      const extension = vscode.extensions.getExtension<RlhfLensApi>('rlhf-lens.rlhf-lens');
      assert.ok(extension);
      const lens = await extension.activate();
      const root = vscode.workspace.workspaceFolders?.[0].uri.fsPath;
      assert.ok(root, 'the test workspace is open');
      const configFile = path.join(root, 'export.rlhf.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          name: 'export',
          seed: 1,
          model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 32 },
          tokenizer: { vocab_size: 300 },
          stages: [
            {
              type: 'sft',
              dataset: { source: 'demo', num_examples: 200 },
              max_steps: 4,
              warmup_steps: 1,
              per_device_train_batch_size: 4,
              eval_steps: 4,
              save_steps: 4,
            },
          ],
        }),
      );
      const finished = new Promise<{ runId: string; status: string }>((resolve) => lens.runs.onDidFinishStage(resolve));
      await vscode.commands.executeCommand('rlhf.startRun', vscode.Uri.file(configFile));
      const { runId, status } = await finished;
      assert.equal(status, 'completed');
      await until(() => (lens.runs.running === 0 ? true : undefined), 'the trainer to exit', 60_000);

      const runDir = path.join(root, '.rlhf', 'runs', runId);
      const written = await vscode.commands.executeCommand<string | undefined>('rlhf.exportOnnx', runDir);
      assert.equal(written, path.join(runDir, 'onnx', 'step-4'));
      for (const file of [
        'config.json',
        'generation_config.json',
        'tokenizer.json',
        'tokenizer_config.json',
        path.join('onnx', 'model.onnx'),
      ])
        assert.ok(existsSync(path.join(written, file)), file);
      const config = JSON.parse(readFileSync(path.join(written, 'config.json'), 'utf8'));
      assert.equal(config.model_type, 'gpt2');
      assert.equal(config.n_layer, 1);

      const failed = await vscode.commands.executeCommand<string | undefined>(
        'rlhf.exportOnnx',
        path.join(root, 'no-such-run'),
      );
      assert.equal(failed, undefined);
    },
  );
});
