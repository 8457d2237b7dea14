/**
 * The Robustness view's host side: one webview panel comparing the robustness analyses of one or more runs.
 * Reads `analysis/*.json` from disk (newest by default, or the one picked per run), starts evaluations through
 * the job manager (VS Code's cancellable progress), forwards the partial reports an evaluation streams, saves
 * exports, and is restored after a reload by its serializer. Every message from the webview is validated.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { AnalysisNotification } from '../engine/protocol';
import {
  parseRobustnessToHost,
  parseRobustnessViewState,
  type HostToRobustness,
  type RobDescriptionMessage,
  type RobustnessExportFormat,
  type RobustnessRunData,
} from '../webview/robustness/protocol';
import type { AnalysisPanelContext } from './analysisContext';
import { listAnalysisFiles, readAnalysis } from './runsDisk';
import { webviewOptions } from './trainingPanel';
import { DescribeRequests, saveViewExport, setViewPage } from './viewPanel';

export const ROBUSTNESS_VIEW_TYPE = 'advmoe.robustness';
/** After a final report: how long to wait for the engine's saved file to appear. */
const RELOAD_TRIES = 20;
const RELOAD_WAIT_MS = 250;
const FILE_DEBOUNCE_MS = 300;

/**
 * One run's data for the view: its analysis files, and the chosen one (`selected`) or else the newest readable one.
 * Unreadable files are reported: as the error when it was chosen, as warnings when a newer one was skipped.
 */
export async function loadRunData(
  runsDir: string | undefined,
  runId: string,
  info: { name: string; method: string; status: string },
  selected?: string,
): Promise<RobustnessRunData> {
  const base: RobustnessRunData = { runId, name: info.name, method: info.method, status: info.status, files: [] };
  if (runsDir === undefined) return { ...base, error: `Run ${runId} was not found in the workspace's runs folders.` };
  base.files = await listAnalysisFiles(runsDir, runId);
  if (base.files.length === 0) {
    return { ...base, error: `Run ${info.name} has no robustness analysis yet. Evaluate it (or run \`advmoe eval ${runId}\`).` };
  }
  if (selected && base.files.some((f) => f.name === selected)) {
    try {
      return { ...base, analysis: await readAnalysis(runsDir, runId, selected) };
    } catch (e) {
      return { ...base, error: (e as Error).message };
    }
  }
  const warnings: string[] = [];
  for (const f of base.files) {
    try {
      const analysis = await readAnalysis(runsDir, runId, f.name);
      return warnings.length ? { ...base, analysis, warnings } : { ...base, analysis };
    } catch (e) {
      warnings.push(`Skipped ${f.name}: ${(e as Error).message}`);
    }
  }
  return { ...base, error: warnings.join('\n') };
}

const infoKey = (s: { name: string; status: string; method: string }) => `${s.name}|${s.status}|${s.method}`;

export class RobustnessPanel implements vscode.Disposable {
  private static current: RobustnessPanel | undefined;

  private runIds: string[] = [];
  /** Analysis file picked per run (absent = newest). */
  private selected: Record<string, string> = {};
  private ready = false;
  /** Evaluations started from this panel (their runs are added to the view if removed meanwhile). */
  private readonly ownJobs = new Set<string>();
  /** Runs with an evaluation streaming reports right now (from anywhere). */
  private readonly liveRuns = new Set<string>();
  private readonly describes = new DescribeRequests<RobDescriptionMessage>('Robustness', (requestId) => void this.panel.webview.postMessage({ type: 'describe', requestId } satisfies HostToRobustness));
  private initSeq = 0;
  /** File watchers on the analysis files (`<runsDir>/<run>/analysis/*.json`), one per runs folder of the shown runs. */
  private readonly watchers = new Map<string, vscode.Disposable>();
  private readonly fileTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Name and status of each run as last sent. */
  private readonly sentInfo = new Map<string, string>();
  private readonly disposables: vscode.Disposable[] = [];

  static get instance(): RobustnessPanel | undefined {
    return RobustnessPanel.current;
  }

