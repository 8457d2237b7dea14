/** Commands that open the four views. */
import * as vscode from 'vscode';
import { parseInspectorFilter } from '../../webview/analysisProtocol';
import type { InspectorTarget } from '../analysisContext';
import { hasCheckpoint, isRunEntry, pickRuns, resolveRun } from '../runPicks';
import { listCheckpointFiles } from '../runsDisk';
import type { CommandTable, Services } from '../services';
import { requireTrust } from '../trust';
import { besideColumn } from './columns';

export function viewCommands(s: Services): CommandTable {
  return {
    'advmoe.openTrainingView': (arg?: unknown) => openTraining(s, arg),
    'advmoe.compareRuns': () => compareRuns(s),
    'advmoe.openRobustnessView': (arg?: unknown) => openRobustness(s, arg),
    'advmoe.openRoutingView': (arg?: unknown) => openRouting(s, arg),
    'advmoe.inspectRouting': (arg?: unknown) => inspect(s, arg),
  };
}

/** A run of the tree: the view shows it. Without one, the view comes back as it was, or opens on the runs training now. */
function openTraining(s: Services, arg: unknown): void {
  if (isRunEntry(arg)) return void s.views.openTraining([arg.state.id], { replace: true, preserveFocus: false });
  const existing = s.views.training.instance;
  const live = s.jobs.active('train').flatMap((j) => (j.runId ? [j.runId] : []));
  if (existing) {
    existing.panel.reveal();
    if (existing.shownRunIds.length === 0 && live.length) void existing.addRuns(live);
    return;
  }
  const latest = live.length ? live : s.store.all().slice(0, 1).map((e) => e.state.id);
  s.views.openTraining(latest, { column: vscode.ViewColumn.Active, preserveFocus: false });
}

async function compareRuns(s: Services): Promise<void> {
  const shown = s.views.training.instance?.shownRunIds ?? [];
  const ids = await pickRuns(s.store, { title: 'Runs to overlay in the Training view', picked: shown });
  if (ids) s.views.openTraining(ids, { replace: true, column: vscode.ViewColumn.Active, preserveFocus: false });
}

async function openRobustness(s: Services, arg: unknown): Promise<void> {
  if (isRunEntry(arg)) return void s.views.openRobustness([arg.state.id], { preserveFocus: false });
  const ids = await pickRuns(s.store, {
    title: 'Runs to compare in the Robustness view (e.g. dense AT, MoE + AT, AdvMoE)',
    picked: s.views.robustness.instance?.shownRunIds,
    filter: (e) => e.state.status !== 'running',
  });
  if (ids?.length) s.views.openRobustness(ids, { column: vscode.ViewColumn.Active, preserveFocus: false });
}

async function openRouting(s: Services, arg: unknown): Promise<void> {
  const run = await resolveRun(s.store, arg, (st) => st.status !== 'running', {
    placeHolder: 'Show the routing of which run?',
    none: 'there is no finished or stopped run whose routing to show yet',
  });
  if (run) s.views.openRouting(run.runsDir, run.state.id, { column: besideColumn(arg), preserveFocus: false });
}

async function inspect(s: Services, arg: unknown): Promise<void> {
  // The Inspector attacks samples live and reads images through the engine.
  if (!requireTrust()) return;
  const target = isInspectorTarget(arg) ? arg : await pickInspectorTarget(s, arg);
  if (target) s.views.openInspector(target, { column: besideColumn(arg), preserveFocus: false });
}

/** The run, then its checkpoint (when it has several) and the data split, for the Inspector. */
async function pickInspectorTarget(s: Services, arg: unknown): Promise<InspectorTarget | undefined> {
  const run = await resolveRun(s.store, arg, hasCheckpoint, {
    placeHolder: 'Inspect the routing of which run?',
    none: 'there is no run with a checkpoint to inspect yet (train one first)',
  });
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
