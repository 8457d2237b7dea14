/** What the extension's parts share once activated (commands, views, engine lifecycle). */
import type * as vscode from 'vscode';
import type { EngineClient } from './engineClient';
import type { JobManager } from './jobs';
import type { RunsStore } from './runsStore';
import type { SweepsStore } from './sweepsStore';
import type { Views } from './views';

export interface Services {
  log: vscode.LogOutputChannel;
  engine: EngineClient;
  store: RunsStore;
  jobs: JobManager;
  views: Views;
  sweeps: SweepsStore;
}

/** A command's handler; arguments come from VS Code (tree items, URIs) or other extensions, so they are checked. */
export type CommandTable = Record<string, (...args: unknown[]) => unknown>;
