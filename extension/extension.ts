/**
 * AdvMoE Studio: activation and commands. Thin glue between VS Code and the engine process.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { Requests } from '../engine/protocol';
import type { RunState } from '../engine/runs/types';
import { EXPERIMENT_GLOB, ExperimentCodeLensProvider } from './codeLens';
import { EngineClient } from './engineClient';
import { backendText, headlineText } from './format';
import { errorText, JobManager } from './jobs';
import { PRESETS } from './presets';
import { listCheckpointFiles, runDir, runFolderToDelete } from './runsDisk';
import { RunsStore, type RunEntry } from './runsStore';
import { RunsTreeProvider, runTreeItem } from './runsTree';
import { askImportSettings, runImport } from './importCheckpoint';
import { SWEEP_VIEW_TYPE, SweepPanel, SweepPanelSerializer, type SweepPanelContext } from './sweepPanel';
import { SweepsStore, isSweepNode } from './sweepsStore';
import { findSweepDir, defaultSweepsDir } from '../engine/sweeps/folder';
import { BACKENDS, engineSettings, runsDirFor, runsDirForUri } from './settings';
import { TRAINING_VIEW_TYPE, TrainingPanel, TrainingPanelSerializer, type PanelContext } from './trainingPanel';
import type { AnalysisPanelContext, InspectorTarget } from './analysisContext';
import { INSPECTOR_VIEW_TYPE, InspectorPanel, InspectorPanelSerializer } from './inspectorPanel';
import { ROBUSTNESS_VIEW_TYPE, RobustnessPanel, RobustnessPanelSerializer } from './robustnessPanel';
import { ROUTING_VIEW_TYPE, RoutingPanel, RoutingPanelSerializer } from './routingPanel';
import { parseInspectorFilter } from '../webview/analysisProtocol';
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

const RESTRICTED = 'AdvMoE: training and evaluation run code (the engine) on this workspace, so they are disabled in Restricted Mode. Viewing runs works.';

export async function activate(context: vscode.ExtensionContext): Promise<AdvMoEApi> {
  const log = vscode.window.createOutputChannel('AdvMoE Engine', { log: true });
  const enginePath = vscode.Uri.joinPath(context.extensionUri, 'dist', 'engine.js').fsPath;
  const engine = new EngineClient(enginePath, log);
  const store = new RunsStore(log);
  const panelCtx: PanelContext = { extensionUri: context.extensionUri, store, log };
  const jobs = new JobManager(engine, store, panelCtx, log);
  const analysisCtx: AnalysisPanelContext = {
    ...panelCtx,
    engine,
    jobs,
    trusted: () => vscode.workspace.isTrusted,
    openInspector: (target, opts) => void InspectorPanel.show(analysisCtx, target, { column: opts?.column ?? vscode.ViewColumn.Beside, preserveFocus: false }),
    openRouting: (runsDir, runId, opts) => void RoutingPanel.show(analysisCtx, runsDir, runId, { analysis: opts?.analysis, column: opts?.column, preserveFocus: false }),
    openRobustness: (runIds, opts) => void RobustnessPanel.show(analysisCtx, runIds, { column: opts?.column, preserveFocus: false }),
  };
  const sweeps = new SweepsStore(log);
  const sweepCtx: SweepPanelContext = {
    extensionUri: context.extensionUri,
    log,
    sweepsDirs: () => sweeps.sweepsDirs(),
    openTraining: (runIds) => void TrainingPanel.show(panelCtx, runIds, { column: vscode.ViewColumn.Beside, preserveFocus: false }),
    openRobustness: (runIds) => void RobustnessPanel.show(analysisCtx, runIds, { column: vscode.ViewColumn.Beside, preserveFocus: false }),
    openRouting: (runsDir, runId) => void RoutingPanel.show(analysisCtx, runsDir, runId, { column: vscode.ViewColumn.Beside, preserveFocus: false }),
  };
  const runsTree = new RunsTreeProvider(store, sweeps);
  const treeView = vscode.window.createTreeView('advmoe.runs', { treeDataProvider: runsTree, showCollapseAll: false });
  context.subscriptions.push(log, engine, store, sweeps, jobs, runsTree, treeView);
  context.subscriptions.push(registerWalkthrough(store));

  const setTrainingContext = () =>
    void vscode.commands.executeCommand('setContext', 'advmoe.training', jobs.active('train').length > 0);
  context.subscriptions.push(jobs.onDidChange(setTrainingContext));
  const updateBadge = () => {
    const running = store.all().filter((e) => e.state.status === 'running').length;
    treeView.badge = running ? { value: running, tooltip: `${running} run(s) in progress` } : undefined;
  };
  context.subscriptions.push(store.onDidChange(updateBadge));

  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(TRAINING_VIEW_TYPE, new TrainingPanelSerializer(panelCtx)),
    vscode.window.registerWebviewPanelSerializer(ROBUSTNESS_VIEW_TYPE, new RobustnessPanelSerializer(analysisCtx)),
    vscode.window.registerWebviewPanelSerializer(ROUTING_VIEW_TYPE, new RoutingPanelSerializer(analysisCtx)),
    vscode.window.registerWebviewPanelSerializer(INSPECTOR_VIEW_TYPE, new InspectorPanelSerializer(analysisCtx)),
    vscode.window.registerWebviewPanelSerializer(SWEEP_VIEW_TYPE, new SweepPanelSerializer(sweepCtx)),
    vscode.languages.registerCodeLensProvider({ pattern: EXPERIMENT_GLOB }, new ExperimentCodeLensProvider()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('advmoe.runsFolder')) {
        void store.reloadAll(true);
        sweeps.watch();
        sweeps.reload();
      }
      if (['advmoe.backend', 'advmoe.nodePath', 'advmoe.wasmThreads'].some((k) => e.affectsConfiguration(k))) {
        void restartEngineWhenIdle();
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      void store.reloadAll(true);
      sweeps.watch();
      sweeps.reload();
    }),
  );

  async function restartEngineWhenIdle(): Promise<void> {
    if (!engine.running) return;
    if (jobs.active().length > 0) {
      log.info('engine settings changed; they apply when the running jobs end');
      const sub = jobs.onDidChange(() => {
        if (jobs.active().length === 0) {
          sub.dispose();
          void engine.stop();
        }
      });
      return;
    }
    log.info('engine settings changed; stopping the engine (it starts again on the next request)');
    await engine.stop();
  }

  function requireTrust(): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window.showWarningMessage(RESTRICTED, 'Manage Workspace Trust').then((pick) => {
      if (pick) void vscode.commands.executeCommand('workbench.trust.manage');
    });
    return false;
  }

  /** A run from a tree element, an experiment file (its latest run), or a pick. */
  async function resolveRun(arg: unknown, filter: (s: RunState) => boolean, placeHolder: string): Promise<RunEntry | undefined> {
    if (isRunEntry(arg)) return arg;
    if (arg instanceof vscode.Uri) {
      const latest = store.latestFor(arg.fsPath);
      if (latest && filter(latest.state)) return latest;
      const pick = await vscode.window.showWarningMessage(
        latest
          ? `AdvMoE: the latest run of ${path.basename(arg.fsPath)} (${latest.state.status}) has no checkpoint to use yet.`
          : `AdvMoE: ${path.basename(arg.fsPath)} has no run yet. Train it first.`,
        'Train',
      );
      if (pick) await vscode.commands.executeCommand('advmoe.train', arg);
      return undefined;
    }
    const candidates = store.all().filter((e) => filter(e.state));
    if (candidates.length === 0) {
      void vscode.window.showInformationMessage(`AdvMoE: no run to choose (${placeHolder.toLowerCase()}).`);
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      candidates.map((e) => ({ label: e.state.name, description: runDescription(e.state), detail: e.state.id, entry: e })),
      { placeHolder, matchOnDescription: true, matchOnDetail: true },
    );
    return picked?.entry;
  }

  const hasCheckpoint = (s: RunState) => !!s.lastCheckpoint && s.status !== 'running';

  const commands: Record<string, (...args: unknown[]) => unknown> = {
    'advmoe.train': async (arg?: unknown) => {
      if (!requireTrust()) return;
      const uri = arg instanceof vscode.Uri ? arg : await pickExperiment();
      if (!uri) return;
      const runsDir = runsDirForUri(uri);
      if (!runsDir) return void vscode.window.showErrorMessage('AdvMoE: open a folder first; runs are kept in the workspace.');
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      if (doc?.isDirty) await doc.save();
      await jobs.train({ configUri: uri, runsDir });
    },
    'advmoe.stopTraining': async () => {
      const active = jobs.active();
      if (active.length === 0) return void vscode.window.showInformationMessage('AdvMoE: nothing is running.');
      let job = active.find((j) => j.kind === 'train') ?? active[0];
      if (active.length > 1) {
        const pick = await vscode.window.showQuickPick(
          active.map((j) => ({ label: j.label, description: `${j.kind}${j.progress ? ` · ${j.progress.message}` : ''}`, job: j })),
          { placeHolder: 'Stop which job?' },
        );
        if (!pick) return;
        job = pick.job;
      }
      await jobs.cancel(job);
    },
    'advmoe.resumeRun': async (arg?: unknown) => {
      if (!requireTrust()) return;
      const run = await resolveRun(arg, (s) => (s.status === 'interrupted' || s.status === 'failed') && !!s.lastCheckpoint, 'Resume which run?');
      if (!run) return;
      if (run.state.status === 'running') return void vscode.window.showInformationMessage(`AdvMoE: ${run.state.name} is running.`);
      await jobs.train({ resume: run, runsDir: run.runsDir });
    },
    'advmoe.evaluate': async (arg?: unknown) => {
      if (!requireTrust()) return;
      const run = await resolveRun(arg, hasCheckpoint, 'Evaluate the robustness of which run?');
      if (!run) return undefined;
      // The Robustness view fills in from the engine's partial reports while the analysis runs.
      const shown = RobustnessPanel.instance?.shownRunIds ?? [];
      RobustnessPanel.show(analysisCtx, shown.includes(run.state.id) ? shown : [...shown, run.state.id], { column: besideColumn(arg) });
      return jobs.evaluate(run);
    },
    'advmoe.inspectRouting': async (arg?: unknown) => {
      // The Inspector attacks samples live and reads images through the engine.
      if (!requireTrust()) return undefined;
      const target = isInspectorTarget(arg) ? arg : await pickInspectorTarget(arg);
      if (!target) return undefined;
      return InspectorPanel.show(analysisCtx, target, { column: besideColumn(arg), preserveFocus: false });
    },
    'advmoe.openRobustnessView': async (arg?: unknown) => {
      if (isRunEntry(arg)) return RobustnessPanel.show(analysisCtx, [arg.state.id], { preserveFocus: false });
      const withAnalyses = store.all().filter((e) => e.state.status !== 'running');
      if (withAnalyses.length === 0) return void vscode.window.showInformationMessage('AdvMoE: no runs yet.');
      const shown = new Set(RobustnessPanel.instance?.shownRunIds ?? []);
      const picks = await vscode.window.showQuickPick(
        withAnalyses.map((e) => ({ label: e.state.name, description: runDescription(e.state), detail: e.state.id, picked: shown.has(e.state.id), id: e.state.id })),
        { canPickMany: true, placeHolder: 'Runs to compare in the Robustness view (e.g. dense AT, MoE + AT, AdvMoE)', matchOnDetail: true },
      );
      if (!picks || picks.length === 0) return undefined;
      return RobustnessPanel.show(analysisCtx, picks.map((p) => p.id), { column: vscode.ViewColumn.Active, preserveFocus: false });
    },
    'advmoe.openRoutingView': async (arg?: unknown) => {
      const run = await resolveRun(arg, (s) => s.status !== 'running', 'Show the routing of which run?');
      if (!run) return undefined;
      return RoutingPanel.show(analysisCtx, run.runsDir, run.state.id, { column: besideColumn(arg), preserveFocus: false });
    },
    'advmoe.openTrainingView': async (arg?: unknown) => {
      if (isRunEntry(arg)) return void TrainingPanel.show(panelCtx, [arg.state.id], { preserveFocus: false });
      const existing = TrainingPanel.instance;
      if (existing) return void existing.panel.reveal();
      const live = jobs.active('train').find((j) => j.runId);
      const latest = live?.runId ?? store.all()[0]?.state.id;
      TrainingPanel.show(panelCtx, latest ? [latest] : [], { column: vscode.ViewColumn.Active, preserveFocus: false });
    },
    'advmoe.compareRuns': async (arg?: unknown) => {
      const addTo = typeof arg === 'object' && arg !== null && (arg as { addTo?: boolean }).addTo === true;
      const shown = new Set(TrainingPanel.instance?.shownRunIds ?? []);
      const all = store.all();
      if (all.length === 0) return void vscode.window.showInformationMessage('AdvMoE: no runs yet.');
      const picks = await vscode.window.showQuickPick(
        all.map((e) => ({ label: e.state.name, description: runDescription(e.state), detail: e.state.id, picked: shown.has(e.state.id), id: e.state.id })),
        { canPickMany: true, placeHolder: 'Runs to overlay in the Training view', matchOnDetail: true },
      );
      if (!picks) return;
      const ids = picks.map((p) => p.id);
      if (addTo && TrainingPanel.instance) await TrainingPanel.instance.setRuns(ids);
      else TrainingPanel.show(panelCtx, ids, { column: vscode.ViewColumn.Active, preserveFocus: false });
    },
    'advmoe.newExperiment': async () => newExperiment(),
    'advmoe.showEngineLog': () => log.show(),
    'advmoe.selectBackend': async () => {
      const current = engineSettings().backend;
      const inUse = engine.running
        ? await engine.request(Requests.backendInfo).then(
            (i) => backendText(i),
            () => undefined,
          )
        : undefined;
      const DESCRIPTIONS: Record<string, string> = {
        auto: 'best available: tensorflow-gpu → tensorflow → wasm → cpu',
        'tensorflow-gpu': 'CUDA (@tensorflow/tfjs-node-gpu must be installed)',
        tensorflow: 'native CPU (@tensorflow/tfjs-node: `npm run setup:native`, or `advmoe backend install tensorflow`)',
        wasm: 'WebAssembly with SIMD, ships with the extension',
        cpu: 'plain JavaScript; slow, for debugging',
      };
      const pick = await vscode.window.showQuickPick(
        BACKENDS.map((b) => ({ label: b, description: `${b === current ? '(selected) ' : ''}${DESCRIPTIONS[b]}` })),
        { placeHolder: inUse ? `Engine backend (in use now: ${inUse})` : 'Engine backend' },
      );
      if (!pick || pick.label === current) return;
      await vscode.workspace.getConfiguration('advmoe').update('backend', pick.label, vscode.ConfigurationTarget.Global);
      void vscode.window.showInformationMessage(`AdvMoE: backend set to ${pick.label}; the engine restarts with it on the next job.`);
    },
    'advmoe.revealRunFolder': async (arg?: unknown) => {
      if (!isRunEntry(arg)) return;
      const uri = vscode.Uri.file(runDir(arg.runsDir, arg.state.id));
      if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
      else await vscode.commands.executeCommand('revealFileInOS', uri);
    },
    'advmoe.deleteRun': async (arg?: unknown) => {
      // Deleting acts on paths read from workspace files: not in Restricted Mode (package.json hides it too).
      if (!isRunEntry(arg) || !requireTrust()) return;
      if (arg.state.status === 'running') return void vscode.window.showWarningMessage(`AdvMoE: stop ${arg.state.name} before deleting it.`);
      const ok = await vscode.window.showWarningMessage(
        `Delete run "${arg.state.name}" (${arg.state.id})? Its checkpoints, metrics and analyses are removed.`,
        { modal: true },
        'Delete',
      );
      if (ok !== 'Delete') return;
      try {
        const dir = await runFolderToDelete(arg.runsDir, arg.state.id);
        await vscode.workspace.fs.delete(vscode.Uri.file(dir), { recursive: true, useTrash: false });
      } catch (e) {
        return void vscode.window.showErrorMessage(`AdvMoE: could not delete ${arg.state.name}: ${errorText(e)}`);
      }
      await store.reloadRun(arg.runsDir, arg.state.id);
    },
    'advmoe.refreshRuns': () => {
      sweeps.reload();
      return store.reloadAll();
    },
    'advmoe.importCheckpoint': async () => {
      if (!requireTrust()) return undefined;
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) return void vscode.window.showErrorMessage('AdvMoE: open a folder first; runs are kept in the workspace.');
      const runsDir = runsDirFor(folder);
      const settings = await askImportSettings(runsDir, folder.uri.fsPath);
      if (!settings) return undefined;
      try {
        const r = await runImport(engine, { jobId: `import-${Date.now().toString(36)}`, ...settings });
        await store.reloadRun(runsDir, r.runId);
        const pick = await vscode.window.showInformationMessage(
          `AdvMoE: imported ${path.basename(settings.file)} as run ${r.runId} (${r.parameters} tensors).`,
          'Evaluate Robustness',
          'Show Routing Heatmaps',
        );
        const run = store.get(r.runId);
        if (pick && run) await vscode.commands.executeCommand(pick === 'Evaluate Robustness' ? 'advmoe.evaluate' : 'advmoe.openRoutingView', run);
        return r;
      } catch (e) {
        return void vscode.window.showErrorMessage(`AdvMoE: could not import ${path.basename(settings.file)}: ${errorText(e)}`);
      }
    },
    'advmoe.openSweepTable': async (arg?: unknown) => {
      const dir = await resolveSweep(arg);
      if (dir) return SweepPanel.show(sweepCtx, dir, { column: arg instanceof vscode.Uri ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active });
      return undefined;
    },
  };
  for (const [id, fn] of Object.entries(commands)) context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  sweeps.init();
  await store.init();
  updateBadge();
  setTrainingContext();
  log.info(`AdvMoE Studio activated (engine: ${enginePath})`);

  return {
    store,
    jobs,
    engine,
    runsTree,
    trainingPanel: () => TrainingPanel.instance,
    robustnessPanel: () => RobustnessPanel.instance,
    routingPanel: () => RoutingPanel.instance,
    inspectorPanel: () => InspectorPanel.instance,
    sweepPanel: () => SweepPanel.instance,
    sweeps,
    treeItem: runTreeItem,
  };

  /** A sweep folder from a Runs-view sweep node, a sweep file (its folder, once started), or a pick. */
  async function resolveSweep(arg: unknown): Promise<string | undefined> {
    if (isSweepNode(arg)) return arg.dir;
    if (arg instanceof vscode.Uri) {
      const runsDir = runsDirForUri(arg);
      if (!runsDir) return undefined;
      try {
        return findSweepDir(defaultSweepsDir(runsDir), arg.fsPath);
      } catch (e) {
        void vscode.window.showErrorMessage(`AdvMoE: ${errorText(e)}`);
        return undefined;
      }
    }
    const all = sweeps.all();
    if (all.length === 0) {
      void vscode.window.showInformationMessage('AdvMoE: no sweeps in this workspace yet. Start one with `advmoe sweep <file.advmoe-sweep.json>` (README "Sweeps").');
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      all.map((s) => ({ label: s.name, description: `${s.runIds.length} runs over ${s.axes.join(' × ')}`, detail: s.dir, dir: s.dir })),
      { placeHolder: 'Show which sweep?' },
    );
    return pick?.dir;
  }

  /** Beside the experiment file when the command came from it (CodeLens, editor title); else the active column. */
  function besideColumn(arg: unknown): vscode.ViewColumn {
    return arg instanceof vscode.Uri || vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
  }

  /** The run, then its checkpoint (when it has several) and the data split, for the Inspector. */
  async function pickInspectorTarget(arg: unknown): Promise<InspectorTarget | undefined> {
    const run = await resolveRun(arg, hasCheckpoint, 'Inspect the routing of which run?');
    if (!run) return undefined;
    let checkpoint: string | undefined;
    const checkpoints = await listCheckpointFiles(run.runsDir, run.state.id);
    if (checkpoints.length > 1) {
      const last = run.state.lastCheckpoint;
      const pick = await vscode.window.showQuickPick(
        [...checkpoints].reverse().map((c) => ({ label: c, description: c === last ? 'latest' : undefined })),
        { placeHolder: `Checkpoint of ${run.state.name} to inspect` },
      );
      if (!pick) return undefined;
      checkpoint = pick.label === last ? undefined : pick.label;
    }
    const split = await vscode.window.showQuickPick(
      [
        { label: 'test', description: 'the split robustness analyses use; the gallery shows their per-sample results' },
        { label: 'train', description: 'inspect training samples live (no stored analysis)' },
      ],
      { placeHolder: 'Data split' },
    );
    if (!split) return undefined;
    return { runsDir: run.runsDir, runId: run.state.id, checkpoint, split: split.label as 'test' | 'train' };
  }
}

