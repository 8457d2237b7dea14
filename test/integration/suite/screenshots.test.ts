/**
 * `npm run screenshots` (test/integration/screenshots.ts) runs this in code-server on a workspace with three
 * freshly trained runs (dense PGD-AT, MoE + PGD-AT, AdvMoE): the frames of the main-loop GIF (New Experiment →
 * Train → Routing → Inspector), then each view in the light and the dark theme. Every picture is taken only after
 * the view reports it drew what it should (the views' describe()), so a broken view fails the run instead of being
 * photographed. The runner takes the pictures (probe.ts).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as vscode from 'vscode';
import type { AdvMoEApi } from '../../../extension/extension';
import type { RunEntry } from '../../../extension/runsStore';
import { SHOT_EXPERIMENTS, type ShotRunKey } from '../screenshotRuns';
import { askRunner, probesAvailable } from './probe';
import { sleep, waitFor } from './wait';
const THEMES = { light: 'Default Light Modern', dark: 'Default Dark Modern' } as const;

/** Clears notifications, lets the views settle, then has the runner save the window as `<name>.png`. */
async function shot(name: string): Promise<void> {
  await vscode.commands.executeCommand('notifications.clearAll');
  await sleep(1200);
  await askRunner<string>({ kind: 'screenshot', name });
}

async function freshEditorArea(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  await vscode.commands.executeCommand('advmoe.runs.focus');
  await sleep(500);
}

