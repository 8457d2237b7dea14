/**
 * The five views of the extension, one panel each (`panelHost.ts`), and how they open one another. Owns the panel
 * slots and their serializers; commands and other views open a view through here, never through a panel's class.
 */
import * as vscode from 'vscode';
import type { EngineClient } from './engineClient';
import type { AnalysisPanelContext, InspectorTarget } from './analysisContext';
import { INSPECTOR_VIEW, type InspectorPanel } from './inspectorPanel';
import type { JobManager } from './jobs';
import type { PanelContext } from './panelHost';
import { ROBUSTNESS_VIEW, type RobustnessPanel } from './robustnessPanel';
import { ROUTING_VIEW, type RoutingPanel } from './routingPanel';
import { SWEEP_VIEW, type SweepPanel } from './sweepPanel';
import { TRAINING_VIEW, type TrainingPanel } from './trainingPanel';

export interface ShowOptions {
  column?: vscode.ViewColumn;
  preserveFocus?: boolean;
}

export class Views implements vscode.Disposable {
  readonly training;
  readonly robustness;
  readonly routing;
  readonly inspector;
  readonly sweep;
  private readonly disposables: vscode.Disposable[] = [];

  /** `sweepsDirs`: the workspace's sweeps folders (a restored Sweep Table opens only a sweep inside one). */
  constructor(base: PanelContext, engine: EngineClient, jobs: JobManager, metricsChanged: vscode.Event<string>, sweepsDirs: () => string[]) {
    const analysisCtx: AnalysisPanelContext = {
      ...base,
      engine,
      jobs,
      trusted: () => vscode.workspace.isTrusted,
      openInspector: (target, opts) => this.openInspector(target, { column: opts?.column ?? vscode.ViewColumn.Beside }),
      openRouting: (runsDir, runId, opts) => this.openRouting(runsDir, runId, { analysis: opts?.analysis, column: opts?.column }),
      openRobustness: (runIds, opts) => this.openRobustness(runIds, { column: opts?.column }),
    };
    this.training = TRAINING_VIEW.slot({ ...base, jobs, metricsChanged });
    this.robustness = ROBUSTNESS_VIEW.slot(analysisCtx);
    this.routing = ROUTING_VIEW.slot(analysisCtx);
    this.inspector = INSPECTOR_VIEW.slot(analysisCtx);
    // The Sweep Table opens runs beside itself, the Training view on exactly the selected runs.
    const beside = { column: vscode.ViewColumn.Beside, preserveFocus: false };
    this.sweep = SWEEP_VIEW.slot({
      ...base,
      sweepsDirs,
      openTraining: (runIds) => this.openTraining(runIds, { ...beside, replace: true }),
      openRobustness: (runIds) => this.openRobustness(runIds, beside),
      openRouting: (runsDir, runId) => this.openRouting(runsDir, runId, beside),
    });
    this.disposables.push(
      this.training,
      this.robustness,
      this.routing,
      this.inspector,
      this.sweep,
      this.training.serializer((p, state) => p.restore(state)),
      this.robustness.serializer((p, state) => p.restore(state)),
      this.routing.serializer((p, state) => p.restore(state)),
      this.inspector.serializer((p, state) => p.restore(state)),
      this.sweep.serializer((p, state) => p.restore(state)),
    );
  }

  /** The Training view with these runs added to those it shows (`replace`: only these). */
  openTraining(runIds: readonly string[], opts: ShowOptions & { replace?: boolean } = {}): TrainingPanel {
    const { panel, fresh } = this.training.show({ preserveFocus: true, ...opts });
    if (opts.replace || fresh) void panel.setRuns([...runIds]);
    else if (runIds.length) void panel.addRuns([...runIds]);
    return panel;
  }

  /** The Robustness view on exactly these runs. */
  openRobustness(runIds: readonly string[], opts: ShowOptions = {}): RobustnessPanel {
    const { panel } = this.robustness.show(opts);
    void panel.setRuns([...runIds]);
    return panel;
  }

  openRouting(runsDir: string, runId: string, opts: ShowOptions & { analysis?: string } = {}): RoutingPanel {
    const { panel } = this.routing.show(opts);
    panel.setRun(runsDir, runId, opts.analysis);
    return panel;
  }

  openInspector(target: InspectorTarget, opts: ShowOptions = {}): InspectorPanel {
    const { panel } = this.inspector.show(opts);
    panel.show(target);
    return panel;
  }

  /** The Sweep Table on this sweep folder. */
  openSweep(sweepDir: string, opts: ShowOptions = {}): SweepPanel {
    const { panel } = this.sweep.show(opts);
    panel.setSweep(sweepDir);
    return panel;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
