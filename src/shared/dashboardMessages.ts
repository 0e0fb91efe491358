/**
 * The dashboard webview ↔ host messages (`dashboard/...`), re-exported by protocol.ts. The host
 * sends a run's header, its metrics (appended as metrics.jsonl grows), the steps that have traces
 * and, on request, one step's packed trace; the webview asks for steps, comparison runs, a prompt's
 * history and an HTML export.
 */
import { isRecord } from './isRecord';
import type { PackedPpoTrace, TokenField } from './packedTrace';
import type { RunReadProblem, RunStatus, RunSummary } from './runSummary';
import type { WebviewReadyMessage } from './webviewMessages';

// ---------------------------------------------------------------------------------------------
// Webview → host

/** The dashboard asks for its run (or the run list) again. */
export interface DashboardRefreshMessage {
  readonly type: 'dashboard/refresh';
}

/** Send the trace of this step (`dashboard/trace`, or `dashboard/traceError`). */
export interface DashboardRequestTraceMessage {
  readonly type: 'dashboard/requestTrace';
  readonly step: number;
}

/** Overlay these runs' metrics (run directory names in the same runs folder); [] removes all. */
export interface DashboardCompareMessage {
  readonly type: 'dashboard/compare';
  readonly runIds: readonly string[];
}

/** Find this prompt's responses at every step that has a trace. */
export interface DashboardRequestPromptHistoryMessage {
  readonly type: 'dashboard/requestPromptHistory';
  readonly prompt: string;
}

/** Save the current view as a self-contained HTML page; the host adds the stylesheet and asks where. */
export interface DashboardExportHtmlMessage {
  readonly type: 'dashboard/exportHtml';
  readonly title: string;
  /** The view's markup (no scripts: canvases already turned into images). */
  readonly body: string;
  /** `:root { --vscode-…: … }` so the page keeps the theme it was exported in. */
  readonly themeCss: string;
  readonly bodyClass: string;
}

/** Open the dashboard of this run (from the run list shown when no run is chosen). */
export interface DashboardOpenRunMessage {
  readonly type: 'dashboard/openRun';
  readonly runId: string;
}

export type FromDashboardMessage =
  | WebviewReadyMessage
  | DashboardRefreshMessage
  | DashboardRequestTraceMessage
  | DashboardCompareMessage
  | DashboardRequestPromptHistoryMessage
  | DashboardExportHtmlMessage
  | DashboardOpenRunMessage;

// ---------------------------------------------------------------------------------------------
// Host → webview

/** The runs found under the workspace's runs folder, and the run.json files that could not be read. */
export interface DashboardRunsMessage {
  readonly type: 'dashboard/runs';
  readonly runsFolder: string;
  readonly runs: readonly RunSummary[];
  readonly problems: readonly RunReadProblem[];
}

/**
 * A stage setting the dashboard needs, as the run recorded it: the value and where run.json holds it, or
 * why there is none (a run from another trainer, no such stage, a value of the wrong type). The webview
 * says why instead of assuming a default.
 */
export type RunSetting<T> =
  { readonly value: T; readonly source: string } | { readonly value?: undefined; readonly missing: string };

/**
 * A field another engine does not write, and how to get it logged (the engine setting or the `rlhf_lens` adapter
 * that would): the dashboard says so where a view of that field would be empty. `field` is a lens field name
 * (`kl`, `value`, `tokens`, `ratio`, `clip_class`, `metrics` …).
 */
export interface NotLoggedField {
  readonly field: string;
  readonly how: string;
}

/** What the dashboard shows about the run it is open on. */
export interface DashboardRunInfo {
  /** The run directory's name. */
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  readonly runDir: string;
  readonly stage?: string;
  readonly step?: number;
  readonly maxSteps?: number;
  /**
   * PPO's ε (config `cliprange`) of the stage that writes the PPO traces: the ratio band is [1 − ε, 1 + ε].
   * The clip views need it for the band, and to classify the tokens of a version-1 trace.
   */
  readonly cliprange: RunSetting<number>;
  /** The current stage's `max_new_tokens`. */
  readonly maxNewTokens: RunSetting<number>;
  readonly error?: string;
  /**
   * The engine that wrote a run of another engine ("TRL", "verl", "NeMo-RL", "RL Logging Board", "rlhf-lens
   * (Python)"); absent for the lens's own trainer.
   */
  readonly engine?: string;
  /** What that engine does not log and how to get it (empty or absent: nothing known to be missing). */
  readonly notLogged?: readonly NotLoggedField[];
}

/** The run this panel shows (sent on ready and whenever run.json changes). */
export interface DashboardRunMessage {
  readonly type: 'dashboard/run';
  readonly run: DashboardRunInfo;
}

/** One metrics.jsonl line: `step`, `time` and the logged metrics. */
export type MetricPoint = Readonly<Record<string, number>>;

