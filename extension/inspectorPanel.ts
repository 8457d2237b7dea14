/**
 * The Inspector's host side: one webview panel on one run (and one of its analyses). Reads the analysis from disk,
 * fetches gallery images from the engine's `samples` request, runs live re-attacks with `inspect` (cancelling the
 * previous one), writes exports into a folder the user picks, and is restored after a reload by its serializer.
 * Every message from the webview is validated before use; the engine is never started in an untrusted workspace.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { Requests, type DataSplit, type SamplesResult } from '../engine/protocol';
import { parseInspectorFilter, type StoredAnalysis } from '../webview/analysisProtocol';
import {
  exportFileName,
  isBase64,
  parseInspectorToHost,
  parseInspectorViewState,
  type AnalysisListItem,
  type ExportSampleMessage,
  type HostToInspector,
  type InitMessage,
  type InspectMessage,
  type InspectorDescription,
  type InspectorTargetState,
  type InspectorToHost,
} from '../webview/inspector/protocol';
import type { AnalysisPanelContext, InspectorTarget } from './analysisContext';
import { EngineError } from './engineClient';
import { errorText } from './jobs';
import { listAnalysisFiles, readAnalysis, readRunState, restoredRunsDir, runDir } from './runsDisk';
import { allRunsDirs } from './settings';
import type { RunEntry } from './runsStore';
import { ViewPanel, declareView, type OwnMessage } from './panelHost';
import { pickSampleCount } from './commands/sampleCount';


/** Class names of the datasets that have them (MNIST digits are their own names). */
const CLASS_NAMES: Record<string, string[]> = {
  cifar10: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
};

let jobCounter = 0;


export class InspectorPanel extends ViewPanel<InspectorToHost, HostToInspector, InspectorDescription> {
  private target: InspectorTarget | undefined;
  private analysis: StoredAnalysis | undefined;
  private restoreState: InitMessage['restore'];
  private inFlight: string | undefined;
  /** Analyses whose adversarial images are not stored (engine's DATA_NOT_FOUND), with the engine's words. */
  private readonly noAdvImages = new Map<string, string>();

  /** Applies a state the webview saved (after a reload). */
  restore(state: unknown): void {
    const s = parseInspectorViewState(state);
    if (!s) {
      // The webview keeps saying "Waiting for the run…" until a command shows a target.
      this.ctx.log.warn('Inspector: could not restore the saved state; open it again from an experiment file or a run');
      return;
    }
    this.restoreState = { selected: s.selected, selectedSplit: s.selectedSplit, controls: s.controls };
    // The runs folder the extension knows for this run wins over the one the webview saved; an unknown run is
    // restored only from one of the workspace's runs folders (saved state is checked like live input).
    const runsDir = restoredRunsDir(s.target.runsDir, this.ctx.store.get(s.target.runId)?.runsDir, allRunsDirs().map((d) => d.runsDir));
    if (runsDir) void this.setTarget({ ...s.target, runsDir });
    else this.ctx.log.warn(`Inspector: not restoring run ${s.target.runId}: ${s.target.runsDir} is not a runs folder of this workspace`);
  }

  /** Shows a new target (a command or another view asked): the saved selection no longer applies. */
  show(target: InspectorTarget): void {
    this.restoreState = undefined;
    void this.setTarget(target);
  }

