// Authoring and managing runs in the real extension host: New Run from a template, the contributed
// JSON Schema's hover and completion, diagnostics with quick fixes, broken configs that never reach a
// trainer, and a run started from its CodeLens, watched in the Runs view and status bar, stopped,
// and resumed to the end.
import * as assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RlhfLensApi } from '../../../src/extension';
import type { RunsTreeItem } from '../../../src/host/runsTreeProvider';
import { until } from './until';

async function api(): Promise<RlhfLensApi> {
  const extension = vscode.extensions.getExtension<RlhfLensApi>('rlhf-lens.rlhf-lens');
  assert.ok(extension, 'the extension is installed');
  return extension.activate();
}

function workspaceRoot(): string {
  const root = vscode.workspace.workspaceFolders?.[0].uri.fsPath;
  assert.ok(root, 'the test workspace is open');
  return root;
}

/** Polls an async probe (diagnostics and language features arrive a little after an edit). */
async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const ourDiagnostics = (uri: vscode.Uri) =>
  vscode.languages.getDiagnostics(uri).filter((diagnostic) => diagnostic.source === 'RLHF Lens');
const lineOf = (document: vscode.TextDocument, needle: string) =>
  document
    .getText()
    .split('\n')
    .findIndex((line) => line.includes(needle));
const hoverText = (hovers: vscode.Hover[]) =>
  hovers
    .flatMap((hover) => hover.contents.map((content) => (typeof content === 'string' ? content : content.value)))
    .join('\n');

// The suite's bundle lives in out/test/suite; the fixtures stay in the repository.
const fixtures = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'broken-configs');

