/**
 * The Rank view (webview view `rlhf.rank` in the RLHF container) and its commands: "RLHF: Rank
 * Completions" picks a source and a dataset, "RLHF: Export Preferences" writes TRL's pairwise JSONL.
 * The dataset and source are remembered in workspace state, so after a window reload the view
 * continues where it was (sets already judged or skipped are not shown again).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { exportTrlPairwise, formatPreferenceProblem } from '../shared/preferenceFile';
import { assertNever, parseRankMessage, type FromRankMessage, type ToRankMessage } from '../shared/protocol';
import { CheckpointSampler } from './checkpointSampler';
import { trustExplanation } from './workspaceTrust';
import { PreferenceStore, preferenceFileOf, validDatasetName } from './preferenceStore';
import { RankSession } from './rankSession';
import { openRankSource, type RankSourceSpec, type SamplingSpec } from './rankSources';
import { traceFilePattern } from './runData';
import type { TrainerSupervisor } from './trainerSupervisor';
import { renderWebview, webviewOptions, WebviewChannel } from './webviewShell';

const stateKey = 'rlhf.rank.session';

interface SavedSession {
  readonly dataset: string;
  readonly spec?: RankSourceSpec;
  readonly skipped?: readonly string[];
}

/** What "RLHF: Rank Completions" accepts from code (tests, other commands); without it, it asks. */
export interface RankCompletionsArgs {
  readonly source: RankSourceSpec;
  readonly dataset: string;
}

