/** Experiment files: pick one to train, or write a new one from a preset. */
import * as path from 'path';
import * as vscode from 'vscode';
import { EXPERIMENT_GLOB } from '../codeLens';
import { PRESETS } from '../presets';
import type { CommandTable } from '../services';

const NEW_FROM_PRESET = '$(add) New experiment from a preset…';

export function experimentCommands(): CommandTable {
  return { 'advmoe.newExperiment': () => newExperiment() };
}

/** The experiment to train: the active editor's first, then the others, or a new one. */
export async function pickExperiment(): Promise<vscode.Uri | undefined> {
  const files = await vscode.workspace.findFiles(EXPERIMENT_GLOB, '**/node_modules/**', 200);
  const active = vscode.window.activeTextEditor?.document.uri.toString();
  files.sort((a, b) => (a.toString() === active ? -1 : b.toString() === active ? 1 : a.fsPath.localeCompare(b.fsPath)));
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

export async function newExperiment(): Promise<vscode.Uri | undefined> {
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
  // A file the user just made is kept open: not a preview tab that the next opened file replaces.
  await vscode.window.showTextDocument(uri, { preview: false });
  return uri;
}
