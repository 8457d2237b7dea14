/**
 * "Train · Evaluate · Inspect routing" above every experiment file. All three run the engine, so in Restricted Mode
 * there are none (they come back when the user trusts the workspace), like their menu and palette entries, which
 * package.json hides with `isWorkspaceTrusted`.
 */
import * as vscode from 'vscode';

export const EXPERIMENT_GLOB = '**/*.advmoe.json';

export class ExperimentCodeLensProvider implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly trustSub = vscode.workspace.onDidGrantWorkspaceTrust(() => this.changed.fire());

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    if (!vscode.workspace.isTrusted) return [];
    const top = new vscode.Range(0, 0, 0, 0);
    const args = [document.uri];
    return [
      new vscode.CodeLens(top, { title: '$(play) Train', command: 'advmoe.train', arguments: args, tooltip: 'Train a run from this experiment' }),
      new vscode.CodeLens(top, { title: '$(shield) Evaluate', command: 'advmoe.evaluate', arguments: args, tooltip: "Robustness analysis of this experiment's latest run" }),
      new vscode.CodeLens(top, { title: '$(type-hierarchy) Inspect routing', command: 'advmoe.inspectRouting', arguments: args, tooltip: "Open the Inspector: routing on adversarial examples, router-expert mismatch, for this experiment's latest run" }),
    ];
  }

  dispose(): void {
    this.trustSub.dispose();
    this.changed.dispose();
  }
}
