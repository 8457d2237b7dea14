/**
 * A view's side of the host connection: the API VS Code injects into every webview (`acquireVsCodeApi` may be
 * called once), the state the view saved before a reload, and the host's messages, each validated before use.
 */
import type { Result } from '../../contract/guards';
import type { ViewLogMessage, ViewReadyMessage } from './messages';

interface VsCodeApi<State, Out> {
  postMessage(message: Out): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State, Out>(): VsCodeApi<State, Out>;

export interface ViewHost<State, Out, In> {
  /** The state saved before a reload, validated (undefined: none, or none usable). */
  readonly restored: State | undefined;
  post(msg: Out): void;
  saveState(state: State): void;
  /**
   * Hands each message from the host to `handle` once it is validated (a rejected one is logged to the host and
   * handed to `rejected`), then posts `ready`: the host sends nothing before it.
   */
  listen(handle: (msg: In) => void, rejected?: (error: string) => void): void;
}

/** Connects a view named `name` (in log lines); its out-messages `Out` include the common `log` and `ready`. */
export function connectView<State, Out extends { type: string }, In>(
  name: string,
  parseState: (x: unknown) => State | undefined,
  parse: (x: unknown) => Result<In>,
): ViewHost<State, Out, In> {
  const api = acquireVsCodeApi<State, Out>();
  const postCommon = (msg: ViewLogMessage | ViewReadyMessage) => api.postMessage(msg as unknown as Out);
  return {
    restored: parseState(api.getState()),
    post: (msg) => api.postMessage(msg),
    saveState: (state) => api.setState(state),
    listen(handle, rejected) {
      window.addEventListener('message', (ev: MessageEvent) => {
        const parsed = parse(ev.data);
        if (parsed.ok) {
          handle(parsed.value);
          return;
        }
        postCommon({ type: 'log', level: 'warn', message: `${name} rejected a message: ${parsed.error}` });
        rejected?.(parsed.error);
      });
      postCommon({ type: 'ready' });
    },
  };
}
