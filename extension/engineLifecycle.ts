/**
 * The engine process over the extension's life: it starts with the first request (EngineClient), and restarts
 * when its settings change — at once when idle, else once the running jobs end (a job is never killed for it).
 */
import * as vscode from 'vscode';
import type { EngineClient } from './engineClient';
import type { JobManager } from './jobs';

const ENGINE_SETTINGS = ['advmoe.backend', 'advmoe.nodePath', 'advmoe.wasmThreads'];

export function watchEngineSettings(engine: EngineClient, jobs: JobManager, log: vscode.LogOutputChannel): vscode.Disposable {
  let waiting: vscode.Disposable | undefined;
  const restartWhenIdle = async () => {
    if (!engine.running) return;
    if (jobs.active().length > 0) {
      log.info('engine settings changed; they apply when the running jobs end');
      waiting ??= jobs.onDidChange(() => {
        if (jobs.active().length > 0) return;
        waiting?.dispose();
        waiting = undefined;
        void engine.stop();
      });
      return;
    }
    log.info('engine settings changed; stopping the engine (it starts again on the next request)');
    await engine.stop();
  };
  const sub = vscode.workspace.onDidChangeConfiguration((e) => {
    if (ENGINE_SETTINGS.some((k) => e.affectsConfiguration(k))) void restartWhenIdle();
  });
  return { dispose: () => (sub.dispose(), waiting?.dispose()) };
}
