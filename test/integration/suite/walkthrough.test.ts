/**
 * The Getting Started walkthrough in an empty workspace (its own code-server session): every step starts
 * unchecked and is checked off by doing what it says — create an experiment, train it, open the Robustness view,
 * inspect routing on adversarial examples — and not before. The checkboxes are read from the walkthrough page
 * itself through the runner (probe.ts), since VS Code keeps walkthrough progress out of the extension API.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { AdvMoEApi } from '../../../extension/extension';
import type { WalkthroughStepState } from '../probeProtocol';
import { askRunner, probesAvailable } from './probe';
import { sleep, waitFor } from './wait';

const EXTENSION_ID = 'advmoe.advmoe-studio';
const WALKTHROUGH = `${EXTENSION_ID}#gettingStarted`;
const STEPS = ['createExperiment', 'train', 'robustness', 'inspectRouting'];

/** Which steps the walkthrough page shows checked (it is brought to the front first: hidden editors leave the DOM). */
async function checkedSteps(): Promise<string[]> {
  await vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH, false);
  await sleep(800);
  const steps = await askRunner<WalkthroughStepState[]>({ kind: 'walkthroughSteps' });
  const ours = steps.filter((s) => s.id.startsWith(`${WALKTHROUGH}#`));
  if (ours.length === 0) {
    // Asked for before VS Code registered the extension's walkthrough, the page shows another one and stays on it
    // ("Could not find category"): close it, so that the next try opens ours.
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    throw new Error(`the walkthrough page shows other steps: ${steps.map((s) => s.id).slice(0, 3).join(', ')}`);
  }
  assert.deepStrictEqual(ours.map((s) => s.id.slice(WALKTHROUGH.length + 1)), STEPS, 'the walkthrough lists its four steps in order');
  return ours.filter((s) => s.done).map((s) => s.id.slice(WALKTHROUGH.length + 1));
}

/** Waits until exactly `expected` are checked (VS Code checks a step off asynchronously after its context key). */
async function expectChecked(expected: string[], timeoutMs = 30_000): Promise<void> {
  let last: string[] | undefined;
  try {
    await waitFor(`steps ${expected.join(', ') || '(none)'} checked`, timeoutMs, async () => {
      last = await checkedSteps();
      return last.join() === expected.join() || undefined;
    }, 1000);
  } catch (e) {
    if (last === undefined) throw e; // the page never answered: that error, not a comparison with nothing
    assert.deepStrictEqual(last, expected, 'checked walkthrough steps');
  }
}

describe('The Getting Started walkthrough', function () {
  let api: AdvMoEApi;
  let workspace: string;
  let experiment: vscode.Uri;

  before(async function () {
    if (!probesAvailable()) this.skip(); // only the code-server runner can read the walkthrough page
    const ext = vscode.extensions.getExtension<AdvMoEApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is loaded`);
    api = await ext.activate();
    workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
    assert.ok(workspace, 'a workspace folder is open');
    assert.deepStrictEqual(fs.readdirSync(workspace), [], 'the workspace starts empty');
  });

  it('starts with no step checked', async function () {
    // The first look waits longer: on a loaded machine VS Code registers the walkthrough seconds after start.
    await expectChecked([], 120_000);
  });

  it('Resume with no interrupted run says that there is none (walkthrough defect 11)', async function () {
    await vscode.commands.executeCommand('notifications.clearAll');
    await vscode.commands.executeCommand('advmoe.resumeRun');
    const shown = await waitFor('the notification', 20_000, async () => {
      const texts = await askRunner<string[]>({ kind: 'notifications' });
      return texts.find((t) => t.includes('to resume'));
    });
    assert.strictEqual(shown, 'AdvMoE: there is no interrupted or failed run with a checkpoint to resume.');
    await vscode.commands.executeCommand('notifications.clearAll');
  });

  it('checks off "Create an experiment" when New Experiment writes one', async function () {
    // The step's button runs New Experiment: a preset pick (its first row), then the name (the preset's id).
    const created = vscode.commands.executeCommand<vscode.Uri | undefined>('advmoe.newExperiment');
    for (let i = 0; i < 2; i++) {
      await sleep(1200);
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    }
    const uri = await created;
    assert.ok(uri, 'New Experiment wrote a file');
    // Walkthrough defect 10: the new file stays open in a kept tab, not a preview that the next opened file replaces.
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab?.input instanceof vscode.TabInputText && tab.input.uri.toString() === uri.toString(), `the new experiment is the active tab (${tab?.label})`);
    assert.strictEqual(tab.isPreview, false, 'New Experiment opens a kept tab, not a preview');
    experiment = uri;
    assert.match(path.basename(experiment.fsPath), /\.advmoe\.json$/);
    await expectChecked(['createExperiment']);
  });

  it('checks off "Train it" when a run of it finishes', async function () {
    // The preset trains for minutes; the test trains a tiny version of it (the user may edit the file so too).
    const config = JSON.parse(fs.readFileSync(experiment.fsPath, 'utf8'));
    config.data = { ...config.data, trainSamples: 256, testSamples: 64 };
    config.schedule = { ...config.schedule, epochs: 1, batchSize: 64 };
    config.eval = { ...config.eval, samples: 32 };
    fs.writeFileSync(experiment.fsPath, JSON.stringify(config, null, 2));
    const training = vscode.commands.executeCommand('advmoe.train', experiment);
    await waitFor('a training job', 30_000, () => api.jobs.active('train').length > 0 || undefined);
    // While it trains the step stays open: only a finished run counts.
    assert.deepStrictEqual(await checkedSteps(), ['createExperiment']);
    await training;
    const run = await waitFor('a finished run', 600_000, () => api.store.all().find((e) => e.state.status === 'finished'), 500);
    assert.ok(run.state.lastCheckpoint, 'the finished run has a checkpoint');
    await expectChecked(['createExperiment', 'train']);
  });

  it('checks off "Open the Robustness view" when the view opens', async function () {
    const run = api.store.all().find((e) => e.state.status === 'finished')!;
    await vscode.commands.executeCommand('advmoe.openRobustnessView', run);
    await waitFor('the Robustness view', 20_000, () => api.robustnessPanel());
    await expectChecked(['createExperiment', 'train', 'robustness']);
  });

  it('checks off "Inspect routing on adversarial examples" when the Inspector opens', async function () {
    const run = api.store.all().find((e) => e.state.status === 'finished')!;
    await vscode.commands.executeCommand('advmoe.inspectRouting', { runsDir: run.runsDir, runId: run.state.id });
    await waitFor('the Inspector', 20_000, () => api.inspectorPanel());
    await expectChecked(STEPS);
    await askRunner({ kind: 'screenshot', name: 'walkthrough-done' });
  });
});
