/**
 * The status bar item of running trainers: stage, step of total, ETA, the training engine and the backend
 * it computes on (ONNX Runtime's execution provider, `cpu`, or tfjs's backend), with why each was chosen
 * in the tooltip, e.g. `RLHF tiny · sft 12/400 · 5s left · onnxruntime · cpu`; on a GPU the adapter follows
 * the backend: `… · tfjs · webgpu (llvmpipe-…, software adapter)`. Hidden when nothing runs.
 */
import * as vscode from 'vscode';

export interface RunProgress {
  readonly runId: string;
  readonly label: string;
  readonly stage: string;
  readonly backend: string;
  readonly backendReason: string;
  /** The GPU adapter's short label, on a GPU backend; its full description is in `backendReason`. */
  readonly backendAdapter?: string;
  /** The training engine (`onnxruntime` or `tfjs`) and why it was chosen. */
  readonly engine: string;
  readonly engineReason: string;
  readonly step: number;
  readonly maxSteps: number;
  readonly startedAt: number;
  /** The step when this trainer started (a resumed run starts past 0), for the ETA. */
  readonly firstStep: number;
}

function eta(progress: RunProgress, now: number): string {
  const done = progress.step - progress.firstStep;
  if (done <= 0) return '';
  const seconds = ((now - progress.startedAt) / 1000 / done) * (progress.maxSteps - progress.step);
  return seconds < 60 ? ` · ${Math.round(seconds)}s left` : ` · ${Math.round(seconds / 60)}m left`;
}

/** `cpu`, or `webgpu (NVIDIA H200)`: the backend and, on a GPU, its adapter. */
export function backendText(progress: RunProgress): string {
  return progress.backendAdapter ? `${progress.backend} (${progress.backendAdapter})` : progress.backend;
}

export class RunStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('rlhf.run', vscode.StatusBarAlignment.Left, 10);

  constructor() {
    this.item.name = 'RLHF Run';
    this.item.command = 'rlhf.openDashboard';
  }

  /** Shows the first running run (and how many others run beside it). */
  render(runs: readonly RunProgress[]): void {
    if (runs.length === 0) {
      this.item.hide();
      return;
    }
    const [first] = runs;
    const more = runs.length > 1 ? ` (+${runs.length - 1})` : '';
    this.item.text =
      `$(sync~spin) RLHF ${first.label} · ${first.stage} ${first.step}/` +
      `${first.maxSteps}${eta(first, Date.now())} · ${first.engine} · ${backendText(first)}${more}`;
    this.item.tooltip = new vscode.MarkdownString(
      runs
        .map(
          (run) =>
            `**${run.label}** — ${run.stage} step ${run.step} of ${run.maxSteps}\n\nEngine **` +
            `${run.engine}**: ${run.engineReason}\n\nBackend **${run.backend}**: ${run.backendReason}`,
        )
        .join('\n\n---\n\n'),
    );
    this.item.show();
  }

  get text(): string | undefined {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }
}