export function deactivate(): void {
  // Everything is in context.subscriptions; the engine exits when its IPC channel closes.
}

/** An InspectorTarget passed by a caller (another view, a test): validated, as it may come from anywhere. */
function isInspectorTarget(x: unknown): x is InspectorTarget {
  if (typeof x !== 'object' || x === null || isRunEntry(x) || x instanceof vscode.Uri) return false;
  const t = x as Record<string, unknown>;
  const optStr = (v: unknown) => v === undefined || typeof v === 'string';
  return (
    typeof t.runsDir === 'string' &&
    typeof t.runId === 'string' &&
    optStr(t.checkpoint) &&
    optStr(t.analysis) &&
    (t.split === undefined || t.split === 'test' || t.split === 'train') &&
    (t.filter === undefined || parseInspectorFilter(t.filter) !== undefined)
  );
}

function isRunEntry(x: unknown): x is RunEntry {
  return typeof x === 'object' && x !== null && typeof (x as RunEntry).runsDir === 'string' && typeof (x as RunEntry).state?.id === 'string';
}

function runDescription(s: RunState): string {
  return [s.status, s.method, headlineText(s.headline), s.updatedAt.slice(0, 16).replace('T', ' ')].filter(Boolean).join(' · ');
}

const NEW_FROM_PRESET = '$(add) New experiment from a preset…';

