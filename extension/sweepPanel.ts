/**
 * The Sweep Table view's host side: one webview panel on the panel host showing one sweep (README "Sweeps"). Reads
 * the table from the sweep folder and the runs folder (engine/sweeps/rows.ts), posts it again whenever the sweep's
 * manifest or one of its runs' state or analysis files changes (file watchers: live while the sweep runs, whoever
 * runs it), and opens selected runs in the Training, Robustness or Routing view. The host does the rest: the ready
 * handshake, validated messages, exports into the sweep folder, `describe`, and revival after a reload.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { MANIFEST_FILE, readSweepManifest } from '../engine/sweeps/folder';
import { readSweepTable } from '../engine/sweeps/rows';
import { parseSweepToHost, parseSweepViewState, type HostToSweep, type SweepDescription, type SweepToHost } from '../webview/sweep/protocol';
import { ViewPanel, declareView, type OwnMessage, type PanelContext } from './panelHost';

const RELOAD_DELAY_MS = 300;

export interface SweepPanelContext extends PanelContext {
  /** The workspace's sweeps folders: a restored panel only opens a sweep inside one of them. */
  sweepsDirs(): string[];
  openTraining(runIds: string[]): void;
  openRobustness(runIds: string[]): void;
  openRouting(runsDir: string, runId: string): void;
}


export class SweepPanel extends ViewPanel<SweepToHost, HostToSweep, SweepDescription> {
  private sweepDir = '';
  private runsDir = '';
  private runIds = new Set<string>();
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private watchers: vscode.Disposable[] = [];

  constructor(
    panel: vscode.WebviewPanel,
    private readonly ctx: SweepPanelContext,
  ) {
    super(panel, ctx, SWEEP_VIEW);
    this.disposables.push({
      dispose: () => {
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        for (const w of this.watchers) w.dispose();
      },
    });
  }

  get shownSweep(): string {
    return this.sweepDir;
  }

  /** Applies a state the webview saved (after a reload). */
  restore(state: unknown): void {
    const s = parseSweepViewState(state);
    // Restored state comes from storage anyone could write: only a sweep inside this workspace's sweeps folders.
    const dir = s && path.resolve(s.sweepDir);
    if (dir && this.ctx.sweepsDirs().some((d) => path.dirname(dir) === path.resolve(d))) this.setSweep(dir);
    else if (s) this.ctx.log.warn(`Sweep Table: not restoring ${s.sweepDir}: not a sweep folder of this workspace`);
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

  protected override async onReady(): Promise<void> {
    this.load();
  }

  protected override async onMessage(msg: OwnMessage<SweepToHost>): Promise<void> {
    if (msg.type === 'refresh') {
      this.load();
      return;
    }
    // Only this sweep's runs: the ids come from the webview.
    const ids = msg.runIds.filter((id) => this.runIds.has(id));
    if (ids.length !== msg.runIds.length) this.ctx.log.warn('Sweep Table: ignored run ids that are not in the sweep');
    if (!ids.length) return;
    if (msg.view === 'training') this.ctx.openTraining(ids);
    else if (msg.view === 'robustness') this.ctx.openRobustness(ids);
    else this.ctx.openRouting(this.runsDir, ids[0]);
  }

  /** Exports go into the sweep's folder. */
  protected override exportFolder(): vscode.Uri | undefined {
    return this.sweepDir ? vscode.Uri.file(this.sweepDir) : super.exportFolder();
  }
}

/** The Sweep Table view and its one panel. */
export const SWEEP_VIEW = declareView<SweepToHost, SweepDescription, SweepPanelContext, SweepPanel>(
  'sweep',
  'Sweep Table',
  parseSweepToHost,
  (panel, ctx) => new SweepPanel(panel, ctx),
);