  /** Shows these runs in the Robustness view (creating the panel, or revealing it and replacing its runs). */
  static show(ctx: AnalysisPanelContext, runIds: string[], opts: { column?: vscode.ViewColumn; preserveFocus?: boolean } = {}): RobustnessPanel {
    let p = RobustnessPanel.current;
    if (!p) {
      const panel = vscode.window.createWebviewPanel(
        ROBUSTNESS_VIEW_TYPE,
        'Robustness',
        { viewColumn: opts.column ?? vscode.ViewColumn.Beside, preserveFocus: opts.preserveFocus ?? false },
        webviewOptions(ctx.extensionUri),
      );
      p = new RobustnessPanel(panel, ctx);
    } else {
      p.panel.reveal(opts.column, opts.preserveFocus ?? false);
    }
    void p.setRuns(runIds);
    return p;
  }

  /** Adopts a panel VS Code restores after a reload. */
  static revive(panel: vscode.WebviewPanel, ctx: AnalysisPanelContext, state: unknown): RobustnessPanel {
    RobustnessPanel.current?.dispose();
    panel.webview.options = webviewOptions(ctx.extensionUri);
    const p = new RobustnessPanel(panel, ctx);
    const s = parseRobustnessViewState(state);
    if (s) {
      p.selected = { ...s.selected };
      void p.setRuns(s.runIds);
    }
    return p;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly ctx: AnalysisPanelContext,
  ) {
    RobustnessPanel.current = this;
    const webview = panel.webview;
    setViewPage(panel, ctx.extensionUri, 'robustness', 'Robustness');
    this.disposables.push(
      webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
      ctx.engine.onAnalysis((n) => this.onAnalysis(n)),
      ctx.jobs.onDidChange(() => this.onJobsChanged()),
      ctx.store.onDidChange((e) => {
        // Runs restored after a reload may reach the store after the panel asked for them.
        if (!e) {
          this.watchAnalyses();
          void this.sendInit();
        } else if (this.runIds.includes(e.state.id)) {
          this.updateTitle();
          // A run that was missing, renamed or changed status: its card says so.
          if (this.sentInfo.get(e.state.id) !== infoKey(e.state)) {
            this.watchAnalyses();
            void this.sendRun(e.state.id);
          }
        }
      }),
    );
  }

  get shownRunIds(): string[] {
    return [...this.runIds];
  }

  /** Replaces the runs shown. */
  async setRuns(runIds: string[]): Promise<void> {
    this.runIds = [...new Set(runIds)];
    this.updateTitle();
    this.watchAnalyses();
    await this.sendInit();
  }

  async addRuns(runIds: string[]): Promise<void> {
    await this.setRuns([...this.runIds, ...runIds]);
  }

  private updateTitle(): void {
    const names = this.runIds.map((id) => this.ctx.store.get(id)?.state.name ?? id);
    this.panel.title = names.length === 0 ? 'Robustness' : names.length === 1 ? `Robustness: ${names[0]}` : `Robustness: ${names.length} runs`;
  }

  private post(msg: HostToRobustness): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  private async load(runId: string): Promise<RobustnessRunData> {
    const entry = this.ctx.store.get(runId);
    const s = entry?.state;
    this.sentInfo.set(runId, s ? infoKey(s) : '');
    return loadRunData(entry?.runsDir, runId, { name: s?.name ?? runId, method: s?.method ?? '', status: s?.status ?? 'unknown' }, this.selected[runId]);
  }

  private runningHere(): string[] {
    const active = new Set(this.ctx.jobs.active('evaluate').map((j) => j.runId));
    return this.runIds.filter((id) => active.has(id) || this.liveRuns.has(id));
  }

  private async sendInit(): Promise<void> {
    if (!this.ready) return;
    const seq = ++this.initSeq;
    const runs = await Promise.all(this.runIds.map((id) => this.load(id)));
    if (seq !== this.initSeq) return; // a newer init is on its way
    this.post({ type: 'init', runs, trusted: this.ctx.trusted(), running: this.runningHere() });
  }

  private async sendRun(runId: string): Promise<RobustnessRunData | undefined> {
    if (!this.runIds.includes(runId)) return undefined;
    const run = await this.load(runId);
    if (!this.runIds.includes(runId)) return undefined; // removed meanwhile
    this.post({ type: 'run', run });
    return run;
  }

