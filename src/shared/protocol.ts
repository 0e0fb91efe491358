import { isRecord } from './isRecord';

/**
 * Every message that crosses a process or webview boundary, as discriminated unions on a scoped
 * `type` tag (`scope/method`). Receivers switch on `type` with a `never` default (see
 * `assertNever`), so adding a message without handling it fails to compile.
 *
 * Two channels:
 * - trainer ↔ host: `child_process.fork` IPC between the trainer process and the extension host;
 * - webview ↔ host: `postMessage` between a webview and the extension host.
 */

// ---------------------------------------------------------------------------------------------
// Trainer process → extension host
// ---------------------------------------------------------------------------------------------

/** The trainer process started and listens for control messages. */
export interface TrainerReadyMessage {
  readonly type: 'trainer/ready';
  readonly pid: number;
  readonly nodeVersion: string;
}

/** A line for the run's log. */
export interface RunLogMessage {
  readonly type: 'run/log';
  readonly level: LogLevel;
  readonly message: string;
}

/** The trainer hit an error it reports before exiting (a crash sends nothing: the host sees the exit). */
export interface RunErrorMessage {
  readonly type: 'run/error';
  readonly message: string;
  readonly detail?: string;
}

/** The trainer is about to exit on its own, with this exit code and reason. */
export interface TrainerExitMessage {
  readonly type: 'trainer/exit';
  readonly code: number;
  readonly reason: string;
}

/** Reply to `control/ping`, proving the channel works both ways. */
export interface TrainerPongMessage {
  readonly type: 'trainer/pong';
  readonly id: number;
}

/** A stage of a run started: its run directory exists and its engine and backend are chosen. */
export interface RunStartedMessage {
  readonly type: 'run/started';
  readonly runId: string;
  readonly runDir: string;
  readonly stage: string;
  readonly backend: string;
  readonly backendReason: string;
  /** The GPU adapter's short label ("NVIDIA H200", "llvmpipe…, software adapter"), on a GPU backend. */
  readonly backendAdapter?: string;
  /** The training engine (`onnxruntime` or `tfjs`) and why; `backend` is tfjs's backend. */
  readonly engine: string;
  readonly engineReason: string;
  readonly maxSteps: number;
}

/** A logged optimizer step (the line just appended to metrics.jsonl). */
export interface RunMetricsMessage {
  readonly type: 'run/metrics';
  readonly runId: string;
  readonly step: number;
  readonly maxSteps: number;
  readonly metrics: Readonly<Record<string, number>>;
}

/** A stage ended: completed, stopped on request, or failed (with run/error before it). */
export interface RunFinishedMessage {
  readonly type: 'run/finished';
  readonly runId: string;
  readonly status: 'completed' | 'stopped' | 'failed';
  readonly checkpoint?: string;
}

export type TrainerToHostMessage =
  | TrainerReadyMessage
  | RunLogMessage
  | RunErrorMessage
  | TrainerExitMessage
  | TrainerPongMessage
  | RunStartedMessage
  | RunMetricsMessage
  | RunFinishedMessage
  | SampleResultMessage
  | SampleErrorMessage;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

// ---------------------------------------------------------------------------------------------
// Extension host → trainer process
// ---------------------------------------------------------------------------------------------

/** Finish the current step, checkpoint and exit 0. */
export interface ControlStopMessage {
  readonly type: 'control/stop';
}

/** Ask for a `trainer/pong` with the same id. */
export interface ControlPingMessage {
  readonly type: 'control/ping';
  readonly id: number;
}

/**
 * Sample `numSamples` completions of one prompt from a checkpoint. A serving trainer keeps the last
 * checkpoint's model loaded, so the next request for it skips loading (the Rank view's warm sampler).
 */
export interface SampleRequestMessage {
  readonly type: 'sample/request';
  readonly id: number;
  /**
   * A checkpoint folder (model.safetensors, config.json, tokenizer.json), or a transformers.js-style ONNX folder
   * (config.json, tokenizer.json, onnx/model.onnx).
   */
  readonly checkpoint: string;
  readonly prompt: string;
  readonly numSamples: number;
  readonly temperature: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number;
  /** false: always write maxNewTokens tokens (benchmarks); default true stops a completion at EOS. */
  readonly stopAtEos?: boolean;
}

export type HostToTrainerMessage = ControlStopMessage | ControlPingMessage | SampleRequestMessage;

/** The completions of a `sample/request` (text after the prompt, special tokens dropped). */
export interface SampleResultMessage {
  readonly type: 'sample/result';
  readonly id: number;
  readonly completions: readonly string[];
  /** New tokens of each completion (EOS included when sampled). */
  readonly tokenCounts: readonly number[];
  /** Time spent loading the checkpoint for this request (0 when it was already loaded). */
  readonly loadMs: number;
  readonly sampleMs: number;
  readonly backend: string;
}

/** A `sample/request` that failed, with a message for the user. */
export interface SampleErrorMessage {
  readonly type: 'sample/error';
  readonly id: number;
  readonly message: string;
}

// ---------------------------------------------------------------------------------------------
// Webview → extension host (every webview)
// ---------------------------------------------------------------------------------------------

