/** "Train · Evaluate · Inspect routing" above every experiment file. */
import * as vscode from 'vscode';

export const EXPERIMENT_GLOB = '**/*.advmoe.json';

export class ExperimentCodeLensProvider implements vscode.CodeLensProvider {
  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const top = new vscode.Range(0, 0, 0, 0);
    const args = [document.uri];
    return [
      new vscode.CodeLens(top, { title: '$(play) Train', command: 'advmoe.train', arguments: args, tooltip: 'Train a run from this experiment' }),
      new vscode.CodeLens(top, { title: '$(shield) Evaluate', command: 'advmoe.evaluate', arguments: args, tooltip: "Robustness analysis of this experiment's latest run" }),
      new vscode.CodeLens(top, { title: '$(type-hierarchy) Inspect routing', command: 'advmoe.inspectRouting', arguments: args, tooltip: "Open the Inspector: routing on adversarial examples, router-expert mismatch, for this experiment's latest run" }),
    ];
  }
}
