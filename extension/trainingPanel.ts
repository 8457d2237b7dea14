/**
 * The Training view's host side: one webview panel showing one or more runs. Loads metrics from disk,
 * forwards live records (batched, ≤ 10 posts a second), saves exports, and is restored after a reload by
 * its serializer. Every message from the webview is validated before use.
 */
import * as vscode from 'vscode';
import type { MetricsRecord, RunState } from '../engine/runs/types';
import {
  parseTrainingToHost,
  parseTrainingViewState,
  type DescriptionMessage,
  type HostToTraining,
  type RunSeriesData,
  type TrainingViewState,
} from '../webview/protocol';
import { readMetrics } from './runsDisk';
import type { RunsStore } from './runsStore';
import { DescribeRequests, saveViewExport, setViewPage } from './viewPanel';

export const TRAINING_VIEW_TYPE = 'advmoe.training';
const FLUSH_MS = 100;

export class TrainingPanel implements vscode.Disposable {
  private static current: TrainingPanel | undefined;

  private runIds: string[] = [];
  private ready = false;
  private initializing = 0;
  private restoredOptions: Partial<TrainingViewState> | undefined;
  private readonly pending = new Map<string, MetricsRecord[]>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** Byte offsets in each run's metrics.jsonl up to which records were sent. */
  private readonly offsets = new Map<string, number>();
  /** Runs fed by engine notifications in this window (their file changes are not tailed meanwhile). */
  private readonly live = new Set<string>();
  private readonly describes = new DescribeRequests<DescriptionMessage>('Training', (requestId) => void this.panel.webview.postMessage({ type: 'describe', requestId } satisfies HostToTraining));
  private readonly disposables: vscode.Disposable[] = [];

  static get instance(): TrainingPanel | undefined {
    return TrainingPanel.current;
  }

  /** Shows these runs in the Training view (created beside `beside`'s editor column, or revealed). */
  static show(ctx: PanelContext, runIds: string[], opts: { column?: vscode.ViewColumn; preserveFocus?: boolean } = {}): TrainingPanel {
    const column = opts.column ?? vscode.ViewColumn.Beside;
    let p = TrainingPanel.current;
    if (!p) {
      const panel = vscode.window.createWebviewPanel(
        TRAINING_VIEW_TYPE,
        'Training',
        { viewColumn: column, preserveFocus: opts.preserveFocus ?? true },
        webviewOptions(ctx.extensionUri),
      );
      p = new TrainingPanel(panel, ctx);
    } else {
      p.panel.reveal(undefined, opts.preserveFocus ?? true);
    }
    void p.setRuns(runIds);
    return p;
  }

  /** Adopts a panel VS Code restores after a reload. */
  static revive(panel: vscode.WebviewPanel, ctx: PanelContext, state: unknown): TrainingPanel {
    TrainingPanel.current?.dispose();
    panel.webview.options = webviewOptions(ctx.extensionUri);
    const p = new TrainingPanel(panel, ctx);
    const s = parseTrainingViewState(state);
    if (s) {
      p.restoredOptions = { smoothing: s.smoothing, xAxis: s.xAxis, logScale: s.logScale };
      void p.setRuns(s.runIds);
    }
    return p;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly ctx: PanelContext,
  ) {
    TrainingPanel.current = this;
    const webview = panel.webview;
    setViewPage(panel, ctx.extensionUri, 'training', 'Training');
    this.disposables.push(
      webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
      ctx.store.onDidChange((e) => {
        if (e && this.runIds.includes(e.state.id)) this.postRunState(e.state);
        else if (!e) for (const id of this.runIds) {
          const entry = ctx.store.get(id);
          if (entry) this.postRunState(entry.state);
        }
        this.updateTitle();
      }),
      ctx.store.onMetricsFileChanged((e) => {
        if (this.runIds.includes(e.state.id) && !this.live.has(e.state.id)) void this.tail(e.state.id);
      }),
    );
  }