// `webview/ready` and any other message all webviews share live in webviewMessages.ts, a leaf the
// dashboard's and the Rank view's message files import (so they never import this file back).
export type { WebviewReadyMessage } from './webviewMessages';

// Dashboard webview ↔ extension host: `dashboard/...` messages and their validator live in
// dashboardMessages.ts (run header, metrics, steps, packed traces, prompt history, HTML export).
export * from './dashboardMessages';

// Rank view ↔ extension host: `rank/...` messages and their validator live in rankMessages.ts.
export * from './rankMessages';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** The `never` default of every receiver's switch: a message type left unhandled fails to compile. */
export function assertNever(value: never, context: string): never {
  throw new Error(`${context}: unhandled message ${JSON.stringify(value)}`);
}

const levels: ReadonlySet<string> = new Set<LogLevel>(['debug', 'info', 'warn', 'error']);

/** Validates a message from the trainer process (a separate program; a bug there must not crash the host). */
export function parseTrainerMessage(value: unknown): TrainerToHostMessage | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return undefined;
  const type = value.type as TrainerToHostMessage['type'];
  switch (type) {
    case 'trainer/ready':
      return typeof value.pid === 'number' && typeof value.nodeVersion === 'string'
        ? { type, pid: value.pid, nodeVersion: value.nodeVersion }
        : undefined;
    case 'run/log':
      return typeof value.level === 'string' && levels.has(value.level) && typeof value.message === 'string'
        ? { type, level: value.level as LogLevel, message: value.message }
        : undefined;
    case 'run/error':
      return typeof value.message === 'string' && (value.detail === undefined || typeof value.detail === 'string')
        ? { type, message: value.message, detail: value.detail as string | undefined }
        : undefined;
    case 'trainer/exit':
      return typeof value.code === 'number' && typeof value.reason === 'string'
        ? { type, code: value.code, reason: value.reason }
        : undefined;
    case 'trainer/pong':
      return typeof value.id === 'number' ? { type, id: value.id } : undefined;
    case 'run/started':
      return ['runId', 'runDir', 'stage', 'backend', 'backendReason', 'engine', 'engineReason'].every(
        (key) => typeof value[key] === 'string',
      ) &&
        typeof value.maxSteps === 'number' &&
        (value.backendAdapter === undefined || typeof value.backendAdapter === 'string')
        ? (value as unknown as RunStartedMessage)
        : undefined;
    case 'run/metrics':
      return typeof value.runId === 'string' &&
        typeof value.step === 'number' &&
        typeof value.maxSteps === 'number' &&
        isNumberRecord(value.metrics)
        ? { type, runId: value.runId, step: value.step, maxSteps: value.maxSteps, metrics: value.metrics }
        : undefined;
    case 'run/finished':
      return typeof value.runId === 'string' &&
        (value.status === 'completed' || value.status === 'stopped' || value.status === 'failed') &&
        (value.checkpoint === undefined || typeof value.checkpoint === 'string')
        ? { type, runId: value.runId, status: value.status, checkpoint: value.checkpoint as string | undefined }
        : undefined;
    case 'sample/result':
      return typeof value.id === 'number' &&
        Array.isArray(value.completions) &&
        (value.completions as unknown[]).every((item) => typeof item === 'string') &&
        typeof value.loadMs === 'number' &&
        typeof value.sampleMs === 'number' &&
        typeof value.backend === 'string' &&
        Array.isArray(value.tokenCounts) &&
        value.tokenCounts.every((n) => typeof n === 'number')
        ? {
            type,
            id: value.id,
            completions: value.completions as string[],
            tokenCounts: value.tokenCounts as number[],
            loadMs: value.loadMs,
            sampleMs: value.sampleMs,
            backend: value.backend,
          }
        : undefined;
    case 'sample/error':
      return typeof value.id === 'number' && typeof value.message === 'string'
        ? { type, id: value.id, message: value.message }
        : undefined;
    default:
      return undefined;
  }
}

function isNumberRecord(value: unknown): value is Record<string, number> {
  return isRecord(value) && Object.values(value).every((item) => typeof item === 'number');
}

/** Validates a control message arriving in the trainer process. */
export function parseHostMessage(value: unknown): HostToTrainerMessage | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return undefined;
  const type = value.type as HostToTrainerMessage['type'];
  switch (type) {
    case 'control/stop':
      return { type };
    case 'control/ping':
      return typeof value.id === 'number' ? { type, id: value.id } : undefined;
    case 'sample/request':
      return typeof value.id === 'number' &&
        typeof value.checkpoint === 'string' &&
        typeof value.prompt === 'string' &&
        ['numSamples', 'temperature', 'topP', 'maxNewTokens', 'seed'].every(
          (key) => typeof value[key] === 'number' && Number.isFinite(value[key]),
        ) &&
        (value.stopAtEos === undefined || typeof value.stopAtEos === 'boolean')
        ? {
            type,
            id: value.id,
            checkpoint: value.checkpoint,
            prompt: value.prompt,
            numSamples: value.numSamples as number,
            temperature: value.temperature as number,
            topP: value.topP as number,
            maxNewTokens: value.maxNewTokens as number,
            seed: value.seed as number,
            stopAtEos: value.stopAtEos as boolean | undefined,
          }
        : undefined;
    default:
      return undefined;
  }
}
