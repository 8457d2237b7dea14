/**
 * The Routing view in headless Chromium, fed analyses the way the host feeds it (a `show` message with a report read
 * by extension/runsDisk.ts from the fixtures under fixtures/routing/, or generated here for the large case).
 * Needs `dist/webview/routing.js` (npm run test:webview builds it) and Debian's chromium.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { filterSamples, parseRobustnessReport, type InspectorFilter, type RobustnessReport, type StoredAnalysis } from '../../webview/analysisProtocol';
import type { DrawnHeatmap, RoutingDescription, ShowMessage } from '../../webview/routing/protocol';
import { checkFilter, chooseAnalysis, countOf, loadBalance, parseHostToRouting, parseRoutingToHost, parseRoutingViewState } from '../../webview/routing/protocol';
import { listAnalysisFiles, readAnalysis } from '../../extension/runsDisk';
import { describeView as describeAny, exported, exportedPng, RESULTS, ROOT, fileHarness, type Harness, type LoadedView, screenshotTests } from './harness';

const FIX = path.join(ROOT, 'test/webview/fixtures/routing/runs');
const RUN = '20260103-advmoe';

const h = fileHarness();
let small: StoredAnalysis;

before(async () => {
  small = await readAnalysis(FIX, RUN, 'eval-small.json');
});

function showOf(analysis: StoredAnalysis | undefined, extra: Partial<ShowMessage> = {}): ShowMessage {
  return {
    type: 'show',
    runsDir: FIX,
    runId: RUN,
    runName: 'resnet-advmoe',
    analyses: analysis ? [{ name: analysis.name, mtime: analysis.mtime }] : [],
    followLatest: true,
    analysis,
    moe: true,
    ...extra,
  };
}

async function openWith(msg: ShowMessage, opts: Parameters<Harness['open']>[1] = {}): Promise<LoadedView> {
  const v = await h.open('routing', { width: 1200, ...opts });
  await showIn(v, msg);
  return v;
}

async function showIn(v: LoadedView, msg: ShowMessage): Promise<void> {
  const n = await v.renders();
  await v.post(msg);
  await v.waitRender(n);
}

const describeView = (v: LoadedView) => describeAny<RoutingDescription>(v);

const map = (d: RoutingDescription, id: DrawnHeatmap['id']) => {
  const m = d.heatmaps.find((x) => x.id === id);
  assert.ok(m, `heatmap ${id} drawn`);
  return m;
};

/** Page coordinates of the centre of cell (r, c) of a heatmap. */
async function cellPoint(v: LoadedView, m: DrawnHeatmap, r: number, c: number): Promise<{ x: number; y: number }> {
  const canvas = `figure[data-heatmap="${m.id}"] canvas`;
  const g = m.geometry;
  let box = (await (await v.page.$(canvas))!.boundingBox())!;
  const rowMid = () => g.y0 + r * g.pitch + g.labelAbove + 0.5 * g.cellH;
  let y = box.y + rowMid();
  const height = v.page.viewportSize()!.height;
  if (y < 20 || y > height - 20) {
    // Scroll the cell to the middle of the viewport (mouse events only reach what is on screen).
    await v.page.evaluate((dy) => window.scrollBy(0, dy), y - height / 2);
    box = (await (await v.page.$(canvas))!.boundingBox())!;
    y = box.y + rowMid();
  }
  return { x: box.x + g.x0 + (c + 0.5) * g.cellW, y };
}

/** The canvas pixel (RGB) of each cell, near its top-left corner (away from any number written in it). */
async function cellPixels(v: LoadedView, m: DrawnHeatmap): Promise<number[][]> {
  return v.page.$eval(
    `figure[data-heatmap="${m.id}"] canvas`,
    (cv, g) => {
      const canvas = cv as HTMLCanvasElement;
      const dpr = canvas.width / canvas.clientWidth;
      const ctx = canvas.getContext('2d')!;
      const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const out: number[][] = [];
      for (let r = 0; r < g.rows; r++) {
        for (let c = 0; c < g.cols; c++) {
          const x = Math.floor((g.x0 + c * g.cellW + 2) * dpr);
          const y = Math.floor((g.y0 + r * g.pitch + g.labelAbove + 2) * dpr);
          const i = (y * canvas.width + x) * 4;
          out.push([img.data[i], img.data[i + 1], img.data[i + 2]]);
        }
      }
      return out;
    },
    { ...m.geometry, rows: m.rows, cols: m.cols },
  );
}