export class RankView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'rlhf.rank';

  private view: vscode.WebviewView | undefined;
  private channel: WebviewChannel<FromRankMessage, ToRankMessage> | undefined;
  private session: RankSession | undefined;
  private sampler: CheckpointSampler | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private restored: Promise<void> | undefined;
  /** The set of the submit in progress, for its `rank/saved`. */
  private savedSetId: string | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly supervisor: TrainerSupervisor,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The session on screen, for tests. */
  get current(): RankSession | undefined {
    return this.session;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = webviewOptions(this.context.extensionUri);
    this.channel?.dispose();
    this.channel = new WebviewChannel<FromRankMessage, ToRankMessage>(view.webview, {
      parse: parseRankMessage,
      log: this.log,
      onReady: () => void this.restore().then(() => this.postState()),
      onMessage: (message) => void this.handle(message),
    });
    view.webview.html = renderWebview(view.webview, this.context.extensionUri, 'rank', 'Rank');
    view.onDidDispose(() => {
      this.channel?.dispose();
      this.channel = undefined;
      this.view = undefined;
    });
  }

  /** "RLHF: Rank Completions": choose a source and a dataset (or take them from `args`), then show the view. */
  async rankCompletions(args?: RankCompletionsArgs): Promise<void> {
    const root = workspaceRoot();
    if (!root)
      return void vscode.window.showInformationMessage(
        'Open a folder first: preference datasets are written to its .rlhf/preferences/.',
      );
    const spec = args?.source ?? (await pickSource(root));
    if (!spec) return;
    const dataset = args?.dataset ?? (await pickDataset(this.savedSession()?.dataset));
    if (!dataset) return;
    await vscode.commands.executeCommand(`${RankView.viewType}.focus`);
    await this.open(root, dataset, spec);
  }

  /** "RLHF: Export Preferences": TRL's pairwise JSONL of a dataset, in .rlhf/exports/. */
  async exportPreferences(datasetArg?: string): Promise<{ output: string; pairs: number } | undefined> {
    const root = workspaceRoot();
    if (!root) return undefined;
    const folder = path.join(root, '.rlhf', 'preferences');
    const datasets = existsSync(folder)
      ? readdirSync(folder)
          .filter((name) => name.endsWith('.jsonl'))
          .map((name) => name.slice(0, -'.jsonl'.length))
      : [];
    if (datasets.length === 0)
      return void vscode.window.showInformationMessage(
        'No preference dataset yet: rank some completions with "RLHF: Rank Completions" first.',
      );
    const dataset =
      datasetArg ??
      (datasets.length === 1
        ? datasets[0]
        : await vscode.window.showQuickPick(datasets, { placeHolder: 'Dataset to export as TRL pairwise JSONL' }));
    if (!dataset) return undefined;
    // Checked before the name becomes any path (a command's argument can be anything).
    const input = preferenceFileOf(root, dataset);
    const output = path.join(root, '.rlhf', 'exports', `${dataset}.pairwise.jsonl`);
    mkdirSync(path.dirname(output), { recursive: true });
    const result = await exportTrlPairwise(input, output);
    for (const problem of result.problems) this.log.warn(formatPreferenceProblem(problem));
    const pairs = `${result.pairs} pair${result.pairs === 1 ? '' : 's'}`;
    const judgments = `${result.judgments} judgment${result.judgments === 1 ? '' : 's'}`;
    const skipped = result.problems.length
      ? ` (${result.problems.length} unreadable line(s) skipped; see the log)`
      : '';
    const message = `Exported ${pairs} from ${judgments} to ${vscode.workspace.asRelativePath(output)}${skipped}.`;
    void vscode.window.showInformationMessage(message, 'Open').then((choice) => {
      if (choice === 'Open') void vscode.window.showTextDocument(vscode.Uri.file(output));
    });
    return { output, pairs: result.pairs };
  }

  dispose(): void {
    this.session?.dispose();
    this.channel?.dispose();
    void this.sampler?.dispose();
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }

  private async open(
    root: string,
    dataset: string,
    spec: RankSourceSpec | undefined,
    skipped: readonly string[] = [],
  ): Promise<void> {
    this.session?.dispose();
    const store = new PreferenceStore(preferenceFileOf(root, dataset));
    const session = new RankSession({
      store,
      annotator: annotatorName(),
      skipped,
      onSkipped: (keys) => void this.saveSession({ dataset, spec, skipped: keys }),
      onSaved: (judgment, judgments) =>
        this.channel?.post({ type: 'rank/saved', setId: this.savedSetId ?? '', judgmentId: judgment.id, judgments }),
    });
    this.session = session;
    session.onDidChange((state) => this.channel?.post(state));
    await this.saveSession({ dataset, spec, skipped });
    await session.load();
    if (!spec) return;
    if ((spec.kind === 'checkpoint' || spec.kind === 'onnx') && !vscode.workspace.isTrusted) {
      // A saved session reopened after a reload, or a command's argument: refused like the picker does.
      const message = trustExplanation('samples completions');
      this.log.warn(message);
      return void vscode.window.showWarningMessage(message);
    }
    try {
      const { source, problems } = await openRankSource(
        spec,
        await session.doneKeys(),
        () => (this.sampler ??= new CheckpointSampler(this.supervisor, root)),
      );
      for (const problem of problems) this.log.warn(problem);
      await session.setSource(source, problems);
    } catch (error) {
      this.log.error((error as Error).message);
      void vscode.window.showErrorMessage((error as Error).message);
    }
  }

  /** After a reload the view's first handshake reopens the saved dataset and source. */
  private restore(): Promise<void> {
    if (this.session) return Promise.resolve();
    const saved = this.savedSession();
    const root = workspaceRoot();
    if (!saved || !root) return Promise.resolve();
    this.restored ??= this.open(root, saved.dataset, saved.spec, saved.skipped ?? []).catch((error: unknown) =>
      this.log.error(`Could not reopen the ranking session: ${(error as Error).message}`),
    );
    return this.restored;
  }

  private postState(): void {
    this.channel?.post(
      this.session?.state() ?? {
        type: 'rank/state',
        dataset: '',
        file: '',
        judgments: 0,
        status: "Choose a source of completions to rank: a checkpoint, a run's traces or a JSONL file.",
        busy: false,
        canUndo: false,
        warnings: [],
      },
    );
  }

  private async handle(message: Exclude<FromRankMessage, { type: 'webview/ready' }>): Promise<void> {
    const session = this.session;
    try {
      switch (message.type) {
        case 'rank/chooseSource':
          await vscode.commands.executeCommand('rlhf.rankCompletions');
          break;
        case 'rank/submit':
          this.savedSetId = message.setId;
          await session?.submit(message);
          break;
        case 'rank/skip':
          await session?.skip(message.setId);
          break;
        case 'rank/undo':
          if (!(await session?.undo()))
            void vscode.window.showInformationMessage('Nothing to undo: the dataset has no judgment left.');
          break;
        default:
          assertNever(message, 'rank view');
      }
    } catch (error) {
      this.log.error(`Rank view: ${(error as Error).message}`);
      void vscode.window.showErrorMessage(`RLHF Rank: ${(error as Error).message}`);
      this.postState();
    }
  }

  private savedSession(): SavedSession | undefined {
    return this.context.workspaceState.get<SavedSession>(stateKey);
  }

  private saveSession(session: SavedSession): Thenable<void> {
    return this.context.workspaceState.update(stateKey, session);
  }
}

