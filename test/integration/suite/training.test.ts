/**
 * Runs inside the extension host of a real VS Code with the extension under development and the real
 * engine. Drives the command palette as a user would: train the tiny experiment, watch metrics arrive in
 * the Training view, stop it, see it interrupted in the Runs view, resume it, see it finish.
 *
 * Lines starting with `[advmoe-it]` are read by the code-server runner (it takes screenshots at them).
 */
import * as assert from 'assert';
import * as path from 'path';
import * as vscode from 'vscode';
import * as fs from 'fs';
import { Requests, type EvaluateResult } from '../../../engine/protocol';
import type { AdvMoEApi } from '../../../extension/extension';
import type { RunEntry } from '../../../extension/runsStore';
import { sleep, waitFor } from './wait';

const EXTENSION_ID = 'advmoe.advmoe-studio';

function mark(what: string): void {
  console.log(`[advmoe-it] ${what}`);
}

/** Shows the Runs view (for the screenshots) without taking focus from the editor for long. */
async function showRunsView(): Promise<void> {
  await vscode.commands.executeCommand('advmoe.runs.focus');
  await sleep(500);
}

/**
 * Runs a command through the command palette: opens it filtered to `label`, accepts the selected row.
 * Retries when the row is not there yet (the palette lists commands of late-registered extensions only
 * when it is reopened).
 */
async function fromPalette(label: string, started: () => boolean, thenAcceptPick = false): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await vscode.commands.executeCommand('workbench.action.quickOpen', `>${label}`);
    await sleep(600);
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      await sleep(400);
      if (started()) return;
      // The command opened a quick pick of its own: take its first row.
      if (thenAcceptPick) await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    }
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
  }
  throw new Error(`the command palette did not run "${label}"`);
}

