/**
 * The Training view's host side: curves of one or more runs. Reads each run's metrics from its file and follows
 * it while it grows (`liveMetrics.ts`, batched to ≤ 10 posts a second); adds a run this window starts training
 * beside the runs already shown (it listens to the job manager); restored after a reload by its serializer.
 */
import * as vscode from 'vscode';
import type { MetricsRecord, RunState } from '../engine/runs/types';
import {
  parseTrainingToHost,
  parseTrainingViewState,
  type DescriptionMessage,
  type HostToTraining,
  type RunSeriesData,
  type TrainingToHost,
  type TrainingViewState,
} from '../webview/protocol';
import type { JobEvents } from './jobs';
import { MetricsTail } from './liveMetrics';
import { ViewPanel, declareView, type OwnMessage, type PanelContext } from './panelHost';
import { pickRuns } from './runPicks';

const FLUSH_MS = 100;

export interface TrainingPanelContext extends PanelContext {
  jobs: JobEvents;
  /** A run's metrics file may have grown (`liveMetrics.metricsChanged`). */
  metricsChanged: vscode.Event<string>;
}


export class TrainingPanel extends ViewPanel<TrainingToHost, HostToTraining, DescriptionMessage> {
  private runIds: string[] = [];
  private initializing = 0;
  private restoredOptions: Partial<TrainingViewState> | undefined;
  private readonly pending = new Map<string, MetricsRecord[]>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly tail: MetricsTail;

  constructor(
    panel: vscode.WebviewPanel,
    private readonly ctx: TrainingPanelContext,
  ) {
    super(panel, ctx, TRAINING_VIEW);
    this.tail = new MetricsTail(ctx.store, ctx.log);
    this.disposables.push(
      ctx.store.onDidChange((e) => this.onRunChanged(e?.state)),
      ctx.metricsChanged((runId) => {
        if (this.ready && this.runIds.includes(runId)) this.tail.readNew(runId, (records) => this.queue(runId, records));
      }),
      // A run this window starts training joins the runs shown (it does not replace them).
      ctx.jobs.onDidAttachRun((job) => {
        if (job.kind === 'train' && job.runId && !this.runIds.includes(job.runId)) void this.addRuns([job.runId]);
      }),
      { dispose: () => this.flushTimer && clearTimeout(this.flushTimer) },
    );
  }

  override get shownRunIds(): readonly string[] {
    return this.runIds;
  }

  async setRuns(runIds: string[]): Promise<void> {
    this.runIds = [...new Set(runIds)];
    this.updateTitle();
    if (this.ready) await this.sendInit();
  }

  async addRuns(runIds: string[]): Promise<void> {
    await this.setRuns([...this.runIds, ...runIds]);
  }

  /** Applies a state the webview saved (after a reload). */
  restore(state: unknown): void {
    const s = parseTrainingViewState(state);
    if (!s) return;
    this.restoredOptions = { smoothing: s.smoothing, xAxis: s.xAxis, logScale: s.logScale };
    void this.setRuns(s.runIds);
  }

  private onRunChanged(state: RunState | undefined): void {
    const changed = state ? [state] : this.runIds.map((id) => this.ctx.store.get(id)?.state).filter((s): s is RunState => !!s);
    for (const s of changed) if (this.runIds.includes(s.id)) this.post({ type: 'runState', state: s });
    this.updateTitle();
  }

  private updateTitle(): void {
    const names = this.runIds.map((id) => this.ctx.store.get(id)?.state.name ?? id);
    this.panel.title = names.length === 0 ? 'Training' : names.length === 1 ? `Training: ${names[0]}` : `Training: ${names.length} runs`;
  }

  protected override async onReady(): Promise<void> {
    await this.sendInit();
  }

  private async sendInit(): Promise<void> {
    // Records read meanwhile are held until `init` is posted, then sent (the view replaces records by step).
    this.initializing++;
    try {
      const runs: RunSeriesData[] = [];
      for (const id of this.runIds) {
        const entry = this.ctx.store.get(id);
        if (!entry) continue;
        const records = await this.tail.readAll(id);
        const s = entry.state;
        runs.push({ runId: id, name: s.name, status: s.status, method: s.method, records });
      }
      const options = this.restoredOptions;
      this.restoredOptions = undefined;
      this.post({ type: 'init', runs, options });
    } finally {
      this.initializing--;
    }
    this.flush();
  }

  private queue(runId: string, records: MetricsRecord[]): void {
    if (!this.runIds.includes(runId)) return;
    const list = this.pending.get(runId) ?? [];
    list.push(...records);
    this.pending.set(runId, list);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.initializing > 0) return;
    for (const [runId, records] of this.pending) this.post({ type: 'append', runId, records });
    this.pending.clear();
  }

  protected override async onMessage(msg: OwnMessage<TrainingToHost>): Promise<void> {
    if (msg.type !== 'addRuns') return;
    const ids = await pickRuns(this.ctx.store, { title: 'Runs to add to the Training view', exclude: this.runIds });
    if (ids?.length) await this.addRuns(ids);
  }
}

/** The Training view and its one panel. */
export const TRAINING_VIEW = declareView<TrainingToHost, DescriptionMessage, TrainingPanelContext, TrainingPanel>(
  'training',
  'Training',
  parseTrainingToHost,
  (panel, ctx) => new TrainingPanel(panel, ctx),
);
