/**
 * The Robustness view in headless Chromium, fed the analyses of three fixture runs (dense PGD-AT, MoE + PGD-AT,
 * AdvMoE; test/webview/fixtures/robustness, written by its make-fixtures.js) the way the host feeds them.
 * Needs `dist/webview/robustness.js` (npm run test:webview builds it) and Debian's chromium.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { listRuns, readAnalysis } from '../../extension/runsDisk';
import type { RobustnessReport } from '../../webview/analysisProtocol';
import {
  BAR_METRICS,
  parseHostToRobustness,
  parseRobustnessToHost,
  parseRobustnessViewState,
  type RobDescriptionMessage,
  type RobustnessRunData,
} from '../../webview/robustness/protocol';
import { describeView as describeAny, exported as exportedAny, exportedPng, RESULTS, ROOT, fileHarness, type Harness, type LoadedView, screenshotTests } from './harness';

const RUNS_DIR = path.join(ROOT, 'test/webview/fixtures/robustness/runs');
const DENSE = '20260110-dense-pgd-at';
const MOE = '20260111-moe-pgd-at';
const ADV = '20260112-advmoe';
const FILES: Record<string, { shown: string; others: string[] }> = {
  [DENSE]: { shown: 'eval-epoch-10-512-2026-01-10T18-10-00-000Z.json', others: [] },
  [MOE]: { shown: 'eval-epoch-10-512-2026-01-11T18-10-00-000Z.json', others: ['broken.json'] },
  [ADV]: { shown: 'eval-epoch-10-512-2026-01-12T18-10-00-000Z.json', others: ['eval-epoch-5-512-2026-01-12T12-00-00-000Z.json'] },
};

/** What the host sends for each run (as RobustnessPanel builds it with listAnalysisFiles/readAnalysis). */
async function fixtureRuns(): Promise<RobustnessRunData[]> {
  const states = await listRuns(RUNS_DIR);
  assert.equal(states.length, 3, 'three fixture runs');
  const order = [DENSE, MOE, ADV];
  const out: RobustnessRunData[] = [];
  for (const id of order) {
    const s = states.find((x) => x.id === id)!;
    const f = FILES[id];
    const analysis = await readAnalysis(RUNS_DIR, id, f.shown);
    analysis.mtime = Date.UTC(2026, 0, 20); // file times depend on the checkout; the view only prints them
    out.push({
      runId: id,
      name: s.name,
      method: s.method,
      status: s.status,
      files: [f.shown, ...f.others].map((name, i) => ({ name, mtime: Date.UTC(2026, 0, 20) - i * 3600_000 })),
      analysis,
    });
  }
  return out;
}

const h = fileHarness();
let runs: RobustnessRunData[];
const rep = (id: string): RobustnessReport => runs.find((r) => r.runId === id)!.analysis!.report;

before(async () => {
  runs = await fixtureRuns();
});

/** What the view drew (a pending render is flushed before it answers). */
const describeView = (v: LoadedView) => describeAny<RobDescriptionMessage>(v);

async function openWith(opts: Parameters<Harness['open']>[1] = {}, data = runs, trusted = true): Promise<LoadedView> {
  const v = await h.open('robustness', opts);
  await v.post({ type: 'init', runs: data, trusted });
  await describeView(v);
  return v;
}

async function exported(v: LoadedView, format: 'csv' | 'json' | 'svg' | 'png'): Promise<{ fileName: string; data: string }> {
  const msg = await exportedAny(v, format);
  assert.equal(parseRobustnessToHost(msg).ok, true, 'the host accepts the export message');
  return msg;
}

const barValues = (v: LoadedView) =>
  v.page.$$eval('#bars rect.bar', (rs) =>
    rs.map((r) => ({ run: r.getAttribute('data-run')!, metric: r.getAttribute('data-metric')!, value: r.getAttribute('data-value')!, height: Number(r.getAttribute('height')) })),
  );

