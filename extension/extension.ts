/**
 * AdvMoE Studio: activation. Creates the engine client, the runs store, the job manager and the views, then
 * registers the commands, the Runs view and the CodeLens. Each part lives in its own module; this is the wiring.
 */
import * as vscode from 'vscode';
import { EXPERIMENT_GLOB, ExperimentCodeLensProvider } from './codeLens';
import { backendCommands } from './commands/backendCommands';
import { experimentCommands } from './commands/experiments';
import { importCommands } from './commands/importCommands';
import { runCommands } from './commands/runCommands';
import { sweepCommands } from './commands/sweepCommands';
import { viewCommands } from './commands/viewCommands';
import { EngineClient } from './engineClient';
import { watchEngineSettings } from './engineLifecycle';
import type { InspectorPanel } from './inspectorPanel';
import { JobManager } from './jobs';
import { metricsChanged } from './liveMetrics';
import type { RobustnessPanel } from './robustnessPanel';
import type { RoutingPanel } from './routingPanel';
import { RunsStore, type RunEntry } from './runsStore';
import { RunsTreeProvider, runTreeItem } from './runsTree';
import type { CommandTable, Services } from './services';
import type { SweepPanel } from './sweepPanel';
import { SweepsStore } from './sweepsStore';
import type { TrainingPanel } from './trainingPanel';
import { Views } from './views';
import { registerWalkthrough } from './walkthrough';

/** What `activate` returns: handles for the integration tests (and other extensions). */
export interface AdvMoEApi {
  store: RunsStore;
  jobs: JobManager;
  engine: EngineClient;
  runsTree: RunsTreeProvider;
  trainingPanel(): TrainingPanel | undefined;
  robustnessPanel(): RobustnessPanel | undefined;
  routingPanel(): RoutingPanel | undefined;
  inspectorPanel(): InspectorPanel | undefined;
  sweepPanel(): SweepPanel | undefined;
  sweeps: SweepsStore;
  treeItem(e: RunEntry): vscode.TreeItem;
}

export async function activate(context: vscode.ExtensionContext): Promise<AdvMoEApi> {
  const s = createServices(context);
  const runsTree = registerRunsView(context, s);
  registerCommands(context, [runCommands(s), viewCommands(s), experimentCommands(), backendCommands(s), importCommands(s), sweepCommands(s)]);
  const codeLenses = new ExperimentCodeLensProvider();
  const reloadAll = () => {
    void s.store.reloadAll(true);
    s.sweeps.watch();
    s.sweeps.reload();
  };
  context.subscriptions.push(
    codeLenses,
    vscode.languages.registerCodeLensProvider({ pattern: EXPERIMENT_GLOB }, codeLenses),
    registerWalkthrough(s.store),
    watchEngineSettings(s.engine, s.jobs, s.log),
    vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('advmoe.runsFolder') && reloadAll()),
    vscode.workspace.onDidChangeWorkspaceFolders(reloadAll),
  );
  s.sweeps.init();
  await s.store.init();
  s.log.info('AdvMoE Studio activated');
  return {
    store: s.store,
    jobs: s.jobs,
    engine: s.engine,
    runsTree,
    trainingPanel: () => s.views.training.instance,
    robustnessPanel: () => s.views.robustness.instance,
    routingPanel: () => s.views.routing.instance,
    inspectorPanel: () => s.views.inspector.instance,
    sweepPanel: () => s.views.sweep.instance,
    sweeps: s.sweeps,
    treeItem: (e) => runTreeItem(e, s.jobs.liveDescription(e.state.id)),
  };
}

export function deactivate(): void {
  // Everything is in context.subscriptions; the engine exits when its IPC channel closes.
}

function createServices(context: vscode.ExtensionContext): Services {
  const log = vscode.window.createOutputChannel('AdvMoE Engine', { log: true });
  const engine = new EngineClient(vscode.Uri.joinPath(context.extensionUri, 'dist', 'engine.js').fsPath, log);
  const store = new RunsStore(log);
  const jobs = new JobManager(engine, store, log);
  const metrics = metricsChanged(store, engine);
  const sweeps = new SweepsStore(log);
  const views = new Views({ extensionUri: context.extensionUri, store, log }, engine, jobs, metrics.event, () => sweeps.sweepsDirs());
  context.subscriptions.push(log, engine, store, jobs, metrics.disposable, views, sweeps);
  return { log, engine, store, jobs, views, sweeps };
}

/**
 * The Runs tree, its badge and the `advmoe.training` context key that menus use. The badge counts this window's
 * jobs, waiting ones included, and runs that train elsewhere (CLI, another window).
 */
function registerRunsView(context: vscode.ExtensionContext, s: Services): RunsTreeProvider {
  const runsTree = new RunsTreeProvider(s.store, s.jobs, s.sweeps);
  const treeView = vscode.window.createTreeView('advmoe.runs', { treeDataProvider: runsTree, showCollapseAll: false });
  const update = () => {
    const jobs = s.jobs.active();
    const ours = new Set(jobs.map((j) => j.runId));
    const elsewhere = s.store.all().filter((e) => e.state.status === 'running' && !ours.has(e.state.id)).length;
    const waiting = jobs.filter((j) => j.phase === 'waiting').length;
    const parts = [`${jobs.length - waiting} running`, waiting ? `${waiting} waiting for the engine` : '', elsewhere ? `${elsewhere} training elsewhere` : ''];
    const total = jobs.length + elsewhere;
    treeView.badge = total ? { value: total, tooltip: `AdvMoE: ${parts.filter(Boolean).join(', ')}` } : undefined;
    void vscode.commands.executeCommand('setContext', 'advmoe.training', s.jobs.active('train').length > 0);
  };
  context.subscriptions.push(runsTree, treeView, s.jobs.onDidChange(update), s.store.onDidChange(update));
  update();
  return runsTree;
}

function registerCommands(context: vscode.ExtensionContext, tables: CommandTable[]): void {
  for (const table of tables) {
    for (const [id, fn] of Object.entries(table)) context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  }
}
