/**
 * The Sweep Table view's host side: one webview panel showing one sweep (README "Sweeps"). Reads the table from
 * the sweep folder and the runs folder (engine/sweeps/rows.ts), posts it again whenever the sweep's manifest or one
 * of its runs' state or analysis files changes (file watchers: live while the sweep runs, whoever runs it), opens
 * selected runs in the Training, Robustness or Routing view, saves exports, and is restored after a reload by its
 * serializer. Every message from the webview is validated before use.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { MANIFEST_FILE, readSweepManifest } from '../engine/sweeps/folder';
import { readSweepTable } from '../engine/sweeps/rows';
import { parseSweepToHost, parseSweepViewState, type HostToSweep, type SweepDescription, type SweepExportFormat } from '../webview/sweep/protocol';
import { DescribeRequests, saveViewExport, setViewPage, webviewOptions } from './panelHost';

export const SWEEP_VIEW_TYPE = 'advmoe.sweep';
const RELOAD_DELAY_MS = 300;

export interface SweepPanelContext {
  extensionUri: vscode.Uri;
  log: vscode.LogOutputChannel;
  /** The workspace's sweeps folders: a restored panel only opens a sweep inside one of them. */
  sweepsDirs(): string[];
  openTraining(runIds: string[]): void;
  openRobustness(runIds: string[]): void;
  openRouting(runsDir: string, runId: string): void;
}

export class SweepPanel implements vscode.Disposable {
  private static current: SweepPanel | undefined;

  private sweepDir = '';
  private runsDir = '';
  private runIds = new Set<string>();
  private ready = false;
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private watchers: vscode.Disposable[] = [];
  private readonly describes = new DescribeRequests<SweepDescription>('Sweep Table', (requestId) => void this.panel.webview.postMessage({ type: 'describe', requestId } satisfies HostToSweep));
  private readonly disposables: vscode.Disposable[] = [];

  static get instance(): SweepPanel | undefined {
    return SweepPanel.current;
  }

  /** Shows this sweep (one panel: created, or revealed and switched to it). */
  static show(ctx: SweepPanelContext, sweepDir: string, opts: { column?: vscode.ViewColumn; preserveFocus?: boolean } = {}): SweepPanel {
    let p = SweepPanel.current;
    if (!p) {
      const panel = vscode.window.createWebviewPanel(SWEEP_VIEW_TYPE, 'Sweep Table', { viewColumn: opts.column ?? vscode.ViewColumn.Active, preserveFocus: opts.preserveFocus ?? false }, webviewOptions(ctx.extensionUri));
      p = new SweepPanel(panel, ctx);
    } else {
      p.panel.reveal(opts.column, opts.preserveFocus ?? false);
    }
    p.setSweep(sweepDir);
    return p;
  }