const luminance = ([r, g, b]: number[]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
const rgb = (s: string) => (/rgb\((\d+), (\d+), (\d+)\)/.exec(s) ?? []).slice(1).map(Number);

async function lastOpen(v: LoadedView): Promise<unknown> {
  const sent = (await v.sent()).filter((m) => m.type === 'openInspector');
  return sent.length ? sent[sent.length - 1].filter : undefined;
}
async function waitOpenCount(v: LoadedView, n: number): Promise<void> {
  await v.page.waitForFunction(
    (k) => (window as unknown as { __sent: { type: string }[] }).__sent.filter((m) => m.type === 'openInspector').length >= k,
    n,
  );
}

/** A report of L layers × N experts (k = 2) with deterministic loads; no per-sample data (not needed to draw). */
function largeReport(L: number, N: number, classes: number, samples: number): RobustnessReport {
  let seed = 5;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const k = 2;
  const layers = Array.from({ length: L }, (_, l) => {
    const counts = (skew: number) => {
      const w = Array.from({ length: N }, (_, e) => rand() + (e === l % N ? skew : 0));
      const s = w.reduce((a, b) => a + b, 0);
      // Integer selection counts summing to k·samples, each ≤ samples.
      const c = w.map((x) => Math.min(samples, Math.floor((x / s) * k * samples)));
      let rest = k * samples - c.reduce((a, b) => a + b, 0);
      for (let e = 0; rest > 0; e = (e + 1) % N) {
        if (c[e] < samples) {
          c[e]++;
          rest--;
        }
      }
      return c;
    };
    const cc = counts(l === 7 ? 400 : 1);
    const ca = counts(3);
    const perClass = (tot: number[]) =>
      Array.from({ length: classes }, (_, y) => tot.map((t) => Math.floor(t / classes) + (y < t % classes ? 1 : 0)));
    return {
      layer: `stage${Math.floor(l / 10)}.block${l % 10}.conv`,
      changeRate: Math.round(rand() * 1000) / 1000,
      loadClean: cc.map((c) => c / samples),
      loadAdv: ca.map((c) => c / samples),
      perClassClean: perClass(cc),
      perClassAdv: perClass(ca),
      collapsed: l === 7,
      top1Share: l === 7 ? 0.97 : Math.round(rand() * 100) / 1000,
      nonFinite: 0,
    };
  });
  return { ...small.report, samples, layers, perSample: undefined };
}

describe('Routing protocol (host side)', () => {
  test('validates webview messages and checks Inspector filters against the report', () => {
    assert.equal(parseRoutingToHost({ type: 'ready' }).ok, true);
    assert.equal(parseRoutingToHost({ type: 'refresh' }).ok, true);
    assert.equal(parseRoutingToHost({ type: 'selectAnalysis', name: 'eval-small.json' }).ok, true);
    assert.equal(parseRoutingToHost({ type: 'selectAnalysis', name: null }).ok, true);
    assert.equal(parseRoutingToHost({ type: 'selectAnalysis', name: '../../state.json' }).ok, false);
    const open = parseRoutingToHost({ type: 'openInspector', filter: { route: { layer: 2, expert: 1, on: 'clean' }, label: 3, extra: 1 } });
    assert.deepEqual(open, { ok: true, value: { type: 'openInspector', filter: { route: { layer: 2, expert: 1, on: 'clean' }, label: 3 } } });
    assert.equal(parseRoutingToHost({ type: 'openInspector', filter: { route: { layer: -1, expert: 1, on: 'clean' } } }).ok, false);
    assert.equal(parseRoutingToHost({ type: 'openInspector', filter: { route: { layer: 1, expert: 1, on: 'both' } } }).ok, false);
    assert.equal(parseRoutingToHost({ type: 'export', format: 'json', fileName: 'a.json', data: '{}' }).ok, true);
    assert.equal(parseRoutingToHost({ type: 'export', format: 'csv', fileName: '../x.csv', data: '' }).ok, false);
    assert.equal(parseRoutingToHost({ type: 'nope' }).ok, false);
    const r = small.report;
    assert.equal(checkFilter({ route: { layer: 5, expert: 3, on: 'adversarial' }, label: 9 }, r), undefined);
    assert.match(checkFilter({ route: { layer: 6, expert: 0, on: 'clean' } }, r)!, /layer 6 is not one of the 6/);
    assert.match(checkFilter({ route: { layer: 0, expert: 4, on: 'clean' } }, r)!, /expert 4 is not one of the 4/);
    assert.match(checkFilter({ label: 10 }, r)!, /class 10/);
    assert.equal(parseHostToRouting(showOf(small)).ok, true);
    const bad = JSON.parse(JSON.stringify(showOf(small)));
    bad.analysis.report.layers[0].loadAdv = [1];
    assert.match((parseHostToRouting(bad) as { error: string }).error, /layers\[0\]\.loadAdv/);
    assert.deepEqual(parseRoutingViewState({ runsDir: '/r', runId: 'x', classLayer: 2, classOn: 'adversarial', classNorm: 'share', analysis: 'a.json' }), {
      runsDir: '/r', runId: 'x', analysis: 'a.json', classLayer: 2, classOn: 'adversarial', classNorm: 'share',
    });
    assert.equal(parseRoutingViewState({ runId: 'x' }), undefined);
    // Load balance by hand: loads [0.5, 0.5, 0, 0] (k = 1): max share 0.5, CV = 1, entropy = ln2 / ln4 = 0.5.
    const b = loadBalance([0.5, 0.5, 0, 0]);
    assert.equal(b.maxShare, 0.5);
    assert.ok(Math.abs(b.cv - 1) < 1e-12 && Math.abs(b.entropy - 0.5) < 1e-12);
  });

  test('which analysis the host shows: the pick while it exists, else the newest, with a notice', () => {
    const files = [{ name: 'new.json', mtime: 3 }, { name: 'old.json', mtime: 1 }];
    assert.deepEqual(chooseAnalysis(files, undefined), { name: 'new.json' });
    assert.deepEqual(chooseAnalysis(files, 'new.json'), { name: 'new.json', picked: 'new.json', notice: undefined });
    const older = chooseAnalysis(files, 'old.json');
    assert.equal(older.name, 'old.json');
    assert.equal(older.picked, 'old.json');
    assert.match(older.notice!, /A newer analysis exists: new\.json/);
    const gone = chooseAnalysis(files, 'gone.json');
    assert.equal(gone.name, 'new.json');
    assert.equal(gone.picked, undefined, 'follows the newest again');
    assert.match(gone.notice!, /gone\.json is no longer there/);
    assert.deepEqual(chooseAnalysis([], undefined), { name: undefined });
  });

  test('analysis files on disk: listed, read, and an invalid one named with its problem', async () => {
    const names = (await listAnalysisFiles(FIX, RUN)).map((a) => a.name).sort();
    assert.deepEqual(names, ['broken.json', 'eval-small.json']);
    await assert.rejects(readAnalysis(FIX, RUN, 'broken.json'), /broken\.json is not a robustness report: layers\[1\]\.loadAdv: expected 4 experts/);
  });
});

describe('Routing view in Chromium', () => {
  test('loads under its CSP, says ready first, and every clean/adversarial cell equals the fixture (values, counts, colours)', async () => {
    const v = await openWith(showOf(small));
    assert.equal((await v.sent())[0].type, 'ready');
    const d = await describeView(v);
    assert.equal(d.status, 'shown');
    assert.equal(d.analysis, 'eval-small.json');
    const r = small.report;
    const n = r.samples;
    for (const id of ['clean', 'adversarial'] as const) {
      const m = map(d, id);
      assert.equal(m.rows, r.layers.length);
      assert.equal(m.cols, 4);
      assert.equal(m.cells, r.layers.length * 4);
      const want = r.layers.flatMap((l) => (id === 'clean' ? l.loadClean : l.loadAdv));
      assert.deepEqual(m.values, want, `${id}: every cell equals the report`);
      assert.deepEqual(m.counts, want.map((f) => countOf(f, n)));
      // Counts are what the per-sample routing says.
      const p = r.perSample!;
      const route = id === 'clean' ? p.routeClean : p.routeAdv;
      for (let l = 0; l < r.layers.length; l++) {
        for (let e = 0; e < 4; e++) assert.equal(m.counts[l * 4 + e], route[l].filter((x) => x === e).length, `${id} L${l} e${e}`);
      }
      assert.deepEqual(m.rowLabels, r.layers.map((l, i) => `L${i} ${l.layer}`));
      // The canvas shows the value: viridis gets brighter with the value, equal values get equal colours.
      const px = await cellPixels(v, m);
      const order = want.map((val, i) => [val, luminance(px[i])]).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < order.length; i++) {
        if (order[i][0] > order[i - 1][0]) assert.ok(order[i][1] >= order[i - 1][1] - 0.5, `${id}: brighter for larger values`);
        else assert.ok(Math.abs(order[i][1] - order[i - 1][1]) < 0.5, `${id}: equal values, equal colours`);
      }
    }
    assert.deepEqual(map(d, 'clean').domain, map(d, 'adversarial').domain, 'clean and adversarial share one scale');
    assert.equal(d.balanceRows, r.layers.length);
    assert.deepEqual(v.errors, [], 'no console errors (CSP violations show here)');
    await v.page.close();
  });

  test('difference map is clean − adversarial in every cell, on a scale symmetric around 0 with 0 at the centre colour', async () => {
    const v = await openWith(showOf(small));
    const d = await describeView(v);
    const m = map(d, 'difference');
    const r = small.report;
    const want = r.layers.flatMap((l) => l.loadClean.map((c, e) => c - l.loadAdv[e]));
    assert.deepEqual(m.values, want);
    const maxAbs = Math.max(...want.map(Math.abs));
    assert.equal(m.domain.length, 3);
    assert.equal(m.domain[0], -maxAbs);
    assert.equal(m.domain[1], 0);
    assert.equal(m.domain[2], maxAbs);
    assert.equal(m.zeroColor, 'rgb(247, 247, 247)', 'RdBu centre (#f7f7f7)');
    const px = await cellPixels(v, m);
    const zeros = want.flatMap((x, i) => (x === 0 ? [i] : []));
    assert.ok(zeros.length >= 4, 'the fixture has cells with no difference (layer 0 never changes)');
    for (const i of zeros) assert.deepEqual(px[i], rgb(m.zeroColor), `cell ${i} (difference 0) in the centre colour`);
    for (let i = 0; i < want.length; i++) {
      if (want[i] > 0.02) assert.ok(px[i][2] > px[i][0], `cell ${i} (+${want[i]}) is blue`);
      if (want[i] < -0.02) assert.ok(px[i][0] > px[i][2], `cell ${i} (${want[i]}) is red`);
    }
    const legend = await v.page.$eval('figure[data-heatmap="difference"] .legend', (e) => e.textContent ?? '');
    assert.match(legend, /clean − adversarial/);
    assert.match(await v.page.$eval('figure[data-heatmap="difference"] h3', (e) => e.textContent ?? ''), /Difference \(clean − adversarial\)/);
    await v.page.close();
  });

  test('class × expert for a chosen layer equals the per-class counts (clean and adversarial, counts and row shares)', async () => {
    const v = await openWith(showOf(small));
    const r = small.report;
    let d = await describeView(v);
    assert.deepEqual(map(d, 'class').values, r.layers[0].perClassClean.flat(), 'layer 0, clean, counts by default');
    await v.page.selectOption('#class-layer', '3');
    await v.page.check('#class-on-adversarial');
    d = await describeView(v);
    assert.equal(d.classLayer, 3);
    assert.equal(d.classOn, 'adversarial');
    const m = map(d, 'class');
    assert.equal(m.rows, 10);
    assert.equal(m.cols, 4);
    assert.deepEqual(m.values, r.layers[3].perClassAdv.flat());
    assert.deepEqual(m.counts, r.layers[3].perClassAdv.flat());
    await v.page.check('#class-norm-share');
    d = await describeView(v);
    const shares = r.layers[3].perClassAdv.flatMap((row) => row.map((x) => x / row.reduce((a, b) => a + b, 0)));
    assert.deepEqual(map(d, 'class').values, shares);
    assert.deepEqual(map(d, 'class').domain, [0, 1]);
    // The layer picker marks collapsed layers.
    const opt = await v.page.$eval('#class-layer option[value="3"]', (o) => o.textContent ?? '');
    assert.match(opt, /⚠ collapsed/);
    // Hover a class cell: exact count and its share.
    const pt = await cellPoint(v, map(d, 'class'), 2, 1);
    await v.page.mouse.move(pt.x, pt.y);
    await v.page.waitForSelector('figure[data-heatmap="class"] .tooltip:not([hidden])');
    const tip = await v.page.$eval('figure[data-heatmap="class"] .tooltip', (t) => ({ text: t.textContent ?? '', count: t.getAttribute('data-count'), label: t.getAttribute('data-label') }));
    const count = r.layers[3].perClassAdv[2][1];
    const total = r.layers[3].perClassAdv[2].reduce((a, b) => a + b, 0);
    assert.equal(tip.count, String(count));
    assert.equal(tip.label, '2');
    // The share as every view writes a percentage: one decimal.
    assert.ok(tip.text.includes(`${count} of ${total} (${((100 * count) / total).toFixed(1)}% of the class’s)`), tip.text);
    // Click: Inspector on class 2 routed to expert 1 in layer 3 on adversarial inputs.
    await v.page.mouse.click(pt.x, pt.y);
    await waitOpenCount(v, 1);
    assert.deepEqual(await lastOpen(v), { route: { layer: 3, expert: 1, on: 'adversarial' }, label: 2 });
    assert.equal(filterSamples(r.perSample!, (await lastOpen(v)) as InspectorFilter).length, count, 'the Inspector gets the samples the cell counts');
    await v.page.close();
  });

  test('collapsed layers are flagged with an icon and words (table, row labels, summary)', async () => {
    const v = await openWith(showOf(small));
    const r = small.report;
    const d = await describeView(v);
    const collapsed = r.layers.flatMap((l, i) => (l.collapsed ? [i] : []));
    assert.deepEqual(collapsed, [3, 4], 'fixture: one collapsed router, one with non-finite scores');
    assert.deepEqual(d.collapsedLayers, collapsed);
    const rows = await v.page.$$eval('#balance-table tbody tr', (trs) =>
      trs.map((tr) => ({ collapsed: tr.getAttribute('data-collapsed'), status: tr.querySelector('td.status')!.textContent ?? '', cells: Array.from(tr.children).map((c) => c.textContent ?? '') })),
    );
    assert.equal(rows.length, r.layers.length);
    rows.forEach((row, i) => {
      if (collapsed.includes(i)) {
        assert.equal(row.collapsed, 'true');
        assert.match(row.status, /⚠ Collapsed/);
      } else {
        assert.equal(row.collapsed, 'false');
        assert.match(row.status, /OK/);
      }
      const b = loadBalance(r.layers[i].loadClean);
      assert.equal(row.cells[3].split(' / ')[0], String(Number(b.maxShare.toPrecision(6))), `max share of layer ${i}`);
      // "Same decision" (decisionShare: absent from this synthetic fixture, written by the engine since), then top-1 share.
      assert.equal(row.cells[6], '—');
      // Percentages with one decimal, as every view writes shares (not "6.641%" beside "26.6%").
      assert.equal(row.cells[7], `${(r.layers[i].top1Share! * 100).toFixed(1)}%`);
    });
    assert.match(rows[4].status, /3 non-finite router outputs/);
    const labels = await v.page.$$eval('figure[data-heatmap="clean"] text.row-label', (ts) =>
      ts.map((t) => ({ row: Number(t.getAttribute('data-row')), flagged: t.classList.contains('flagged'), text: t.childNodes[0].textContent ?? '' })),
    );
    for (const l of labels) {
      assert.equal(l.flagged, collapsed.includes(l.row));
      assert.equal(l.text.startsWith('⚠ '), collapsed.includes(l.row));
    }
    const summary = await v.page.$eval('.collapse-summary', (e) => e.textContent ?? '');
    assert.match(summary, /Router collapse in 2 of 6 layers: L3 layer2\.0\.conv1, L4 layer2\.0\.conv2/);
    await v.page.close();
  });

  test('hover shows exact values and counts; clicks and Enter post openInspector with the right filter', async () => {
    const v = await openWith(showOf(small));
    const d = await describeView(v);
    const r = small.report;
    const n = r.samples;
    // Hover a clean cell.
    let pt = await cellPoint(v, map(d, 'clean'), 2, 1);
    await v.page.mouse.move(pt.x, pt.y);
    await v.page.waitForSelector('figure[data-heatmap="clean"] .tooltip:not([hidden])');
    let tip = await v.page.$eval('figure[data-heatmap="clean"] .tooltip', (t) => ({ value: t.getAttribute('data-value'), count: t.getAttribute('data-count'), text: t.textContent ?? '' }));
    const c = r.layers[2].loadClean[1];
    const a = r.layers[2].loadAdv[1];
    assert.equal(tip.value, String(c));
    assert.equal(tip.count, String(countOf(c, n)));
    assert.ok(tip.text.includes(`${c} (${countOf(c, n)} of ${n} samples)`), tip.text);
    assert.ok(tip.text.includes(`${a} (${countOf(a, n)} of ${n} samples)`), tip.text);
    await v.page.mouse.click(pt.x, pt.y);
    await waitOpenCount(v, 1);
    assert.deepEqual(await lastOpen(v), { route: { layer: 2, expert: 1, on: 'clean' } });
    assert.equal(filterSamples(r.perSample!, (await lastOpen(v)) as InspectorFilter).length, Number(tip.count), 'the Inspector gets as many samples as the cell counts');
    // Adversarial cell.
    pt = await cellPoint(v, map(d, 'adversarial'), 5, 3);
    await v.page.mouse.click(pt.x, pt.y);
    await waitOpenCount(v, 2);
    assert.deepEqual(await lastOpen(v), { route: { layer: 5, expert: 3, on: 'adversarial' } });
    const clicked = await v.page.$eval('figure[data-heatmap="adversarial"] .tooltip', (t) => [t.getAttribute('data-row'), t.getAttribute('data-col'), (t as HTMLElement).hidden]);
    assert.deepEqual(clicked, ['5', '3', false], 'after a click the tooltip still shows the clicked cell');
    // Difference cell: opens the adversarial side and says so.
    pt = await cellPoint(v, map(d, 'difference'), 4, 3);
    await v.page.mouse.move(pt.x, pt.y);
    await v.page.waitForSelector('figure[data-heatmap="difference"] .tooltip:not([hidden])');
    tip = await v.page.$eval('figure[data-heatmap="difference"] .tooltip', (t) => ({ value: t.getAttribute('data-value'), count: t.getAttribute('data-count'), text: t.textContent ?? '' }));
    assert.equal(tip.value, String(r.layers[4].loadClean[3] - r.layers[4].loadAdv[3]));
    assert.equal(tip.count, String(countOf(r.layers[4].loadClean[3], n) - countOf(r.layers[4].loadAdv[3], n)));
    assert.match(tip.text, /on adversarial inputs.*difference map opens the adversarial side/);
    await v.page.mouse.click(pt.x, pt.y);
    await waitOpenCount(v, 3);
    assert.deepEqual(await lastOpen(v), { route: { layer: 4, expert: 3, on: 'adversarial' } });
    // Keyboard: the clicked clean cell (2, 1) has the focus; move right twice and down once, Enter.
    await v.page.focus('figure[data-heatmap="clean"] canvas');
    await v.page.keyboard.press('ArrowRight');
    await v.page.keyboard.press('ArrowRight');
    await v.page.keyboard.press('ArrowDown');
    const focusTip = await v.page.$eval('figure[data-heatmap="clean"] .tooltip', (t) => ({ row: t.getAttribute('data-row'), col: t.getAttribute('data-col'), hidden: (t as HTMLElement).hidden }));
    assert.deepEqual(focusTip, { row: '3', col: '3', hidden: false }, 'keyboard focus shows the tooltip of the focused cell');
    await v.page.keyboard.press('Enter');
    await waitOpenCount(v, 4);
    assert.deepEqual(await lastOpen(v), { route: { layer: 3, expert: 3, on: 'clean' } });
    // Arrow keys stop at the edges; Home goes to the first column.
    for (let i = 0; i < 8; i++) await v.page.keyboard.press('ArrowDown');
    await v.page.keyboard.press('Home');
    await v.page.keyboard.press(' ');
    await waitOpenCount(v, 5);
    assert.deepEqual(await lastOpen(v), { route: { layer: 5, expert: 0, on: 'clean' } });
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('exports: CSV and JSON hold the report’s exact numbers; SVG and PNG are drawn', async () => {
    const v = await openWith(showOf(small));
    const r = small.report;
    const csv = await exported(v, 'csv');
    assert.equal(csv.fileName, 'routing-20260103-advmoe-eval-small.csv');
    const [header, ...lines] = csv.data.trim().split('\n');
    assert.equal(header, 'table,layer_index,layer,class,expert,clean,adversarial,difference,clean_count,adversarial_count');
    const rows = lines.map((l) => l.split(','));
    const load = rows.filter((x) => x[0] === 'load');
    assert.equal(load.length, r.layers.length * 4);
    for (const [, li, name, , e, c, a, diff, cc, ac] of load) {
      const layer = r.layers[Number(li)];
      assert.equal(name, layer.layer);
      assert.equal(Number(c), layer.loadClean[Number(e)]);
      assert.equal(Number(a), layer.loadAdv[Number(e)]);
      assert.equal(Number(diff), layer.loadClean[Number(e)] - layer.loadAdv[Number(e)]);
      assert.equal(Number(cc), countOf(layer.loadClean[Number(e)], r.samples));
      assert.equal(Number(ac), countOf(layer.loadAdv[Number(e)], r.samples));
    }
    const cls = rows.filter((x) => x[0] === 'class');
    assert.equal(cls.length, r.layers.length * 10 * 4);
    for (const [, li, , y, e, , , , cc, ac] of cls) {
      assert.equal(Number(cc), r.layers[Number(li)].perClassClean[Number(y)][Number(e)]);
      assert.equal(Number(ac), r.layers[Number(li)].perClassAdv[Number(y)][Number(e)]);
    }
    const json = JSON.parse((await exported(v, 'json')).data);
    assert.equal(json.samples, r.samples);
    assert.equal(json.difference, 'clean − adversarial');
    json.layers.forEach((l: { loadClean: number[]; loadAdv: number[]; difference: number[]; perClassClean: number[][]; collapsed: boolean }, i: number) => {
      assert.deepEqual(l.loadClean, r.layers[i].loadClean);
      assert.deepEqual(l.loadAdv, r.layers[i].loadAdv);
      assert.deepEqual(l.difference, r.layers[i].loadClean.map((c, e) => c - r.layers[i].loadAdv[e]));
      assert.deepEqual(l.perClassClean, r.layers[i].perClassClean);
      assert.equal(l.collapsed, r.layers[i].collapsed);
    });
    const svg = (await exported(v, 'svg')).data;
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const cells = svg.match(/<rect [^>]*data-row=/g) ?? [];
    assert.equal(cells.length, 3 * r.layers.length * 4 + 10 * 4, 'one rect per cell of the four heatmaps');
    assert.ok(svg.includes('Difference (clean − adversarial)'));
    for (let e = 0; e < 4; e++) assert.ok(svg.includes(`data-row="2" data-col="${e}" data-value="${r.layers[2].loadClean[e]}"`), 'SVG cells carry the values');
    await exportedPng(v, 5000);
    await v.page.close();
  });

  test('50 layers × 64 experts: every cell drawn, hover and click still work (render time logged)', async () => {
    const L = 50;
    const N = 64;
    const report = largeReport(L, N, 10, 1000);
    const analysis: StoredAnalysis = { name: 'large.json', report, mtime: Date.UTC(2026, 0, 5) };
    const v = await h.open('routing', { width: 1400 });
    const t0 = Date.now();
    await showIn(v, showOf(analysis));
    const wall = Date.now() - t0;
    const d = await describeView(v);
    for (const id of ['clean', 'adversarial', 'difference'] as const) {
      const m = map(d, id);
      assert.equal(m.cells, L * N);
      assert.equal(m.values.length, L * N);
    }
    assert.deepEqual(map(d, 'clean').values, report.layers.flatMap((l) => l.loadClean));
    assert.deepEqual(map(d, 'difference').values, report.layers.flatMap((l) => l.loadClean.map((c, e) => c - l.loadAdv[e])));
    assert.equal(map(d, 'class').cells, 10 * N);
    assert.equal(d.balanceRows, L);
    assert.deepEqual(d.collapsedLayers, [7]);
    // Every cell of the clean canvas is painted (no background showing through).
    const px = await cellPixels(v, map(d, 'clean'));
    assert.equal(px.length, L * N);
    const bg = [255, 255, 255];
    assert.ok(px.every((p) => p.join() !== bg.join() && p.join() !== '0,0,0'), 'every cell painted');
    // Hover the far corner and a middle cell.
    const t1 = Date.now();
    for (const [l, e] of [[49, 63], [25, 40], [7, 7]]) {
      const pt = await cellPoint(v, map(d, 'clean'), l, e);
      await v.page.mouse.move(pt.x, pt.y);
      await v.page.waitForFunction(
        ([row, col]) => {
          const t = document.querySelector('figure[data-heatmap="clean"] .tooltip') as HTMLElement;
          return !t.hidden && t.dataset.row === String(row) && t.dataset.col === String(col);
        },
        [l, e],
      );
      const value = await v.page.$eval('figure[data-heatmap="clean"] .tooltip', (t) => t.getAttribute('data-value'));
      assert.equal(value, String(report.layers[l].loadClean[e]));
    }
    const hoverMs = (Date.now() - t1) / 3;
    const pt = await cellPoint(v, map(d, 'adversarial'), 49, 63);
    await v.page.mouse.click(pt.x, pt.y);
    await waitOpenCount(v, 1);
    assert.deepEqual(await lastOpen(v), { route: { layer: 49, expert: 63, on: 'adversarial' } });
    await v.page.screenshot({ path: path.join(RESULTS, 'routing-large.png'), fullPage: true });
    console.log(
      `# 50×64: view render ${d.renderMs.toFixed(0)} ms in the page (heatmaps ${d.heatmaps.map((m) => `${m.id} ${m.renderMs.toFixed(1)}`).join(', ')} ms), ` +
        `show→drawn ${wall} ms wall, hover→tooltip ${hoverMs.toFixed(0)} ms`,
    );
    assert.ok(wall < 30_000, 'render finishes');
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('messages instead of a blank view: no analysis, an invalid file (its readAnalysis error), a dense run', async () => {
    const v = await h.open('routing');
    await showIn(v, showOf(undefined));
    let d = await describeView(v);
    assert.equal(d.status, 'none');
    assert.match(await v.page.$eval('#message', (e) => e.textContent ?? ''), /No analysis for this run yet/);
    assert.equal(await v.page.$eval('#content', (e) => (e as HTMLElement).hidden), true);

    const error = await readAnalysis(FIX, RUN, 'broken.json').then(
      () => '',
      (e: Error) => e.message,
    );
    await showIn(v, showOf(undefined, { analyses: [{ name: 'broken.json', mtime: 1 }], error }));
    d = await describeView(v);
    assert.equal(d.status, 'error');
    const text = await v.page.$eval('#message', (e) => e.textContent ?? '');
    assert.equal(text, error);
    assert.match(text, /broken\.json is not a robustness report: layers\[1\]\.loadAdv/);

    const dense = await readAnalysis(FIX, '20260104-dense', 'eval.json');
    await showIn(v, showOf(dense, { runId: '20260104-dense', runName: 'resnet-dense', moe: false }));
    d = await describeView(v);
    assert.equal(d.status, 'dense');
    assert.deepEqual(d.heatmaps, []);
    assert.match(await v.page.$eval('#message', (e) => e.textContent ?? ''), /no MoE layers: the model is dense/);
    await showIn(v, showOf(undefined, { runId: '20260104-dense', moe: false }));
    assert.match(await v.page.$eval('#message', (e) => e.textContent ?? ''), /dense model \(no MoE layers\)/);
    // Exports are off while nothing is drawn.
    assert.equal(await v.page.$eval('button.export[data-format="csv"]', (b) => (b as HTMLButtonElement).disabled), true);
    await v.page.screenshot({ path: path.join(RESULTS, 'routing-dense.png') });
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('analysis picker (newest first) and refresh post to the host; the UI state persists and is restored', async () => {
    const older = { ...small, name: 'eval-old.json', mtime: small.mtime - 60_000 };
    const v = await openWith(
      showOf(small, { analyses: [{ name: small.name, mtime: small.mtime }, { name: older.name, mtime: older.mtime }] }),
    );
    const options = await v.page.$$eval('#analysis option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(options, ['', 'eval-small.json', 'eval-old.json']);
    await v.page.selectOption('#analysis', 'eval-old.json');
    await v.page.click('#refresh');
    const sent = await v.sent();
    assert.deepEqual(sent.find((m) => m.type === 'selectAnalysis'), { type: 'selectAnalysis', name: 'eval-old.json' });
    assert.ok(sent.some((m) => m.type === 'refresh'));
    // Pick the class view's options, then "reload": a new page with the persisted state.
    await v.page.selectOption('#class-layer', '2');
    await v.page.check('#class-on-adversarial');
    await v.page.check('#class-norm-share');
    const state = await v.page.evaluate(() => (window as unknown as { __state: unknown }).__state);
    assert.deepEqual(state, { runsDir: FIX, runId: RUN, classLayer: 2, classOn: 'adversarial', classNorm: 'share' });
    await v.page.close();
    const again = await openWith(showOf(small, { followLatest: false }), { state });
    const d = await describeView(again);
    assert.equal(d.classLayer, 2);
    assert.equal(d.classOn, 'adversarial');
    assert.equal(d.classNorm, 'share');
    const row = small.report.layers[2].perClassAdv[0];
    assert.deepEqual(map(d, 'class').values.slice(0, 4), row.map((x) => x / row.reduce((a, b) => a + b, 0)));
    assert.equal(await again.page.$eval('#class-norm-share', (i) => (i as HTMLInputElement).checked), true);
    assert.equal(await again.page.$eval('#analysis', (s) => (s as HTMLSelectElement).value), 'eval-small.json', 'an explicit pick shows in the picker');
    assert.equal(((await again.page.evaluate(() => (window as unknown as { __state: { analysis?: string } }).__state)).analysis), 'eval-small.json');
    await again.page.close();
  });

  test('rejects malformed host messages with a log line', async () => {
    const v = await openWith(showOf(small));
    await v.post({ type: 'bogus' });
    const bad = JSON.parse(JSON.stringify(showOf(small)));
    bad.analysis.report.layers[2].perClassClean = 'x';
    await v.post(bad);
    await describeView(v);
    const logs = (await v.sent()).filter((m) => m.type === 'log').map((m) => String(m.message));
    assert.equal(logs.length, 2);
    assert.match(logs[0], /unknown message type "bogus"/);
    assert.match(logs[1], /layers\[2\]\.perClassClean/);
    assert.equal((await describeView(v)).status, 'shown', 'the last good analysis stays on screen');
    // A passing line from the host (evaluation progress), then cleared.
    await v.post({ type: 'notice', text: 'Evaluating this run: 64 of 200 samples…' });
    await v.page.waitForFunction(() => !(document.getElementById('notice') as HTMLElement).hidden);
    assert.equal(await v.page.$eval('#notice', (e) => e.textContent), 'Evaluating this run: 64 of 200 samples…');
    await v.post({ type: 'notice', text: '' });
    await v.page.waitForFunction(() => (document.getElementById('notice') as HTMLElement).hidden);
    await v.page.close();
  });

  const real = path.join(ROOT, 'test/webview/fixtures/analysis');
  test('an analysis written by the engine (fixtures/analysis, when present) is drawn cell for cell', { skip: !fs.existsSync(real) && 'no engine-written analysis fixture yet' }, async () => {
    // Any robustness report under that folder (layout not fixed yet): the first with MoE layers.
    const files = fs.readdirSync(real, { recursive: true }).map(String).filter((f) => f.endsWith('.json')).sort();
    let found: StoredAnalysis | undefined;
    for (const f of files) {
      try {
        const parsed = parseRobustnessReport(JSON.parse(fs.readFileSync(path.join(real, f), 'utf8')));
        if (parsed.ok && parsed.value.layers.length > 0) {
          found = { name: path.basename(f), report: parsed.value, mtime: fs.statSync(path.join(real, f)).mtimeMs };
          break;
        }
      } catch {
        // not JSON of a report
      }
    }
    if (!found || found.report.layers.length === 0) return;
    const v = await openWith(showOf(found));
    const d = await describeView(v);
    assert.deepEqual(map(d, 'clean').values, found.report.layers.flatMap((l) => l.loadClean));
    assert.deepEqual(map(d, 'adversarial').values, found.report.layers.flatMap((l) => l.loadAdv));
    assert.deepEqual(map(d, 'difference').values, found.report.layers.flatMap((l) => l.loadClean.map((c, e) => c - l.loadAdv[e])));
    const p = found.report.perSample;
    if (p && p.ids.length === found.report.samples) {
      // count = frequency × samples is the number of samples routed that way, and what the Inspector's filter selects.
      const N = found.report.layers[0].loadClean.length;
      for (let l = 0; l < found.report.layers.length; l++) {
        for (let e = 0; e < N; e++) {
          for (const on of ['clean', 'adversarial'] as const) {
            const m = map(d, on);
            assert.equal(m.counts[l * N + e], filterSamples(p, { route: { layer: l, expert: e, on } }).length, `${on} L${l} e${e}`);
          }
        }
      }
      const pt = await cellPoint(v, map(d, 'clean'), found.report.layers.length - 1, N - 1);
      await v.page.mouse.click(pt.x, pt.y);
      await waitOpenCount(v, 1);
      assert.deepEqual(await lastOpen(v), { route: { layer: found.report.layers.length - 1, expert: N - 1, on: 'clean' } });
    }
    await v.page.screenshot({ path: path.join(RESULTS, 'routing-engine.png'), fullPage: true });
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('a narrow column (450 px, a view beside the editor): labels above the rows, cells sized to the width, clicks hit their cell', async () => {
    const v = await openWith(showOf(small), { width: 450 });
    const d = await describeView(v);
    const r = small.report;
    for (const id of ['clean', 'adversarial', 'difference'] as const) {
      const m = map(d, id);
      const layout = await v.page.$eval(`figure[data-heatmap="${id}"]`, (f) => ({
        labels: (f as HTMLElement).dataset.labels,
        canvas: f.querySelector('canvas')!.getBoundingClientRect().width,
        right: f.querySelector('canvas')!.getBoundingClientRect().right,
      }));
      assert.equal(layout.labels, 'above', `${id}: row labels stand above the rows`);
      assert.equal(m.geometry.x0, 0, `${id}: no label column`);
      // The cells take the column's width (less the body padding; a cell is at most 128 px wide), not a small box
      // beside a label column.
      const span = m.geometry.cellW * m.cols;
      assert.ok(span >= Math.min(0.8 * (450 - 24), m.cols * 120), `${id}: cells span the width (${m.geometry.cellW} × ${m.cols})`);
      assert.ok(layout.right <= 450, `${id}: nothing runs off the column (right edge ${layout.right})`);
      // Each row has its own label line above it, every row labelled (none skipped for lack of room).
      const labels = await v.page.$$eval(`figure[data-heatmap="${id}"] text.row-label`, (ts) => ts.map((t) => Number(t.getAttribute('data-row'))));
      assert.deepEqual(labels, r.layers.map((_, l) => l));
    }
    // A click in the narrow layout opens the cell under the pointer.
    const pt = await cellPoint(v, map(d, 'clean'), 3, 1);
    await v.page.mouse.click(pt.x, pt.y);
    await waitOpenCount(v, 1);
    assert.deepEqual(await lastOpen(v), { route: { layer: 3, expert: 1, on: 'clean' } });
    // On a label line nothing opens.
    const g = map(d, 'clean').geometry;
    const box = (await (await v.page.$('figure[data-heatmap="clean"] canvas'))!.boundingBox())!;
    await v.page.mouse.click(box.x + g.x0 + 0.5 * g.cellW, box.y + g.y0 + 3 * g.pitch + 2);
    await v.page.waitForTimeout(200);
    assert.equal((await v.sent()).filter((m) => m.type === 'openInspector').length, 1, 'a click on a row label line opens nothing');
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  screenshotTests('routing', ({ theme, width }) => openWith(showOf(small), { theme, width }), {
    text: 'text.row-label',
    hover: async (v) => {
      const pt = await cellPoint(v, map(await describeView(v), 'difference'), 3, 0);
      await v.page.mouse.move(pt.x, pt.y);
      await v.page.waitForSelector('figure[data-heatmap="difference"] .tooltip:not([hidden])');
    },
  });
});