describe('Robustness view in Chromium', () => {
  test('grouped bars: every drawn value equals the fixture; a dense run shows n/a (dense); one colour per run', async () => {
    const v = await openWith();
    const sent = await v.sent();
    assert.equal(sent[0].type, 'ready');
    const bars = await barValues(v);
    const yAxisRange = await v.page.$eval('#bars g.y-axis', (g) => {
      const ticks = Array.from(g.querySelectorAll('.tick')).map((t) => Number(/translate\(0,([\d.]+)\)/.exec(t.getAttribute('transform') ?? '')![1]));
      return Math.max(...ticks) - Math.min(...ticks);
    });
    const expected: { run: string; metric: string; value: number | null }[] = [];
    for (const r of runs) for (const m of BAR_METRICS) expected.push({ run: r.runId, metric: m.key, value: m.value(r.analysis!.report) });
    for (const e of expected) {
      const b = bars.find((x) => x.run === e.run && x.metric === e.metric);
      if (e.value === null) {
        assert.equal(b, undefined, `${e.run}/${e.metric}: no bar`);
        const na = await v.page.$eval(`#bars text.na[data-run="${e.run}"][data-metric="${e.metric}"]`, (t) => t.textContent);
        assert.equal(na, 'n/a (dense)');
        continue;
      }
      assert.ok(b, `${e.run}/${e.metric}: a bar`);
      assert.equal(Number(b.value), e.value, `${e.run}/${e.metric}`);
      assert.ok(Math.abs(b.height - e.value * yAxisRange) < 0.01, `${e.run}/${e.metric}: height ${b.height} for ${e.value}`);
    }
    assert.equal(bars.length, expected.filter((e) => e.value !== null).length);
    // The dense run really is the one without router/expert bars; the MoE ones have all five.
    assert.equal(bars.filter((b) => b.run === DENSE).length, 2);
    assert.equal(bars.filter((b) => b.run === ADV).length, 5);
    assert.equal(Number(bars.find((b) => b.run === ADV && b.metric === 'routerKept')!.value), rep(ADV).routerRobustness!.decisionsKept);
    assert.equal(Number(bars.find((b) => b.run === MOE && b.metric === 'routerAcc')!.value), rep(MOE).routerRobustness!.accuracy);
    assert.equal(Number(bars.find((b) => b.run === MOE && b.metric === 'expertAcc')!.value), rep(MOE).expertRobustness!.accuracy);
    // describe reports the same values.
    const d = await describeView(v);
    assert.deepEqual(
      d.bars.map((b) => `${b.runId}/${b.metric}=${b.value}`).sort(),
      expected.map((e) => `${e.run}/${e.metric}=${e.value}`).sort(),
    );
    // One colour per run, a legend entry per run.
    const fills = await v.page.$$eval('#bars rect.bar[data-metric="sa"]', (rs) => rs.map((r) => getComputedStyle(r).fill));
    assert.equal(new Set(fills).size, 3, `distinct colours: ${fills.join(' ')}`);
    const legend = await v.page.$$eval('#bars .legend-item', (l) => l.map((e) => e.textContent));
    assert.deepEqual(legend, runs.map((r) => r.name));
    // Exact value on hover.
    await v.page.hover(`#bars rect.bar[data-run="${ADV}"][data-metric="ra"]`);
    const tip = await v.page.$eval('#tooltip', (t) => ((t as HTMLElement).hidden ? '' : t.textContent));
    assert.match(tip!, new RegExp(`RA · resnet18-advmoe: ${rep(ADV).ra} \\(${rep(ADV).ra * 100}%\\)`));
    // Keyboard: bars are focusable and labelled.
    assert.equal(await v.page.$eval(`#bars rect.bar[data-run="${ADV}"][data-metric="sa"]`, (r) => r.getAttribute('tabindex')), '0');
    assert.deepEqual(v.errors, [], 'no console errors (CSP violations show here)');
    await v.page.close();
  });

  test('attack table: one row per attack and settings, settings and accuracies equal the fixture', async () => {
    const v = await openWith();
    const rows = await v.page.$$eval('#attacks tbody tr', (trs) =>
      trs.map((tr) => ({
        attack: tr.getAttribute('data-attack')!,
        norm: tr.getAttribute('data-norm')!,
        eps: Number(tr.getAttribute('data-eps')),
        stepSize: Number(tr.getAttribute('data-step-size')),
        steps: Number(tr.getAttribute('data-steps')),
        restarts: Number(tr.getAttribute('data-restarts')),
        randomStart: tr.getAttribute('data-random-start') === 'true',
        label: tr.querySelector('th')!.textContent,
        cells: Array.from(tr.querySelectorAll('td')).map((c) => c.textContent),
        acc: Object.fromEntries(Array.from(tr.querySelectorAll('td.acc')).map((c) => [c.getAttribute('data-run'), c.getAttribute('data-value')])),
      })),
    );
    assert.deepEqual(rows.map((r) => r.attack), ['fgsm', 'pgd', 'apgd-ce', 'router', 'expert']);
    for (const r of runs) {
      for (const a of r.analysis!.report.attacks) {
        const row = rows.find((x) => x.attack === a.name)!;
        assert.deepEqual(
          { norm: row.norm, eps: row.eps, stepSize: row.stepSize, steps: row.steps, restarts: row.restarts, randomStart: row.randomStart },
          a.settings,
          `${r.runId} ${a.name} settings`,
        );
        assert.equal(Number(row.acc[r.runId]), a.accuracy, `${r.runId} ${a.name} accuracy`);
      }
    }
    const router = rows.find((x) => x.attack === 'router')!;
    assert.equal(router.acc[DENSE], null, 'the dense run has no router attack');
    assert.equal(router.cells[router.cells.length - 3], '—');
    const pgdRow = rows.find((x) => x.attack === 'pgd')!;
    assert.equal(pgdRow.label, 'PGD-10');
    assert.deepEqual(pgdRow.cells.slice(0, 6), ['L∞', '8/255', '2/255', '10', '1', 'yes']);
    assert.equal(pgdRow.cells[6], `${(rep(DENSE).ra * 100).toFixed(2)}%`);
    const d = await describeView(v);
    assert.equal(d.attackRows, 5);
    await v.page.close();
  });

  test('RA-vs-ε curves: one point per ε per run, at the fixture values, overlaid', async () => {
    const v = await openWith();
    for (const r of runs) {
      const curve = r.analysis!.report.raCurve;
      const pts = await v.page.$$eval(`#curves circle.point[data-run="${r.runId}"]`, (cs) =>
        cs.map((c) => ({ eps: Number(c.getAttribute('data-eps')), ra: Number(c.getAttribute('data-ra')) })),
      );
      assert.deepEqual(pts, curve, `${r.runId} points`);
      const d = await v.page.$eval(`#curves path.curve[data-run="${r.runId}"]`, (p) => p.getAttribute('d')!);
      assert.equal(d.split('L').length, curve.length, 'a polyline through every point');
    }
    const desc = await describeView(v);
    assert.deepEqual(desc.curves.map((c) => c.points.length), runs.map((r) => r.analysis!.report.raCurve.length));
    // ε = 0 is SA.
    assert.equal(desc.curves.find((c) => c.runId === ADV)!.points[0].ra, rep(ADV).sa);
    // ε in units of 1/255.
    await v.page.check('#eps-255');
    await v.page.waitForFunction(() => document.querySelector('#curves text.axis-label')?.textContent === 'ε (× 1/255)');
    const ticks = await v.page.$$eval('#curves g.x-axis .tick text', (t) => t.map((e) => e.textContent));
    assert.ok(ticks.includes('16'), `ticks in /255: ${ticks.join(' ')}`);
    const state = await v.page.evaluate(() => (window as unknown as { __state: { epsIn255: boolean } }).__state);
    assert.equal(state.epsIn255, true);
    await v.page.close();
  });

  test('routing change rate per MoE layer (collapsed marked), per-expert SA/RA and inference cost equal the fixture', async () => {
    const v = await openWith();
    for (const id of [MOE, ADV]) {
      for (const l of rep(id).layers) {
        const bar = await v.page.$eval(`#layers rect.bar[data-run="${id}"][data-layer="${l.layer}"]`, (r) => ({
          value: r.getAttribute('data-value'),
          collapsed: r.getAttribute('data-collapsed'),
          cls: r.getAttribute('class'),
        }));
        assert.equal(Number(bar.value), l.changeRate);
        assert.equal(bar.collapsed, String(l.collapsed));
        assert.equal(bar.cls!.includes('collapsed'), l.collapsed);
      }
    }
    assert.equal(await v.page.$$eval(`#layers rect.bar[data-run="${DENSE}"]`, (r) => r.length), 0);
    const marks = await v.page.$$eval('#layers text.collapsed-mark', (t) => t.map((e) => `${e.getAttribute('data-run')}/${e.getAttribute('data-layer')}`));
    const collapsed = [MOE, ADV].flatMap((id) => rep(id).layers.filter((l) => l.collapsed).map((l) => `${id}/${l.layer}`));
    assert.deepEqual(marks, collapsed);
    assert.equal(collapsed.length, 1, 'the MoE + PGD-AT fixture has one collapsed router');
    assert.match(await v.page.$eval('#layers .note', (n) => n.textContent!), /No MoE layers \(dense\): resnet18-dense-pgd-at/);
    const d = await describeView(v);
    assert.equal(d.layers.length, rep(MOE).layers.length + rep(ADV).layers.length);

    // Per-expert SA/RA.
    for (const id of [MOE, ADV]) {
      for (const p of rep(id).perExpert) {
        for (const k of ['sa', 'ra'] as const) {
          const cell = await v.page.$eval(`#per-expert tr[data-expert="${p.expert}"] td[data-run="${id}"][data-metric="${k}"]`, (c) => c.getAttribute('data-value'));
          assert.equal(Number(cell), p[k]);
        }
      }
    }
    assert.equal(await v.page.$$eval(`#per-expert [data-run="${DENSE}"]`, (c) => c.length), 0);

    // Inference cost.
    for (const r of runs) {
      const c = r.analysis!.report.cost;
      const cells = await v.page.$$eval(`#cost tr[data-run="${r.runId}"] td`, (tds) =>
        Object.fromEntries(tds.map((td) => [td.getAttribute('data-metric'), td.getAttribute('data-value') ?? td.textContent])),
      );
      assert.equal(Number(cells.denseFlops), c.denseFlops);
      assert.equal(Number(cells.activeFlops), c.activeFlops);
      assert.equal(Number(cells.reduction), c.reduction);
      assert.equal(cells.latencyDenseMs, c.latencyMs?.dense !== undefined ? String(c.latencyMs.dense) : '—');
      assert.equal(cells.latencyMoeMs, c.latencyMs?.moe !== undefined ? String(c.latencyMs.moe) : '—');
    }
    assert.match(await v.page.$eval(`#cost tr[data-run="${MOE}"] td[data-metric="reduction"]`, (c) => c.textContent!), /^44\.81%$/);
    assert.match(await v.page.$eval(`#cost tr[data-run="${DENSE}"] td[data-metric="denseFlops"]`, (c) => c.textContent!), /556\.7 MFLOPs/);
    await v.page.close();
  });

  test('live evaluation: partial reports update the bars and the progress text, Cancel posts cancel, the final one replaces them', async () => {
    const v = await openWith();
    const base = rep(ADV);
    const partial = (samples: number, scale: number): RobustnessReport => ({
      ...base,
      samples,
      sa: base.sa * scale,
      ra: base.ra * scale,
      routerRobustness: { ...base.routerRobustness!, decisionsKept: 0.5 * scale, accuracy: 0.25 * scale },
      expertRobustness: { ...base.expertRobustness!, accuracy: 0.375 * scale },
      raCurve: base.raCurve.map((p) => ({ eps: p.eps, ra: p.ra * scale })),
    });
    await v.post({ type: 'job', runId: ADV, running: true });
    await describeView(v);
    assert.equal(await v.page.$eval(`.progress[data-run="${ADV}"] .progress-text`, (t) => t.textContent), 'Evaluating: starting…');
    assert.equal(await v.page.$$eval(`button.evaluate[data-run="${ADV}"]`, (b) => b.length), 0, 'no second Evaluate while one runs');

    const p1 = partial(128, 0.5);
    await v.post({ type: 'partial', runId: ADV, report: p1, samplesDone: 128, samplesTotal: 512, final: false });
    let d = await describeView(v);
    const adv = (dd: RobDescriptionMessage) => Object.fromEntries(dd.bars.filter((b) => b.runId === ADV).map((b) => [b.metric, b.value]));
    assert.deepEqual(adv(d), { sa: p1.sa, ra: p1.ra, routerKept: p1.routerRobustness!.decisionsKept, routerAcc: p1.routerRobustness!.accuracy, expertAcc: p1.expertRobustness!.accuracy });
    assert.equal(d.runs.find((r) => r.runId === ADV)!.progress, 'Evaluating: 128 of 512 samples (25%)');
    assert.equal(await v.page.$eval(`#bars rect.bar[data-run="${ADV}"][data-metric="sa"]`, (r) => r.getAttribute('data-value')), String(p1.sa));
    assert.deepEqual(d.curves.find((c) => c.runId === ADV)!.points, p1.raCurve);
    // The other runs keep their saved analyses.
    assert.equal(d.bars.find((b) => b.runId === MOE && b.metric === 'sa')!.value, rep(MOE).sa);

    // Live updates keep the keyboard focus and leave the analysis pickers alone (an open one stays open).
    await v.page.focus(`.progress[data-run="${ADV}"] button.cancel`);
    await v.page.$eval(`select.analysis-select[data-run="${MOE}"]`, (s) => ((s as unknown as { __mark: number }).__mark = 1));
    const p2 = partial(384, 0.75);
    await v.post({ type: 'partial', runId: ADV, report: p2, samplesDone: 384, samplesTotal: 512, final: false });
    d = await describeView(v);
    assert.equal(await v.page.evaluate(() => document.activeElement?.matches('.progress button.cancel') ?? false), true, 'focus kept');
    assert.equal(await v.page.$eval(`select.analysis-select[data-run="${MOE}"]`, (s) => (s as unknown as { __mark?: number }).__mark), 1, 'same picker');
    await v.page.screenshot({ path: path.join(RESULTS, 'robustness-live.png'), fullPage: true });
    assert.equal(adv(d).ra, p2.ra);
    assert.equal(d.runs.find((r) => r.runId === ADV)!.progress, 'Evaluating: 384 of 512 samples (75%)');

    await v.page.click(`.progress[data-run="${ADV}"] button.cancel`);
    const cancels = (await v.sent()).filter((m) => m.type === 'cancel');
    assert.deepEqual(cancels, [{ type: 'cancel', runId: ADV }]);

    const fin = partial(512, 1.0);
    await v.post({ type: 'partial', runId: ADV, report: fin, samplesDone: 512, samplesTotal: 512, final: true });
    d = await describeView(v);
    assert.equal(adv(d).sa, fin.sa);
    assert.equal(adv(d).routerKept, 0.5);
    assert.equal(d.runs.find((r) => r.runId === ADV)!.progress, 'Evaluation finished: 512 of 512 samples');
    assert.equal(await v.page.$$eval(`.progress[data-run="${ADV}"] button.cancel`, (b) => b.length), 0);
    const live = await v.page.$$eval('#bars rect.bar.live', (b) => b.length);
    assert.equal(live, 0, 'a final report is not drawn as partial');

    // The host then reloads from disk: the saved analysis replaces the live one.
    const saved = runs.find((r) => r.runId === ADV)!;
    await v.post({ type: 'run', run: saved });
    await v.post({ type: 'job', runId: ADV, running: false });
    d = await describeView(v);
    assert.equal(adv(d).sa, base.sa);
    const runInfo = d.runs.find((r) => r.runId === ADV)!;
    assert.equal(runInfo.live, false);
    assert.equal(runInfo.progress, undefined);
    assert.equal(runInfo.analysis, saved.analysis!.name);
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('an evaluation that stops early returns to the saved analysis with a note; a partial for a run not shown is ignored', async () => {
    const v = await openWith();
    await v.post({ type: 'job', runId: MOE, running: true });
    await v.post({ type: 'partial', runId: MOE, report: { ...rep(MOE), sa: 0.125 }, samplesDone: 64, samplesTotal: 512, final: false });
    let d = await describeView(v);
    assert.equal(d.bars.find((b) => b.runId === MOE && b.metric === 'sa')!.value, 0.125);
    await v.post({ type: 'job', runId: MOE, running: false, message: 'The evaluation stopped before it finished.' });
    d = await describeView(v);
    assert.equal(d.bars.find((b) => b.runId === MOE && b.metric === 'sa')!.value, rep(MOE).sa);
    assert.equal(await v.page.$eval(`.run-card[data-run="${MOE}"] .run-note`, (n) => n.textContent), 'The evaluation stopped before it finished.');
    await v.post({ type: 'partial', runId: 'other-run', report: rep(MOE), samplesDone: 1, samplesTotal: 2, final: false });
    d = await describeView(v);
    assert.deepEqual(d.runs.map((r) => r.runId), [DENSE, MOE, ADV]);
    const logs = (await v.sent()).filter((m) => m.type === 'log').map((m) => String(m.message));
    assert.ok(logs.some((l) => /other-run, which is not shown/.test(l)));
    await v.page.close();
  });

  test('an invalid report message is rejected with an error shown, and the drawn values stay', async () => {
    const v = await openWith();
    const before = await barValues(v);
    const bad = { ...rep(ADV), raCurve: [{ eps: 0, ra: 'high' }] };
    await v.post({ type: 'partial', runId: ADV, report: bad, samplesDone: 10, samplesTotal: 512, final: false });
    const d = await describeView(v);
    assert.match(d.error!, /partial: invalid report \(raCurve: expected \[\{eps, ra\}\]\)/);
    const banner = await v.page.$eval('#error-banner', (b) => ({ hidden: (b as HTMLElement).hidden, text: b.textContent, role: b.getAttribute('role') }));
    assert.equal(banner.hidden, false);
    assert.equal(banner.role, 'alert');
    assert.match(banner.text!, /Ignored an update from the extension: partial: invalid report \(raCurve/);
    assert.deepEqual(await barValues(v), before, 'nothing redrawn from the bad report');
    assert.equal(d.runs.find((r) => r.runId === ADV)!.live, false);
    const logs = (await v.sent()).filter((m) => m.type === 'log');
    assert.equal(logs.length, 1);
    assert.equal(logs[0].level, 'warn');
    // Other malformed messages, too.
    await v.post({ type: 'partial', runId: ADV, report: rep(ADV), samplesDone: 600, samplesTotal: 512, final: false });
    await v.post({ type: 'init', runs: [{ runId: '../x', name: 'x' }], trusted: true });
    await v.post({ type: 'bogus' });
    const d2 = await describeView(v);
    assert.match(d2.error!, /unknown message type "bogus"/);
    const logs2 = (await v.sent()).filter((m) => m.type === 'log').map((m) => String(m.message));
    assert.equal(logs2.length, 4);
    assert.match(logs2[1], /samplesDone/);
    assert.match(logs2[2], /init: runs\[0\]/);
    // Dismissable.
    await v.page.click('#error-banner button');
    await v.page.waitForFunction(() => (document.getElementById('error-banner') as HTMLElement).hidden);
    await v.page.close();
  });

  test('CSV and JSON exports hold exactly the report numbers; SVG and PNG of the charts', async () => {
    const v = await openWith({ theme: 'dark' });
    const csv = await exported(v, 'csv');
    assert.equal(csv.fileName, `robustness-${runs.map((r) => r.name).join('-')}.csv`);
    const lines = csv.data.trim().split('\n');
    assert.equal(lines[0], 'run_id,run_name,analysis,section,item,metric,value');
    const rows = lines.slice(1).map((l) => l.split(','));
    const get = (run: string, section: string, item: string, metric: string) => {
      const found = rows.filter((r) => r[0] === run && r[3] === section && r[4] === item && r[5] === metric);
      assert.equal(found.length, 1, `${run} ${section} ${item} ${metric}`);
      return found[0][6];
    };
    for (const r of runs) {
      const x = r.analysis!.report;
      assert.ok(rows.filter((row) => row[0] === r.runId).every((row) => row[2] === r.analysis!.name && row[1] === r.name));
      assert.equal(Number(get(r.runId, 'summary', '', 'samples')), x.samples);
      for (const m of BAR_METRICS) {
        const want = m.value(x);
        assert.equal(get(r.runId, 'summary', '', m.key), want === null ? 'n/a' : String(want));
      }
      for (const a of x.attacks) {
        assert.equal(Number(get(r.runId, 'attack', a.name, 'accuracy')), a.accuracy);
        assert.equal(Number(get(r.runId, 'attack', a.name, 'eps')), a.settings.eps);
        assert.equal(Number(get(r.runId, 'attack', a.name, 'stepSize')), a.settings.stepSize);
        assert.equal(Number(get(r.runId, 'attack', a.name, 'steps')), a.settings.steps);
        assert.equal(Number(get(r.runId, 'attack', a.name, 'restarts')), a.settings.restarts);
        assert.equal(get(r.runId, 'attack', a.name, 'norm'), a.settings.norm);
      }
      for (const p of x.raCurve) assert.equal(Number(get(r.runId, 'raCurve', String(p.eps), 'ra')), p.ra);
      assert.deepEqual(rows.filter((row) => row[0] === r.runId && row[3] === 'raCurve').map((row) => Number(row[4])), x.raCurve.map((p) => p.eps));
      for (const p of x.perExpert) {
        assert.equal(Number(get(r.runId, 'perExpert', String(p.expert), 'sa')), p.sa);
        assert.equal(Number(get(r.runId, 'perExpert', String(p.expert), 'ra')), p.ra);
      }
      for (const l of x.layers) {
        assert.equal(Number(get(r.runId, 'layer', l.layer, 'changeRate')), l.changeRate);
        assert.equal(get(r.runId, 'layer', l.layer, 'collapsed'), String(l.collapsed));
      }
      assert.equal(Number(get(r.runId, 'cost', '', 'denseFlops')), x.cost.denseFlops);
      assert.equal(Number(get(r.runId, 'cost', '', 'activeFlops')), x.cost.activeFlops);
      assert.equal(Number(get(r.runId, 'cost', '', 'reduction')), x.cost.reduction);
      if (x.cost.latencyMs?.moe !== undefined) assert.equal(Number(get(r.runId, 'cost', '', 'latencyMoeMs')), x.cost.latencyMs.moe);
    }
    const json = JSON.parse((await exported(v, 'json')).data) as { runs: { runId: string; analysis: string; report: Partial<RobustnessReport> }[] };
    assert.deepEqual(json.runs.map((r) => r.runId), runs.map((r) => r.runId));
    for (const r of json.runs) {
      const x = rep(r.runId);
      for (const k of ['samples', 'sa', 'ra', 'attack', 'routerRobustness', 'expertRobustness', 'perExpert', 'attacks', 'raCurve', 'cost', 'seconds'] as const) {
        assert.deepEqual(r.report[k], x[k], `${r.runId} ${k}`);
      }
      assert.deepEqual(r.report.layers, x.layers.map((l) => ({ layer: l.layer, changeRate: l.changeRate, collapsed: l.collapsed, top1Share: l.top1Share })));
    }
    const svg = await exported(v, 'svg');
    assert.match(svg.data, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const title of ['Accuracy and robustness', 'RA vs ε', 'Routing change rate per MoE layer']) assert.ok(svg.data.includes(title), title);
    assert.ok(!svg.data.includes('var(--'), 'colours resolved');
    assert.equal((svg.data.match(/<rect[^>]*data-metric=/g) ?? []).length, 12, 'every drawn bar is in the SVG');
    fs.writeFileSync(path.join(RESULTS, 'robustness-export.svg'), svg.data);
    await exportedPng(v, 10_000, 'robustness-export.png');
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('controls: Evaluate only in a trusted workspace; analysis picker, remove and add post to the host; state persisted', async () => {
    const untrusted = await openWith({}, runs, false);
    assert.equal(await untrusted.page.$$eval('button.evaluate', (b) => b.length), 0);
    await untrusted.page.close();

    const v = await openWith();
    assert.deepEqual(await v.page.$$eval('button.evaluate', (b) => b.map((e) => e.getAttribute('data-run'))), [DENSE, MOE, ADV]);
    await v.page.click(`button.evaluate[data-run="${MOE}"]`);
    await v.page.selectOption(`select.analysis-select[data-run="${ADV}"]`, FILES[ADV].others[0]);
    await v.page.click(`button.remove[data-run="${DENSE}"]`);
    await v.page.click('#add-runs');
    await v.page.focus(`button.open-routing[data-run="${ADV}"]`);
    await v.page.keyboard.press('Enter');
    const sent = (await v.sent()).filter((m) => m.type !== 'ready' && m.type !== 'description');
    assert.deepEqual(sent, [
      { type: 'evaluate', runId: MOE },
      { type: 'selectAnalysis', runId: ADV, name: FILES[ADV].others[0] },
      { type: 'removeRun', runId: DENSE },
      { type: 'addRuns' },
      { type: 'openRouting', runId: ADV, analysis: FILES[ADV].shown },
    ]);
    for (const m of sent) assert.equal(parseRobustnessToHost(m).ok, true, `host accepts ${m.type}`);
    const state = await v.page.evaluate(() => (window as unknown as { __state: unknown }).__state);
    assert.deepEqual(state, { runIds: [DENSE, MOE, ADV], selected: { [ADV]: FILES[ADV].others[0] }, epsIn255: false });
    assert.deepEqual(parseRobustnessViewState(state), state);
    // The host answers the pick with that analysis.
    const older = await readAnalysis(RUNS_DIR, ADV, FILES[ADV].others[0]);
    await v.post({ type: 'run', run: { ...runs[2], analysis: older } });
    const d = await describeView(v);
    assert.equal(d.runs.find((r) => r.runId === ADV)!.analysis, FILES[ADV].others[0]);
    assert.equal(d.bars.find((b) => b.runId === ADV && b.metric === 'sa')!.value, older.report.sa);
    assert.equal(await v.page.$eval(`select.analysis-select[data-run="${ADV}"]`, (s) => (s as HTMLSelectElement).value), FILES[ADV].others[0]);
    await v.page.close();
  });

  test('restores its options from the saved state, and says why a run shows nothing (unreadable file, no analysis)', async () => {
    let brokenError = '';
    try {
      await readAnalysis(RUNS_DIR, MOE, 'broken.json');
    } catch (e) {
      brokenError = (e as Error).message;
    }
    assert.match(brokenError, /broken\.json is not valid JSON/);
    const broken: RobustnessRunData = { ...runs[1], analysis: undefined, error: brokenError };
    const none: RobustnessRunData = { runId: 'fresh-run', name: 'fresh', method: 'advmoe', status: 'finished', files: [], error: 'Run fresh has no robustness analysis yet.' };
    const v = await openWith({ state: { runIds: [ADV], selected: {}, epsIn255: true } }, [broken, none]);
    assert.equal(await v.page.$eval('#eps-255', (e) => (e as HTMLInputElement).checked), true);
    const errs = await v.page.$$eval('.run-card .run-error', (es) => es.map((e) => e.textContent));
    assert.deepEqual(errs, [brokenError, 'Run fresh has no robustness analysis yet.']);
    const empty = await v.page.$eval('#empty', (e) => ({ hidden: (e as HTMLElement).hidden, text: e.textContent }));
    assert.equal(empty.hidden, false);
    assert.match(empty.text!, /No robustness analysis to show yet: click Evaluate/);
    assert.equal(await v.page.$eval('#content', (e) => (e as HTMLElement).hidden), true);
    await v.page.screenshot({ path: path.join(RESULTS, 'robustness-errors.png'), fullPage: true });
    // With the good runs back, the curve's axis is in /255 as restored.
    await v.post({ type: 'init', runs, trusted: true });
    await describeView(v);
    assert.equal(await v.page.$eval('#curves text.axis-label', (t) => t.textContent), 'ε (× 1/255)');
    await v.page.close();
  });

  test('many runs and layers: 10 runs × 48 MoE layers draw every bar', async () => {
    const v = await h.open('robustness', { width: 1200 });
    const base = rep(ADV);
    const layers = Array.from({ length: 48 }, (_, l) => ({ ...base.layers[0], layer: `block${l}.conv`, changeRate: (l % 17) / 20, collapsed: l % 13 === 0 }));
    const many = Array.from({ length: 10 }, (_, i) => ({
      ...runs[2],
      runId: `run-${i}`,
      name: `run ${i}`,
      analysis: { ...runs[2].analysis!, report: { ...base, sa: 0.5 + i / 40, layers } },
    }));
    const t0 = Date.now();
    await v.post({ type: 'init', runs: many, trusted: true });
    const d = await describeView(v);
    const ms = Date.now() - t0;
    assert.equal(d.layers.length, 480);
    assert.equal(await v.page.$$eval('#layers rect.bar', (r) => r.length), 480);
    assert.equal(d.bars.length, 50);
    assert.deepEqual(d.bars.filter((b) => b.metric === 'sa').map((b) => b.value), many.map((m) => m.analysis.report.sa));
    assert.ok(ms < 10_000, `rendered in ${ms} ms`);
    console.log(`# 10 runs × 48 layers: init to drawn in ${ms} ms`);
    await v.page.close();
  });

  /** Each bar label with its box, and the box of everything under the plot (x tick labels, the note). */
  const barLayout = (v: LoadedView) =>
    v.page.evaluate(() => {
      const box = (e: Element) => {
        const r = e.getBoundingClientRect();
        return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };
      };
      const svg = document.querySelector('#bars svg')!;
      return {
        labels: Array.from(document.querySelectorAll("#bars text.bar-label")).map((t) => ({ text: t.textContent ?? '', run: t.getAttribute('data-run')!, metric: t.getAttribute('data-metric')!, ...box(t) })),
        ticks: Array.from(document.querySelectorAll("#bars g.x-axis .tick text")).map(box),
        svg: box(svg),
        note: box(document.querySelector('#bars .note')!),
      };
    });

  test('bar labels: one format (one decimal, %) with 1 run and with 3 runs; in a 450 px column nothing overlaps the caption', async () => {
    for (const width of [1000, 450]) {
      for (const shown of [runs.slice(2), runs]) {
        const v = await openWith({ width }, shown);
        const layout = await barLayout(v);
        const drawn = (await describeView(v)).bars.filter((b) => b.value !== null);
        assert.equal(layout.labels.length, drawn.length, `${width} px, ${shown.length} run(s): a label on every bar`);
        for (const l of layout.labels) {
          const value = drawn.find((b) => b.runId === l.run && b.metric === l.metric)!.value!;
          assert.equal(l.text, `${(value * 100).toFixed(1)}%`, `${width} px, ${shown.length} run(s), ${l.metric}: the same rounding everywhere`);
          assert.ok(l.bottom <= layout.note.top && l.top >= layout.svg.top - 1, `${width} px: label ${l.text} stays inside the chart`);
        }
        for (const t of layout.ticks) assert.ok(t.bottom <= layout.svg.bottom + 1 && t.bottom <= layout.note.top, `${width} px: metric names end above the caption (${t.bottom} vs ${layout.note.top})`);
        assert.deepEqual(v.errors, []);
        await v.page.close();
      }
    }
  });

  test('while an evaluation has no report yet, the run card says what the notification says', async () => {
    const v = await openWith();
    await v.post({ type: 'job', runId: ADV, running: true });
    await describeView(v);
    assert.equal(await v.page.$eval(`.progress[data-run="${ADV}"] .progress-text`, (t) => t.textContent), 'Evaluating: starting…');
    await v.post({ type: 'job', runId: ADV, running: true, activity: 'waiting for the engine (1 other job running)' });
    await describeView(v);
    assert.equal(await v.page.$eval(`.progress[data-run="${ADV}"] .progress-text`, (t) => t.textContent), 'Evaluating: waiting for the engine (1 other job running)');
    await v.post({ type: 'job', runId: ADV, running: true, activity: 'final analysis: pgd batch 2/4 (2/4)' });
    await describeView(v);
    assert.equal(await v.page.$eval(`.progress[data-run="${ADV}"] .progress-text`, (t) => t.textContent), 'Evaluating: final analysis: pgd batch 2/4 (2/4)');
    await v.page.close();
  });

  screenshotTests('robustness', ({ theme, width }) => openWith({ theme, width }), {
    text: '#bars g.y-axis .tick text',
    thickLine: '#curves path.curve',
    hover: async (v) => {
      await v.page.hover(`#bars rect.bar[data-run="${MOE}"][data-metric="routerKept"]`);
      await v.page.waitForSelector('#tooltip:not([hidden])');
    },
  });
});

describe('Robustness protocol validators', () => {
  test('the host accepts known view messages and rejects malformed ones', () => {
    assert.equal(parseRobustnessToHost({ type: 'ready' }).ok, true);
    assert.equal(parseRobustnessToHost({ type: 'evaluate', runId: ADV }).ok, true);
    assert.equal(parseRobustnessToHost({ type: 'evaluate', runId: '../../etc' }).ok, false);
    assert.equal(parseRobustnessToHost({ type: 'selectAnalysis', runId: ADV, name: '../state.json' }).ok, false);
    assert.equal(parseRobustnessToHost({ type: 'selectAnalysis', runId: ADV, name: 'x.json' }).ok, true);
    assert.equal(parseRobustnessToHost({ type: 'export', format: 'csv', fileName: 'a.csv', data: 'x' }).ok, true);
    assert.equal(parseRobustnessToHost({ type: 'export', format: 'csv', fileName: 'a.exe', data: 'x' }).ok, false);
    assert.equal(parseRobustnessToHost({ type: 'export', format: 'exe', fileName: 'a.exe', data: 'x' }).ok, false);
    assert.equal(parseRobustnessToHost({ type: 'openRouting', runId: ADV, analysis: 'a/b.json' }).ok, false);
    assert.equal(parseRobustnessToHost({ type: 'log', level: 'fatal', message: 'x' }).ok, false);
    assert.equal(parseRobustnessToHost({ type: 'nope' }).ok, false);
    assert.equal(parseRobustnessToHost('ready').ok, false);
  });

  test('the view accepts the fixture runs and rejects bad reports, progress and runs', () => {
    assert.equal(parseHostToRobustness({ type: 'init', runs, trusted: true }).ok, true);
    assert.equal(parseHostToRobustness({ type: 'init', runs, trusted: 'yes' }).ok, false);
    const good = { type: 'partial', runId: ADV, report: rep(ADV), samplesDone: 1, samplesTotal: 2, final: false };
    assert.equal(parseHostToRobustness(good).ok, true);
    assert.equal(parseHostToRobustness({ ...good, samplesDone: 3 }).ok, false);
    const r = parseHostToRobustness({ ...good, report: { ...rep(ADV), sa: 'x' } });
    assert.equal(r.ok, false);
    assert.match((r as { error: string }).error, /partial: invalid report \(sa: expected a number\)/);
    const badRun = parseHostToRobustness({ type: 'run', run: { ...runs[0], analysis: { ...runs[0].analysis!, report: { ...rep(DENSE), layers: 3 } } } });
    assert.equal(badRun.ok, false);
    assert.equal(parseRobustnessViewState({ runIds: ['a'], selected: { a: '../x.json', b: 'y.json' } })!.selected.a, undefined);
  });
});

describe('Robustness host: which analysis each run shows (loadRunData)', () => {
  /** loadRunData lives in the panel module, which imports `vscode`: give it an empty stand-in (only types are used). */
  async function loadRunDataFn(): Promise<typeof import('../../extension/robustnessPanel').loadRunData> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- Module._resolveFilename is not in the typed ESM API
    const Module = require('node:module') as { _resolveFilename: (req: string, ...rest: unknown[]) => string };
    const orig = Module._resolveFilename;
    const stub = path.join(RESULTS, 'vscode-stub.js');
    fs.writeFileSync(stub, 'module.exports = {};\n');
    Module._resolveFilename = (req: string, ...rest: unknown[]) => (req === 'vscode' ? stub : orig(req, ...rest));
    try {
      return (await import('../../extension/robustnessPanel')).loadRunData;
    } finally {
      Module._resolveFilename = orig;
    }
  }

  test('newest readable file by default (unreadable newer ones become warnings), the picked one when given, clear errors otherwise', async () => {
    const loadRunData = await loadRunDataFn();
    const tmp = fs.mkdtempSync(path.join(RESULTS, 'robustness-runs-'));
    try {
      fs.cpSync(RUNS_DIR, tmp, { recursive: true });
      const at = (id: string, name: string, minutes: number) => {
        const t = new Date(Date.UTC(2026, 0, 20, 12, minutes));
        fs.utimesSync(path.join(tmp, id, 'analysis', name), t, t);
      };
      at(ADV, FILES[ADV].others[0], 0);
      at(ADV, FILES[ADV].shown, 10);
      at(MOE, FILES[MOE].shown, 0);
      at(MOE, 'broken.json', 10); // the newest file of this run is broken
      const info = { name: 'n', method: 'advmoe', status: 'finished' };

      const adv = await loadRunData(tmp, ADV, info);
      assert.deepEqual(adv.files.map((f) => f.name), [FILES[ADV].shown, FILES[ADV].others[0]]);
      assert.equal(adv.analysis!.name, FILES[ADV].shown);
      assert.deepEqual(adv.analysis!.report, rep(ADV));
      assert.equal(adv.error, undefined);

      const picked = await loadRunData(tmp, ADV, info, FILES[ADV].others[0]);
      assert.equal(picked.analysis!.name, FILES[ADV].others[0]);

      const moe = await loadRunData(tmp, MOE, info);
      assert.equal(moe.analysis!.name, FILES[MOE].shown, 'falls back to the newest readable file');
      assert.equal(moe.warnings!.length, 1);
      assert.match(moe.warnings![0], /^Skipped broken\.json: .*broken\.json is not valid JSON/);

      const brokenPick = await loadRunData(tmp, MOE, info, 'broken.json');
      assert.equal(brokenPick.analysis, undefined);
      assert.match(brokenPick.error!, /broken\.json is not valid JSON/);

      fs.rmSync(path.join(tmp, DENSE, 'analysis'), { recursive: true });
      const none = await loadRunData(tmp, DENSE, { ...info, name: 'dense' });
      assert.match(none.error!, /^Run dense has no robustness analysis yet/);
      const missing = await loadRunData(undefined, 'gone', info);
      assert.match(missing.error!, /Run gone was not found/);
      for (const r of [adv, moe, brokenPick, none, missing]) assert.equal(parseHostToRobustness({ type: 'run', run: r }).ok, true, 'the view accepts it');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