suite('authoring and managing runs', () => {
  test(
    'RLHF: New Run writes a template config; ' +
      'the schema gives hover docs with TRL names and defaults, and completion',
    async () => {
      await api();
      const uri = await vscode.commands.executeCommand<vscode.Uri>('rlhf.newRun', {
        template: 'ppo',
        name: 'suite-ppo',
      });
      assert.equal(uri.fsPath, path.join(workspaceRoot(), 'suite-ppo.rlhf.json'));
      const config = JSON.parse(readFileSync(uri.fsPath, 'utf8'));
      assert.equal(config.name, 'suite-ppo');
      assert.deepEqual(
        config.stages.map((stage: { type: string }) => stage.type),
        ['sft', 'preferences', 'reward', 'ppo'],
      );
      const document = await vscode.workspace.openTextDocument(uri);
      assert.equal(document.languageId, 'jsonc', '*.rlhf.json opens as JSON with comments, as the trainer reads it');

      const line = lineOf(document, '"init_kl_coef"');
      const key = document.lineAt(line).text.indexOf('"') + 2;
      const hover = await eventually(async () => {
        const text = hoverText(
          await vscode.commands.executeCommand<vscode.Hover[]>(
            'vscode.executeHoverProvider',
            uri,
            new vscode.Position(line, key),
          ),
        );
        return /TRL: `kl_coef`/.test(text) ? text : undefined;
      }, 'hover docs from the contributed JSON Schema');
      assert.match(hover, /β of the per-token penalty/);
      assert.match(hover, /Default: `0\.05`/);

      // Completion inside the PPO stage offers its settings, and the enum's values for kl_estimator.
      const estimatorLine = lineOf(document, '"kl_estimator"');
      const valueStart = document.lineAt(estimatorLine).text.indexOf(': "') + 3;
      const values = await eventually(async () => {
        const list = await vscode.commands.executeCommand<vscode.CompletionList>(
          'vscode.executeCompletionItemProvider',
          uri,
          new vscode.Position(estimatorLine, valueStart),
        );
        const labels = list.items.map((item) =>
          (typeof item.label === 'string' ? item.label : item.label.label).replace(/"/g, ''),
        );
        return labels.includes('k3') ? labels : undefined;
      }, 'enum completion for kl_estimator');
      assert.ok(
        ['k1', 'k2', 'k3', 'abs'].every((value) => values.includes(value)),
        values.join(', '),
      );
      assert.equal(ourDiagnostics(uri).length, 0, 'a fresh template has no problems');
    },
  );

  test('a bad value gets a diagnostic on its line while typing, and its quick fix repairs it', async () => {
    await api();
    const uri = vscode.Uri.file(path.join(workspaceRoot(), 'suite-ppo.rlhf.json'));
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document);
    const line = lineOf(document, '"num_mini_batches"');
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, document.lineAt(line).range, document.lineAt(line).text.replace(/: \d+/, ': 3'));
    assert.ok(await vscode.workspace.applyEdit(edit));
    const [diagnostic] = await eventually(
      () => (ourDiagnostics(uri).length > 0 ? ourDiagnostics(uri) : undefined),
      'the minibatch diagnostic',
    );
    assert.equal(diagnostic.range.start.line, line);
    assert.equal(diagnostic.severity, vscode.DiagnosticSeverity.Error);
    assert.match(diagnostic.message, /num_mini_batches \(3\) must divide batch_size \(32\)/);
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>(
      'vscode.executeCodeActionProvider',
      uri,
      diagnostic.range,
      vscode.CodeActionKind.QuickFix.value,
    );
    const fix = actions.find((action) => action.title === 'Set num_mini_batches to 2');
    assert.ok(fix?.edit, `no quick fix; got ${actions.map((action) => action.title).join(', ')}`);
    assert.ok(await vscode.workspace.applyEdit(fix.edit));
    assert.match(document.lineAt(line).text, /"num_mini_batches": 2/);
    await eventually(() => (ourDiagnostics(uri).length === 0 ? true : undefined), 'the diagnostic to go');
    await document.save();
    assert.equal(
      await vscode.commands.executeCommand('rlhf.validateConfig', uri),
      true,
      'Validate passes the fixed config',
    );
  });

  test(
    'broken configs: a sample shows each diagnostic on its ' + 'recorded line, and no broken config starts a trainer',
    async () => {
      const lens = await api();
      const manifest = JSON.parse(readFileSync(path.join(fixtures, 'manifest.json'), 'utf8')) as Record<
        string,
        { line: number; message: string }
      >;
      const folder = path.join(workspaceRoot(), 'broken');
      mkdirSync(folder, { recursive: true });
      for (const file of Object.keys(manifest)) copyFileSync(path.join(fixtures, file), path.join(folder, file));
      // Problems only the extension's checks see (ours), and schema problems VS Code's JSON support reports.
      const semanticSample = [
        'ppo-minibatches-not-dividing-batch',
        'stage-order-reward-after-ppo',
        'dpo-policy-misspelt',
        'sft-dataset-file-missing',
        'ppo-eos-penalty-without-eos',
        'dpo-label-smoothing-with-ipo',
        'ppo-default-policy-missing',
        'sft-init-from-missing-checkpoint',
      ];
      for (const name of semanticSample) {
        const uri = vscode.Uri.file(path.join(folder, `${name}.rlhf.json`));
        await vscode.workspace.openTextDocument(uri);
        const expected = manifest[`${name}.rlhf.json`];
        await eventually(
          () =>
            ourDiagnostics(uri).some(
              (d) => d.range.start.line === expected.line - 1 && d.message.includes(expected.message),
            )
              ? true
              : undefined,
          `${name}: a diagnostic on line ${expected.line} with "${expected.message}" (got ${ourDiagnostics(uri)
            .map((d) => `${d.range.start.line + 1}: ${d.message}`)
            .join('; ')})`,
        );
      }
      for (const name of ['kl-estimator-unknown', 'max-steps-as-string', 'stage-type-unknown']) {
        const uri = vscode.Uri.file(path.join(folder, `${name}.rlhf.json`));
        // VS Code's JSON support reports problems of the files shown in editors.
        await vscode.window.showTextDocument(uri);
        const expected = manifest[`${name}.rlhf.json`];
        await eventually(
          () =>
            vscode.languages.getDiagnostics(uri).some((d) => d.range.start.line === expected.line - 1)
              ? true
              : undefined,
          `${name}: a schema diagnostic on line ${expected.line}`,
        );
      }
      assert.equal(
        await vscode.commands.executeCommand(
          'rlhf.validateConfig',
          vscode.Uri.file(path.join(folder, 'stage-order-reward-after-ppo.rlhf.json')),
        ),
        false,
      );
      const before = lens.supervisor.trainers.length;
      for (const file of Object.keys(manifest)) {
        const pid = await vscode.commands.executeCommand('rlhf.startRun', vscode.Uri.file(path.join(folder, file)));
        assert.equal(pid, undefined, `${file} started a trainer`);
        assert.equal(lens.supervisor.trainers.length, before, `${file} started a trainer`);
        assert.match(lens.runs.lastRefusal ?? '', /was not started: the config has \d+ errors?/, file);
      }
      const runsFolder = path.join(workspaceRoot(), '.rlhf', 'runs');
      const created = existsSync(runsFolder) ? readdirSync(runsFolder).filter((id) => id.startsWith('a-')) : [];
      assert.deepEqual(created, [], 'no run directory was created');
    },
  );

  test('start from the CodeLens; the Runs view and status bar follow it; stop; resume to the end', async function () {
    this.timeout(240_000);
    const lens = await api();
    const uri = await vscode.commands.executeCommand<vscode.Uri>('rlhf.newRun', { template: 'sft', name: 'lens-sft' });
    // Shrink the template so the run takes seconds: edit it as a user would, then save.
    const document = await vscode.workspace.openTextDocument(uri);
    const config = JSON.parse(document.getText());
    // About 19 ms a step on 2 cores (the ONNX Runtime engine): 1,500 steps leave time to stop it midway and take
    // 30 s to finish. (A 1-layer, 32-wide model at batch 8 ran its 1,500 steps in 3 s, done before the stop.)
    config.model = { n_layer: 2, n_head: 2, n_embd: 64, block_size: 64 };
    config.tokenizer = { vocab_size: 300 };
    Object.assign(config.stages[0], {
      dataset: { source: 'demo', num_examples: 400 },
      max_steps: 1500,
      warmup_steps: 2,
      per_device_train_batch_size: 16,
      eval_steps: 500,
      save_steps: 1500,
    });
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(0, 0, document.lineCount, 0), `${JSON.stringify(config, null, 2)}\n`);
    await vscode.workspace.applyEdit(edit);
    await document.save();

    const lenses = await eventually(async () => {
      const found = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
      return found.length >= 2 ? found : undefined;
    }, 'the CodeLens');
    assert.deepEqual(
      lenses.map((l) => l.command?.title),
      ['$(play) Start run', '$(check) Validate'],
    );
    const start = lenses[0].command!;
    const finished: { runId: string; status: string }[] = [];
    const off = lens.runs.onDidFinishStage((event) => finished.push(event));
    await vscode.commands.executeCommand(start.command, ...(start.arguments ?? []));

    const shown = await until(
      () => (/RLHF lens-sft · sft \d+\/1500/.test(lens.runs.statusText ?? '') ? lens.runs.statusText : undefined),
      'the status bar to show progress',
      60_000,
    );
    assert.match(shown, / · onnxruntime · cpu\b/);
    // The Runs view: running icon, stage, step of total and the latest loss, from the run folder's watcher.
    const running = await eventually(
      async () => {
        const items = await lens.runsTree.getChildren();
        const item = items.find(
          (i): i is Extract<RunsTreeItem, { kind: 'run' }> =>
            i.kind === 'run' &&
            i.run.name === 'lens-sft · sft' &&
            i.run.status === 'running' &&
            (i.details.step ?? 0) >= 3,
        );
        return item;
      },
      'the Runs view to show the running run',
      60_000,
    );
    const treeItem = lens.runsTree.getTreeItem(running);
    assert.match(String(treeItem.description), /^sft · \d+\/1500 · loss\/train \d/);
    assert.equal((treeItem.iconPath as vscode.ThemeIcon).id, 'sync~spin');
    assert.equal(treeItem.contextValue, 'run.running.active.config');

    // Several runs at once, one trainer process each (the default limit is 2); the status bar counts the others.
    const secondConfig = path.join(workspaceRoot(), 'lens-second.rlhf.json');
    writeFileSync(secondConfig, JSON.stringify({ ...config, name: 'lens-second' }, null, 2));
    const secondPid = await vscode.commands.executeCommand<number>('rlhf.startRun', vscode.Uri.file(secondConfig));
    assert.equal(typeof secondPid, 'number');
    assert.equal(lens.runs.running, 2);
    assert.equal(new Set(lens.supervisor.trainers.map((trainer) => trainer.pid)).size, 2);
    await until(
      () => (/\(\+1\)$/.test(lens.runs.statusText ?? '') ? true : undefined),
      'the status bar to count the second run',
      60_000,
    );
    const second = await until(
      () => lens.runs.activeRuns.find((run) => run.label === 'lens-second' && run.runId),
      'the second run to start',
      60_000,
    );
    await lens.runs.stop(second.runId!);
    await until(() => (lens.runs.running === 1 ? true : undefined), 'the second trainer to exit', 30_000);

    // A second run beyond rlhf.maxConcurrentRuns is refused.
    await vscode.workspace
      .getConfiguration('rlhf')
      .update('maxConcurrentRuns', 1, vscode.ConfigurationTarget.Workspace);
    const other = await vscode.commands.executeCommand(
      'rlhf.startRun',
      vscode.Uri.file(path.join(workspaceRoot(), 'suite-ppo.rlhf.json')),
    );
    assert.equal(other, undefined);
    assert.match(lens.runs.lastRefusal ?? '', /1 run is training already, the limit of rlhf\.maxConcurrentRuns \(1\)/);
    await vscode.workspace
      .getConfiguration('rlhf')
      .update('maxConcurrentRuns', undefined, vscode.ConfigurationTarget.Workspace);

    // Stop from the Runs view's context menu command.
    assert.equal(await vscode.commands.executeCommand('rlhf.stopRun', running), true);
    await until(
      () => finished.find((event) => event.runId === running.run.id && event.status === 'stopped'),
      'the stage to stop',
      60_000,
    );
    await until(() => (lens.runs.running === 0 ? true : undefined), 'the trainer to exit', 30_000);
    const stopped = await eventually(async () => {
      const items = await lens.runsTree.getChildren();
      return items.find(
        (i): i is Extract<RunsTreeItem, { kind: 'run' }> =>
          i.kind === 'run' && i.run.id === running.run.id && i.run.status === 'stopped',
      );
    }, 'the Runs view to show the stopped run');
    const stoppedAt = stopped.details.step ?? 0;
    assert.ok(stoppedAt > 0 && stoppedAt < 1500, `stopped at step ${stoppedAt}`);
    assert.equal((lens.runsTree.getTreeItem(stopped).iconPath as vscode.ThemeIcon).id, 'debug-pause');

    // Resume from the same item: the trainer continues from the checkpoint and finishes.
    assert.equal(typeof (await vscode.commands.executeCommand('rlhf.resumeRun', stopped)), 'number');
    await until(
      () => finished.find((event) => event.runId === running.run.id && event.status === 'completed'),
      'the resumed run to complete',
      180_000,
    );
    off.dispose();
    await until(() => (lens.runs.running === 0 ? true : undefined), 'the trainer to exit', 30_000);
    const runDir = path.join(workspaceRoot(), '.rlhf', 'runs', running.run.id);
    const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    assert.equal(runJson.status, 'completed');
    assert.equal(runJson.resumed_at.length, 1);
    assert.equal(readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 1500);
    // The CodeLens now offers the run.
    const after = await eventually(async () => {
      const found = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
      return found.length === 3 ? found : undefined;
    }, 'the "Open last run" CodeLens');
    assert.equal(after[2].command?.title, `$(graph) Open last run (${running.run.id})`);
    assert.deepEqual(after[2].command?.arguments, [runDir]);
  });
});
