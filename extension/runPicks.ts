/** Quick picks of runs, one form for every place that asks "which runs?" (commands and views alike). */
import * as vscode from 'vscode';
import type { RunState } from '../engine/runs/types';
import { dateTime } from '../webview/shared/format';
import { headlineText } from './format';
import type { RunEntry, RunsStore } from './runsStore';

/** "finished · advmoe · SA 97.7% RA 81.2% · 2026-11-29 17:49" */
export function runDescription(s: RunState): string {
  return [s.status, s.method, headlineText(s.headline), dateTime(s.updatedAt)].filter(Boolean).join(' · ');
}

/**
 * Several runs: newest first, `picked` ticked, `exclude` left out. Undefined when the user cancels; when there is
 * nothing to pick the user is told so and the answer is undefined too.
 */
export async function pickRuns(
  store: RunsStore,
  opts: { title: string; exclude?: readonly string[]; picked?: readonly string[]; filter?: (e: RunEntry) => boolean },
): Promise<string[] | undefined> {
  const exclude = new Set(opts.exclude ?? []);
  const picked = new Set(opts.picked ?? []);
  const candidates = store.all().filter((e) => !exclude.has(e.state.id) && (opts.filter?.(e) ?? true));
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(exclude.size ? 'AdvMoE: no other runs to add.' : 'AdvMoE: no runs yet.');
    return undefined;
  }
  const items = candidates.map((e) => ({ label: e.state.name, description: runDescription(e.state), detail: e.state.id, picked: picked.has(e.state.id), id: e.state.id }));
  const chosen = await vscode.window.showQuickPick(items, { canPickMany: true, placeHolder: opts.title, matchOnDescription: true, matchOnDetail: true });
  return chosen?.map((c) => c.id);
}

export function isRunEntry(x: unknown): x is RunEntry {
  return typeof x === 'object' && x !== null && typeof (x as RunEntry).runsDir === 'string' && typeof (x as RunEntry).state?.id === 'string';
}

/**
 * A run from a tree element, an experiment file (its latest run), or a pick among the runs `filter` accepts.
 * `none` is what to say when no run qualifies, e.g. "no interrupted run to resume".
 */
export async function resolveRun(
  store: RunsStore,
  arg: unknown,
  filter: (s: RunState) => boolean,
  prompt: { placeHolder: string; none: string },
): Promise<RunEntry | undefined> {
  if (isRunEntry(arg)) return arg;
  if (arg instanceof vscode.Uri) {
    const latest = store.latestFor(arg.fsPath);
    if (latest && filter(latest.state)) return latest;
    const file = vscode.workspace.asRelativePath(arg);
    const pick = await vscode.window.showWarningMessage(
      latest ? `AdvMoE: the latest run of ${file} (${latest.state.status}) has no checkpoint to use yet.` : `AdvMoE: ${file} has no run yet. Train it first.`,
      'Train',
    );
    if (pick) await vscode.commands.executeCommand('advmoe.train', arg);
    return undefined;
  }
  const candidates = store.all().filter((e) => filter(e.state));
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(`AdvMoE: ${prompt.none}.`);
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    candidates.map((e) => ({ label: e.state.name, description: runDescription(e.state), detail: e.state.id, entry: e })),
    { placeHolder: prompt.placeHolder, matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.entry;
}

/** A finished, stopped or failed run with a checkpoint (evaluate, inspect). */
export const hasCheckpoint = (s: RunState) => !!s.lastCheckpoint && s.status !== 'running';