async function pickExperiment(): Promise<vscode.Uri | undefined> {
  const files = await vscode.workspace.findFiles(EXPERIMENT_GLOB, '**/node_modules/**', 200);
  const active = vscode.window.activeTextEditor?.document.uri;
  files.sort((a, b) => (a.toString() === active?.toString() ? -1 : b.toString() === active?.toString() ? 1 : a.fsPath.localeCompare(b.fsPath)));
  const items: (vscode.QuickPickItem & { uri?: vscode.Uri })[] = files.map((uri) => ({
    label: path.basename(uri.fsPath),
    description: vscode.workspace.asRelativePath(path.dirname(uri.fsPath)),
    uri,
  }));
  items.push({ label: NEW_FROM_PRESET });
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Train which experiment?' });
  if (!pick) return undefined;
  return pick.uri ?? (await newExperiment());
}

async function newExperiment(): Promise<vscode.Uri | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) {
    void vscode.window.showErrorMessage('AdvMoE: open a folder first; experiments and runs live in the workspace.');
    return undefined;
  }
  const preset = await vscode.window.showQuickPick(
    PRESETS.map((p) => ({ label: p.label, detail: p.detail, preset: p })),
    { placeHolder: 'Start from which preset?' },
  );
  if (!preset) return undefined;
  const folder = folders.length === 1 ? folders[0] : await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Create it in which folder?' });
  if (!folder) return undefined;
  const name = await vscode.window.showInputBox({
    prompt: 'Experiment name (the file is <name>.advmoe.json)',
    value: preset.preset.id,
    validateInput: (v) => (/^[\w.-]{1,80}$/.test(v) ? undefined : 'Letters, digits, dot, dash and underscore only'),
  });
  if (!name) return undefined;
  const uri = vscode.Uri.joinPath(folder.uri, `${name}.advmoe.json`);
  try {
    await vscode.workspace.fs.stat(uri);
    void vscode.window.showErrorMessage(`AdvMoE: ${vscode.workspace.asRelativePath(uri)} already exists.`);
    return undefined;
  } catch {
    // does not exist: good
  }
  const config = { ...preset.preset.config, name };
  await vscode.workspace.fs.writeFile(uri, Buffer.from(JSON.stringify(config, null, 2) + '\n', 'utf8'));
  await vscode.window.showTextDocument(uri);
  return uri;
}
