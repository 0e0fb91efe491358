/**
 * The webview's end of the typed channel to the extension host. `acquireVsCodeApi` may be called
 * once per page, so this is the only place that calls it; the handshake tells the host it may send.
 */
import type { WebviewReadyMessage } from '../../src/shared/protocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export interface HostChannel<In, Out> {
  post(message: Out): void;
  /** Registers the receiver, then announces `webview/ready`. */
  listen(receiver: (message: In) => void): void;
  getState<T>(): T | undefined;
  setState<T>(state: T): void;
}

export function connectToHost<In extends { type: string }, Out extends { type: string }>(): HostChannel<
  In,
  Out | WebviewReadyMessage
> {
  const api = acquireVsCodeApi();
  return {
    post: (message) => api.postMessage(message),
    listen: (receiver) => {
      window.addEventListener('message', (event: MessageEvent<unknown>) => {
        const data = event.data;
        // Messages come only from the host, but the page also sees its own frames' events.
        if (typeof data === 'object' && data !== null && typeof (data as { type?: unknown }).type === 'string') {
          receiver(data as In);
        }
      });
      api.postMessage({ type: 'webview/ready' } satisfies WebviewReadyMessage);
    },
    getState: <T>() => api.getState() as T | undefined,
    setState: (state) => api.setState(state),
  };
}
