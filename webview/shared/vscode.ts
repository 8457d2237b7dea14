/** The API VS Code injects into every webview (`acquireVsCodeApi` may be called once). */
export interface VsCodeApi<State, Out> {
  postMessage(message: Out): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State, Out>(): VsCodeApi<State, Out>;

export function getVsCodeApi<State, Out>(): VsCodeApi<State, Out> {
  return acquireVsCodeApi<State, Out>();
}