describe('AdvMoE Studio in VS Code', function () {
  let api: AdvMoEApi;
  let workspace: string;
  let config: vscode.Uri;
  let runId: string;

  const entry = (): RunEntry | undefined => api.runsTree.getChildren().filter((e): e is RunEntry => 'state' in e).find((e) => e.state.id === runId);
  const treeDescription = () => {
    const e = entry();
    return e ? String(api.treeItem(e).description ?? '') : '';
  };
  async function drawn(metric: string): Promise<number> {
    const panel = api.trainingPanel();
    if (!panel) return 0;
    const d = await panel.describe();
    return d.series.find((s) => s.runId === runId && s.metric === metric)?.points ?? 0;
  }

  before(async function () {
    const ext = vscode.extensions.getExtension<AdvMoEApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is loaded`);
    api = await ext.activate();
    workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
    assert.ok(workspace, 'a workspace folder is open');
    config = vscode.Uri.file(path.join(workspace, 'tiny.advmoe.json'));
    await vscode.window.showTextDocument(config);
    mark(`workspace ${workspace}`);
  });

  it('contributes its commands and a CodeLens on the experiment file', async function () {
    const all = await vscode.commands.getCommands(true);
    for (const c of ['advmoe.train', 'advmoe.stopTraining', 'advmoe.resumeRun', 'advmoe.evaluate', 'advmoe.openTrainingView', 'advmoe.compareRuns', 'advmoe.newExperiment', 'advmoe.showEngineLog', 'advmoe.selectBackend', 'advmoe.inspectRouting', 'advmoe.openRobustnessView', 'advmoe.openRoutingView', 'advmoe.importCheckpoint']) {
      assert.ok(all.includes(c), `command ${c}`);
    }
    const lenses = await waitFor('CodeLens', 20_000, async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', config);
      return l && l.some((x) => x.command?.command === 'advmoe.train') ? l : undefined;
    });
    const titles = lenses.filter((l) => l.command?.command.startsWith('advmoe.')).map((l) => l.command?.title.replace(/\$\([^)]*\)\s*/, ''));
    assert.deepStrictEqual(titles, ['Train', 'Evaluate', 'Inspect routing']);
  });

  it('lists the runs already on disk in the Runs view, with status, method and SA/RA', async function () {
    const runs = await waitFor('the recorded runs', 20_000, () => {
      const r = api.runsTree.getChildren().filter((e): e is RunEntry => 'state' in e);
      return r.length >= 2 ? r : undefined;
    });
    const describe = (id: string) => {
      const e = runs.find((x) => x.state.id === id);
      assert.ok(e, `run ${id} listed`);
      return String(api.treeItem(e).description);
    };
    assert.strictEqual(describe('20260101-advmoe'), 'finished · advmoe · SA 89.8% RA 54.7%');
    assert.strictEqual(describe('20260102-pgd-at'), 'interrupted · pgd-at · SA 87.3% RA 51.8%');
    assert.match(String(api.treeItem(runs.find((x) => x.state.id === '20260102-pgd-at')!).contextValue), /resumable/);
  });

  it('opens a run in the Training view and overlays a second one', async function () {
    const runs = api.runsTree.getChildren().filter((e): e is RunEntry => 'state' in e);
    const a = runs.find((x) => x.state.id === '20260101-advmoe')!;
    const b = runs.find((x) => x.state.id === '20260102-pgd-at')!;
    await vscode.commands.executeCommand('advmoe.openTrainingView', a);
    const panel = await waitFor('the Training view', 20_000, () => api.trainingPanel());
    const d1 = await waitFor('series drawn', 30_000, async () => {
      const d = await panel.describe();
      return d.series.length > 0 ? d : undefined;
    });
    assert.deepStrictEqual([...new Set(d1.series.map((s) => s.runId))], [a.state.id]);
    assert.strictEqual(d1.series.find((s) => s.metric === 'loss')?.points, 80, 'every loss record of the fixture');
    // The fixture's AdvMoE run also records its clean routing's balance per MoE layer at each evaluation.
    const shares = 'Clean routing at inference: largest decision share per layer';
    assert.deepStrictEqual(d1.charts, ['Loss', 'Accuracy (SA, RA)', 'Router and expert robustness', shares, 'Learning rate']);
    await panel.addRuns([b.state.id]);
    const d2 = await waitFor('both runs drawn', 20_000, async () => {
      const d = await panel.describe();
      return new Set(d.series.map((s) => s.runId)).size === 2 ? d : undefined;
    });
    assert.strictEqual(d2.series.filter((s) => s.runId === b.state.id && s.metric === 'loss')[0]?.points, 60);
    assert.strictEqual(panel.panel.title, 'Training: 2 runs');
    await showRunsView();
    mark('screenshot compare-runs');
    await sleep(1500);
  });

  it('groups the runs of a sweep in the Runs view and shows them in the Sweep Table', async function () {
    // A sweep folder as `advmoe sweep` writes it (README "Sweeps"), over the two recorded runs.
    const sweepDir = path.join(workspace, '.advmoe', 'sweeps', 'demo');
    const runsDir = path.join(workspace, '.advmoe', 'runs');
    const manifest = {
      version: 1,
      name: 'demo',
      runsDir,
      createdAt: '2026-01-03T00:00:00.000Z',
      updatedAt: '2026-01-03T00:00:00.000Z',
      axes: [{ key: 'method.kind', values: ['advmoe', 'pgd-at'] }],
      runs: [
        { index: 0, id: '20260101-advmoe', values: { 'method.kind': 'advmoe' }, config: 'configs/20260101-advmoe.advmoe.json' },
        { index: 1, id: '20260102-pgd-at', values: { 'method.kind': 'pgd-at' }, config: 'configs/20260102-pgd-at.advmoe.json' },
      ],
    };
    fs.mkdirSync(sweepDir, { recursive: true });
    fs.writeFileSync(path.join(sweepDir, 'sweep.json'), JSON.stringify(manifest));
    try {
      // The live path: the sweeps store's file watchers (no Refresh Runs).
      const node = await waitFor('the sweep in the Runs view', 20_000, () => api.runsTree.getChildren().find((e) => !('state' in e)));
      const children = api.runsTree.getChildren(node).filter((e): e is RunEntry => 'state' in e);
      assert.deepStrictEqual(children.map((e) => e.state.id), ['20260101-advmoe', '20260102-pgd-at']);
      const top = api.runsTree.getChildren().filter((e): e is RunEntry => 'state' in e).map((e) => e.state.id);
      assert.ok(!top.includes('20260101-advmoe') && !top.includes('20260102-pgd-at'), `the sweep's runs are under it, not at the top: ${top.join(', ')}`);
      assert.match(String(api.runsTree.getTreeItem(node).description), /^sweep · 1\/2 finished · 1 interrupted$/);
      await vscode.commands.executeCommand('advmoe.openSweepTable', node);
      const panel = await waitFor('the Sweep Table', 20_000, () => api.sweepPanel());
      const d = await waitFor('the table drawn', 20_000, async () => {
        const x = await panel.describe();
        return x.status === 'shown' && x.rows.length === 2 ? x : undefined;
      });
      assert.deepStrictEqual(d.header.slice(0, 4), ['run', 'method.kind', 'status', 'SA %']);
      assert.deepStrictEqual(d.rows.map((r) => [r[0], r[1], r[2], r[3], r[4]]), [
        ['20260101-advmoe', 'advmoe', 'finished', '89.8', '54.7'],
        ['20260102-pgd-at', 'pgd-at', 'interrupted', '87.3', '51.8'],
      ]);
      await showRunsView();
      mark('screenshot sweep-table');
      await sleep(1500);
      panel.dispose();
    } finally {
      fs.rmSync(sweepDir, { recursive: true, force: true });
    }
    // The later tests expect the runs at the top level again; a refresh, so that they do not depend on how soon the
    // file watcher reports a removed folder.
    await vscode.commands.executeCommand('advmoe.refreshRuns');
    await waitFor('the sweep gone from the Runs view', 20_000, () => api.runsTree.getChildren().every((e) => 'state' in e) || undefined);
  });

  it('trains from the command palette and shows live metrics in the Training view', async function () {
    const before = new Set(api.store.all().map((e) => e.state.id));
    const shownBefore = [...(api.trainingPanel()?.shownRunIds ?? [])];
    // The palette row, then the experiment picker (the open experiment file is its first row).
    await fromPalette('AdvMoE: Train…', () => api.jobs.active('train').length > 0, true);
    mark('training started');
    const job = api.jobs.active('train')[0];
    runId = await waitFor('the run id from the engine', 120_000, () => job.runId);
    assert.ok(!before.has(runId), 'a new run');
    mark(`run ${runId}`);
    await waitFor('the run in the Runs view as running', 60_000, () => treeDescription().startsWith('running') || undefined);
    await waitFor('loss points drawn in the Training view', 300_000, async () => ((await drawn('loss')) > 0 || undefined), 500);
    // Every loss record the engine has written is drawn, none twice (live notifications and the file watcher both
    // deliver records): the view's count catches up with metrics.jsonl while the run goes on.
    const lossOnDisk = () => {
      const file = path.join(entry()!.runsDir, runId, 'metrics.jsonl');
      return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}') && typeof JSON.parse(l).metrics?.loss === 'number').length;
    };
    await waitFor('the Training view to draw every loss record on disk', 60_000, async () => {
      const onDisk = lossOnDisk();
      return onDisk > 0 && (await drawn('loss')) === onDisk ? true : undefined;
    }, 250);
    const panel = api.trainingPanel();
    assert.ok(panel, 'the Training view is open');
    // The new run joins the runs the view showed; it does not replace them (walkthrough defect 1).
    assert.deepStrictEqual(panel.shownRunIds, [...shownBefore, runId]);
    const d = await panel.describe();
    assert.ok(d.charts.includes('Loss'), `charts: ${d.charts.join(', ')}`);
    mark('screenshot metrics-arrived');
    await sleep(1500);
  });

  it('stops the run from the command palette; the Runs view shows it interrupted', async function () {
    assert.strictEqual(entry()?.state.status, 'running', `the run is still running when stopped (it is ${entry()?.state.status})`);
    await fromPalette('AdvMoE: Stop Training', () => api.jobs.active('train').some((j) => j.cancelRequested));
    await waitFor('the training job to end', 120_000, () => api.jobs.active('train').length === 0 || undefined);
    await waitFor('interrupted in the Runs view', 30_000, () => treeDescription().startsWith('interrupted') || undefined);
    const item = api.treeItem(entry()!);
    assert.ok(entry()?.state.lastCheckpoint, 'a checkpoint to resume from was written on stop');
    assert.ok(entry()!.state.step < entry()!.state.totalSteps, `stopped before the end (step ${entry()!.state.step}/${entry()!.state.totalSteps})`);
    assert.match(String(item.contextValue), /resumable/);
    await showRunsView();
    mark('screenshot interrupted');
    await sleep(1500);
  });

  it('resumes it from the command palette and sees it finish', async function () {
    const pointsBefore = await drawn('loss');
    await fromPalette('AdvMoE: Resume Run', () => api.jobs.active('train').length > 0, true);
    await waitFor('running again', 60_000, () => treeDescription().startsWith('running') || undefined);
    await waitFor('finished in the Runs view', 900_000, () => treeDescription().startsWith('finished') || undefined, 500);
    const e = entry()!;
    assert.strictEqual(e.state.status, 'finished');
    assert.strictEqual(e.state.step, e.state.totalSteps, 'all steps done');
    assert.ok(e.state.headline.sa !== undefined, 'headline SA');
    assert.match(treeDescription(), /SA \d+\.\d%/);
    const panel = api.trainingPanel()!;
    const d = await waitFor('the Training view to show the run finished', 10_000, async () => {
      const x = await panel.describe();
      return x.runs.find((r) => r.runId === runId)?.status === 'finished' ? x : undefined;
    });
    const loss = d.series.find((s) => s.runId === runId && s.metric === 'loss');
    assert.ok(loss && loss.points > pointsBefore, `more loss points after resuming (${loss?.points} > ${pointsBefore})`);
    assert.ok(d.series.some((s) => s.runId === runId && s.metric === 'sa'), 'SA from the eval records is drawn');
    await showRunsView();
    mark('screenshot finished');
    await sleep(1500);
  });

  it('evaluates the finished run into the Robustness view, shows its routing heatmaps, and inspects samples in the Inspector', async function () {
    // Evaluate (the CodeLens command on the experiment file): the Robustness view opens and fills in.
    // It first asks how many samples (walkthrough defect 14); the first row is the experiment's eval.samples.
    const pending = vscode.commands.executeCommand<EvaluateResult | undefined>('advmoe.evaluate', config);
    await waitFor('the sample-count question answered and the evaluation started', 30_000, async () => {
      if (api.jobs.active('evaluate').length > 0) return true;
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
      return undefined;
    }, 700);
    const r = await pending;
    assert.ok(r, 'an evaluation result');
    assert.strictEqual(r.runId, runId, 'the latest run of the experiment file');
    assert.ok(r.report.sa >= 0 && r.report.sa <= 1 && r.report.ra >= 0 && r.report.ra <= 1, `SA ${r.report.sa}, RA ${r.report.ra}`);
    assert.ok(fs.existsSync(r.savedTo), `report saved to ${r.savedTo}`);
    assert.strictEqual(r.report.perSample?.ids.length, r.report.samples, 'per-sample results for the Inspector');
    const analysis = path.basename(r.savedTo);
    const robustness = await waitFor('the Robustness view', 20_000, () => api.robustnessPanel());
    const rd = await waitFor('the report drawn in the Robustness view', 30_000, async () => {
      const d = await robustness.describe();
      return d.runs.some((x) => x.runId === runId && x.analysis === analysis) ? d : undefined;
    });
    const bars = rd.bars.filter((b) => b.runId === runId);
    const sa = bars.find((b) => b.metric === 'sa');
    assert.ok(sa && sa.value !== null && Math.abs(sa.value - r.report.sa) < 1e-9, `SA bar ${sa?.value} = report ${r.report.sa}`);
    mark('screenshot robustness-view');
    await sleep(1500);

    // Routing heatmaps of the same run.
    await vscode.commands.executeCommand('advmoe.openRoutingView', entry());
    const routing = await waitFor('the Routing view', 20_000, () => api.routingPanel());
    const hd = await waitFor('the routing heatmaps drawn', 30_000, async () => {
      const d = await routing.describe();
      return d.status === 'shown' && d.analysis === analysis ? d : undefined;
    });
    assert.strictEqual(hd.balanceRows, r.report.layers.length, 'one load-balance row per MoE layer');
    const clean = hd.heatmaps.find((m) => m.id === 'clean');
    assert.ok(clean && clean.rows === r.report.layers.length, 'the clean layer × expert heatmap has a row per MoE layer');
    mark('screenshot routing-view');
    await sleep(1500);

    // The Inspector on that analysis: a gallery of samples with images, and a sample's routing path.
    await vscode.commands.executeCommand('advmoe.inspectRouting', { runsDir: entry()!.runsDir, runId, analysis });
    const inspector = await waitFor('the Inspector', 20_000, () => api.inspectorPanel());
    const id = await waitFor('the Inspector populated with samples, images and a routing path', 90_000, async () => {
      const d = await inspector.describe();
      return d.totalSamples === r.report.samples && d.domRows > 0 && d.drawnImages > 0 && d.routingRows === r.report.layers.length && d.detailSource === 'live' ? d : undefined;
    });
    assert.strictEqual(id.selectedId, r.report.perSample!.ids[0], 'the Inspector opens on the first sample, inspected live');
    mark('screenshot inspector-view');
    await sleep(1500);
  });

  it('marks a run interrupted when the engine dies under it, and starts the engine again on the next request', async function () {
    const known = new Set(api.store.all().map((e) => e.state.id));
    const training = vscode.commands.executeCommand('advmoe.train', config);
    const job = await waitFor('a training job', 30_000, () => api.jobs.active('train')[0]);
    const crashed = await waitFor('the new run', 120_000, () => (job.runId && !known.has(job.runId) ? job.runId : undefined));
    await waitFor('its first metrics', 120_000, () => (api.store.get(crashed)?.state.status === 'running' && job.progress ? true : undefined));
    const pid = api.engine.pid;
    assert.ok(pid, 'the engine runs');
    process.kill(pid, 'SIGKILL');
    await training;
    const e = await waitFor('the killed run shown interrupted', 30_000, () => {
      const x = api.store.get(crashed);
      return x && x.state.status === 'interrupted' ? x : undefined;
    });
    assert.match(String(api.treeItem(e).description), /^interrupted/);
    assert.strictEqual(api.jobs.active().length, 0, 'no job left behind');
    assert.strictEqual(api.engine.running, false);
    const info = await api.engine.request(Requests.backendInfo);
    assert.ok(info.name, `engine restarted on ${info.name}`);
    assert.notStrictEqual(api.engine.pid, pid);
    await showRunsView();
    mark('screenshot engine-crash');
    await sleep(1500);
  });
});