/** Metrics of a run: `reset` replaces what the webview has for `runId`, otherwise the points are appended. */
export interface DashboardMetricsMessage {
  readonly type: 'dashboard/metrics';
  readonly runId: string;
  readonly runName: string;
  readonly reset: boolean;
  readonly points: readonly MetricPoint[];
}

/** The runs the host overlays on this panel's charts (a sweep opened together): the webview checks their boxes. */
export interface DashboardComparedMessage {
  readonly type: 'dashboard/compared';
  readonly runIds: readonly string[];
}

/** The steps with a trace file, ascending, and the kind of trace the run writes. */
export interface DashboardStepsMessage {
  readonly type: 'dashboard/steps';
  readonly steps: readonly number[];
  readonly traceKind: 'ppo' | 'dpo' | 'reward' | null;
}

/** One step's PPO trace. */
export interface DashboardTraceMessage {
  readonly type: 'dashboard/trace';
  readonly trace: PackedPpoTrace;
}

/** A step's trace could not be read or is not a PPO trace. */
export interface DashboardTraceErrorMessage {
  readonly type: 'dashboard/traceError';
  readonly step: number;
  readonly message: string;
}

/** One response to the prompt at one step. */
export interface PromptHistoryEntry {
  readonly step: number;
  readonly sample: number;
  readonly score: number;
  readonly oracleScore: number | null;
  readonly tokens: readonly string[];
  readonly values: { readonly [F in TokenField]: readonly number[] };
}

export interface DashboardPromptHistoryMessage {
  readonly type: 'dashboard/promptHistory';
  readonly prompt: string;
  readonly entries: readonly PromptHistoryEntry[];
}

/** The export was written (or the user cancelled: file undefined). */
export interface DashboardExportedMessage {
  readonly type: 'dashboard/exported';
  readonly file?: string;
}

/** What was skipped while reading a run of another engine (`file:line: …`), to show the user; appended. */
export interface DashboardProblemsMessage {
  readonly type: 'dashboard/problems';
  readonly problems: readonly string[];
}

export type ToDashboardMessage =
  | DashboardProblemsMessage
  | DashboardRunsMessage
  | DashboardRunMessage
  | DashboardMetricsMessage
  | DashboardComparedMessage
  | DashboardStepsMessage
  | DashboardTraceMessage
  | DashboardTraceErrorMessage
  | DashboardPromptHistoryMessage
  | DashboardExportedMessage;

// ---------------------------------------------------------------------------------------------
// Validation

const hasOnly = (value: Record<string, unknown>, keys: readonly string[]) =>
  Object.keys(value).every((key) => key === 'type' || keys.includes(key));
const isStepNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0;
/** Run ids name a folder inside the runs folder: no separators, no `..`. */
export const isRunId = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length > 0 &&
  value.length <= 255 &&
  !/[\\/]/.test(value) &&
  value !== '.' &&
  value !== '..';

/** Exports are capped so a misbehaving page cannot make the host write gigabytes. */
const maxExportLength = 64 * 1024 * 1024;

/**
 * A webview is untrusted input: the host acts only on what this returns. Unknown types and messages
 * with extra or ill-typed fields give `undefined`.
 */
export function parseDashboardMessage(value: unknown): FromDashboardMessage | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return undefined;
  const type = value.type as FromDashboardMessage['type'];
  switch (type) {
    case 'webview/ready':
    case 'dashboard/refresh':
      return hasOnly(value, []) ? { type } : undefined;
    case 'dashboard/requestTrace':
      return hasOnly(value, ['step']) && isStepNumber(value.step) ? { type, step: value.step } : undefined;
    case 'dashboard/compare':
      return hasOnly(value, ['runIds']) &&
        Array.isArray(value.runIds) &&
        value.runIds.length <= 16 &&
        value.runIds.every(isRunId)
        ? { type, runIds: [...(value.runIds as string[])] }
        : undefined;
    case 'dashboard/requestPromptHistory':
      return hasOnly(value, ['prompt']) && typeof value.prompt === 'string' && value.prompt.length <= 100_000
        ? { type, prompt: value.prompt }
        : undefined;
    case 'dashboard/exportHtml': {
      const fields = ['title', 'body', 'themeCss', 'bodyClass'] as const;
      if (!hasOnly(value, fields) || !fields.every((key) => typeof value[key] === 'string')) return undefined;
      if ((value.body as string).length + (value.themeCss as string).length > maxExportLength) return undefined;
      return {
        type,
        title: value.title as string,
        body: value.body as string,
        themeCss: value.themeCss as string,
        bodyClass: value.bodyClass as string,
      };
    }
    case 'dashboard/openRun':
      return hasOnly(value, ['runId']) && isRunId(value.runId) ? { type, runId: value.runId } : undefined;
    default:
      return undefined;
  }
}