  get shownRunIds(): readonly string[] {
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

  private updateTitle(): void {
    const names = this.runIds.map((id) => this.ctx.store.get(id)?.state.name ?? id);
    this.panel.title = names.length === 0 ? 'Training' : names.length === 1 ? `Training: ${names[0]}` : `Training: ${names.length} runs`;
  }

  private post(msg: HostToTraining): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  private postRunState(state: RunState): void {
    this.post({ type: 'runState', state });
  }

  private async sendInit(): Promise<void> {
    const runs: RunSeriesData[] = [];
    // Live records keep arriving while the files are read: hold them until `init` is posted, then send
    // them (records the file already had are replaced by step in the view, not doubled).
    this.initializing++;
    for (const id of this.runIds) {
      const entry = this.ctx.store.get(id);
      if (!entry) continue;
      const chunk = await readMetrics(entry.runsDir, id);
      if (chunk.bad > 0) this.ctx.log.warn(`run ${id}: skipped ${chunk.bad} unreadable line(s) of metrics.jsonl`);
      this.offsets.set(id, chunk.nextOffset);
      const s = entry.state;
      runs.push({ runId: id, name: s.name, status: s.status, method: s.method, records: chunk.records });
    }
    const options = this.restoredOptions;
    this.restoredOptions = undefined;
    this.post({ type: 'init', runs, options });
    this.initializing--;
    this.flush();
  }

  /** Records from the engine's metrics notifications (a run trained by this window). */
  appendLive(runId: string, records: MetricsRecord[]): void {
    this.live.add(runId);
    if (!this.runIds.includes(runId)) return;
    const list = this.pending.get(runId) ?? [];
    list.push(...records);
    this.pending.set(runId, list);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** The job feeding this run ended: follow its file again from where it is now. */
  endLive(runId: string): void {
    this.live.delete(runId);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.initializing > 0) return;
    for (const [runId, records] of this.pending) this.post({ type: 'append', runId, records });
    this.pending.clear();
  }

  /** Sends what was appended to a run's metrics.jsonl since the last read (runs started elsewhere). */
  private async tail(runId: string): Promise<void> {
    const entry = this.ctx.store.get(runId);
    if (!entry || !this.ready) return;
    const chunk = await readMetrics(entry.runsDir, runId, this.offsets.get(runId) ?? 0);
    this.offsets.set(runId, chunk.nextOffset);
    if (chunk.records.length > 0) this.post({ type: 'append', runId, records: chunk.records });
  }

  /** Asks the webview what it has drawn (used by the integration tests and diagnostics). */
  describe(timeoutMs = 5000): Promise<DescriptionMessage> {
    return this.describes.request(this.ready, timeoutMs);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseTrainingToHost(raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`Training view: rejected a message: ${parsed.error}`);
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        await this.sendInit();
        this.describes.sendPending();
        break;
      case 'export':
        await this.saveExport(msg.format, msg.fileName, msg.data);
        break;
      case 'addRuns':
        await vscode.commands.executeCommand('advmoe.compareRuns', { addTo: true });
        break;
      case 'log':
        this.ctx.log[msg.level](`[training view] ${msg.message}`);
        break;
      case 'description': {
        this.describes.answer(msg.requestId, msg);
        break;
      }
    }
  }

  private async saveExport(format: 'png' | 'svg' | 'csv', fileName: string, data: string): Promise<void> {
    const first = this.runIds.map((id) => this.ctx.store.get(id)).find((e) => e !== undefined);
    const folder = first ? vscode.Uri.file(first.runsDir) : vscode.workspace.workspaceFolders?.[0]?.uri;
    await saveViewExport(this.ctx.log, folder, format, fileName, data);
  }

  dispose(): void {
    if (TrainingPanel.current === this) TrainingPanel.current = undefined;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.panel.dispose();
  }
}

export interface PanelContext {
  extensionUri: vscode.Uri;
  store: RunsStore;
  log: vscode.LogOutputChannel;
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export class TrainingPanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly ctx: PanelContext) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    TrainingPanel.revive(panel, this.ctx, state);
  }
}
