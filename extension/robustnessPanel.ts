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
  type RobustnessRunData,
  type RobustnessToHost,
} from '../webview/robustness/protocol';
import type { AnalysisPanelContext } from './analysisContext';
import { listAnalysisFiles, readAnalysis } from './runsDisk';
import { jobActivity, waitingAhead } from './jobProgress';
import { ViewPanel, declareView, type OwnMessage } from './panelHost';
import { pickRuns } from './runPicks';
import { pickSampleCount } from './commands/sampleCount';

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


export class RobustnessPanel extends ViewPanel<RobustnessToHost, HostToRobustness, RobDescriptionMessage> {
  private runIds: string[] = [];
  /** Analysis file picked per run (absent = newest). */
  private selected: Record<string, string> = {};
  /** Evaluations started from this panel (their runs are added to the view if removed meanwhile). */
  private readonly ownJobs = new Set<string>();
  /** Runs with an evaluation streaming reports right now (from anywhere). */
  private readonly liveRuns = new Set<string>();
  private initSeq = 0;
  /** File watchers on the analysis files (`<runsDir>/<run>/analysis/*.json`), one per runs folder of the shown runs. */
  private readonly watchers = new Map<string, vscode.Disposable>();
  private readonly fileTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Name and status of each run as last sent. */
  private readonly sentInfo = new Map<string, string>();

  constructor(
    panel: vscode.WebviewPanel,
    private readonly ctx: AnalysisPanelContext,
  ) {
    super(panel, ctx, ROBUSTNESS_VIEW);
    this.disposables.push(
      {
        dispose: () => {
          for (const t of this.fileTimers.values()) clearTimeout(t);
          for (const w of this.watchers.values()) w.dispose();
        },
      },
      ctx.engine.onAnalysis((n) => this.onAnalysis(n)),
      ctx.jobs.onDidChange(() => {
        this.onJobsChanged();
        this.postActivities();
      }),
      ctx.engine.onProgress((p) => this.postActivities(p.jobId)),
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

  override get shownRunIds(): string[] {
    return [...this.runIds];
  }

  /** Applies a state the webview saved (after a reload). */
  restore(state: unknown): void {
    const s = parseRobustnessViewState(state);
    if (!s) return;
    this.selected = { ...s.selected };
    void this.setRuns(s.runIds);
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

  /** What each evaluation of a shown run does now, in the notification's words (until its reports arrive). */
  private postActivities(jobId?: string): void {
    const jobs = this.ctx.jobs.active();
    jobs.forEach((job, i) => {
      if (job.kind !== 'evaluate' || !job.runId || !this.runIds.includes(job.runId) || (jobId && job.id !== jobId)) return;
      this.post({ type: 'job', runId: job.runId, running: true, activity: jobActivity(job, waitingAhead(jobs, i)) });
    });
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
    const samples = await pickSampleCount(entry);
    if (!samples) return;
    const newestBefore = (await listAnalysisFiles(entry.runsDir, runId))[0]?.mtime ?? 0;
    this.ownJobs.add(runId);
    this.post({ type: 'job', runId, running: true });
    let result: Awaited<ReturnType<AnalysisPanelContext['jobs']['evaluate']>>;
    try {
      result = await this.ctx.jobs.evaluate(entry, { samples });
    } finally {
      this.ownJobs.delete(runId);
      this.liveRuns.delete(runId);
    }
    if (this.isDisposed) return;
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

  private async pickMoreRuns(): Promise<void> {
    const ids = await pickRuns(this.ctx.store, { exclude: this.runIds, title: 'Show runs side by side' });
    if (ids?.length) await this.addRuns(ids);
  }

  protected override async onReady(): Promise<void> {
    await this.sendInit();
  }

  protected override async onMessage(msg: OwnMessage<RobustnessToHost>): Promise<void> {
    switch (msg.type) {
      case 'addRuns':
        await this.pickMoreRuns();
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
    }
  }
}

/** The Robustness view and its one panel. */
export const ROBUSTNESS_VIEW = declareView<RobustnessToHost, RobDescriptionMessage, AnalysisPanelContext, RobustnessPanel>(
  'robustness',
  'Robustness',
  parseRobustnessToHost,
  (panel, ctx) => new RobustnessPanel(panel, ctx),
);