  /** Analyses written by others (the CLI, another window) show up in the picker, and as the newest. */
  private watchAnalyses(): void {
    const dirs = new Set(this.runIds.map((id) => this.ctx.store.get(id)?.runsDir).filter((d): d is string => d !== undefined));
    for (const [dir, w] of this.watchers) {
      if (dirs.has(dir)) continue;
      w.dispose();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(dir), '*/analysis/*.json'));
      const changed = (uri: vscode.Uri) => {
        const runId = path.basename(path.dirname(path.dirname(uri.fsPath)));
        if (!this.runIds.includes(runId) || this.liveRuns.has(runId) || this.ownJobs.has(runId)) return;
        const old = this.fileTimers.get(runId);
        if (old) clearTimeout(old);
        this.fileTimers.set(
          runId,
          setTimeout(() => {
            this.fileTimers.delete(runId);
            void this.sendRun(runId);
          }, FILE_DEBOUNCE_MS),
        );
      };
      w.onDidCreate(changed);
      w.onDidChange(changed);
      w.onDidDelete(changed);
      this.watchers.set(dir, w);
    }
  }

  /** Partial and final reports of an evaluation (started here, from a command, or from the CodeLens). */
  private onAnalysis(n: AnalysisNotification): void {
    if (!this.runIds.includes(n.runId)) {
      if (!this.ownJobs.has(n.runId)) return;
      // Evaluated from here, removed from the view meanwhile: show it again.
      this.runIds.push(n.runId);
      this.updateTitle();
      void this.sendRun(n.runId).then(() => this.onAnalysis(n));
      return;
    }
    if (n.final) this.liveRuns.delete(n.runId);
    else this.liveRuns.add(n.runId);
    // perSample is not shown here: keep the message small.
    const { perSample: _omit, ...report } = n.report;
    this.post({ type: 'partial', runId: n.runId, report, samplesDone: n.samplesDone, samplesTotal: n.samplesTotal, final: n.final });
    // An evaluation started here reloads when its request returns; others when their file appears.
    if (n.final && !this.ownJobs.has(n.runId)) void this.reloadWhenSaved(n.runId);
  }

  /**
   * Evaluations started elsewhere (command palette, CodeLens) end without telling this panel; the job list does.
   * One that stopped before its final report (cancelled or failed): show the saved analysis again.
   */
  private onJobsChanged(): void {
    const active = new Set(this.ctx.jobs.active('evaluate').map((j) => j.runId));
    for (const runId of [...this.liveRuns]) {
      if (active.has(runId) || this.ownJobs.has(runId)) continue;
      this.liveRuns.delete(runId);
      this.post({ type: 'job', runId, running: false, message: 'The evaluation stopped before it finished (cancelled or failed); the saved analysis is shown.' });
      void this.sendRun(runId);
    }
  }

  /** After a final report: wait for the new `analysis/*.json`, then show it from disk (the newest). */
  private async reloadWhenSaved(runId: string, knownNewest?: number): Promise<void> {
    const entry = this.ctx.store.get(runId);
    if (!entry) return;
    const before = knownNewest ?? (await listAnalysisFiles(entry.runsDir, runId))[0]?.mtime ?? 0;
    delete this.selected[runId]; // the new analysis is what the user wants to see
    for (let i = 0; i < RELOAD_TRIES; i++) {
      const files = await listAnalysisFiles(entry.runsDir, runId);
      if ((files[0]?.mtime ?? 0) > before || this.ctx.jobs.active('evaluate').every((j) => j.runId !== runId)) break;
      await new Promise((r) => setTimeout(r, RELOAD_WAIT_MS));
    }
    await this.sendRun(runId);
  }

  private async evaluate(runId: string): Promise<void> {
    if (!this.ctx.trusted()) {
      void vscode.window.showWarningMessage('AdvMoE: evaluations need a trusted workspace.');
      return;
    }
    const entry = this.ctx.store.get(runId);
    if (!entry) {
      void vscode.window.showErrorMessage(`AdvMoE: run ${runId} was not found in the runs folders.`);
      return;
    }
    if (this.ctx.jobs.active('evaluate').some((j) => j.runId === runId)) {
      void vscode.window.showInformationMessage(`AdvMoE: ${entry.state.name} is already being evaluated.`);
      return;
    }
    const newestBefore = (await listAnalysisFiles(entry.runsDir, runId))[0]?.mtime ?? 0;
    this.ownJobs.add(runId);
    this.post({ type: 'job', runId, running: true });
    let result: Awaited<ReturnType<AnalysisPanelContext['jobs']['evaluate']>>;
    try {
      result = await this.ctx.jobs.evaluate(entry);
    } finally {
      this.ownJobs.delete(runId);
      this.liveRuns.delete(runId);
    }
    if (RobustnessPanel.current !== this) return;
    this.post({ type: 'job', runId, running: false, message: result ? undefined : 'The evaluation stopped before it finished (cancelled or failed); the saved analysis is shown.' });
    if (result) await this.reloadWhenSaved(runId, newestBefore);
    else await this.sendRun(runId);
  }

  private async cancel(runId: string): Promise<void> {
    const job = this.ctx.jobs.active('evaluate').find((j) => j.runId === runId);
    if (!job) {
      this.ctx.log.warn(`Robustness view: no evaluation of ${runId} to cancel`);
      this.post({ type: 'job', runId, running: false });
      return;
    }
    await this.ctx.jobs.cancel(job);
  }

  private async pickRuns(): Promise<void> {
    const items = this.ctx.store
      .all()
      .filter((e) => !this.runIds.includes(e.state.id))
      .map((e) => ({ label: e.state.name, description: `${e.state.method} · ${e.state.status}`, detail: e.state.id, id: e.state.id }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage('AdvMoE: no other runs to add.');
      return;
    }
    const picked = await vscode.window.showQuickPick(items, { canPickMany: true, title: 'Show runs side by side', matchOnDetail: true });
    if (picked && picked.length) await this.addRuns(picked.map((p) => p.id));
  }

  /** Asks the webview what it has drawn (integration tests, diagnostics). */
  describe(timeoutMs = 5000): Promise<RobDescriptionMessage> {
    return this.describes.request(this.ready, timeoutMs);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseRobustnessToHost(raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`Robustness view: rejected a message: ${parsed.error}`);
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        await this.sendInit();
        this.describes.sendPending();
        break;
      case 'addRuns':
        await this.pickRuns();
        break;
      case 'removeRun':
        delete this.selected[msg.runId];
        await this.setRuns(this.runIds.filter((id) => id !== msg.runId));
        break;
      case 'selectAnalysis':
        if (!this.runIds.includes(msg.runId)) return;
        this.selected[msg.runId] = msg.name;
        await this.sendRun(msg.runId);
        break;
      case 'evaluate':
        if (this.runIds.includes(msg.runId)) await this.evaluate(msg.runId);
        break;
      case 'cancel':
        await this.cancel(msg.runId);
        break;
      case 'openRouting': {
        const entry = this.ctx.store.get(msg.runId);
        if (entry) this.ctx.openRouting(entry.runsDir, msg.runId, { analysis: msg.analysis });
        break;
      }
      case 'export':
        await this.saveExport(msg.format, msg.fileName, msg.data);
        break;
      case 'log':
        this.ctx.log[msg.level](`[robustness view] ${msg.message}`);
        break;
      case 'description': {
        this.describes.answer(msg.requestId, msg);
        break;
      }
    }
  }

  private async saveExport(format: RobustnessExportFormat, fileName: string, data: string): Promise<void> {
    const first = this.runIds.map((id) => this.ctx.store.get(id)).find((e) => e !== undefined);
    const folder = first ? vscode.Uri.file(first.runsDir) : vscode.workspace.workspaceFolders?.[0]?.uri;
    await saveViewExport(this.ctx.log, folder, format, fileName, data);
  }

  dispose(): void {
    if (RobustnessPanel.current === this) RobustnessPanel.current = undefined;
    for (const t of this.fileTimers.values()) clearTimeout(t);
    this.fileTimers.clear();
    for (const w of this.watchers.values()) w.dispose();
    this.watchers.clear();
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.describes.clear();
    this.panel.dispose();
  }
}

export class RobustnessPanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly ctx: AnalysisPanelContext) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    RobustnessPanel.revive(panel, this.ctx, state);
  }
}
