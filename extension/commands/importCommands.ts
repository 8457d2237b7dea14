/** Import of a checkpoint of the reference code (README "Analyse a model trained with the reference code"). */
import * as path from 'path';
import * as vscode from 'vscode';
import { askImportSettings, runImport } from '../importCheckpoint';
import { errorText } from '../jobs';
import { runsDirFor } from '../settings';
import type { CommandTable, Services } from '../services';
import { requireTrust } from '../trust';

export function importCommands(s: Services): CommandTable {
  return {
    'advmoe.importCheckpoint': async () => {
      if (!requireTrust()) return undefined;
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) return void vscode.window.showErrorMessage('AdvMoE: open a folder first; runs are kept in the workspace.');
      const runsDir = runsDirFor(folder);
      const settings = await askImportSettings(runsDir, folder.uri.fsPath);
      if (!settings) return undefined;
      try {
        const r = await runImport(s.engine, { jobId: `import-${Date.now().toString(36)}`, ...settings });
        await s.store.reloadRun(runsDir, r.runId);
        const pick = await vscode.window.showInformationMessage(
          `AdvMoE: imported ${path.basename(settings.file)} as run ${r.runId} (${r.parameters} tensors).`,
          'Evaluate Robustness',
          'Show Routing Heatmaps',
        );
        const run = s.store.get(r.runId);
        if (pick && run) await vscode.commands.executeCommand(pick === 'Evaluate Robustness' ? 'advmoe.evaluate' : 'advmoe.openRoutingView', run);
        return r;
      } catch (e) {
        return void vscode.window.showErrorMessage(`AdvMoE: could not import ${path.basename(settings.file)}: ${errorText(e)}`);
      }
    },
  };
}
