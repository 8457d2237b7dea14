/**
 * The Inspector view in headless Chromium, fed a synthetic analysis (200 samples with per-sample columns), byte
 * images and SampleInspections the way the host feeds them (fixtures in fixtures/inspector/, written by
 * make-fixtures.js). Expected values are computed here from the fixture, independently of the view's code.
 * Needs `dist/webview/inspector.js` (npx webpack --config-name webviews) and Debian's chromium.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import type { PerSampleData, RobustnessReport, SampleInspection } from '../../engine/analysis/types';
import { readAnalysis } from '../../extension/runsDisk';
import { epsStep, isOver255, parseEps, snapEps } from '../../webview/inspector/eps';
import type { InspectorDescription } from '../../webview/inspector/protocol';
import { RESULTS, ROOT, screenshotTests, fileHarness, type Harness, type LoadedView, type Theme } from './harness';

const FIX = path.join(ROOT, 'test/webview/fixtures/inspector');
const RUNS = path.join(FIX, 'runs');
const RUN_ID = '20260301-inspect';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const gen = require(path.join(FIX, 'make-fixtures.js')) as {
  makeReport(o: { n: number; layers?: number; experts?: number; k?: number; classes?: number; seed?: number }): RobustnessReport;
  makeImages(r: RobustnessReport): ImagesFixture;
};

interface ImagesFixture {
  shape: [number, number, number];
  ids: number[];
  clean: string[];
  adversarial: string[];
}
type Msg = { type: string; [k: string]: unknown };
type Description = InspectorDescription;

const h = fileHarness();
let report: RobustnessReport;
let per: PerSampleData;
let images: ImagesFixture;
let inspection: { row: number; sample: SampleInspection };
let inspectionEps: { row: number; sample: SampleInspection };

before(async () => {
  report = (await readAnalysis(RUNS, RUN_ID, 'eval-200.json')).report;
  per = report.perSample!;
  images = JSON.parse(fs.readFileSync(path.join(FIX, 'images-200.json'), 'utf8')) as ImagesFixture;
  inspection = JSON.parse(fs.readFileSync(path.join(FIX, 'inspection.json'), 'utf8'));
  inspectionEps = JSON.parse(fs.readFileSync(path.join(FIX, 'inspection-eps.json'), 'utf8'));
});

function findRealAnalysis(): RobustnessReport | undefined {
  const dir = path.join(ROOT, 'test/webview/fixtures/analysis');
  const walk = (d: string): string[] =>
    fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.json') ? [path.join(d, e.name)] : [])) : [];
  for (const f of walk(dir)) {
    try {
      const x = JSON.parse(fs.readFileSync(f, 'utf8')) as RobustnessReport & { report?: RobustnessReport };
      const r = x.perSample ? x : x.report?.perSample ? x.report : undefined;
      if (r && Array.isArray(r.layers) && r.layers.length > 0) return r;
    } catch {
      // not JSON: skip
    }
  }
  return undefined;
}

// ---------------- independent expectations ----------------
const experts = (p: PerSampleData, which: 'c' | 'a', l: number, i: number) => (which === 'c' ? p.routeClean : p.routeAdv)[l].slice(i * p.k, (i + 1) * p.k);
const changedIn = (p: PerSampleData, l: number, i: number) => experts(p, 'c', l, i).join() !== experts(p, 'a', l, i).join();
function cellOf(p: PerSampleData, i: number): string {
  let ch = false;
  for (let l = 0; l < p.routeClean.length; l++) if (changedIn(p, l, i)) ch = true;
  return (ch ? 'changed' : 'kept') + (p.predAdv[i] === p.labels[i] ? 'Right' : 'Wrong');
}
function idsWhere(p: PerSampleData, pred: (i: number) => boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < p.ids.length; i++) if (pred(i)) out.push(p.ids[i]);
  return out;
}
function rgbaOf(b64: string, shape: [number, number, number]): number[] {
  const bytes = Buffer.from(b64, 'base64');
  const [hh, w, c] = shape;
  const out: number[] = [];
  for (let q = 0; q < hh * w; q++) out.push(bytes[q * c], bytes[q * c + (c === 3 ? 1 : 0)], bytes[q * c + (c === 3 ? 2 : 0)], 255);
  return out;
}
/** The view's convention: 0.5 + (adv − clean)·s, s = 0.5 / max|adv − clean|, pixels in [0,1]. */
function perturbationRgba(clean: number[], adv: number[], shape: [number, number, number], unit: number): { rgba: number[]; scale: number } {
  const [hh, w, c] = shape;
  let m = 0;
  for (let q = 0; q < clean.length; q++) m = Math.max(m, Math.abs(adv[q] - clean[q]) / unit);
  const s = m > 0 ? 0.5 / m : 0;
  const v = (q: number) => Math.round((0.5 + ((adv[q] - clean[q]) / unit) * s) * 255);
  const out: number[] = [];
  for (let q = 0; q < hh * w; q++) out.push(v(q * c), v(q * c + (c === 3 ? 1 : 0)), v(q * c + (c === 3 ? 2 : 0)), 255);
  return { rgba: out, scale: s };
}

// ---------------- view helpers ----------------
function initMessage(opts: { rep?: RobustnessReport | null; filter?: unknown; trusted?: boolean; error?: string; restore?: unknown; split?: string; name?: string } = {}): Msg {
  const rep = opts.rep === undefined ? report : opts.rep;
  const name = opts.name ?? 'eval-200.json';
  return {
    type: 'init',
    target: { runsDir: RUNS, runId: RUN_ID, ...(opts.split ? { split: opts.split } : {}), ...(rep ? { analysis: name } : {}), ...(opts.filter ? { filter: opts.filter } : {}) },
    runName: 'tiny-advmoe',
    analyses: rep ? [{ name, mtime: 1 }, { name: 'eval-old.json', mtime: 0 }] : [],
    ...(rep ? { analysis: { name, checkpoint: 'epoch-3.ckpt', report: rep } } : {}),
    ...(opts.error ? { error: opts.error } : {}),
    trusted: opts.trusted ?? true,
    ...(opts.restore ? { restore: opts.restore } : {}),
  };
}

