/**
 * Workspace trust: training, evaluation and live inspection run the engine on the workspace's files, so they need a
 * trusted workspace. package.json hides their CodeLens, menu and palette entries in Restricted Mode (`when` clauses
 * on `isWorkspaceTrusted`); a command that is still called (keybinding, another extension) says why it does nothing.
 */
import * as vscode from 'vscode';

const RESTRICTED = 'AdvMoE: training and evaluation run code (the engine) on this workspace, so they are disabled in Restricted Mode. Viewing runs works.';

export function requireTrust(): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window.showWarningMessage(RESTRICTED, 'Manage Workspace Trust').then((pick) => {
    if (pick) void vscode.commands.executeCommand('workbench.trust.manage');
  });
  return false;
}