function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function annotatorName(): string {
  const configured = vscode.workspace.getConfiguration('rlhf.rank').get<string>('annotator');
  if (configured) return configured;
  try {
    return userInfo().username || 'annotator';
  } catch {
    return 'annotator';
  }
}

/** `step-<n>` folders (or files) under each run's `sub` folder, newest step first. */
function runFiles(
  root: string,
  sub: 'checkpoints' | 'traces',
  match: RegExp,
): { label: string; description: string; file: string; step: number }[] {
  const runs = path.join(root, '.rlhf', 'runs');
  if (!existsSync(runs)) return [];
  const found: { label: string; description: string; file: string; step: number }[] = [];
  for (const run of readdirSync(runs)) {
    const dir = path.join(runs, run, sub);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const step = match.exec(name);
      if (step)
        found.push({ label: `${run} · ${name}`, description: sub, file: path.join(dir, name), step: Number(step[1]) });
    }
  }
  return found.sort((a, b) => b.step - a.step || a.label.localeCompare(b.label));
}

async function pickSource(root: string): Promise<RankSourceSpec | undefined> {
  const kinds = [
    {
      label: '$(sparkle) Sample from a checkpoint',
      detail: "K completions per prompt, sampled now from a run's checkpoint",
      source: 'checkpoint' as const,
    },
    {
      label: '$(history) Responses of a PPO step',
      detail: "the responses in a run's traces/step-<n>.arrow (or .jsonl, .jsonl.gz), grouped by prompt",
      source: 'trace' as const,
    },
    {
      label: '$(file) A JSONL file of prompts and completions',
      detail: 'one {"prompt": …, "completions": [2 to 8 strings]} per line',
      source: 'jsonl' as const,
    },
    {
      label: '$(package) Sample from an ONNX model folder',
      detail: 'a transformers.js-style folder: config.json, tokenizer.json, onnx/model.onnx (onnxruntime-node)',
      source: 'onnx' as const,
    },
  ];
  // Sampling starts a trainer (an ONNX folder is parsed by native code): not in an untrusted workspace.
  const needsTrust = new Set<string>(['checkpoint', 'onnx']);
  const trusted = vscode.workspace.isTrusted;
  const shown = kinds.map((item) =>
    !trusted && needsTrust.has(item.source) ? { ...item, description: '$(shield) needs a trusted workspace' } : item,
  );
  const kind = (
    await vscode.window.showQuickPick(shown, { placeHolder: 'Where do the completions to rank come from?' })
  )?.source;
  if (kind && !vscode.workspace.isTrusted && needsTrust.has(kind)) {
    void vscode.window
      .showWarningMessage(trustExplanation('samples completions'), 'Manage Workspace Trust')
      .then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.trust.manage');
      });
    return undefined;
  }
  switch (kind) {
    case undefined:
      return undefined;
    case 'jsonl': {
      const files = await vscode.workspace.findFiles('**/*.jsonl', '{**/node_modules/**,.rlhf/**}', 500);
      const picked = await vscode.window.showQuickPick(
        files.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), file: uri.fsPath })),
        {
          placeHolder: files.length
            ? 'JSONL file of {"prompt", "completions"} lines'
            : 'No .jsonl file in this workspace',
        },
      );
      return picked && { kind, file: picked.file };
    }
    case 'trace': {
      const traces = runFiles(root, 'traces', traceFilePattern);
      if (traces.length === 0)
        return void vscode.window.showInformationMessage(
          'No run in .rlhf/runs has traces yet: a PPO run writes traces/step-<n>.arrow (or .jsonl) every step.',
        );
      const picked = await vscode.window.showQuickPick(traces, { placeHolder: 'PPO step whose responses to rank' });
      return picked && { kind, file: picked.file };
    }
    case 'checkpoint': {
      const checkpoints = runFiles(root, 'checkpoints', /^step-(\d+)$/);
      if (checkpoints.length === 0)
        return void vscode.window.showInformationMessage(
          'No checkpoint in .rlhf/runs yet: train a run first ("RLHF: Start Run").',
        );
      const picked = await vscode.window.showQuickPick(checkpoints, { placeHolder: 'Checkpoint to sample from' });
      const sampling = picked && (await askSampling());
      return sampling && { kind, checkpoint: picked.file, ...sampling };
    }
    case 'onnx': {
      const found = await vscode.workspace.findFiles('**/onnx/model.onnx', '**/node_modules/**', 200);
      const folders = found
        .map((uri) => path.dirname(path.dirname(uri.fsPath)))
        .filter((folder) => existsSync(path.join(folder, 'config.json')));
      const browse = { label: '$(folder-opened) Browse…', folder: '' };
      const picked = await vscode.window.showQuickPick(
        [...folders.map((folder) => ({ label: vscode.workspace.asRelativePath(folder), folder })), browse],
        { placeHolder: 'ONNX model folder (config.json, tokenizer.json, onnx/model.onnx)' },
      );
      let folder = picked?.folder;
      if (picked === browse)
        folder = (
          await vscode.window.showOpenDialog({
            canSelectFolders: true,
            canSelectFiles: false,
            openLabel: 'Sample from this model',
          })
        )?.[0]?.fsPath;
      if (!folder) return undefined;
      if (!existsSync(path.join(folder, 'onnx', 'model.onnx')))
        return void vscode.window.showErrorMessage(
          `${folder} has no onnx/model.onnx: pick a transformers.js-style folder (config.json, ` +
            `tokenizer.json, onnx/model.onnx).`,
        );
      const sampling = await askSampling();
      return sampling && { kind, folder, ...sampling };
    }
    default:
      return assertNever(kind, 'rank source');
  }
}

/** Prompts from the user; K, temperature, top-p and length from the rlhf.rank settings. */
async function askSampling(): Promise<SamplingSpec | undefined> {
  const prompts = await vscode.window.showInputBox({
    prompt: 'Prompts to complete, separated by " | "',
    placeHolder: 'review of the blender: | my take on the film:',
    validateInput: (value) => (value.trim() ? undefined : 'Type at least one prompt.'),
  });
  if (!prompts) return undefined;
  const settings = vscode.workspace.getConfiguration('rlhf.rank');
  return {
    prompts: prompts.split(' | ').filter((prompt) => prompt.length > 0),
    k: settings.get<number>('completions', 4),
    temperature: settings.get<number>('temperature', 1),
    topP: settings.get<number>('topP', 1),
    maxNewTokens: settings.get<number>('maxNewTokens', 64),
  };
}

async function pickDataset(last: string | undefined): Promise<string | undefined> {
  const name = await vscode.window.showInputBox({
    prompt: 'Preference dataset: judgments are appended to .rlhf/preferences/<name>.jsonl',
    value: last ?? 'preferences',
    validateInput: (value) => validDatasetName(value),
  });
  return name;
}
