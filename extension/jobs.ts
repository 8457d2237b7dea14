/**
 * Long engine work started from the UI (train, resume, evaluate): a cancellable progress notification, the
 * status bar item, each job's phase (waiting, running, stopping; `jobProgress.ts` words them), and what to say
 * when it ends or the engine dies under it. Views follow jobs through `JobEvents`; nothing here knows a view.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { Requests, type BackendInfo, type EvaluateParams, type EvaluateResult, type ProgressNotification, type TrainParams } from '../engine/protocol';
import type { MetricsRecord, RunState } from '../engine/runs/types';
import { EngineError, EngineUnavailableError, type EngineClient } from './engineClient';
import { backendText, headlineText } from './format';
import { applyProgress, jobActivity, liveRunDescription, statusBarText, waitingAhead, type JobKind, type JobProgress } from './jobProgress';
import type { RunEntry, RunsStore } from './runsStore';
import { pct } from '../webview/shared/format';

export type { JobKind };

export interface Job extends JobProgress {
  id: string;
  /** What the user sees: the run or experiment name. */
  label: string;
  runsDir: string;
  runId?: string;
  /** The user asked to stop it (phase 'stopping'). */
  cancelRequested: boolean;
}

/** What views and the Runs tree follow. */
export interface JobEvents {
  readonly onDidChange: vscode.Event<void>;
  /** A job learned its run (a new training run got its id). */
  readonly onDidAttachRun: vscode.Event<Job>;
  active(kind?: JobKind): Job[];
  /** The Runs tree's description of a run a job of this window works on, if any. */
  liveDescription(runId: string): string | undefined;
}

let jobCounter = 0;
function newJobId(kind: JobKind): string {
  return `${kind}-${Date.now().toString(36)}-${(jobCounter++).toString(36)}`;
}

export class JobManager implements JobEvents, vscode.Disposable {
  private readonly jobs = new Map<string, Job>();
  private readonly status: vscode.StatusBarItem;
  /** The backend the engine reported for the latest job (shown in the status bar: native vs wasm matters for speed). */
  private backend: BackendInfo | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changeEmitter.event;
  private readonly attachEmitter = new vscode.EventEmitter<Job>();
  private readonly stopEmitter = new vscode.EventEmitter<Job>();
  readonly onDidAttachRun = this.attachEmitter.event;

  constructor(
    private readonly engine: EngineClient,
    private readonly store: RunsStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.status = vscode.window.createStatusBarItem('advmoe.status', vscode.StatusBarAlignment.Left, 10);
    this.status.name = 'AdvMoE training';
    this.status.command = 'advmoe.openTrainingView';
    this.disposables.push(
      this.status,
      this.changeEmitter,
      this.attachEmitter,
      this.stopEmitter,
      engine.onProgress((p) => this.onProgress(p)),
      engine.onMetrics((m) => {
        const job = this.jobs.get(m.jobId);
        if (job) this.noteEval(job, m.records);
      }),
      engine.onRunState((n) => {
        const job = n.jobId ? this.jobs.get(n.jobId) : undefined;
        const runsDir = job?.runsDir ?? this.store.get(n.state.id)?.runsDir;
        // The store first: the Training view looks the run up there when it starts showing it.
        if (runsDir) this.store.updateFromEngine(runsDir, n.state);
        if (job && !job.runId) this.attachRun(job, n.state);
        this.updateStatus();
      }),
      engine.onCrash((exit) => this.onCrash(exit.code, exit.signal, exit.stderrTail)),
    );
  }

  active(kind?: JobKind): Job[] {
    return [...this.jobs.values()].filter((j) => !kind || j.kind === kind);
  }

  liveDescription(runId: string): string | undefined {
    const job = [...this.jobs.values()].find((j) => j.runId === runId && j.kind === 'train');
    return job && liveRunDescription(job);
  }

  private attachRun(job: Job, state: RunState): void {
    job.runId = state.id;
    job.label = state.name;
    this.attachEmitter.fire(job);
    this.changeEmitter.fire();
  }

  private noteEval(job: Job, records: MetricsRecord[]): void {
    for (const r of records) {
      if (r.kind !== 'eval') continue;
      if (r.metrics.sa !== undefined) job.sa = r.metrics.sa;
      if (r.metrics.ra !== undefined) job.ra = r.metrics.ra;
    }
    this.updateStatus();
  }

  private onProgress(p: ProgressNotification): void {
    const job = this.jobs.get(p.jobId);
    if (!job) return;
    const wasWaiting = job.phase === 'waiting';
    const runTotal = job.runId ? this.store.get(job.runId)?.state.totalSteps : undefined;
    applyProgress(job, p, runTotal);
    this.updateStatus();
    // The Runs tree shows the phase and training position of this window's runs (jobProgress.ts).
    if (wasWaiting || job.kind === 'train') this.changeEmitter.fire();
  }

