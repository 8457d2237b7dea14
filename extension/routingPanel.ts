/**
 * The Routing view's host side: one webview panel showing one run's routing (layer × expert heatmaps clean,
 * adversarial and their difference; class × expert; load balance). Reads `analysis/*.json` from disk, follows the
 * newest unless the user picked one, reloads when a new analysis of the run appears (engine notification or file
 * watcher), opens the Inspector on a clicked cell after checking the filter against the report, saves exports, and is
 * restored after a reload by its serializer. Every message from the webview is validated before use.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { StoredAnalysis } from '../webview/analysisProtocol';
import {
  checkFilter,
  chooseAnalysis,
  parseRoutingToHost,
  parseRoutingViewState,
  type HostToRouting,
  type RoutingDescription,
  type RoutingExportFormat,
  type ShowMessage,
} from '../webview/routing/protocol';
import type { AnalysisPanelContext } from './analysisContext';
import { listAnalysisFiles, readAnalysis, restoredRunsDir, runDir } from './runsDisk';
import { allRunsDirs } from './settings';
import { webviewOptions } from './trainingPanel';
import { DescribeRequests, saveViewExport, setViewPage } from './viewPanel';

export const ROUTING_VIEW_TYPE = 'advmoe.routing';
const RELOAD_DELAY_MS = 250;
const PROGRESS_INTERVAL_MS = 1000;

export class RoutingPanel implements vscode.Disposable {
  private static current: RoutingPanel | undefined;

  private runsDir = '';
  private runId = '';
  /** The analysis the user picked; undefined = follow the newest. */
  private picked: string | undefined;
  private ready = false;
  private shown: StoredAnalysis | undefined;
  private loadSeq = 0;
  private lastProgressAt = 0;
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private watcher: vscode.FileSystemWatcher | undefined;
  private readonly describes = new DescribeRequests<RoutingDescription>('Routing', (requestId) => void this.panel.webview.postMessage({ type: 'describe', requestId } satisfies HostToRouting));
  private readonly disposables: vscode.Disposable[] = [];

  static get instance(): RoutingPanel | undefined {
    return RoutingPanel.current;
  }

  /** Shows this run's routing (one panel: created beside the active editor, or revealed and switched to this run). */
  static show(
    ctx: AnalysisPanelContext,
    runsDir: string,
    runId: string,
    opts: { analysis?: string; column?: vscode.ViewColumn; preserveFocus?: boolean } = {},
  ): RoutingPanel {
    let p = RoutingPanel.current;
    if (!p) {
      const panel = vscode.window.createWebviewPanel(
        ROUTING_VIEW_TYPE,
        'Routing',
        { viewColumn: opts.column ?? vscode.ViewColumn.Beside, preserveFocus: opts.preserveFocus ?? false },
        webviewOptions(ctx.extensionUri),
      );
      p = new RoutingPanel(panel, ctx);
    } else {
      p.panel.reveal(opts.column, opts.preserveFocus ?? false);
    }
    p.setRun(runsDir, runId, opts.analysis);
    return p;
  }

  /** Adopts a panel VS Code restores after a reload. */
  static revive(panel: vscode.WebviewPanel, ctx: AnalysisPanelContext, state: unknown): RoutingPanel {
    RoutingPanel.current?.dispose();
    panel.webview.options = webviewOptions(ctx.extensionUri);
    const p = new RoutingPanel(panel, ctx);
    const s = parseRoutingViewState(state);
    const runsDir = s && restoredRunsDir(s.runsDir, ctx.store.get(s.runId)?.runsDir, allRunsDirs().map((d) => d.runsDir));
    if (s && runsDir) p.setRun(runsDir, s.runId, s.analysis);
    else if (s) ctx.log.warn(`Routing: not restoring run ${s.runId}: ${s.runsDir} is not a runs folder of this workspace`);
    return p;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly ctx: AnalysisPanelContext,
  ) {
    RoutingPanel.current = this;
    const webview = panel.webview;
    setViewPage(panel, ctx.extensionUri, 'routing', 'Routing');
    this.disposables.push(
      webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
      ctx.engine.onAnalysis((n) => {
        if (n.runId !== this.runId) return;
        if (n.final) {
          this.post({ type: 'notice', text: '' });
          this.scheduleReload();
        } else if (Date.now() - this.lastProgressAt > PROGRESS_INTERVAL_MS) {
          this.lastProgressAt = Date.now();
          this.post({ type: 'notice', text: `Evaluating this run: ${n.samplesDone} of ${n.samplesTotal} samples… (the view updates when it finishes)` });
        }
      }),
      ctx.store.onDidChange((e) => {
        if (!e || e.state.id === this.runId) this.updateTitle();
      }),
    );
  }

  get shownRun(): { runsDir: string; runId: string; analysis?: string } {
    return { runsDir: this.runsDir, runId: this.runId, analysis: this.shown?.name };
  }

  setRun(runsDir: string, runId: string, analysis?: string): void {
    const changed = runsDir !== this.runsDir || runId !== this.runId;
    this.runsDir = runsDir;
    this.runId = runId;
    this.picked = analysis;
    if (changed) this.watch();
    this.updateTitle();
    void this.load();
  }

  /** Watches the run's `analysis/` folder: files written by the CLI or another window show up too. */
  private watch(): void {
    this.watcher?.dispose();
    this.watcher = undefined;
    if (!this.runsDir || !this.runId) return;
    try {
      const dir = vscode.Uri.file(path.join(runDir(this.runsDir, this.runId), 'analysis'));
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(dir, '*.json'));
      w.onDidCreate(() => this.scheduleReload());
      w.onDidChange((uri) => {
        if (path.basename(uri.fsPath) === this.shown?.name) this.scheduleReload();
      });
      w.onDidDelete(() => this.scheduleReload());
      this.watcher = w;
    } catch (e) {
      this.ctx.log.warn(`Routing view: cannot watch the analyses of ${this.runId}: ${(e as Error).message}`);
    }
  }

  private scheduleReload(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      void this.load();
    }, RELOAD_DELAY_MS);
  }

  private runName(): string {
    return this.ctx.store.get(this.runId)?.state.name ?? this.runId;
  }

  private updateTitle(): void {
    this.panel.title = this.runId ? `Routing: ${this.runName()}` : 'Routing';
  }

  private post(msg: HostToRouting): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  /** Lists the run's analyses, reads the one to show, and posts it (or the reason there is none). */
  async load(): Promise<void> {
    const seq = ++this.loadSeq;
    const base = { type: 'show' as const, runsDir: this.runsDir, runId: this.runId, runName: this.runName() };
    if (!this.runsDir || !this.runId) {
      this.shown = undefined;
      this.post({ ...base, analyses: [], followLatest: true, error: 'No run to show: open the Routing view from a run.' });
      return;
    }
    const analyses = await listAnalysisFiles(this.runsDir, this.runId);
    const choice = chooseAnalysis(analyses, this.picked);
    this.picked = choice.picked;
    const name = choice.name;
    let analysis: StoredAnalysis | undefined;
    let error: string | undefined;
    if (name) {
      try {
        analysis = await readAnalysis(this.runsDir, this.runId, name);
      } catch (e) {
        error = (e as Error).message;
      }
    }
    if (seq !== this.loadSeq) return; // a newer load started meanwhile
    this.shown = analysis;
    const entry = this.ctx.store.get(this.runId);
    const msg: ShowMessage = {
      ...base,
      analyses,
      followLatest: this.picked === undefined,
      analysis,
      error,
      notice: choice.notice,
      moe: entry?.state.moe,
    };
    this.post(msg);
  }

  /** Asks the webview what it has drawn (used by the integration tests and diagnostics). */
  describe(timeoutMs = 5000): Promise<RoutingDescription> {
    return this.describes.request(this.ready, timeoutMs);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseRoutingToHost(raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`Routing view: rejected a message: ${parsed.error}`);
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        await this.load();
        this.describes.sendPending();
        break;
      case 'selectAnalysis':
        this.picked = msg.name ?? undefined;
        await this.load();
        break;
      case 'refresh':
        await this.load();
        break;
      case 'openInspector': {
        const shown = this.shown;
        if (!shown) {
          this.ctx.log.warn('Routing view: openInspector without an analysis shown');
          return;
        }
        const problem = checkFilter(msg.filter, shown.report);
        if (problem) {
          this.ctx.log.warn(`Routing view: rejected an Inspector filter: ${problem}`);
          return;
        }
        this.ctx.openInspector({ runsDir: this.runsDir, runId: this.runId, analysis: shown.name, filter: msg.filter });
        break;
      }
      case 'export':
        await this.saveExport(msg.format, msg.fileName, msg.data);
        break;
      case 'log':
        this.ctx.log[msg.level](`[routing view] ${msg.message}`);
        break;
      case 'description': {
        this.describes.answer(msg.requestId, msg);
        break;
      }
    }
  }

  private async saveExport(format: RoutingExportFormat, fileName: string, data: string): Promise<void> {
    const folder = this.runsDir ? vscode.Uri.file(runDir(this.runsDir, this.runId)) : vscode.workspace.workspaceFolders?.[0]?.uri;
    await saveViewExport(this.ctx.log, folder, format, fileName, data);
  }

  dispose(): void {
    if (RoutingPanel.current === this) RoutingPanel.current = undefined;
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.watcher?.dispose();
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.panel.dispose();
  }
}

export class RoutingPanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly ctx: AnalysisPanelContext) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    RoutingPanel.revive(panel, this.ctx, state);
  }
}
