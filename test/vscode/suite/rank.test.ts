// The Rank view's commands inside the real extension host: "RLHF: Rank Completions" with a JSONL
// source opens the view and its session, judgments land in .rlhf/preferences/<dataset>.jsonl,
// undo appends a retraction, and "RLHF: Export Preferences" writes TRL pairwise lines and counts them.
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RlhfLensApi } from '../../../src/extension';
import { until } from './until';

suite('rank view', () => {
  test(
    'Rank Completions opens a session on a JSONL ' + 'source; judgments, undo and export reach the files',
    async function () {
      this.timeout(60_000);
      const extension = vscode.extensions.getExtension<RlhfLensApi>('rlhf-lens.rlhf-lens');
      assert.ok(extension);
      const lens = await extension.activate();
      const root = vscode.workspace.workspaceFolders?.[0].uri.fsPath;
      assert.ok(root);
      const commands = new Set(await vscode.commands.getCommands(true));
      for (const command of ['rlhf.rankCompletions', 'rlhf.exportPreferences', 'rlhf.rank.focus'])
        assert.ok(commands.has(command), `${command} is registered`);

      const file = path.join(root, 'suite-sets.jsonl');
      writeFileSync(
        file,
        [
          { prompt: 'p1:', completions: ['a', 'b', 'c'] },
          { prompt: 'p2:', completions: ['d', 'e'] },
        ]
          .map((set) => JSON.stringify(set))
          .join('\n'),
      );
      await vscode.commands.executeCommand('rlhf.rankCompletions', {
        source: { kind: 'jsonl', file },
        dataset: 'suite-ranks',
      });
      const session = await until(() => lens.rank.current, 'the rank session');
      const first = await until(() => session.state().set, 'the first set');
      assert.equal(first.prompt, 'p1:');
      await session.submit({ type: 'rank/submit', setId: first.id, ranking: [[2], [0, 1]] });
      const second = await until(() => session.state().set, 'the second set');
      await session.submit({ type: 'rank/submit', setId: second.id, ranking: [[1], [0]] });
      await session.undo();

      const preferenceFile = path.join(root, '.rlhf', 'preferences', 'suite-ranks.jsonl');
      const lines = readFileSync(preferenceFile, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      assert.equal(lines.length, 3);
      assert.deepEqual(lines[0].ranking, [[2], [0, 1]]);
      assert.equal(lines[2].retracts, lines[1].id);

      const exported = (await vscode.commands.executeCommand('rlhf.exportPreferences', 'suite-ranks')) as {
        output: string;
        pairs: number;
      };
      assert.equal(exported.pairs, 2, 'c > a and c > b; the tie and the retracted judgment give none');
      assert.ok(existsSync(exported.output));
      assert.deepEqual(
        readFileSync(exported.output, 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
        [
          { prompt: 'p1:', chosen: 'c', rejected: 'a' },
          { prompt: 'p1:', chosen: 'c', rejected: 'b' },
        ],
      );
    },
  );
});