  private updateStatus(): void {
    const shown = statusBarText([...this.jobs.values()]);
    if (!shown) {
      this.status.hide();
      return;
    }
    const on = this.backend ? ` · ${this.backend.name}` : '';
    this.status.text = `${shown.text}${on}`;
    const backend = this.backend ? `\nEngine: ${backendText(this.backend)}` : '';
    this.status.tooltip = `${shown.tooltip}${backend}\nClick to open the Training view`;
    this.status.show();
  }

  /** Runs `fn` as a job with a cancellable progress notification. */
  private async runJob<T>(job: Job, title: string, fn: () => Promise<T>): Promise<T> {
    this.jobs.set(job.id, job);
    this.changeEmitter.fire();
    this.updateStatus();
    // The engine (re)starts with the job's request; ask which backend it runs (answered once it is ready).
    void this.engine.request(Requests.backendInfo).then(
      (info) => {
        this.backend = info;
        this.updateStatus();
      },
      () => undefined,
    );
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
          // The notification says what the status bar says (jobProgress.ts), updated on every change of any job
          // (a waiting job's line changes when the job ahead of it ends).
          let lastFraction = 0;
          const report = () => {
            const p = job.progress;
            const fraction = job.step ? job.step.done / Math.max(1, job.step.total) : p && p.total > 0 ? Math.min(1, p.done / p.total) : 0;
            const ahead = waitingAhead([...this.jobs.values()], [...this.jobs.keys()].indexOf(job.id));
            progress.report({ message: jobActivity(job, ahead), increment: Math.max(0, (fraction - lastFraction) * 100) });
            lastFraction = Math.max(lastFraction, fraction);
          };
          report();
          const sub = vscode.Disposable.from(
            this.engine.onProgress((p) => p.jobId === job.id && report()),
            this.onDidChange(report),
            this.stopEmitter.event((j) => j === job && report()),
          );
          const cancelSub = token.onCancellationRequested(() => void this.cancel(job));
          try {
            return await fn();
          } finally {
            sub.dispose();
            cancelSub.dispose();
          }
        },
      );
    } finally {
      this.jobs.delete(job.id);
      this.changeEmitter.fire();
      this.updateStatus();
    }
  }

  /** Asks the engine to stop the job; every place that shows the job says "stopping…" at once. */
  async cancel(job: Job): Promise<void> {
    if (job.cancelRequested) return;
    job.cancelRequested = true;
    job.phase = 'stopping';
    this.updateStatus();
    this.stopEmitter.fire(job);
    this.changeEmitter.fire();
    this.log.info(`cancelling ${job.id}`);
    try {
      const r = await this.engine.request(Requests.cancel, { jobId: job.id });
      if (!r.cancelled) this.log.warn(`engine had no job ${job.id} to cancel`);
    } catch (e) {
      this.log.error(`cancel ${job.id} failed: ${errorText(e)}`);
    }
  }

  /** Trains from an experiment file, or resumes a run. Resolves when the engine answers. */
  async train(opts: { configUri?: vscode.Uri; resume?: RunEntry; runsDir: string }): Promise<void> {
    const job: Job = {
      id: newJobId('train'),
      kind: 'train',
      phase: 'waiting',
      label: opts.resume?.state.name ?? (opts.configUri ? path.basename(opts.configUri.fsPath).replace(/\.advmoe\.json$/, '') : 'run'),
      runsDir: opts.runsDir,
      runId: opts.resume?.state.id,
      cancelRequested: false,
    };
    if (job.runId) this.attachEmitter.fire(job);
    const params: TrainParams = { jobId: job.id, runsDir: opts.runsDir };
    if (opts.resume) params.resumeRunId = opts.resume.state.id;
    else if (opts.configUri) params.configPath = opts.configUri.fsPath;
    const verb = opts.resume ? 'Resuming' : 'Training';
    try {
      const result = await this.runJob(job, `AdvMoE: ${verb} ${job.label}`, () => this.engine.request(Requests.train, params));
      void this.store.reloadRun(opts.runsDir, result.runId);
      const headline = headlineText(result.headline);
      if (result.status === 'finished') {
        void vscode.window.showInformationMessage(`AdvMoE: ${job.label} finished${headline ? ` — ${headline}` : ''}.`);
      } else if (result.status === 'interrupted') {
        void vscode.window.showInformationMessage(`AdvMoE: ${job.label} stopped; resume it from the Runs view.`);
      } else {
        void vscode.window.showErrorMessage(`AdvMoE: ${job.label} ended as ${result.status}.`);
      }
    } catch (e) {
      if (e instanceof EngineError && e.code === 'CANCELLED') {
        if (job.runId) void this.store.reloadRun(opts.runsDir, job.runId);
        void vscode.window.showInformationMessage(`AdvMoE: ${job.label} stopped; resume it from the Runs view.`);
        return;
      }
      if (e instanceof EngineError && e.code === 'ENGINE_EXITED') return; // onCrash told the user
      this.reportError(`${opts.resume ? 'resume' : 'train'} ${job.label}`, e);
    }
  }

  /** Evaluates a run's robustness (on `samples` test samples; default: the experiment's `eval.samples`). */
  async evaluate(run: RunEntry, opts: { samples?: number } = {}): Promise<EvaluateResult | undefined> {
    const job: Job = { id: newJobId('evaluate'), kind: 'evaluate', phase: 'waiting', label: run.state.name, runsDir: run.runsDir, runId: run.state.id, cancelRequested: false };
    const params: EvaluateParams = { jobId: job.id, runsDir: run.runsDir, runId: run.state.id, ...(opts.samples ? { samples: opts.samples } : {}) };
    try {
      const r = await this.runJob(job, `AdvMoE: Evaluating robustness of ${run.state.name}`, () => this.engine.request(Requests.evaluate, params));
      void this.store.reloadRun(run.runsDir, run.state.id);
      const rep = r.report;
      const parts = [`SA ${pct(rep.sa)}`, `RA ${pct(rep.ra)}`];
      if (rep.routerRobustness) parts.push(`router decisions kept ${pct(rep.routerRobustness.decisionsKept)}`);
      if (rep.expertRobustness) parts.push(`expert robustness ${pct(rep.expertRobustness.accuracy)}`);
      const analysis = path.basename(r.savedTo);
      void vscode.window
        .showInformationMessage(`AdvMoE: ${run.state.name} on ${rep.samples} test samples — ${parts.join(', ')}.`, 'Show Routing', 'Inspect Samples', 'Open JSON')
        .then((pick) => {
          if (pick === 'Show Routing') void vscode.commands.executeCommand('advmoe.openRoutingView', run);
          else if (pick === 'Inspect Samples') void vscode.commands.executeCommand('advmoe.inspectRouting', { runsDir: run.runsDir, runId: run.state.id, analysis });
          else if (pick === 'Open JSON') void vscode.window.showTextDocument(vscode.Uri.file(r.savedTo), { preview: true });
        });
      return r;
    } catch (e) {
      if (e instanceof EngineError && (e.code === 'CANCELLED' || e.code === 'ENGINE_EXITED')) return undefined;
      this.reportError(`evaluate ${run.state.name}`, e);
      return undefined;
    }
  }

  private onCrash(code: number | null, signal: NodeJS.Signals | null, stderrTail: string[]): void {
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const victims = [...this.jobs.values()];
    const runIds = victims.map((j) => j.runId).filter((id): id is string => !!id);
    this.store.markCrashed(runIds);
    const trained = victims.filter((j) => j.kind === 'train' && j.runId);
    const detail = stderrTail.length ? ` Last output: ${stderrTail[stderrTail.length - 1].slice(0, 200)}` : '';
    if (trained.length > 0) {
      const job = trained[0];
      // Resuming needs a checkpoint; a run killed before its first one can only be trained again.
      const resumable = !!this.store.get(job.runId!)?.state.lastCheckpoint;
      const buttons = resumable ? ['Resume', 'Show Engine Log'] : ['Show Engine Log'];
      void vscode.window
        .showErrorMessage(
          `The AdvMoE engine stopped unexpectedly (${how}) while training ${job.label}; the run is interrupted${resumable ? '' : ' (before its first checkpoint)'}.${detail}`,
          ...buttons,
        )
        .then((pick) => {
          if (pick === 'Resume') void vscode.commands.executeCommand('advmoe.resumeRun', this.store.get(job.runId!));
          if (pick === 'Show Engine Log') this.log.show();
        });
    } else if (victims.length > 0) {
      void vscode.window
        .showErrorMessage(`The AdvMoE engine stopped unexpectedly (${how}) during ${victims[0].kind} of ${victims[0].label}.${detail}`, 'Show Engine Log')
        .then((pick) => pick && this.log.show());
    } else {
      this.log.warn(`the engine stopped (${how}) while idle; it starts again on the next request`);
    }
  }

  private reportError(what: string, e: unknown): void {
    this.log.error(`${what} failed: ${errorText(e)}`);
    const buttons = e instanceof EngineUnavailableError ? ['Restart Engine', 'Show Engine Log'] : ['Show Engine Log'];
    void vscode.window.showErrorMessage(`AdvMoE: could not ${what}: ${errorText(e)}`, ...buttons).then((pick) => {
      if (pick === 'Show Engine Log') this.log.show();
      if (pick === 'Restart Engine') this.engine.resetCrashCount();
    });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

export function errorText(e: unknown): string {
  if (e instanceof EngineError) return e.code && e.code !== 'INTERNAL' ? `${e.message} [${e.code}]` : e.message;
  return e instanceof Error ? e.message : String(e);
}