  constructor(
    panel: vscode.WebviewPanel,
    private readonly ctx: AnalysisPanelContext,
  ) {
    super(panel, ctx, INSPECTOR_VIEW);
    this.disposables.push(
      { dispose: () => this.cancelInFlight() },
      // Images and live re-attacks become available once the user trusts the workspace.
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        if (this.ready) void this.sendInit();
      }),
    );
  }

  get shownTarget(): InspectorTarget | undefined {
    return this.target;
  }

  async setTarget(target: InspectorTarget): Promise<void> {
    const filter = target.filter ? parseInspectorFilter(target.filter) : undefined;
    this.target = { ...target, filter };
    this.analysis = undefined;
    this.cancelInFlight();
    this.updateTitle();
    if (this.ready) await this.sendInit();
  }

  private runName(): string {
    if (!this.target) return '';
    return this.ctx.store.get(this.target.runId)?.state.name ?? this.target.runId;
  }

  private updateTitle(): void {
    this.panel.title = this.target ? `Inspector: ${this.runName()}` : 'Inspector';
  }


  /** Reads the analysis (the target's, or the newest with per-sample data) and posts `init`. */
  private async sendInit(): Promise<void> {
    const t = this.target;
    if (!t) return;
    const files = await listAnalysisFiles(t.runsDir, t.runId);
    const analyses: AnalysisListItem[] = files.map((f) => ({ name: f.name, mtime: f.mtime }));
    let error: string | undefined;
    let chosen: StoredAnalysis | undefined;
    if (t.analysis) {
      try {
        chosen = await readAnalysis(t.runsDir, t.runId, t.analysis);
      } catch (e) {
        error = (e as Error).message;
      }
    } else {
      let firstReadable: StoredAnalysis | undefined;
      const problems: string[] = [];
      for (const f of files) {
        try {
          const a = await readAnalysis(t.runsDir, t.runId, f.name);
          firstReadable ??= a;
          if (a.report.perSample) {
            chosen = a;
            break;
          }
        } catch (e) {
          problems.push((e as Error).message);
        }
      }
      chosen ??= firstReadable;
      if (!chosen && problems.length) error = problems[0];
      for (const p of problems) this.ctx.log.warn(`Inspector: ${p}`);
    }
    if (t !== this.target) return; // replaced meanwhile
    this.analysis = chosen;
    const targetState: InspectorTargetState = {
      runsDir: t.runsDir,
      runId: t.runId,
      ...(t.checkpoint ? { checkpoint: t.checkpoint } : {}),
      ...(t.split ? { split: t.split } : {}),
      ...(chosen ? { analysis: chosen.name } : {}),
      ...(t.filter ? { filter: t.filter } : {}),
    };
    const restore = this.restoreState;
    this.restoreState = undefined;
    this.post({
      type: 'init',
      target: targetState,
      runName: this.runName(),
      analyses,
      analysis: chosen ? { name: chosen.name, checkpoint: chosen.checkpoint, report: chosen.report } : undefined,
      error,
      trusted: this.ctx.trusted(),
      classNames: await this.classNames(t),
      restore,
    });
  }

  private async classNames(t: InspectorTarget): Promise<string[] | undefined> {
    try {
      const cfg: unknown = JSON.parse(await fs.readFile(path.join(runDir(t.runsDir, t.runId), 'config.json'), 'utf8'));
      const ds = (cfg as { data?: { dataset?: unknown } }).data?.dataset;
      return typeof ds === 'string' ? CLASS_NAMES[ds] : undefined;
    } catch {
      return undefined;
    }
  }

  protected override async onReady(): Promise<void> {
    await this.sendInit();
  }

  protected override async onMessage(msg: OwnMessage<InspectorToHost>): Promise<void> {
    switch (msg.type) {
      case 'needImages':
        await this.sendImages(msg.ids);
        break;
      case 'inspect':
        await this.inspect(msg);
        break;
      case 'selectAnalysis':
        if (this.target) await this.setTarget({ ...this.target, analysis: msg.name });
        break;
      case 'evaluate':
        await this.evaluate();
        break;
      case 'exportSample':
        await this.saveExport(msg);
        break;
    }
  }

  private async sendImages(ids: number[]): Promise<void> {
    const t = this.target;
    const a = this.analysis;
    if (!t) return;
    if (!this.ctx.trusted()) {
      this.post({ type: 'imagesUnavailable', ids, message: 'Images need the engine, which does not run in an untrusted workspace.' });
      return;
    }
    let r: SamplesResult;
    let note: string | undefined;
    try {
      // Gallery rows are samples of the analysis, i.e. of the test split.
      const withAdv = a && !this.noAdvImages.has(a.name) ? a.name : undefined;
      try {
        r = await this.ctx.engine.request(Requests.samples, { runsDir: t.runsDir, runId: t.runId, ids, split: 'test', analysis: withAdv });
      } catch (e) {
        // An analysis without stored adversarial images: the clean images still come, with a note.
        if (!(withAdv && e instanceof EngineError && e.code === 'DATA_NOT_FOUND')) throw e;
        this.noAdvImages.set(withAdv, errorText(e));
        r = await this.ctx.engine.request(Requests.samples, { runsDir: t.runsDir, runId: t.runId, ids, split: 'test' });
      }
      if (a && this.noAdvImages.has(a.name)) {
        note = `Only clean images: ${this.noAdvImages.get(a.name)}. Select a sample to see its adversarial image from a live re-attack.`;
      }
    } catch (e) {
      this.ctx.log.warn(`Inspector: images of ${ids.length} samples: ${errorText(e)}`);
      this.post({ type: 'imagesUnavailable', ids, message: `Images could not be loaded from the engine: ${errorText(e)}.` });
      return;
    }
    if (t !== this.target) return;
    const [h, w, c] = r.shape ?? [0, 0, 0];
    const len = 4 * Math.ceil((h * w * c) / 3);
    const ok = Array.isArray(r.clean) && r.clean.length === ids.length && (c === 1 || c === 3) && r.clean.every((s) => isBase64(s) && s.length === len);
    if (!ok) {
      this.post({ type: 'imagesUnavailable', ids, message: 'The engine answered with images of an unexpected shape.' });
      return;
    }
    const items = ids.map((id, k) => {
      const adv = r.adversarial?.[k];
      return { id, clean: r.clean[k], adversarial: typeof adv === 'string' && isBase64(adv) && adv.length === len ? adv : null };
    });
    this.post({ type: 'images', shape: r.shape, items, ...(note ? { note } : {}) });
  }

  private cancelInFlight(): void {
    const job = this.inFlight;
    this.inFlight = undefined;
    if (job) {
      this.ctx.engine.request(Requests.cancel, { jobId: job }).then(
        () => undefined,
        (e: unknown) => this.ctx.log.debug(`Inspector: cancel ${job}: ${errorText(e)}`),
      );
    }
  }

  private async inspect(m: InspectMessage): Promise<void> {
    const t = this.target;
    if (!t) return;
    if (!this.ctx.trusted()) {
      this.post({ type: 'inspectError', requestId: m.requestId, message: 'the engine does not run in an untrusted workspace' });
      return;
    }
    this.cancelInFlight();
    const jobId = `inspector-${Date.now().toString(36)}-${++jobCounter}`;
    this.inFlight = jobId;
    const split: DataSplit = m.split;
    try {
      const r = await this.ctx.engine.request(Requests.inspect, {
        jobId,
        runsDir: t.runsDir,
        runId: t.runId,
        checkpoint: t.checkpoint ?? this.analysis?.checkpoint,
        split,
        sampleIds: [m.id],
        attack: m.attack,
        eps: m.eps,
        ...(m.steps !== undefined ? { steps: m.steps } : {}),
        freezeRouting: m.freezeRouting,
      });
      if (this.inFlight === jobId) this.inFlight = undefined;
      const sample = r.samples.find((s) => s.id === m.id) ?? r.samples[0];
      if (!sample) {
        this.post({ type: 'inspectError', requestId: m.requestId, message: `the engine returned no sample ${m.id}` });
        return;
      }
      this.post({ type: 'inspection', requestId: m.requestId, sample });
    } catch (e) {
      if (this.inFlight === jobId) this.inFlight = undefined;
      if (e instanceof EngineError && e.code === 'CANCELLED') return; // replaced by a newer request
      this.ctx.log.warn(`Inspector: inspect sample ${m.id}: ${errorText(e)}`);
      this.post({ type: 'inspectError', requestId: m.requestId, message: errorText(e) });
    }
  }

  private async evaluate(): Promise<void> {
    const t = this.target;
    if (!t) return;
    if (!this.ctx.trusted()) {
      this.post({ type: 'evaluateState', running: false, message: 'Evaluating needs a trusted workspace.' });
      return;
    }
    let entry: RunEntry | undefined = this.ctx.store.get(t.runId);
    if (!entry) {
      const state = await readRunState(t.runsDir, t.runId);
      if (state) entry = { runsDir: t.runsDir, state };
    }
    if (!entry) {
      this.post({ type: 'evaluateState', running: false, message: `Run ${t.runId} was not found in ${t.runsDir}.` });
      return;
    }
    const samples = await pickSampleCount(entry);
    if (!samples) {
      this.post({ type: 'evaluateState', running: false });
      return;
    }
    this.post({ type: 'evaluateState', running: true, message: `Evaluating robustness of ${entry.state.name} on ${samples} samples…` });
    const r = await this.ctx.jobs.evaluate(entry, { samples });
    if (t !== this.target) return;
    if (!r) {
      this.post({ type: 'evaluateState', running: false, message: 'The evaluation did not finish.' });
      return;
    }
    await this.setTarget({ ...t, analysis: path.basename(r.savedTo) });
  }

  private async saveExport(m: ExportSampleMessage): Promise<void> {
    const t = this.target;
    if (!t) return;
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      openLabel: 'Export here',
      title: `Export sample ${m.id} of ${this.runName()}`,
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    const folder = picked?.[0];
    if (!folder) return;
    const files = m.files.map((f) => ({
      uri: vscode.Uri.joinPath(folder, exportFileName(t.runId, m.id, f.kind)),
      bytes: f.kind === 'json' ? Buffer.from(f.data, 'utf8') : Buffer.from(f.data, 'base64'),
    }));
    const existing: string[] = [];
    for (const f of files) {
      try {
        await vscode.workspace.fs.stat(f.uri);
        existing.push(path.basename(f.uri.fsPath));
      } catch {
        // does not exist
      }
    }
    if (existing.length > 0) {
      const pick = await vscode.window.showWarningMessage(
        `${existing.length === 1 ? existing[0] + ' already exists' : `${existing.length} files already exist (${existing.join(', ')})`} in ${folder.fsPath}. Overwrite?`,
        { modal: true },
        'Overwrite',
      );
      if (pick !== 'Overwrite') {
        this.post({ type: 'exportDone', ok: false, message: 'Export cancelled: nothing was overwritten.' });
        return;
      }
    }
    try {
      for (const f of files) await vscode.workspace.fs.writeFile(f.uri, f.bytes);
    } catch (e) {
      this.post({ type: 'exportDone', ok: false, message: `Export failed: ${errorText(e)}` });
      return;
    }
    const names = files.map((f) => path.basename(f.uri.fsPath));
    this.ctx.log.info(`Inspector: exported ${names.join(', ')} to ${folder.fsPath}`);
    this.post({ type: 'exportDone', ok: true, message: `Exported ${names.length} files to ${folder.fsPath}.` });
    void vscode.window.showInformationMessage(`Exported sample ${m.id} (${names.length} files) to ${vscode.workspace.asRelativePath(folder)}.`);
  }

}

/** The Inspector view and its one panel. */
export const INSPECTOR_VIEW = declareView<InspectorToHost, InspectorDescription, AnalysisPanelContext, InspectorPanel>(
  'inspector',
  'Inspector',
  parseInspectorToHost,
  (panel, ctx) => new InspectorPanel(panel, ctx),
  ({ type: _t, requestId: _r, ...d }) => d,
);
