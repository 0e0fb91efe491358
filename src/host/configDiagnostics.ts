/**
 * Problems of `*.rlhf.json` files while typing: the checks the JSON Schema cannot express (stage
 * references and order, files a config names, values that must agree, contradicting options), as
 * a DiagnosticCollection on the offending value, with quick fixes where one value is the obvious
 * repair. Schema problems (types, ranges, unknown keys) come from VS Code's JSON support through the
 * contributed schema; both are computed from runConfig.ts.
 */
import { modify } from 'jsonc-parser';
import * as vscode from 'vscode';
import { formatPath } from '../shared/configSchema';
import { configFileChecks, readConfigText, type LocatedProblem } from '../shared/configFile';

export const configSelector: vscode.DocumentSelector = [{ scheme: 'file', pattern: '**/*.rlhf.json' }];
const diagnosticSource = 'RLHF Lens';

export function isRunConfig(document: vscode.TextDocument): boolean {
  return document.uri.scheme === 'file' && document.uri.fsPath.endsWith('.rlhf.json');
}

/** Every problem of a config document: the same function the CLI and "Start Run" use. */
export function checkDocument(document: vscode.TextDocument): ReturnType<typeof readConfigText> {
  return readConfigText(document.getText(), configFileChecks(document.uri.fsPath));
}

function rangeOf(document: vscode.TextDocument, problem: LocatedProblem): vscode.Range {
  const start = document.positionAt(problem.offset);
  // A problem on a whole object (a missing key) underlines its first line only, not the block.
  const end = document.positionAt(problem.offset + problem.length);
  return new vscode.Range(start, end.line === start.line ? end : document.lineAt(start.line).range.end);
}

export class ConfigDiagnostics implements vscode.CodeActionProvider, vscode.Disposable {
  static readonly providedCodeActionKinds = [vscode.CodeActionKind.QuickFix];
  private readonly collection = vscode.languages.createDiagnosticCollection('rlhf');
  private readonly disposables: vscode.Disposable[] = [this.collection];
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor() {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((document) => this.update(document)),
      vscode.workspace.onDidChangeTextDocument((event) => this.schedule(event.document)),
      vscode.workspace.onDidCloseTextDocument((document) => this.collection.delete(document.uri)),
      vscode.languages.registerCodeActionsProvider(configSelector, this, {
        providedCodeActionKinds: ConfigDiagnostics.providedCodeActionKinds,
      }),
    );
    for (const document of vscode.workspace.textDocuments) this.update(document);
  }

  /** While typing: check once the keystrokes pause. */
  private schedule(document: vscode.TextDocument): void {
    if (!isRunConfig(document)) return;
    const key = document.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.update(document);
      }, 250),
    );
  }

  /** Re-checks every open config (files they name may have appeared or gone). */
  refreshAll(): void {
    for (const document of vscode.workspace.textDocuments) this.update(document);
  }

  update(document: vscode.TextDocument): vscode.Diagnostic[] {
    if (!isRunConfig(document) || document.isClosed) return [];
    const { problems } = checkDocument(document);
    const diagnostics = problems
      .filter((problem) => problem.source === 'semantic')
      .map((problem) => {
        const field = problem.path.length > 0 ? `${formatPath(problem.path)} ` : '';
        const diagnostic = new vscode.Diagnostic(
          rangeOf(document, problem),
          `${field}${problem.message}`,
          problem.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning,
        );
        diagnostic.source = diagnosticSource;
        return diagnostic;
      });
    this.collection.set(document.uri, diagnostics);
    return diagnostics;
  }

  /** Quick fixes: recomputed from the text, so they always match what the diagnostics say now. */
  provideCodeActions(document: vscode.TextDocument, range: vscode.Range | vscode.Selection): vscode.CodeAction[] {
    const { problems } = checkDocument(document);
    const text = document.getText();
    return problems.flatMap((problem) => {
      if (!problem.fix || !rangeOf(document, problem).intersection(range)) return [];
      const action = new vscode.CodeAction(problem.fix.title, vscode.CodeActionKind.QuickFix);
      const edit = new vscode.WorkspaceEdit();
      const indent = /\n( +)"/.exec(text)?.[1].length ?? 2;
      for (const change of modify(text, problem.fix.path as (string | number)[], problem.fix.value, {
        formattingOptions: { insertSpaces: true, tabSize: indent },
      })) {
        edit.replace(
          document.uri,
          new vscode.Range(document.positionAt(change.offset), document.positionAt(change.offset + change.length)),
          change.content,
        );
      }
      action.edit = edit;
      action.isPreferred = true;
      action.diagnostics = [];
      return [action];
    });
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    for (const disposable of this.disposables) disposable.dispose();
  }
}
