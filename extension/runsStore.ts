/**
 * Every run of the workspace, kept current from the engine's runState notifications and a file watcher on
 * `<runsDir>/<id>/state.json` (runs started by the CLI or another window show up too). Reads disk at start, so the
 * list survives reloads.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { RunState } from '../engine/runs/types';
import { effectiveState, listRuns, readRunState } from './runsDisk';
import { allRunsDirs } from './settings';

export interface RunEntry {
  runsDir: string;
  state: RunState;
  /** Percent done while this window trains it (from progress notifications). */
  progressPct?: number;
}

export class RunsStore implements vscode.Disposable {
  private readonly runs = new Map<string, RunEntry>();
  private readonly watchers: vscode.Disposable[] = [];
  private readonly changeEmitter = new vscode.EventEmitter<RunEntry | undefined>();
  /** Fires with the changed run, or undefined when many changed. */
  readonly onDidChange = this.changeEmitter.event;
  /** Runs whose engine died while they ran: shown interrupted until the engine says otherwise. */
  private readonly crashed = new Set<string>();
  private readonly metricsEmitter = new vscode.EventEmitter<RunEntry>();
  /** A run's metrics.jsonl changed on disk. */
  readonly onMetricsFileChanged = this.metricsEmitter.event;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  async init(): Promise<void> {
    this.watch();
    await this.reloadAll();
  }

  private watch(): void {
    for (const w of this.watchers) w.dispose();
    this.watchers.length = 0;
    for (const { folder, runsDir } of allRunsDirs()) {
      const rel = path.relative(folder.uri.fsPath, runsDir);
      const inside = rel && !rel.startsWith('..') && !path.isAbsolute(rel);
      const base = inside ? folder : vscode.Uri.file(runsDir);
      const prefix = inside ? `${rel.split(path.sep).join('/')}/` : '';
      const stateWatcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(base, `${prefix}*/state.json`));
      const onState = (uri: vscode.Uri) => void this.reloadRun(runsDir, path.basename(path.dirname(uri.fsPath)));
      stateWatcher.onDidCreate(onState);
      stateWatcher.onDidChange(onState);
      stateWatcher.onDidDelete(onState);
      const metricsWatcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(base, `${prefix}*/metrics.jsonl`));
      const onMetrics = (uri: vscode.Uri) => {
        const entry = this.runs.get(path.basename(path.dirname(uri.fsPath)));
        if (entry) this.metricsEmitter.fire(entry);
      };
      metricsWatcher.onDidCreate(onMetrics);
      metricsWatcher.onDidChange(onMetrics);
      this.watchers.push(stateWatcher, metricsWatcher);
    }
  }

  /** Re-reads every runs folder (workspace folders or the runs-folder setting changed, or a refresh). */
  async reloadAll(rewatch = false): Promise<void> {
    if (rewatch) this.watch();
    const next = new Map<string, RunEntry>();
    for (const { runsDir } of allRunsDirs()) {
      for (const state of await listRuns(runsDir)) next.set(state.id, { runsDir, state: this.applyCrash(state) });
    }
    this.runs.clear();
    for (const [k, v] of next) this.runs.set(k, v);
    this.changeEmitter.fire(undefined);
  }

  async reloadRun(runsDir: string, runId: string): Promise<void> {
    const state = await readRunState(runsDir, runId);
    if (!state) {
      if (this.runs.delete(runId)) this.changeEmitter.fire(undefined);
      return;
    }
    this.set(runsDir, state);
  }

  private applyCrash(state: RunState): RunState {
    return this.crashed.has(state.id) && state.status === 'running' ? { ...state, status: 'interrupted' } : state;
  }

  private set(runsDir: string, state: RunState): void {
    const old = this.runs.get(state.id);
    const entry: RunEntry = { runsDir, state: this.applyCrash(state), progressPct: state.status === 'running' ? old?.progressPct : undefined };
    // A file event can carry an older state than a notification already gave us.
    if (old && old.state.updatedAt > state.updatedAt) return;
    this.runs.set(state.id, entry);
    this.changeEmitter.fire(entry);
  }

  /** A runState notification from the engine (authoritative and newest). */
  updateFromEngine(runsDir: string, state: RunState): void {
    this.crashed.delete(state.id);
    this.set(runsDir, effectiveState(state));
  }

  /** The engine died while these runs ran. */
  markCrashed(runIds: readonly string[]): void {
    for (const id of runIds) {
      this.crashed.add(id);
      const e = this.runs.get(id);
      if (e && e.state.status === 'running') {
        this.runs.set(id, { ...e, state: { ...e.state, status: 'interrupted' } });
        this.changeEmitter.fire(this.runs.get(id));
      }
    }
  }

  /** Live progress of a run this window trains (state.json only records finished epochs). */
  setProgress(runId: string, done: number, total: number): void {
    const e = this.runs.get(runId);
    if (!e || total <= 0) return;
    const pct = Math.floor((100 * done) / total);
    if (e.progressPct === pct) return;
    e.progressPct = pct;
    this.changeEmitter.fire(e);
  }

  get(runId: string): RunEntry | undefined {
    return this.runs.get(runId);
  }

  /** Newest first. */
  all(): RunEntry[] {
    return [...this.runs.values()].sort(
      (a, b) => (b.state.createdAt ?? '').localeCompare(a.state.createdAt ?? '') || b.state.id.localeCompare(a.state.id),
    );
  }

  /** The newest run started from this experiment file. */
  latestFor(configPath: string): RunEntry | undefined {
    const norm = path.resolve(configPath);
    return this.all().find((e) => e.state.configPath && path.resolve(e.state.configPath) === norm);
  }

  dispose(): void {
    for (const w of this.watchers) w.dispose();
    this.changeEmitter.dispose();
    this.metricsEmitter.dispose();
    this.log.debug('runs store disposed');
  }
}