  static revive(panel: vscode.WebviewPanel, ctx: SweepPanelContext, state: unknown): SweepPanel {
    SweepPanel.current?.dispose();
    panel.webview.options = webviewOptions(ctx.extensionUri);
    const p = new SweepPanel(panel, ctx);
    const s = parseSweepViewState(state);
    // Restored state comes from storage anyone could write: only a sweep inside this workspace's sweeps folders.
    const dir = s && path.resolve(s.sweepDir);
    if (dir && ctx.sweepsDirs().some((d) => path.dirname(dir) === path.resolve(d))) p.setSweep(dir);
    else if (s) ctx.log.warn(`Sweep Table: not restoring ${s.sweepDir}: not a sweep folder of this workspace`);
    return p;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly ctx: SweepPanelContext,
  ) {
    SweepPanel.current = this;
    setViewPage(panel, ctx.extensionUri, 'sweep', 'Sweep Table');
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  get shownSweep(): string {
    return this.sweepDir;
  }

  setSweep(sweepDir: string): void {
    if (sweepDir !== this.sweepDir) {
      this.sweepDir = sweepDir;
      this.runsDir = '';
      this.watch(); // the manifest now; its runs once load() has read where they are
    }
    this.panel.title = `Sweep: ${path.basename(sweepDir)}`;
    this.load();
  }

  /** The manifest (runs added or removed), and each run's state.json and analyses (status and numbers). */
  private watch(): void {
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    const onChange = (uri: vscode.Uri) => {
      const rel = path.relative(this.runsDir, uri.fsPath).split(path.sep);
      if (path.basename(uri.fsPath) === MANIFEST_FILE || this.runIds.has(rel[0])) this.scheduleReload();
    };
    const add = (base: string, glob: string) => {
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(base), glob));
      w.onDidCreate(onChange);
      w.onDidChange(onChange);
      w.onDidDelete(onChange);
      this.watchers.push(w);
    };
    try {
      add(this.sweepDir, MANIFEST_FILE);
      if (this.runsDir) {
        add(this.runsDir, '*/state.json');
        add(this.runsDir, '*/analysis/final-*.json');
      }
    } catch (e) {
      this.ctx.log.warn(`Sweep Table: cannot watch ${this.sweepDir}: ${(e as Error).message}`);
    }
  }

  private scheduleReload(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      this.load();
    }, RELOAD_DELAY_MS);
  }

  private post(msg: HostToSweep): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  /** Reads the sweep and posts its table (or what is wrong with it). */
  load(): void {
    if (!this.sweepDir) {
      this.post({ type: 'show', sweepDir: '', error: 'No sweep to show: open the Sweep Table from a sweep in the Runs view or a *.advmoe-sweep.json file.' });
      return;
    }
    try {
      const manifest = readSweepManifest(this.sweepDir);
      const runsDirChanged = manifest.runsDir !== this.runsDir;
      this.runsDir = manifest.runsDir;
      this.runIds = new Set(manifest.runs.map((r) => r.id));
      if (runsDirChanged) this.watch();
      this.post({ type: 'show', sweepDir: this.sweepDir, table: readSweepTable(this.sweepDir) });
    } catch (e) {
      this.post({ type: 'show', sweepDir: this.sweepDir, error: (e as Error).message });
    }
  }

  describe(timeoutMs = 5000): Promise<SweepDescription> {
    return this.describes.request(this.ready, timeoutMs);
  }

  private onMessage(raw: unknown): void {
    const parsed = parseSweepToHost(raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`Sweep Table: rejected a message: ${parsed.error}`);
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.load();
        this.describes.sendPending();
        break;
      case 'refresh':
        this.load();
        break;
      case 'open': {
        // Only this sweep's runs: the ids come from the webview.
        const ids = msg.runIds.filter((id) => this.runIds.has(id));
        if (ids.length !== msg.runIds.length) this.ctx.log.warn('Sweep Table: ignored run ids that are not in the sweep');
        if (!ids.length) return;
        if (msg.view === 'training') this.ctx.openTraining(ids);
        else if (msg.view === 'robustness') this.ctx.openRobustness(ids);
        else this.ctx.openRouting(this.runsDir, ids[0]);
        break;
      }
      case 'export':
        void this.saveExport(msg.format, msg.fileName, msg.data);
        break;
      case 'log':
        this.ctx.log[msg.level](`[sweep view] ${msg.message}`);
        break;
      case 'description':
        this.describes.answer(msg.requestId, msg);
        break;
    }
  }

  private async saveExport(format: SweepExportFormat, fileName: string, data: string): Promise<void> {
    await saveViewExport(this.ctx.log, this.sweepDir ? vscode.Uri.file(this.sweepDir) : undefined, format, fileName, data);
  }

  dispose(): void {
    if (SweepPanel.current === this) SweepPanel.current = undefined;
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    for (const w of this.watchers) w.dispose();
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.panel.dispose();
  }
}

export class SweepPanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly ctx: SweepPanelContext) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    SweepPanel.revive(panel, this.ctx, state);
  }
}
