/**
 * What the analysis panels (Robustness, Routing, Inspector) get from the extension: the runs, the engine for
 * live work, the job manager for cancellable progress, and a way to open each other (a Routing heatmap cell
 * opens the Inspector filtered to the samples routed that way).
 */
import type * as vscode from 'vscode';
import type { DataSplit } from '../engine/protocol';
import type { InspectorFilter } from '../webview/analysisProtocol';
import type { EngineClient } from './engineClient';
import type { JobManager } from './jobs';
import type { PanelContext } from './panelHost';

/** What the Inspector opens on. */
export interface InspectorTarget {
  runsDir: string;
  runId: string;
  /** Checkpoint file name under the run's `checkpoints/` (default: the last). */
  checkpoint?: string;
  /** Default 'test'. */
  split?: DataSplit;
  /** `analysis/*.json` name whose per-sample results fill the gallery (default: the newest with per-sample data). */
  analysis?: string;
  filter?: InspectorFilter;
}

export interface AnalysisPanelContext extends PanelContext {
  engine: EngineClient;
  jobs: JobManager;
  /** Workspace is trusted (the engine may run). Views work read-only otherwise. */
  trusted(): boolean;
  openInspector(target: InspectorTarget, opts?: { column?: vscode.ViewColumn }): void;
  openRouting(runsDir: string, runId: string, opts?: { analysis?: string; column?: vscode.ViewColumn }): void;
  openRobustness(runIds: string[], opts?: { column?: vscode.ViewColumn }): void;
}
