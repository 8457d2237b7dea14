/**
 * The Runs tree view: every run with status, method and headline SA/RA; the runs of a sweep (README "Sweeps")
 * under a node of their own, in grid order. A run a job of this window works on says what the job is doing in
 * the same words as the status bar and the notification (`jobProgress.ts`).
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { dateTime, pct } from '../webview/shared/format';
import { headlineText } from './format';
import type { JobEvents } from './jobs';
import type { RunEntry, RunsStore } from './runsStore';
import { isSweepNode, type SweepNode, type SweepsStore } from './sweepsStore';

export type RunsTreeElement = RunEntry | SweepNode;

const ICONS: Record<string, vscode.ThemeIcon> = {
  running: new vscode.ThemeIcon('sync~spin', new vscode.ThemeColor('charts.blue')),
  finished: new vscode.ThemeIcon('pass', new vscode.ThemeColor('charts.green')),
  interrupted: new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('charts.yellow')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('charts.red')),
};

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsTreeElement>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<RunsTreeElement | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: vscode.Disposable;

  constructor(
    private readonly store: RunsStore,
    private readonly jobs: JobEvents,
    private readonly sweeps?: SweepsStore,
  ) {
    // Items are keyed by run id (TreeItem.id), so a full refresh keeps selection and focus.
    this.sub = vscode.Disposable.from(
      store.onDidChange(() => this.emitter.fire(undefined)),
      jobs.onDidChange(() => this.emitter.fire(undefined)),
      ...(sweeps ? [sweeps.onDidChange(() => this.emitter.fire(undefined))] : []),
    );
  }

  /** Top level: the sweeps, then the runs of no sweep (newest first); under a sweep, its runs. */
  getChildren(element?: RunsTreeElement): RunsTreeElement[] {
    if (isSweepNode(element)) return this.runsOf(element);
    if (element) return [];
    const sweeps = this.sweeps?.all() ?? [];
    const loose = this.store.all().filter((e) => !this.sweeps?.sweepOf(e.runsDir, e.state.id));
    return [...sweeps, ...loose];
  }

  /** Only the runs; those of sweeps too (flat). */
  allRuns(): RunEntry[] {
    return this.store.all();
  }

  private runsOf(sweep: SweepNode): RunEntry[] {
    return sweep.runIds.map((id) => this.store.get(id)).filter((e): e is RunEntry => !!e && path.resolve(e.runsDir) === sweep.runsDir);
  }

  getTreeItem(e: RunsTreeElement): vscode.TreeItem {
    return isSweepNode(e) ? sweepTreeItem(e, this.runsOf(e)) : runTreeItem(e, this.jobs.liveDescription(e.state.id));
  }

  getParent(e: RunsTreeElement): RunsTreeElement | undefined {
    return isSweepNode(e) ? undefined : this.sweeps?.sweepOf(e.runsDir, e.state.id);
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}

export function sweepTreeItem(s: SweepNode, runs: readonly RunEntry[]): vscode.TreeItem {
  const item = new vscode.TreeItem(s.name, vscode.TreeItemCollapsibleState.Expanded);
  item.id = `sweep:${s.dir}`;
  const count = (st: string) => runs.filter((r) => r.state.status === st).length;
  const parts = [`${count('finished')}/${s.runIds.length} finished`];
  for (const st of ['running', 'interrupted', 'failed']) if (count(st)) parts.push(`${count(st)} ${st}`);
  item.description = `sweep · ${parts.join(' · ')}`;
  item.iconPath = new vscode.ThemeIcon(count('running') ? 'sync~spin' : 'table');
  item.contextValue = 'advmoeSweep';
  item.tooltip = new vscode.MarkdownString(`**Sweep ${s.name}** — ${s.runIds.length} runs over ${s.axes.map((a) => `\`${a}\``).join(' × ')}\n\n${s.dir}`);
  return item;
}

/** `live`: what this window's job on the run is doing (jobProgress.ts), when there is one. */
export function runTreeItem(e: RunEntry, live?: string): vscode.TreeItem {
  const s = e.state;
  const item = new vscode.TreeItem(s.name, vscode.TreeItemCollapsibleState.None);
  item.id = s.id;
  // Runs trained elsewhere (CLI, another window): the position state.json recorded at the last checkpoint.
  const recorded = s.status === 'running' && s.totalSteps > 0 ? `running · step ${s.step}/${s.totalSteps} (${Math.floor((100 * s.step) / s.totalSteps)}%)` : s.status;
  const status = s.status === 'running' && live ? live : recorded;
  item.description = [status, s.method, headlineText(s.headline)].filter(Boolean).join(' · ');
  item.iconPath = ICONS[s.status];
  const resumable = (s.status === 'interrupted' || s.status === 'failed') && !!s.lastCheckpoint;
  item.contextValue = `advmoeRun.${s.status}${resumable ? '.resumable' : ''}`;
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${s.name}** — ${s.status}\n\n`);
  md.appendMarkdown(`| | |\n|---|---|\n`);
  md.appendMarkdown(`| run | \`${s.id}\` |\n| method | ${s.method} |\n| model | ${s.backbone}${s.moe ? ' (MoE)' : ' (dense)'} |\n`);
  if (live) md.appendMarkdown(`| now | ${live} |\n`);
  md.appendMarkdown(`| recorded (state.json) | epoch ${+s.epoch.toFixed(2)}, step ${s.step}/${s.totalSteps} |\n`);
  md.appendMarkdown(`| SA / RA | ${pct(s.headline.sa)} / ${pct(s.headline.ra)} |\n`);
  if (s.headline.routerRobustness !== undefined) md.appendMarkdown(`| router robustness | ${pct(s.headline.routerRobustness)} |\n`);
  if (s.headline.expertRobustness !== undefined) md.appendMarkdown(`| expert robustness | ${pct(s.headline.expertRobustness)} |\n`);
  if (s.backend) md.appendMarkdown(`| backend | ${s.backend} |\n`);
  if (s.configPath) md.appendMarkdown(`| experiment | ${path.basename(s.configPath)} |\n`);
  md.appendMarkdown(`| updated | ${dateTime(s.updatedAt)} |\n`);
  if (s.error) md.appendMarkdown(`\n**Error:** ${s.error}\n`);
  for (const w of s.warnings ?? []) md.appendMarkdown(`\n$(warning) ${w}\n`);
  item.tooltip = md;
  item.command = { command: 'advmoe.openTrainingView', title: 'Open Training View', arguments: [e] };
  return item;
}
