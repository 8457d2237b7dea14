/** The Sweep Table command (README "Sweeps"): which sweep, from a Runs-view node, a sweep file or a pick. */
import * as vscode from 'vscode';
import { defaultSweepsDir, findSweepDir } from '../../engine/sweeps/folder';
import { errorText } from '../jobs';
import { runsDirForUri } from '../settings';
import { isSweepNode } from '../sweepsStore';
import type { CommandTable, Services } from '../services';

export function sweepCommands(s: Services): CommandTable {
  return {
    'advmoe.openSweepTable': async (arg?: unknown) => {
      const dir = await resolveSweep(s, arg);
      if (dir) return s.views.openSweep(dir, { column: arg instanceof vscode.Uri ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active, preserveFocus: false });
      return undefined;
    },
  };
}

/** A sweep folder from a Runs-view sweep node, a sweep file (its folder, once started), or a pick. */
async function resolveSweep(s: Services, arg: unknown): Promise<string | undefined> {
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
  const all = s.sweeps.all();
  if (all.length === 0) {
    void vscode.window.showInformationMessage('AdvMoE: no sweeps in this workspace yet. Start one with `advmoe sweep <file.advmoe-sweep.json>` (README "Sweeps").');
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    all.map((w) => ({ label: w.name, description: `${w.runIds.length} runs over ${w.axes.join(' × ')}`, detail: w.dir, dir: w.dir })),
    { placeHolder: 'Show which sweep?' },
  );
  return pick?.dir;
}