describe('Screenshots of the views', function () {
  let api: AdvMoEApi;
  const runs: Partial<Record<ShotRunKey, RunEntry>> = {};
  const run = (k: ShotRunKey): RunEntry => runs[k]!;

  before(async function () {
    assert.ok(probesAvailable(), 'run by the code-server runner (npm run screenshots), which takes the pictures');
    const ext = vscode.extensions.getExtension<AdvMoEApi>('advmoe.advmoe-studio');
    assert.ok(ext, 'the extension is loaded');
    api = await ext.activate();
    await waitFor('the three trained runs', 30_000, () => {
      for (const x of SHOT_EXPERIMENTS) runs[x.key] = api.store.all().find((e) => e.state.name === x.name && e.state.status === 'finished');
      return SHOT_EXPERIMENTS.every((x) => runs[x.key]) || undefined;
    });
  });

  async function setTheme(theme: keyof typeof THEMES): Promise<void> {
    await vscode.workspace.getConfiguration('workbench').update('colorTheme', THEMES[theme], vscode.ConfigurationTarget.Global);
    await sleep(1500);
  }

  async function newExperimentPicker(name: string): Promise<void> {
    const created = vscode.commands.executeCommand('advmoe.newExperiment');
    await sleep(1500);
    await shot(name);
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    assert.strictEqual(await created, undefined, 'closing the picker creates nothing');
  }

  async function trainingView(a: RunEntry, b: RunEntry): Promise<void> {
    await vscode.commands.executeCommand('advmoe.openTrainingView', a);
    const panel = await waitFor('the Training view', 20_000, () => api.trainingPanel());
    await panel.addRuns([b.state.id]);
    await waitFor('both runs drawn in the Training view', 30_000, async () => {
      const d = await panel.describe();
      return new Set(d.series.filter((s) => s.points > 0).map((s) => s.runId)).size === 2 || undefined;
    });
  }

  async function robustnessView(ids: string[]): Promise<void> {
    await vscode.commands.executeCommand('advmoe.openRobustnessView', api.store.get(ids[0]));
    const panel = await waitFor('the Robustness view', 20_000, () => api.robustnessPanel());
    await panel.addRuns(ids.slice(1));
    await waitFor(`${ids.length} runs drawn in the Robustness view`, 30_000, async () => {
      const d = await panel.describe();
      return ids.every((id) => d.bars.some((b) => b.runId === id && b.metric === 'sa' && b.value !== null)) || undefined;
    });
  }

  async function routingView(e: RunEntry): Promise<void> {
    await vscode.commands.executeCommand('advmoe.openRoutingView', e);
    const panel = await waitFor('the Routing view', 20_000, () => api.routingPanel());
    await waitFor('the routing heatmaps drawn', 30_000, async () => {
      const d = await panel.describe();
      return (d.status === 'shown' && d.heatmaps.some((m) => m.id === 'clean' && m.rows > 0)) || undefined;
    });
  }

  /** The Inspector on a run's stored analysis, its first sample re-attacked live; then with routing frozen. */
  async function inspector(e: RunEntry, frozenShot: () => Promise<void>, beforeFreeze?: () => Promise<void>): Promise<void> {
    await vscode.commands.executeCommand('advmoe.inspectRouting', { runsDir: e.runsDir, runId: e.state.id });
    const panel = await waitFor('the Inspector', 20_000, () => api.inspectorPanel());
    await waitFor('the Inspector populated and a sample inspected live', 90_000, async () => {
      const d = await panel.describe();
      return (d.domRows > 0 && d.drawnImages > 0 && d.routingRows > 0 && d.detailSource === 'live') || undefined;
    });
    await beforeFreeze?.();
    assert.strictEqual(await askRunner<boolean | null>({ kind: 'clickInWebview', selector: '#freeze' }), true, 'freeze routing is on');
    // The sample is attacked again with the routing frozen; give the engine time to answer.
    await sleep(4000);
    await waitFor('the re-attacked sample shown', 60_000, async () => ((await panel.describe()).detailSource === 'live' ? true : undefined));
    await frozenShot();
  }

  it('records the frames of the main loop: New Experiment, Train, Routing, Inspector', async function () {
    await setTheme('dark');
    await freshEditorArea();
    await shot('loop-01-runs');
    const created = vscode.commands.executeCommand<vscode.Uri | undefined>('advmoe.newExperiment');
    await sleep(1500);
    await shot('loop-02-preset');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await sleep(1200);
    await shot('loop-03-name');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    const uri = await created;
    assert.ok(uri, 'New Experiment wrote a file');
    // Trained small, so the picture run takes seconds (the preset's budget takes minutes).
    const config = JSON.parse(fs.readFileSync(uri.fsPath, 'utf8'));
    config.data = { ...config.data, trainSamples: 1024, testSamples: 64 };
    config.schedule = { ...config.schedule, batchSize: 64 };
    config.eval = { ...config.eval, samples: 32 };
    config.logEverySteps = 1;
    fs.writeFileSync(uri.fsPath, JSON.stringify(config, null, 2) + '\n');
    await sleep(1500);
    await shot('loop-04-experiment');

    const training = vscode.commands.executeCommand('advmoe.train', uri);
    const job = await waitFor('a training job', 30_000, () => api.jobs.active('train')[0]);
    const runId = await waitFor('the new run', 120_000, () => job.runId);
    const lossPoints = async () => {
      const d = await api.trainingPanel()?.describe();
      return d?.series.find((s) => s.runId === runId && s.metric === 'loss')?.points ?? 0;
    };
    await waitFor('loss points in the Training view', 300_000, async () => ((await lossPoints()) >= 3 ? true : undefined), 500);
    await shot('loop-05-training');
    await waitFor('more loss points', 300_000, async () => ((await lossPoints()) >= 10 ? true : undefined), 500);
    await shot('loop-06-training');
    await training;
    const finished = await waitFor('the run finished', 120_000, () => {
      const e = api.store.get(runId);
      return e?.state.status === 'finished' ? e : undefined;
    });
    await shot('loop-07-finished');

    await freshEditorArea();
    await routingView(finished);
    await shot('loop-08-routing');
    await freshEditorArea();
    await inspector(finished, () => shot('loop-10-inspector-frozen'), () => shot('loop-09-inspector'));
  });

  for (const theme of ['light', 'dark'] as const) {
    it(`takes each view in the ${theme} theme`, async function () {
      await setTheme(theme);
      await freshEditorArea();
      await newExperimentPicker(`new-experiment-${theme}`);
      await freshEditorArea();
      await trainingView(run('advmoe'), run('moe'));
      await shot(`training-${theme}`);
      await freshEditorArea();
      await robustnessView([run('dense').state.id, run('moe').state.id, run('advmoe').state.id]);
      await shot(`robustness-${theme}`);
      await freshEditorArea();
      await routingView(run('advmoe'));
      await shot(`routing-${theme}`);
      await freshEditorArea();
      await inspector(run('advmoe'), () => shot(`inspector-${theme}`));
    });
  }
});
