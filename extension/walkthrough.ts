/**
 * The Getting Started walkthrough (`contributes.walkthroughs` in package.json): VS Code checks a step off when
 * its `onContext:` completion event becomes true. The context keys are set here from what actually happened in
 * the workspace — an experiment file exists, a run finished, the Robustness view or the Inspector was opened —
 * so a step is never checked off by a command the user cancelled (an `onCommand:` event would be).
 */
import * as vscode from 'vscode';
import { EXPERIMENT_GLOB } from './codeLens';
import { INSPECTOR_VIEW } from './inspectorPanel';
import { ROBUSTNESS_VIEW } from './robustnessPanel';
import type { RunsStore } from './runsStore';

/** The context keys the walkthrough's completion events name (package.json must use the same strings). */
export const WALKTHROUGH_CONTEXT = {
  hasExperiment: 'advmoe.walkthrough.hasExperiment',
  hasFinishedRun: 'advmoe.walkthrough.hasFinishedRun',
  openedRobustness: 'advmoe.walkthrough.openedRobustness',
  openedInspector: 'advmoe.walkthrough.openedInspector',
} as const;

type Key = (typeof WALKTHROUGH_CONTEXT)[keyof typeof WALKTHROUGH_CONTEXT];

/** Sets the walkthrough's context keys as the workspace changes; each key only ever goes from false to true. */
export function registerWalkthrough(store: RunsStore): vscode.Disposable {
  const done = new Set<Key>();
  const disposables: vscode.Disposable[] = [];
  const set = (key: Key) => {
    if (done.has(key)) return;
    done.add(key);
    void vscode.commands.executeCommand('setContext', key, true);
  };

  // An experiment file in the workspace: there at start, or created later (New Experiment, by hand, by git).
  void vscode.workspace.findFiles(EXPERIMENT_GLOB, '**/node_modules/**', 1).then(
    (files) => files.length > 0 && set(WALKTHROUGH_CONTEXT.hasExperiment),
    () => undefined,
  );
  const watcher = vscode.workspace.createFileSystemWatcher(EXPERIMENT_GLOB, false, true, true);
  disposables.push(watcher, watcher.onDidCreate(() => set(WALKTHROUGH_CONTEXT.hasExperiment)));

  // A finished run: trained in this window or by the CLI (the store watches the runs folder).
  const checkRuns = () => {
    if (store.all().some((e) => e.state.status === 'finished')) set(WALKTHROUGH_CONTEXT.hasFinishedRun);
  };
  disposables.push(store.onDidChange(checkRuns));
  checkRuns();

  // The views as tabs: webview tabs report their view type (VS Code prefixes it, e.g. `mainThreadWebview-`).
  const checkTabs = () => {
    for (const tab of vscode.window.tabGroups.all.flatMap((g) => g.tabs)) {
      if (!(tab.input instanceof vscode.TabInputWebview)) continue;
      if (tab.input.viewType.endsWith(ROBUSTNESS_VIEW.viewType)) set(WALKTHROUGH_CONTEXT.openedRobustness);
      if (tab.input.viewType.endsWith(INSPECTOR_VIEW.viewType)) set(WALKTHROUGH_CONTEXT.openedInspector);
    }
  };
  disposables.push(vscode.window.tabGroups.onDidChangeTabs(checkTabs));
  checkTabs();

  return vscode.Disposable.from(...disposables);
}