async function sentOf(v: LoadedView, type: string): Promise<Msg[]> {
  return (await v.sent()).filter((m) => m.type === type) as Msg[];
}
async function waitSent(v: LoadedView, type: string, count: number): Promise<Msg[]> {
  await v.page.waitForFunction(
    ([t, n]) => (window as unknown as { __sent: { type: string }[] }).__sent.filter((m) => m.type === t).length >= (n as number),
    [type, count] as const,
  );
  return sentOf(v, type);
}
async function describeView(v: LoadedView): Promise<Description> {
  const before = (await sentOf(v, 'description')).length;
  await v.post({ type: 'describe', requestId: before + 1 });
  const all = await waitSent(v, 'description', before + 1);
  return all[before] as unknown as Description;
}
/** Answers every pending needImages from the fixture (what the host does with the engine's `samples`). */
async function serveImages(v: LoadedView, img: ImagesFixture = images, served = new Set<number>()): Promise<number> {
  let n = 0;
  for (const m of await sentOf(v, 'needImages')) {
    const ids = (m.ids as number[]).filter((id) => !served.has(id));
    if (!ids.length) continue;
    const items = ids.map((id) => {
      const k = img.ids.indexOf(id);
      served.add(id);
      return { id, clean: img.clean[k], adversarial: img.adversarial[k] };
    });
    n += items.length;
    await v.post({ type: 'images', shape: img.shape, items });
  }
  return n;
}
async function openInspector(opts: Parameters<Harness['open']>[1] = {}, init: Msg = initMessage()): Promise<LoadedView> {
  const v = await h.open('inspector', { width: 1400, ...opts });
  const n = await v.renders();
  await v.post(init);
  await v.waitRender(n);
  await forgetAutoSelection(v);
  return v;
}
/**
 * The view opens on the gallery's first sample (when nothing was selected before) and inspects it live at once.
 * Tests count the inspect requests their own clicks cause, so that first one is checked here and then dropped.
 */
async function forgetAutoSelection(v: LoadedView): Promise<void> {
  const d = await describeView(v);
  if (d.selectedId === null || d.filteredIds[0] !== d.selectedId) return;
  const auto = await v.page
    .waitForFunction(() => (window as unknown as { __sent: { type: string }[] }).__sent.some((m) => m.type === 'inspect'), undefined, { timeout: 1500 })
    .then(() => true, () => false); // untrusted: no live request
  if (auto) {
    const [req] = await sentOf(v, 'inspect');
    assert.equal(req.id, d.selectedId, 'the first sample is inspected on opening');
  }
  await v.page.evaluate(() => {
    const w = window as unknown as { __sent: { type: string }[] };
    w.__sent = w.__sent.filter((m) => m.type !== 'inspect');
  });
}
/** Opens with the 200-sample fixture and its thumbnails drawn. */
async function openWithImages(opts: Parameters<Harness['open']>[1] = {}, init: Msg = initMessage()): Promise<LoadedView> {
  const v = await openInspector(opts, init);
  await waitSent(v, 'needImages', 1);
  await serveImages(v);
  await v.page.waitForSelector('.row.sample canvas.thumb[data-drawn="1"]');
  return v;
}
/** Opened with images, the sample the fixture's inspection is of selected (its row `i` of the analysis, its `id`). */
async function openOnInspectedSample(): Promise<{ v: LoadedView; i: number; id: number }> {
  const v = await openWithImages();
  const i = inspection.row;
  const id = per.ids[i];
  await clickRow(v, id);
  return { v, i, id };
}
async function canvasRgba(v: LoadedView, selector: string): Promise<{ w: number; h: number; data: number[] }> {
  return v.page.$eval(selector, (c) => {
    const cv = c as HTMLCanvasElement;
    const d = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height);
    return { w: cv.width, h: cv.height, data: Array.from(d.data) };
  });
}
async function clickRow(v: LoadedView, id: number): Promise<void> {
  await v.page.click(`.row.sample[data-id="${id}"]`);
}
/** The newest inspect request for sample `id` (a late automatic request for another sample is not it). */
async function inspectOf(v: LoadedView, id: number): Promise<Msg> {
  await v.page.waitForFunction(
    (want) => (window as unknown as { __sent: { type: string; id?: number }[] }).__sent.some((m) => m.type === 'inspect' && m.id === want),
    id,
  );
  return (await sentOf(v, 'inspect')).filter((m) => m.id === id).pop()!;
}
async function lastInspect(v: LoadedView, count: number): Promise<Msg> {
  const all = await waitSent(v, 'inspect', count);
  return all[count - 1];
}

describe('Inspector: host-side pieces (Node)', () => {
  test('the fixture analysis reads through readAnalysis and its mismatch lists match its per-sample columns', () => {
    assert.equal(per.ids.length, 200);
    for (const c of ['keptRight', 'keptWrong', 'changedRight', 'changedWrong'] as const) {
      assert.deepEqual(report.mismatch![c], idsWhere(per, (i) => cellOf(per, i) === c), c);
    }
  });

  test('message validators accept the protocol and reject malformed or unsafe messages', async () => {
    const { parseInspectorToHost, parseHostToInspector, exportFileName, parseInspectorViewState } = await import('../../webview/inspector/protocol');
    const ok = (x: unknown) => parseInspectorToHost(x).ok;
    assert.ok(ok({ type: 'ready' }));
    assert.ok(ok({ type: 'needImages', ids: [1, 2, 3] }));
    assert.ok(!ok({ type: 'needImages', ids: [-1] }));
    assert.ok(!ok({ type: 'needImages', ids: Array.from({ length: 300 }, (_, i) => i) }), 'batches are bounded');
    assert.ok(ok({ type: 'inspect', requestId: 1, id: 4, split: 'test', attack: 'pgd', eps: 0.03, freezeRouting: false }));
    assert.ok(!ok({ type: 'inspect', requestId: 1, id: 4, split: 'test', attack: 'router', eps: 0.03, freezeRouting: true }), 'router attack cannot be frozen');
    assert.ok(!ok({ type: 'inspect', requestId: 1, id: 4, split: 'valid', attack: 'pgd', eps: 0.03, freezeRouting: false }));
    assert.ok(!ok({ type: 'inspect', requestId: 1, id: 4, split: 'test', attack: 'cw', eps: 0.03, freezeRouting: false }));
    const expert = parseInspectorToHost({ type: 'inspect', requestId: 1, id: 4, split: 'test', attack: 'expert', eps: 0.03, freezeRouting: false });
    assert.ok(expert.ok && expert.value.type === 'inspect' && expert.value.freezeRouting, 'the expert attack implies frozen routing');
    assert.ok(!ok({ type: 'selectAnalysis', name: '../../x.json' }));
    assert.ok(ok({ type: 'selectAnalysis', name: 'eval-1.json' }));
    const png = 'iVBORw0KGgoAAAANSUhEUg==';
    assert.ok(ok({ type: 'exportSample', id: 3, files: [{ kind: 'clean', data: png }, { kind: 'json', data: '{"a":1}' }] }));
    assert.ok(!ok({ type: 'exportSample', id: 3, files: [{ kind: 'clean', data: 'not base64!' }] }));
    assert.ok(!ok({ type: 'exportSample', id: 3, files: [{ kind: 'clean', data: 'QUJD' }] }), 'base64 that is not a PNG');
    assert.ok(!ok({ type: 'exportSample', id: 3, files: [{ kind: '../evil', data: png }] }));
    assert.ok(!ok({ type: 'exportSample', id: 3, files: [{ kind: 'json', data: '{' }] }));
    assert.ok(!ok({ type: 'exportSample', id: 3.5, files: [{ kind: 'json', data: '{}' }] }));
    assert.equal(exportFileName('run-1', 7, 'perturbation'), 'run-1-sample-7-perturbation.png');
    assert.equal(exportFileName('run-1', 7, 'json'), 'run-1-sample-7.json');
    assert.ok(parseHostToInspector(initMessage()).ok);
    assert.ok(!parseHostToInspector({ ...initMessage(), target: { runsDir: '/x', runId: '../y' } }).ok);
    assert.ok(!parseHostToInspector({ type: 'images', shape: [2, 2, 3], items: [{ id: 1, clean: 'AAAA', adversarial: null }] }).ok, 'wrong byte count');
    assert.ok(parseHostToInspector({ type: 'images', shape: [2, 2, 1], items: [{ id: 1, clean: 'AAAAAA==', adversarial: null }] }).ok);
    const st = parseInspectorViewState({ target: { runsDir: RUNS, runId: RUN_ID }, selected: 4, controls: { attack: 'router', freezeRouting: true } });
    assert.deepEqual(st?.controls, { attack: 'router', freezeRouting: false });
    assert.equal(parseInspectorViewState({ target: { runId: 'x' } }), undefined);
  });
});

