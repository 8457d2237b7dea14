import * as vscode from 'vscode';

/** Beside the experiment file when the command came from it (CodeLens, editor title); else the active column. */
export function besideColumn(arg: unknown): vscode.ViewColumn {
  return arg instanceof vscode.Uri || vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
}
