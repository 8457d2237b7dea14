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
  type RoutingToHost,
  type ShowMessage,
} from '../webview/routing/protocol';
import type { AnalysisPanelContext } from './analysisContext';
import { listAnalysisFiles, readAnalysis, restoredRunsDir, runDir } from './runsDisk';
import { allRunsDirs } from './settings';
import { ViewPanel, declareView, type OwnMessage } from './panelHost';

const RELOAD_DELAY_MS = 250;
const PROGRESS_INTERVAL_MS = 1000;


export class RoutingPanel extends ViewPanel<RoutingToHost, HostToRouting, RoutingDescription> {
  private runsDir = '';
  private runId = '';
  /** The analysis the user picked; undefined = follow the newest. */
  private picked: string | undefined;
  private shown: StoredAnalysis | undefined;
  private loadSeq = 0;
  private lastProgressAt = 0;
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private watcher: vscode.FileSystemWatcher | undefined;

  /** Applies a state the webview saved (after a reload): only a run of one of the workspace's runs folders. */
  restore(state: unknown): void {
    const s = parseRoutingViewState(state);
    const runsDir = s && restoredRunsDir(s.runsDir, this.ctx.store.get(s.runId)?.runsDir, allRunsDirs().map((d) => d.runsDir));
    if (s && runsDir) this.setRun(runsDir, s.runId, s.analysis);
    else if (s) this.ctx.log.warn(`Routing: not restoring run ${s.runId}: ${s.runsDir} is not a runs folder of this workspace`);
  }

  constructor(
    panel: vscode.WebviewPanel,
    private readonly ctx: AnalysisPanelContext,
  ) {
    super(panel, ctx, ROUTING_VIEW);
    this.disposables.push(
      {
        dispose: () => {
          if (this.reloadTimer) clearTimeout(this.reloadTimer);
          this.watcher?.dispose();
        },
      },
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

  protected override async onReady(): Promise<void> {
    await this.load();
  }

  protected override async onMessage(msg: OwnMessage<RoutingToHost>): Promise<void> {
    switch (msg.type) {
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
    }
  }

  protected override exportFolder(): vscode.Uri | undefined {
    return this.runsDir ? vscode.Uri.file(runDir(this.runsDir, this.runId)) : super.exportFolder();
  }

}

/** The Routing view and its one panel. */
export const ROUTING_VIEW = declareView<RoutingToHost, RoutingDescription, AnalysisPanelContext, RoutingPanel>(
  'routing',
  'Routing',
  parseRoutingToHost,
  (panel, ctx) => new RoutingPanel(panel, ctx),
);