describe('Inspector view in Chromium', () => {
  test('gallery: text columns from perSample, mismatch counts equal the fixture, thumbnails drawn with the fixture bytes', async () => {
    const v = await openInspector();
    assert.equal((await v.sent())[0].type, 'ready');
    // Mismatch cells.
    const counts = await v.page.$$eval('button.cell-btn', (bs) => Object.fromEntries(bs.map((b) => [b.getAttribute('data-cell'), Number(b.getAttribute('data-count'))])));
    for (const c of ['keptRight', 'keptWrong', 'changedRight', 'changedWrong']) {
      assert.equal(counts[c], report.mismatch![c as 'keptRight'].length, `count of ${c}`);
      assert.equal(counts[c], idsWhere(per, (i) => cellOf(per, i) === c).length);
    }
    assert.equal(await v.page.$$eval('#cells-mismatch', (e) => e.length), 0, 'no disagreement note');
    // Visible rows, with the text columns of the analysis.
    const d0 = await describeView(v);
    assert.equal(d0.totalSamples, 200);
    assert.equal(d0.filteredCount, 200);
    assert.ok(d0.domRows > 5 && d0.domRows < 60, `virtualised: ${d0.domRows} rows in the DOM`);
    assert.deepEqual(d0.domIds, per.ids.slice(0, d0.domRows));
    const row3 = await v.page.$eval(`.row.sample[data-id="${per.ids[3]}"]`, (r) => Array.from(r.querySelectorAll('.c-label, .c-pred')).map((e) => e.getAttribute('title')));
    assert.equal(row3[1], `clean prediction: ${per.predClean[3]}, confidence ${per.confClean[3]}`);
    assert.equal(row3[2], `adversarial prediction: ${per.predAdv[3]}, confidence ${per.confAdv[3]}`);
    // Images requested for the rows in the DOM only, then drawn.
    const req = (await waitSent(v, 'needImages', 1)).flatMap((m) => m.ids as number[]);
    assert.deepEqual([...req].sort((a, b) => a - b), d0.domIds, 'needImages asks for exactly the rows shown');
    assert.ok(await v.page.$('.row.sample .placeholder'), 'placeholders while loading');
    await serveImages(v);
    await v.page.waitForFunction((n) => document.querySelectorAll('.row.sample canvas.thumb[data-drawn="1"]').length >= n, d0.domRows * 3);
    for (const i of [0, 7, 12]) {
      const id = per.ids[i];
      const k = images.ids.indexOf(id);
      const clean = await canvasRgba(v, `.row.sample[data-id="${id}"] canvas[data-kind="clean"]`);
      assert.equal(clean.w, images.shape[1]);
      assert.deepEqual(clean.data, rgbaOf(images.clean[k], images.shape), `clean pixels of #${id}`);
      const adv = await canvasRgba(v, `.row.sample[data-id="${id}"] canvas[data-kind="adversarial"]`);
      assert.deepEqual(adv.data, rgbaOf(images.adversarial[k], images.shape), `adversarial pixels of #${id}`);
      const pert = await canvasRgba(v, `.row.sample[data-id="${id}"] canvas[data-kind="perturbation"]`);
      const want = perturbationRgba([...Buffer.from(images.clean[k], 'base64')], [...Buffer.from(images.adversarial[k], 'base64')], images.shape, 255);
      assert.deepEqual(pert.data, want.rgba, `perturbation pixels of #${id}`);
      const title = await v.page.$eval(`.row.sample[data-id="${id}"] canvas[data-kind="perturbation"]`, (c) => c.getAttribute('title'));
      assert.match(title!, /^perturbation ×\d/);
    }
    assert.equal(await v.page.$$eval('.row.sample .placeholder', (e) => e.length), 0);
    assert.deepEqual(v.errors, [], 'no console errors (CSP violations show here)');
    await v.page.close();
  });

  test('filters by cell, class, changed layer and route select exactly the expected samples; chips remove them', async () => {
    const v = await openInspector();
    const ids = async () => (await describeView(v)).filteredIds;
    // Cell.
    await v.page.click('button.cell-btn[data-cell="changedWrong"]');
    assert.deepEqual(await ids(), idsWhere(per, (i) => cellOf(per, i) === 'changedWrong'));
    assert.equal(await v.page.$eval('button.cell-btn[data-cell="changedWrong"]', (b) => b.getAttribute('aria-pressed')), 'true');
    // + class (AND).
    await v.page.selectOption('#filter-class', '3');
    assert.deepEqual(await ids(), idsWhere(per, (i) => cellOf(per, i) === 'changedWrong' && per.labels[i] === 3));
    // + changed layer.
    await v.page.click('button.cell-btn[data-cell="changedWrong"]'); // toggles the cell off
    await v.page.selectOption('#filter-layer', '2');
    const want = idsWhere(per, (i) => per.labels[i] === 3 && changedIn(per, 2, i));
    assert.ok(want.length > 0);
    assert.deepEqual(await ids(), want);
    const chipTexts = await v.page.$$eval('#chips button.chip', (b) => b.map((e) => e.getAttribute('data-filter')));
    assert.deepEqual(chipTexts, ['label', 'changedLayer', 'all']);
    // Removing the class chip keeps the layer filter.
    await v.page.click('#chips button.chip[data-filter="label"]');
    assert.deepEqual(await ids(), idsWhere(per, (i) => changedIn(per, 2, i)));
    assert.equal(await v.page.$eval('#filter-class', (s) => (s as HTMLSelectElement).value), '');
    await v.page.click('#chips button.chip[data-filter="changedLayer"]');
    assert.equal((await ids()).length, 200);
    // Route filter, as the Routing view sends it (adversarial inputs routed to expert 1 in layer 3).
    await v.post(initMessage({ filter: { route: { layer: 3, expert: 1, on: 'adversarial' }, cell: 'keptWrong' } }));
    await v.page.waitForSelector('#chips button.chip[data-filter="route"]');
    const wantRoute = idsWhere(per, (i) => experts(per, 'a', 3, i).includes(1) && cellOf(per, i) === 'keptWrong');
    assert.ok(wantRoute.length > 0);
    const d = await describeView(v);
    assert.deepEqual(d.filteredIds, wantRoute);
    assert.deepEqual(d.filter, { route: { layer: 3, expert: 1, on: 'adversarial' }, cell: 'keptWrong' });
    assert.match(await v.page.$eval('#count', (e) => e.textContent ?? ''), new RegExp(`^${wantRoute.length} of 200 samples`));
    // A filter that does not fit the report is dropped with a note.
    await v.post(initMessage({ filter: { changedLayer: 9 } }));
    await v.page.waitForSelector('#status-message');
    assert.equal((await describeView(v)).filteredCount, 200);
    // The filter persists in the view state.
    await v.page.selectOption('#filter-class', '5');
    const state = await v.page.evaluate(() => (window as unknown as { __state: { target: { filter: unknown } } }).__state);
    assert.deepEqual(state.target.filter, { label: 5 });
    await v.page.close();
  });

  test('selected sample: analysis row first, then the live inspection; routing rows equal the SampleInspection, changed layers marked', async () => {
    const { v, i, id } = await openOnInspectedSample();
    const req = await lastInspect(v, 1);
    assert.deepEqual(
      { id: req.id, split: req.split, attack: req.attack, eps: req.eps, steps: req.steps, freezeRouting: req.freezeRouting },
      { id, split: 'test', attack: 'pgd', eps: report.attack.eps, steps: report.attack.steps, freezeRouting: false },
    );
    // Before the engine answers: the analysis row.
    let d = await describeView(v);
    assert.equal(d.selectedId, id);
    assert.equal(d.detailSource, 'analysis');
    assert.equal(d.routingRows, report.layers.length);
    const rowsA = await v.page.$$eval('#routing tr.route-row', (rs) => rs.map((r) => ({ c: r.getAttribute('data-clean'), a: r.getAttribute('data-adv'), ch: r.getAttribute('data-changed') })));
    rowsA.forEach((r, l) => {
      assert.equal(r.c, experts(per, 'c', l, i).join(','));
      assert.equal(r.a, experts(per, 'a', l, i).join(','));
      assert.equal(r.ch, String(changedIn(per, l, i)));
    });
    assert.match(await v.page.$eval('#source', (e) => e.textContent ?? ''), /Shown: the analysis row/);
    const bigClean = await canvasRgba(v, '#detail canvas[data-kind="clean"]');
    assert.deepEqual(bigClean.data, rgbaOf(images.clean[images.ids.indexOf(id)], images.shape));
    // The live answer.
    await v.post({ type: 'inspection', requestId: req.requestId, sample: inspection.sample });
    await v.page.waitForFunction(() => document.getElementById('detail')?.dataset.source === 'live');
    d = await describeView(v);
    const s = inspection.sample;
    assert.equal(d.detailSource, 'live');
    assert.equal(d.routingRows, s.routing.length);
    assert.equal(d.changedRows, s.routing.filter((r) => r.changed).length);
    assert.ok(d.changedRows > 0, 'the fixture sample has changed layers');
    const rows = await v.page.$$eval('#routing tr.route-row', (rs) =>
      rs.map((r) => ({
        name: r.querySelector('.layer-name')!.textContent,
        clean: r.getAttribute('data-clean'),
        adv: r.getAttribute('data-adv'),
        changed: r.getAttribute('data-changed'),
        cls: r.className,
        mark: r.querySelector('.change-mark')!.textContent,
        weight: getComputedStyle(r).fontWeight,
        pc: Array.from(r.querySelectorAll('.bar.clean')).map((b) => Number(b.getAttribute('data-p'))),
        pa: Array.from(r.querySelectorAll('.bar.adv')).map((b) => Number(b.getAttribute('data-p'))),
        tip: r.querySelector('.score')!.getAttribute('title'),
      })),
    );
    rows.forEach((r, l) => {
      const want = s.routing[l];
      assert.equal(r.name, `${l}: ${want.layer}`);
      assert.equal(r.clean, want.expertsClean.join(','));
      assert.equal(r.adv, want.expertsAdv.join(','));
      assert.equal(r.changed, String(want.changed));
      assert.equal(r.cls.includes('changed'), want.changed, 'highlight class');
      assert.equal(r.mark, want.changed ? '⇄ changed' : '= kept', 'marked in text, not by colour only');
      if (want.changed) assert.equal(r.weight, '600');
      assert.deepEqual(r.pc, want.probsClean, 'router scores (clean) exact');
      assert.deepEqual(r.pa, want.probsAdv, 'router scores (adversarial) exact');
      assert.ok(r.tip!.includes(`clean ${want.probsClean[0]}`), 'exact value on hover');
    });
    // Images of the live result: floats → bytes, perturbation by the stated convention.
    const toBytes = (xs: number[]) => xs.map((x) => Math.round(x * 255));
    const rgbaFloat = (xs: number[]) => {
      const b = toBytes(xs);
      const out: number[] = [];
      for (let q = 0; q < b.length / 3; q++) out.push(b[q * 3], b[q * 3 + 1], b[q * 3 + 2], 255);
      return out;
    };
    assert.deepEqual((await canvasRgba(v, '#detail canvas[data-kind="clean"]')).data, rgbaFloat(s.clean));
    assert.deepEqual((await canvasRgba(v, '#detail canvas[data-kind="adversarial"]')).data, rgbaFloat(s.adversarial));
    const pert = perturbationRgba(s.clean, s.adversarial, s.shape, 1);
    assert.deepEqual((await canvasRgba(v, '#detail canvas[data-kind="perturbation"]')).data, pert.rgba);
    assert.equal(Number(await v.page.$eval('#detail figure[data-kind="perturbation"] figcaption', (e) => e.getAttribute('data-scale'))), pert.scale);
    assert.match(await v.page.$eval('#detail figure[data-kind="perturbation"] figcaption', (e) => e.textContent ?? ''), /perturbation ×[\d.]+ \(grey = unchanged/);
    // Predictions clean vs adversarial.
    const preds = await v.page.$$eval('#predictions tr[data-source]', (rs) => rs.map((r) => [r.getAttribute('data-source'), Number(r.getAttribute('data-pred')), Number(r.getAttribute('data-conf'))]));
    assert.deepEqual(preds.slice(0, 2), [['live', s.predClean, s.confClean], ['live', s.predAdv, s.confAdv]]);
    assert.deepEqual(preds[2], ['analysis', per.predAdv[i], per.confAdv[i]]);
    assert.ok(d.drawnImages >= 3 + 3 * 5, `gallery and detail images drawn (${d.drawnImages})`);
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('ε: typed values (0.1, 8/255) are taken as typed; the slider grid holds them', async () => {
    const v = await openInspector();
    await clickRow(v, per.ids[2]);
    let n = 1;
    await lastInspect(v, n);
    for (const [typed, want] of [['0.1', 0.1], ['16/255', 16 / 255], [' .05 ', 0.05]] as const) {
      await v.page.fill('#eps-value', typed);
      await v.page.press('#eps-value', 'Enter');
      const req = await lastInspect(v, ++n);
      assert.equal(req.eps, want, `typed ${typed}`);
      assert.ok(Math.abs(Number(await v.page.$eval('#eps', (e) => (e as HTMLInputElement).value)) - want) < 1e-9, `the slider follows ${typed}`);
    }
    // Nonsense is refused with a message, and nothing is sent.
    await v.page.fill('#eps-value', 'abc');
    await v.page.press('#eps-value', 'Enter');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await sentOf(v, 'inspect')).length, n);
    assert.equal(await v.page.$eval('#eps-value', (e) => (e as HTMLInputElement).validationMessage !== ''), true);
    await v.page.close();
  });

  test('ε grid: 1-2-5 decimal steps or 255ths; snapping, parsing', () => {
    assert.equal(epsStep(0.6, 0.3), 0.005);
    for (const typed of [0.1, 0.05, 0.3, 0.25]) {
      const step = epsStep(0.6, 0.3);
      assert.equal(snapEps(typed + step / 3, step), typed, `${typed} is on the grid of step ${step}`);
    }
    assert.equal(epsStep(16 / 255, 8 / 255), 1 / 255);
    assert.equal(snapEps(0.0314, 1 / 255), 8 / 255);
    assert.equal(snapEps(0.1 + 0.2, 0.005), 0.3);
    assert.equal(parseEps('8/255'), 8 / 255);
    assert.equal(parseEps('0.1'), 0.1);
    assert.equal(parseEps('.3'), 0.3);
    for (const bad of ['', 'x', '-0.1', '2', '1/0', '0.1.2']) assert.equal(parseEps(bad), undefined, bad);
    assert.equal(isOver255(8 / 255), true);
    assert.equal(isOver255(0.1), false);
  });

  test('controls post the right inspect requests (ε, attack, freeze routing) and stale answers are ignored', async () => {
    const v = await openInspector();
    const id = per.ids[2];
    await clickRow(v, id);
    let n = 1;
    const first = await lastInspect(v, n);
    // ε slider: range 0..2ε, debounced re-attack.
    const range = await v.page.$eval('#eps', (e) => [Number((e as HTMLInputElement).min), Number((e as HTMLInputElement).max)]);
    assert.deepEqual(range, [0, 2 * report.attack.eps]);
    const target = Number(((report.attack.eps * 2 * 150) / 200).toFixed(6));
    await v.page.$eval(
      '#eps',
      (e, val) => {
        for (const step of [0.001, 0.02, val]) {
          (e as HTMLInputElement).value = String(step);
          e.dispatchEvent(new Event('input', { bubbles: true }));
        }
      },
      target,
    );
    const afterEps = await lastInspect(v, ++n);
    const epsNow = Number(await v.page.$eval('#eps', (e) => (e as HTMLInputElement).value));
    // The slider's value string is the browser's decimal rounding of the grid value the request carries.
    assert.ok(Math.abs(Number(afterEps.eps) - epsNow) < 1e-9, `one request with the final slider value (debounced): ${afterEps.eps} vs ${epsNow}`);
    assert.ok(Math.abs(epsNow - target) < report.attack.eps / 50);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await sentOf(v, 'inspect')).length, n, 'no request per intermediate slider value');
    assert.equal(afterEps.attack, 'pgd');
    // Expert attack implies frozen routing; router attack cannot be frozen.
    await v.page.selectOption('#attack', 'expert');
    const ex = await lastInspect(v, ++n);
    assert.deepEqual([ex.attack, ex.freezeRouting], ['expert', true]);
    assert.ok(Math.abs(Number(ex.eps) - epsNow) < 1e-9);
    assert.deepEqual(await v.page.$eval('#freeze', (e) => [(e as HTMLInputElement).checked, (e as HTMLInputElement).disabled]), [true, true]);
    await v.page.selectOption('#attack', 'router');
    const ro = await lastInspect(v, ++n);
    assert.deepEqual([ro.attack, ro.freezeRouting], ['router', false]);
    assert.deepEqual(await v.page.$eval('#freeze', (e) => [(e as HTMLInputElement).checked, (e as HTMLInputElement).disabled]), [false, true]);
    await v.page.selectOption('#attack', 'fgsm');
    await lastInspect(v, ++n);
    await v.page.check('#freeze');
    const fr = await lastInspect(v, ++n);
    assert.deepEqual([fr.attack, fr.freezeRouting], ['fgsm', true]);
    await v.page.selectOption('#attack', 'pgd');
    await lastInspect(v, ++n);
    await v.page.fill('#steps', '25');
    await v.page.press('#steps', 'Tab');
    const st = await lastInspect(v, ++n);
    assert.deepEqual([st.attack, st.steps, st.freezeRouting], ['pgd', 25, true]);
    // A late answer to the first request is ignored.
    const stale = { ...inspection.sample, id };
    await v.post({ type: 'inspection', requestId: first.requestId, sample: stale });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await describeView(v)).detailSource, 'analysis');
    await v.post({ type: 'inspectError', requestId: st.requestId, message: 'engine exploded [INTERNAL]' });
    await v.page.waitForFunction(() => (document.getElementById('source')?.textContent ?? '').includes('engine exploded'));
    // Controls persist.
    const state = await v.page.evaluate(() => (window as unknown as { __state: { controls: unknown; selected: number } }).__state);
    assert.deepEqual(state.controls, { attack: 'pgd', eps: afterEps.eps, steps: 25, freezeRouting: true });
    assert.equal(state.selected, id);
    await v.page.close();
  });

  test('a live result with another ε says which one is shown and keeps the analysis row beside it', async () => {
    const v = await openWithImages();
    const i = inspectionEps.row;
    await clickRow(v, per.ids[i]);
    const req = await lastInspect(v, 1);
    await v.post({ type: 'inspection', requestId: req.requestId, sample: inspectionEps.sample });
    await v.page.waitForFunction(() => document.getElementById('detail')?.dataset.source === 'live');
    const text = await v.page.$eval('#source', (e) => e.textContent ?? '');
    // ε as users write it, the same text as every view (16/255, not 0.0627 or 0.062745…).
    assert.match(text, /Shown: live re-attack — Expert attack \(routing frozen\), ε 16\/255, routing frozen/);
    assert.match(text, /The analysis row is PGD at ε 8\/255/);
    const preds = await v.page.$$eval('#predictions tr[data-source]', (rs) => rs.map((r) => r.getAttribute('data-source')));
    assert.deepEqual(preds, ['live', 'live', 'analysis']);
    const s = inspectionEps.sample;
    const changed = s.routing.filter((r) => r.changed).length;
    assert.ok(changed > 0);
    assert.equal((await describeView(v)).changedRows, changed);
    const marks = await v.page.$$eval('#routing tr.route-row.changed .change-mark', (e) => e.map((x) => x.textContent));
    assert.deepEqual(marks, new Array(changed).fill('⇄ router would change (frozen)'), 'a frozen attack says the routers would have changed');
    assert.match(await v.page.$eval('.routing-legend', (e) => e.textContent ?? ''), /Routing was frozen to the clean decision/);
    // A degenerate router's NaN probabilities arrive as null and are shown as missing, not rejected.
    const nan = { ...s, routing: s.routing.map((r, l) => (l === 0 ? { ...r, probsClean: r.probsClean.map(() => null) } : r)) };
    const req2 = await lastInspect(v, 1);
    await v.post({ type: 'inspection', requestId: req2.requestId, sample: nan });
    await v.page.waitForFunction(() => (document.querySelector('#routing tr.route-row .score')?.getAttribute('title') ?? '').includes('clean —'));
    await v.page.close();
  });

  test('export: the JSON carries the numbers shown, PNGs are integer upscales of the images', async () => {
    const { v, i, id } = await openOnInspectedSample();
    await v.page.waitForFunction(() => document.querySelector('#detail canvas[data-kind="adversarial"]')?.getAttribute('data-drawn') === '1');
    // Analysis-row export first (the engine has not answered).
    await v.page.click('#export');
    let msgs = await waitSent(v, 'exportSample', 1);
    let files = msgs[0].files as { kind: string; data: string }[];
    assert.deepEqual(files.map((f) => f.kind), ['clean', 'perturbation', 'adversarial', 'json']);
    let json = JSON.parse(files[3].data);
    assert.equal(msgs[0].id, id);
    assert.deepEqual(
      [json.source, json.id, json.label, json.predClean, json.confClean, json.predAdv, json.confAdv, json.eps, json.cell, json.runId, json.analysis],
      ['analysis', id, per.labels[i], per.predClean[i], per.confClean[i], per.predAdv[i], per.confAdv[i], report.attack.eps, cellOf(per, i), RUN_ID, 'eval-200.json'],
    );
    assert.deepEqual(
      json.routing.map((r: { expertsClean: number[]; expertsAdv: number[]; changed: boolean }) => [r.expertsClean, r.expertsAdv, r.changed]),
      report.layers.map((_, l) => [experts(per, 'c', l, i), experts(per, 'a', l, i), changedIn(per, l, i)]),
    );
    // Live export.
    const req = await lastInspect(v, 1);
    await v.post({ type: 'inspection', requestId: req.requestId, sample: inspection.sample });
    await v.page.waitForFunction(() => document.getElementById('detail')?.dataset.source === 'live');
    await v.page.click('#export');
    msgs = await waitSent(v, 'exportSample', 2);
    files = msgs[1].files as { kind: string; data: string }[];
    json = JSON.parse(files.find((f) => f.kind === 'json')!.data);
    const s = inspection.sample;
    assert.deepEqual(
      [json.source, json.label, json.predClean, json.confClean, json.predAdv, json.confAdv, json.attack, json.eps, json.frozenRouting],
      ['live', s.label, s.predClean, s.confClean, s.predAdv, s.confAdv, s.attack, s.eps, s.frozenRouting],
    );
    assert.deepEqual(json.routing, s.routing.map((r) => ({ layer: r.layer, expertsClean: r.expertsClean, expertsAdv: r.expertsAdv, changed: r.changed, probsClean: r.probsClean, probsAdv: r.probsAdv })));
    assert.deepEqual(json.analysisRow.predAdv, per.predAdv[i]);
    const pert = perturbationRgba(s.clean, s.adversarial, s.shape, 1);
    assert.equal(json.perturbation.scale, pert.scale);
    assert.equal(json.pngScale, Math.round(224 / s.shape[1]));
    // Decode the PNGs in the page: size is an integer upscale, pixels equal the images.
    for (const f of files.filter((x) => x.kind !== 'json')) {
      const px = await v.page.evaluate(
        async ({ data, scale }) => {
          const img = new Image();
          await new Promise((res, rej) => {
            img.onload = res;
            img.onerror = rej;
            img.src = 'data:image/png;base64,' + data;
          });
          const c = document.createElement('canvas');
          c.width = img.width;
          c.height = img.height;
          const ctx = c.getContext('2d')!;
          ctx.drawImage(img, 0, 0);
          const out: number[] = [];
          // The centre of each source pixel of the first row.
          for (let x = 0; x < img.width / scale; x++) out.push(...ctx.getImageData(x * scale + Math.floor(scale / 2), Math.floor(scale / 2), 1, 1).data);
          return { w: img.width, h: img.height, row: out };
        },
        { data: f.data, scale: json.pngScale as number },
      );
      assert.equal(px.w, s.shape[1] * json.pngScale);
      assert.equal(px.h, s.shape[0] * json.pngScale);
      const src =
        f.kind === 'perturbation'
          ? pert.rgba
          : (f.kind === 'clean' ? s.clean : s.adversarial).flatMap((x, q) => (q % 3 === 2 ? [Math.round(x * 255), 255] : [Math.round(x * 255)]));
      assert.deepEqual(px.row, src.slice(0, s.shape[1] * 4), `${f.kind} PNG pixels`);
    }
    await v.post({ type: 'exportDone', ok: true, message: 'Exported 4 files to /tmp/x.' });
    await v.page.waitForFunction(() => (document.getElementById('status-message')?.textContent ?? '').includes('Exported 4 files'));
    await v.page.close();
  });

  test('10,000 samples: the gallery stays virtualised, scrolling to the bottom shows the last id, keyboard moves the selection', async () => {
    const big = gen.makeReport({ n: 10_000, layers: 6, experts: 4, k: 1, classes: 10, seed: 3 });
    const bigImages = gen.makeImages(big);
    const v = await openInspector({}, initMessage({ rep: big, name: 'eval-10k.json' }));
    const d0 = await describeView(v);
    assert.equal(d0.totalSamples, 10_000);
    assert.ok(d0.domRows < 60, `${d0.domRows} rows in the DOM`);
    const served = new Set<number>();
    await waitSent(v, 'needImages', 1);
    await serveImages(v, bigImages, served);
    // Scroll to the bottom.
    await v.page.$eval('#gallery', (g) => (g.scrollTop = g.scrollHeight));
    const lastId = big.perSample!.ids[9999];
    await v.page.waitForSelector(`.row.sample[data-id="${lastId}"]`);
    const d1 = await describeView(v);
    assert.ok(d1.domRows < 60, `${d1.domRows} rows in the DOM after scrolling`);
    assert.ok(d1.domIds.includes(lastId));
    const box = await v.page.$eval(`.row.sample[data-id="${lastId}"]`, (r) => {
      const g = document.getElementById('gallery')!.getBoundingClientRect();
      const b = r.getBoundingClientRect();
      return { inside: b.top >= g.top - 1 && b.bottom <= g.bottom + 1 };
    });
    assert.ok(box.inside, 'the last row is inside the visible gallery');
    // Only the rows near the viewport asked for images.
    await v.page.waitForFunction((n) => (window as unknown as { __sent: { type: string }[] }).__sent.filter((m) => m.type === 'needImages').length > n, 1);
    const asked = (await sentOf(v, 'needImages')).flatMap((m) => m.ids as number[]);
    assert.ok(asked.length < 150, `${asked.length} images requested, not 10,000`);
    assert.ok(asked.includes(lastId));
    await serveImages(v, bigImages, served);
    await v.page.waitForSelector(`.row.sample[data-id="${lastId}"] canvas[data-kind="clean"][data-drawn="1"]`);
    // Keyboard: Home selects the first sample and scrolls up; End the last.
    await v.page.focus('#gallery');
    await v.page.keyboard.press('Home');
    await v.page.waitForSelector(`.row.sample.selected[data-id="${big.perSample!.ids[0]}"]`);
    await v.page.keyboard.press('ArrowDown');
    await v.page.waitForSelector(`.row.sample.selected[data-id="${big.perSample!.ids[1]}"]`);
    await v.page.keyboard.press('End');
    await v.page.waitForSelector(`.row.sample.selected[data-id="${lastId}"]`);
    assert.equal((await describeView(v)).selectedId, lastId);
    // A filter on 10,000 samples.
    await v.page.selectOption('#filter-layer', '5');
    const want = idsWhere(big.perSample!, (i) => changedIn(big.perSample!, 5, i));
    const d2 = await describeView(v);
    assert.deepEqual(d2.filteredIds, want);
    assert.ok(d2.domRows < 60);
    await v.page.screenshot({ path: path.join(RESULTS, 'inspector-10k.png') });
    await v.page.close();
  });

  test('without per-sample data: says so, offers Evaluate Robustness, and still inspects a typed id live', async () => {
    const old = { ...report } as RobustnessReport;
    delete old.perSample;
    const v = await openInspector({}, initMessage({ rep: null, split: 'train' }));
    const text = await v.page.$eval('#banner', (e) => e.textContent ?? '');
    assert.match(text, /No per-sample analysis yet — run Evaluate Robustness/);
    await v.page.click('#evaluate');
    await waitSent(v, 'evaluate', 1);
    assert.equal(await v.page.$eval('#evaluate', (b) => (b as HTMLButtonElement).disabled), true, 'disabled while evaluating');
    await v.page.fill('#sample-id', '42');
    await v.page.click('#inspect-id');
    const req = await lastInspect(v, 1);
    assert.deepEqual([req.id, req.split, req.attack], [42, 'train', 'pgd']);
    const sample = { ...inspection.sample, id: 42 };
    await v.post({ type: 'inspection', requestId: req.requestId, sample });
    await v.page.waitForFunction(() => document.getElementById('detail')?.dataset.source === 'live');
    assert.equal((await describeView(v)).routingRows, sample.routing.length);
    // An old report (no perSample): same message, with the file named.
    await v.post(initMessage({ rep: old, name: 'old.json' }));
    await v.page.waitForSelector('#no-per-sample');
    assert.match(await v.page.$eval('#analysis-error', (e) => e.textContent ?? ''), /old\.json has no per-sample results/);
    // An unreadable analysis: the readAnalysis error text.
    await v.post(initMessage({ rep: null, error: '/runs/x/analysis/a.json is not a robustness report: layers[0].loadClean: expected numbers' }));
    await v.page.waitForFunction(() => (document.getElementById('analysis-error')?.textContent ?? '').includes('layers[0].loadClean'));
    await v.page.close();
  });

  test('untrusted workspace or failing engine: text columns and a clear message instead of images', async () => {
    const v = await openInspector({}, initMessage({ trusted: false }));
    assert.match(await v.page.$eval('#untrusted', (e) => e.textContent ?? ''), /Restricted Mode/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await sentOf(v, 'needImages')).length, 0, 'no image requests');
    assert.ok((await v.page.$$eval('.row.sample .c-pred', (e) => e.length)) > 0, 'text columns shown');
    assert.ok((await v.page.$$eval('.row.sample .placeholder.none', (e) => e.length)) > 0);
    await clickRow(v, per.ids[0]);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await sentOf(v, 'inspect')).length, 0, 'no live inspection');
    assert.match(await v.page.$eval('#source', (e) => e.textContent ?? ''), /trusted workspace/);
    await v.page.close();

    const w = await openInspector();
    const asked = (await waitSent(w, 'needImages', 1))[0].ids as number[];
    await w.post({ type: 'imagesUnavailable', ids: asked, message: 'Images could not be loaded from the engine: DATA_NOT_FOUND.' });
    await w.page.waitForSelector('#images-error');
    assert.match(await w.page.$eval('#images-error', (e) => e.textContent ?? ''), /DATA_NOT_FOUND/);
    assert.ok((await w.page.$$eval('.row.sample .placeholder.none', (e) => e.length)) > 0);
    assert.match((await describeView(w)).message ?? '', /could not be loaded/);
    await w.page.click('#retry-images');
    const again = (await waitSent(w, 'needImages', 2))[1].ids as number[];
    // An analysis without stored adversarial images: clean thumbnails, '—' for the others, and a note.
    const items = again.map((id) => ({ id, clean: images.clean[images.ids.indexOf(id)], adversarial: null }));
    await w.post({ type: 'images', shape: images.shape, items, note: 'Only clean images: analysis "eval-200.json" has no stored adversarial images.' });
    await w.page.waitForSelector('#images-note');
    await w.page.waitForSelector(`.row.sample[data-id="${again[0]}"] canvas[data-kind="clean"][data-drawn="1"]`);
    const slots = await w.page.$eval(`.row.sample[data-id="${again[0]}"]`, (r) =>
      Array.from(r.querySelectorAll('.c-img > *')).map((e) => `${e.tagName.toLowerCase()}:${e.getAttribute('data-kind')}:${e.textContent}`),
    );
    assert.deepEqual(slots, ['canvas:clean:', 'span:perturbation:—', 'span:adversarial:—']);
    await w.page.close();
  });

  test('restores the selection and controls after a reload, and rejects malformed host messages', async () => {
    const state = { target: { runsDir: RUNS, runId: RUN_ID, analysis: 'eval-200.json', filter: { label: 2 } }, selected: per.ids[9], selectedSplit: 'test', controls: { attack: 'fgsm', eps: 0.05, freezeRouting: true } };
    const v = await openInspector({ state }, initMessage({ filter: { label: 2 }, restore: { selected: per.ids[9], selectedSplit: 'test', controls: state.controls } }));
    const req = await lastInspect(v, 1);
    assert.deepEqual([req.id, req.attack, req.eps, req.freezeRouting], [per.ids[9], 'fgsm', 0.05, true]);
    assert.equal(await v.page.$eval('#attack', (e) => (e as HTMLSelectElement).value), 'fgsm');
    assert.equal((await describeView(v)).filteredCount, per.labels.filter((l) => l === 2).length);
    await v.post({ type: 'bogus' });
    await v.post({ type: 'inspection', requestId: 1, sample: { id: 1 } });
    await v.post({ type: 'images', shape: [12, 12, 3], items: [{ id: 1, clean: '!!' }] });
    await v.page.waitForFunction(() => (window as unknown as { __sent: { type: string }[] }).__sent.filter((m) => m.type === 'log').length >= 3);
    const logs = await sentOf(v, 'log');
    assert.ok(logs.every((l) => String(l.message).startsWith('Inspector rejected a message')));
    await v.page.close();
  });

  // The lead's analysis of a tiny trained model (test/webview/fixtures/analysis/), once it is there.
  const realReport = findRealAnalysis();
  test('a real analysis (tiny trained model): cells and filters agree with its per-sample columns', { skip: realReport ? false : 'no real analysis fixture yet' }, async () => {
    const rep = realReport!;
    const p = rep.perSample!;
    const v = await openInspector({}, initMessage({ rep, name: 'real.json' }));
    const counts = await v.page.$$eval('button.cell-btn', (bs) => Object.fromEntries(bs.map((b) => [b.getAttribute('data-cell'), Number(b.getAttribute('data-count'))])));
    for (const c of ['keptRight', 'keptWrong', 'changedRight', 'changedWrong'] as const) {
      assert.equal(counts[c], idsWhere(p, (i) => cellOf(p, i) === c).length, c);
      if (rep.mismatch) assert.equal(counts[c], rep.mismatch[c].length, `${c} equals the report's list`);
    }
    await v.page.click('button.cell-btn[data-cell="changedWrong"]');
    assert.deepEqual((await describeView(v)).filteredIds, idsWhere(p, (i) => cellOf(p, i) === 'changedWrong'));
    await v.page.screenshot({ path: path.join(RESULTS, 'inspector-real-analysis.png') });
    await v.page.close();
  });

  screenshotTests('inspector', ({ theme, width }) => openWithImages({ theme, width }));

  for (const theme of ['light', 'dark', 'high-contrast'] as Theme[]) {
    test(`themes: ${theme} (screenshot with gallery, cells and the routing path)`, async () => {
      const v = await openWithImages({ theme }, initMessage({ filter: { cell: 'changedWrong' } }));
      const id = inspection.sample.id;
      await v.post(initMessage());
      await waitSent(v, 'needImages', 1);
      await serveImages(v);
      await clickRow(v, id);
      const req = await inspectOf(v, id);
      await v.post({ type: 'inspection', requestId: req.requestId, sample: inspection.sample });
      await v.page.waitForFunction(() => document.getElementById('detail')?.dataset.source === 'live');
      await serveImages(v);
      const colors = await v.page.evaluate(() => ({ bg: getComputedStyle(document.body).backgroundColor, fg: getComputedStyle(document.body).color }));
      const expected = { light: ['rgb(255, 255, 255)', 'rgb(59, 59, 59)'], dark: ['rgb(31, 31, 31)', 'rgb(204, 204, 204)'], 'high-contrast': ['rgb(0, 0, 0)', 'rgb(255, 255, 255)'] }[theme];
      assert.deepEqual([colors.bg, colors.fg], expected);
      await v.page.screenshot({ path: path.join(RESULTS, `inspector-${theme}.png`), fullPage: true });
      assert.deepEqual(v.errors, []);
      await v.page.close();
    });
  }
});
