/**
 * Restricted Mode (an untrusted workspace): viewing runs works, training and evaluation do not start the engine.
 * Run by the code-server runner in a second session with workspace trust on (ADVMOE_IT_SUITE=untrusted).
 */
import * as assert from 'assert';
import * as path from 'path';
import * as vscode from 'vscode';
import type { AdvMoEApi } from '../../../extension/extension';
import type { RunEntry } from '../../../extension/runsStore';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AdvMoE Studio in Restricted Mode', function () {
  let api: AdvMoEApi;
  let config: vscode.Uri;

  before(async function () {
    const ext = vscode.extensions.getExtension<AdvMoEApi>('advmoe.advmoe-studio');
    assert.ok(ext, 'the extension is loaded in Restricted Mode (capabilities.untrustedWorkspaces: limited)');
    api = await ext.activate();
    config = vscode.Uri.file(path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, 'tiny.advmoe.json'));
  });

  it('runs in an untrusted workspace', function () {
    assert.strictEqual(vscode.workspace.isTrusted, false);
  });

  it('still lists runs and shows them in the Training view', async function () {
    assert.ok(api.runsTree.getChildren().filter((e): e is RunEntry => 'state' in e).some((e) => e.state.id === '20260101-advmoe'));
    await vscode.commands.executeCommand('advmoe.openTrainingView', api.store.get('20260101-advmoe'));
    let series = 0;
    for (let i = 0; i < 40 && series === 0; i++) {
      await sleep(250);
      series = (await api.trainingPanel()?.describe().catch(() => undefined))?.series.length ?? 0;
    }
    assert.ok(series > 0, 'the Training view draws the run');
  });

  it('offers no Train/Evaluate/Inspect CodeLens and no palette entries for them (walkthrough defect 13)', async function () {
    await vscode.window.showTextDocument(config);
    const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', config)) ?? [];
    const ours = lenses.filter((l) => l.command?.command.startsWith('advmoe.'));
    assert.deepStrictEqual(ours.map((l) => l.command?.command), [], 'no AdvMoE CodeLens in Restricted Mode');
    // The palette shows commands whose `when` holds; the manifest ties the engine commands to workspace trust
    // (test/engine/extension/restrictedMode.test.ts), and the context key is false here.
    const ext = vscode.extensions.getExtension('advmoe.advmoe-studio')!;
    const palette: { command: string; when?: string }[] = ext.packageJSON.contributes.menus.commandPalette;
    for (const cmd of ['advmoe.train', 'advmoe.evaluate', 'advmoe.inspectRouting', 'advmoe.resumeRun']) {
      assert.strictEqual(palette.find((m) => m.command === cmd)?.when, 'isWorkspaceTrusted', cmd);
    }
  });

  it('does not train, evaluate or inspect, and never starts the engine', async function () {
    await vscode.commands.executeCommand('advmoe.train', config);
    await vscode.commands.executeCommand('advmoe.evaluate', api.store.get('20260101-advmoe'));
    await vscode.commands.executeCommand('advmoe.inspectRouting', config);
    await vscode.commands.executeCommand('advmoe.resumeRun', api.store.get('20260102-pgd-at'));
    await sleep(1000);
    assert.strictEqual(api.jobs.active().length, 0);
    assert.strictEqual(api.engine.running, false, 'no engine process');
    console.log('[advmoe-it] screenshot restricted-mode');
    await sleep(1500);
  });
});
