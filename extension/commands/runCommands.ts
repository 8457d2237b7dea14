/** Commands that start or stop engine work on runs, and that manage run folders. */
import * as vscode from 'vscode';
import type { EvaluateResult } from '../../engine/protocol';
import { errorText } from '../jobs';
import { hasCheckpoint, isRunEntry, resolveRun } from '../runPicks';
import { runDir, runFolderToDelete } from '../runsDisk';
import type { CommandTable, Services } from '../services';
import { runsDirForUri } from '../settings';
import { requireTrust } from '../trust';
import { besideColumn } from './columns';
import { pickExperiment } from './experiments';
import { pickSampleCount } from './sampleCount';

export function runCommands(s: Services): CommandTable {
  return {
    'advmoe.train': (arg?: unknown) => train(s, arg),
    'advmoe.stopTraining': () => stopJob(s),
    'advmoe.resumeRun': (arg?: unknown) => resume(s, arg),
    'advmoe.evaluate': (arg?: unknown, opts?: unknown) => evaluate(s, arg, opts),
    'advmoe.revealRunFolder': (arg?: unknown) => revealRunFolder(arg),
    'advmoe.deleteRun': (arg?: unknown) => deleteRun(s, arg),
    'advmoe.refreshRuns': () => {
      s.sweeps.reload();
      return s.store.reloadAll();
    },
  };
}

async function train(s: Services, arg: unknown): Promise<void> {
  if (!requireTrust()) return;
  const uri = arg instanceof vscode.Uri ? arg : await pickExperiment();
  if (!uri) return;
  const runsDir = runsDirForUri(uri);
  if (!runsDir) return void vscode.window.showErrorMessage('AdvMoE: open a folder first; runs are kept in the workspace.');
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (doc?.isDirty) await doc.save();
  // The Training view opens beside the experiment at once and adds the new run when the engine names it,
  // keeping the runs it shows (another run training meanwhile stays in view).
  const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri.toString());
  s.views.openTraining([], { column: editor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active });
  await s.jobs.train({ configUri: uri, runsDir });
}

async function resume(s: Services, arg: unknown): Promise<void> {
  if (!requireTrust()) return;
  const run = await resolveRun(s.store, arg, (st) => (st.status === 'interrupted' || st.status === 'failed') && !!st.lastCheckpoint, {
    placeHolder: 'Resume which run?',
    none: 'there is no interrupted or failed run with a checkpoint to resume',
  });
  if (!run) return;
  if (run.state.status === 'running') return void vscode.window.showInformationMessage(`AdvMoE: ${run.state.name} is running.`);
  s.views.openTraining([run.state.id], { column: besideColumn(arg) });
  await s.jobs.train({ resume: run, runsDir: run.runsDir });
}

async function stopJob(s: Services): Promise<void> {
  const active = s.jobs.active();
  if (active.length === 0) return void vscode.window.showInformationMessage('AdvMoE: nothing is running.');
  let job = active.find((j) => j.kind === 'train') ?? active[0];
  if (active.length > 1) {
    const pick = await vscode.window.showQuickPick(
      active.map((j) => ({ label: j.label, description: `${j.kind} · ${j.phase}${j.progress ? ` · ${j.progress.message}` : ''}`, job: j })),
      { placeHolder: 'Stop which job?' },
    );
    if (!pick) return;
    job = pick.job;
  }
  await s.jobs.cancel(job);
}

/** `opts.samples` (from another extension or a test) skips the question of how many samples. */
async function evaluate(s: Services, arg: unknown, opts?: unknown): Promise<EvaluateResult | undefined> {
  if (!requireTrust()) return undefined;
  const run = await resolveRun(s.store, arg, hasCheckpoint, {
    placeHolder: 'Evaluate the robustness of which run?',
    none: 'there is no run with a checkpoint to evaluate yet (train one first)',
  });
  if (!run) return undefined;
  const given = (opts as { samples?: unknown } | undefined)?.samples;
  const samples = typeof given === 'number' && Number.isInteger(given) && given > 0 ? given : await pickSampleCount(run);
  if (!samples) return undefined;
  // The Robustness view fills in from the engine's partial reports while the analysis runs.
  const shown = s.views.robustness.instance?.shownRunIds ?? [];
  s.views.openRobustness(shown.includes(run.state.id) ? shown : [...shown, run.state.id], { column: besideColumn(arg) });
  return s.jobs.evaluate(run, { samples });
}

async function revealRunFolder(arg: unknown): Promise<void> {
  if (!isRunEntry(arg)) return;
  const uri = vscode.Uri.file(runDir(arg.runsDir, arg.state.id));
  if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
  else await vscode.commands.executeCommand('revealFileInOS', uri);
}

async function deleteRun(s: Services, arg: unknown): Promise<void> {
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
  await s.store.reloadRun(arg.runsDir, arg.state.id);
}
