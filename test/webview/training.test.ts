/**
 * The Training view in headless Chromium, fed recorded metrics the way the host feeds it.
 * Needs `dist/webview/training.js` (npm run test:webview builds it) and Debian's chromium.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import type { MetricsRecord, RunSeriesData } from '../../webview/protocol';
import { formatValue } from '../../webview/shared/series';
import { listRuns, readMetrics } from '../../extension/runsDisk';
import { exported, exportedPng, RESULTS, ROOT, fileHarness, type Harness, type LoadedView, screenshotTests } from './harness';

const FIXTURE_RUNS = path.join(ROOT, 'test/webview/fixtures/runs');

async function fixtureRuns(): Promise<RunSeriesData[]> {
  const states = await listRuns(FIXTURE_RUNS);
  assert.equal(states.length, 2, 'two fixture runs');
  const out: RunSeriesData[] = [];
  for (const s of states) {
    const m = await readMetrics(FIXTURE_RUNS, s.id);
    out.push({ runId: s.id, name: s.name, status: s.status, method: s.method, records: m.records });
  }
  return out;
}

function metricsOf(run: RunSeriesData): Map<string, MetricsRecord[]> {
  const by = new Map<string, MetricsRecord[]>();
  for (const r of run.records) {
    for (const k of Object.keys(r.metrics)) {
      const list = by.get(k) ?? [];
      list.push(r);
      by.set(k, list);
    }
  }
  return by;
}

const h = fileHarness();
let runs: RunSeriesData[];

before(async () => {
  runs = await fixtureRuns();
});

async function openWithRuns(opts: Parameters<Harness['open']>[1] = {}, data = runs): Promise<LoadedView> {
  const v = await h.open('training', opts);
  const n = await v.renders();
  await v.post({ type: 'init', runs: data });
  await v.waitRender(n);
  await v.page.waitForSelector('section.chart path.series');
  return v;
}

/** Waits until a render has drawn with these control values. */
async function drawnWith(v: LoadedView, smoothing: number, xAxis: string, logScale: boolean): Promise<void> {
  await v.page.waitForFunction((want) => document.body.dataset.renderedUi === want, `${smoothing}|${xAxis}|${logScale}`);
}

async function setSmoothing(v: LoadedView, value: number): Promise<void> {
  const ui = await v.page.evaluate(() => document.body.dataset.renderedUi!.split('|'));
  await v.page.$eval(
    '#smoothing',
    (e, val) => {
      (e as HTMLInputElement).value = String(val);
      e.dispatchEvent(new Event('input', { bubbles: true }));
    },
    value,
  );
  await drawnWith(v, value, ui[1], ui[2] === 'true');
}

describe('runs on disk (host side)', () => {
  test('reads state.json and metrics.jsonl, leaving a torn last line unread', async () => {
    const torn = runs.find((r) => r.runId === '20260102-pgd-at')!;
    const text = fs.readFileSync(path.join(FIXTURE_RUNS, '20260102-pgd-at/metrics.jsonl'), 'utf8');
    const complete = text.split('\n').slice(0, -1);
    assert.equal(torn.records.length, complete.length);
    assert.ok(!text.endsWith('\n'), 'fixture really has a torn line');
    const chunk = await readMetrics(FIXTURE_RUNS, '20260102-pgd-at');
    assert.equal(chunk.nextOffset, Buffer.byteLength(complete.join('\n') + '\n'));
    const again = await readMetrics(FIXTURE_RUNS, '20260102-pgd-at', chunk.nextOffset);
    assert.equal(again.records.length, 0, 'the torn line stays unread');
  });
});

describe('Training view in Chromium', () => {
  test('loads under its CSP, says ready before anything else, and draws axes and one path per run and metric', async () => {
    const v = await openWithRuns();
    const sent = await v.sent();
    assert.equal(sent[0].type, 'ready');
    const charts = await v.page.$$eval('section.chart', (els) => els.map((e) => e.getAttribute('data-chart')));
    const shares = 'Clean routing at inference: largest decision share per layer';
    assert.deepEqual(charts, ['Loss', 'Accuracy (SA, RA)', 'Router and expert robustness', shares, 'Learning rate']);
    // Expected series per chart from the fixture itself.
    const group = (m: string) =>
      /loss/i.test(m) ? 'Loss' : m === 'sa' || m === 'ra' || /acc/i.test(m) ? 'Accuracy (SA, RA)' : /robust/i.test(m) ? 'Router and expert robustness' : m.startsWith('routingShare/') ? shares : 'Learning rate';
    for (const chart of charts) {
      const expected = runs.flatMap((r) => [...metricsOf(r).keys()].filter((m) => group(m) === chart).map((m) => `${r.runId}/${m}`)).sort();
      const drawn = await v.page.$$eval(`section.chart[data-chart="${chart}"] path.series`, (ps) =>
        ps.map((p) => `${p.getAttribute('data-run')}/${p.getAttribute('data-metric')}`).sort(),
      );
      assert.deepEqual(drawn, expected, `paths of ${chart}`);
      const dAttrs = await v.page.$$eval(`section.chart[data-chart="${chart}"] path.series`, (ps) => ps.map((p) => p.getAttribute('d') ?? ''));
      for (const d of dAttrs) assert.match(d, /^M[\d.-]+,[\d.-]+(L[\d.-]+,[\d.-]+)*$/, 'a real polyline');
      const xTicks = await v.page.$$eval(`section.chart[data-chart="${chart}"] g.x-axis .tick`, (t) => t.length);
      const yTicks = await v.page.$$eval(`section.chart[data-chart="${chart}"] g.y-axis .tick`, (t) => t.length);
      assert.ok(xTicks >= 2 && yTicks >= 2, `${chart}: axes with ticks (${xTicks}, ${yTicks})`);
      const legend = await v.page.$$eval(`section.chart[data-chart="${chart}"] .legend-item`, (t) => t.length);
      assert.equal(legend, expected.length, `${chart}: one legend entry per series`);
    }
    // Runs in distinct colours.
    const colours = await v.page.$$eval('section.chart[data-chart="Learning rate"] path.series', (ps) => ps.map((p) => getComputedStyle(p).stroke));
    assert.equal(new Set(colours).size, runs.length, `distinct colours per run: ${colours.join(' ')}`);
    assert.deepEqual(v.errors, [], 'no console errors (CSP violations show here)');
    await v.page.close();
  });

  test('tooltip shows the exact recorded values at the hovered step', async () => {
    const v = await openWithRuns();
    const box = (await v.page.$('section.chart[data-chart="Loss"] rect.overlay'))!;
    const b = (await box.boundingBox())!;
    await v.page.mouse.move(b.x + b.width * 0.37, b.y + b.height / 2);
    await v.page.waitForSelector('section.chart[data-chart="Loss"] .tooltip:not([hidden]) .tooltip-row');
    const rows = await v.page.$$eval('section.chart[data-chart="Loss"] .tooltip-row', (rs) =>
      rs.map((r) => ({
        run: r.getAttribute('data-run')!,
        metric: r.getAttribute('data-metric')!,
        step: Number(r.getAttribute('data-step')),
        value: r.getAttribute('data-value')!,
        text: r.textContent ?? '',
      })),
    );
    assert.equal(rows.length, await v.page.$$eval('section.chart[data-chart="Loss"] path.series', (p) => p.length));
    for (const row of rows) {
      const run = runs.find((r) => r.runId === row.run)!;
      const rec = run.records.find((r) => r.step === row.step && row.metric in r.metrics);
      assert.ok(rec, `a record at step ${row.step} for ${row.metric}`);
      assert.equal(row.value, String(rec.metrics[row.metric]));
      assert.ok(row.text.includes(formatValue(rec.metrics[row.metric])), `tooltip text "${row.text}" shows the value`);
    }
    assert.ok(rows[0].step > 20 && rows[0].step < 120, `hovered near 37% of the x range (step ${rows[0].step})`);
    await v.page.close();
  });

  test('smoothing changes the drawn path, keeps the raw curve behind, and never touches the CSV', async () => {
    const v = await openWithRuns();
    const sel = 'section.chart[data-chart="Loss"] path.series[data-metric="loss"][data-run="20260101-advmoe"]';
    await setSmoothing(v, 0);
    const d0 = await v.page.$eval(sel, (p) => p.getAttribute('d'));
    assert.equal(await v.page.$$eval('path.series-raw', (p) => p.length), 0, 'no faint raw curve without smoothing');
    const csv0 = (await exported(v, 'csv')).data;
    await setSmoothing(v, 0.9);
    const d9 = await v.page.$eval(sel, (p) => p.getAttribute('d'));
    assert.notEqual(d9, d0, 'smoothed path differs');
    const raw = await v.page.$eval(
      'section.chart[data-chart="Loss"] path.series-raw[data-metric="loss"][data-run="20260101-advmoe"]',
      (p) => ({ d: p.getAttribute('d'), opacity: Number(getComputedStyle(p).strokeOpacity) }),
    );
    assert.equal(raw.d, d0, 'raw curve behind equals the unsmoothed one');
    assert.ok(raw.opacity < 0.5, 'raw curve is faint');
    // Debiased: the first smoothed point equals the first raw point (no pull towards 0).
    const first = (d: string | null) => d!.slice(1).split('L')[0];
    assert.equal(first(d9), first(d0));
    const csv9 = (await exported(v, 'csv')).data;
    assert.equal(csv9, csv0, 'CSV is identical under smoothing');
    // CSV holds every raw value.
    const lines = csv0.trim().split('\n');
    const total = runs.reduce((n, r) => n + r.records.reduce((m, rec) => m + Object.keys(rec.metrics).length, 0), 0);
    assert.equal(lines.length - 1, total);
    assert.equal(lines[0], 'run_id,run_name,kind,metric,step,epoch,time,value');
    const rec = runs[1].records[5];
    const [metric, value] = Object.entries(rec.metrics)[0];
    assert.ok(lines.includes(`${runs[1].runId},${runs[1].name},${rec.kind},${metric},${rec.step},${rec.epoch},${rec.time},${value}`));
    assert.equal(await v.page.$eval('#smoothing-value', (e) => e.textContent), '0.90');
    const state = await v.page.evaluate(() => (window as unknown as { __state: unknown }).__state);
    assert.deepEqual(state, { runIds: runs.map((r) => r.runId), smoothing: 0.9, xAxis: 'step', logScale: false });
    await v.page.close();
  });

  test('x axis by epoch or wall time, and log scale', async () => {
    const v = await openWithRuns();
    const label = () => v.page.$eval('section.chart[data-chart="Loss"] text.x-label', (t) => t.textContent);
    const lastXTick = () => v.page.$$eval('section.chart[data-chart="Loss"] g.x-axis .tick text', (t) => t.map((e) => e.textContent).pop());
    assert.equal(await label(), 'step');
    await v.page.selectOption('#x-axis', 'epoch');
    await drawnWith(v, 0.6, 'epoch', false);
    assert.equal(await label(), 'epoch');
    assert.ok(Number(await lastXTick()) <= 4, 'epoch ticks end near 4');
    await v.page.selectOption('#x-axis', 'time');
    await drawnWith(v, 0.6, 'time', false);
    assert.equal(await label(), 'wall time (s)');
    const linearTicks = await v.page.$$eval('section.chart[data-chart="Loss"] g.y-axis .tick text', (t) => t.map((e) => e.textContent));
    await v.page.check('#log-scale');
    await drawnWith(v, 0.6, 'time', true);
    const logTicks = await v.page.$$eval('section.chart[data-chart="Loss"] g.y-axis .tick text', (t) => t.map((e) => e.textContent));
    assert.notDeepEqual(logTicks, linearTicks);
    const state = await v.page.evaluate(() => (window as unknown as { __state: { xAxis: string; logScale: boolean } }).__state);
    assert.equal(state.xAxis, 'time');
    assert.equal(state.logScale, true);
    await v.page.close();
  });

  test('restores its controls from the saved state after a reload', async () => {
    const v = await openWithRuns({ state: { runIds: ['20260101-advmoe'], smoothing: 0.75, xAxis: 'epoch', logScale: true } });
    assert.equal(await v.page.$eval('#smoothing', (e) => (e as HTMLInputElement).value), '0.75');
    assert.equal(await v.page.$eval('#x-axis', (e) => (e as HTMLSelectElement).value), 'epoch');
    assert.equal(await v.page.$eval('#log-scale', (e) => (e as HTMLInputElement).checked), true);
    assert.equal(await v.page.$eval('section.chart[data-chart="Loss"] text.x-label', (t) => t.textContent), 'epoch');
    await v.page.close();
  });

  test('exports SVG and PNG of the charts', async () => {
    const v = await openWithRuns({ theme: 'dark' });
    const svg = await exported(v, 'svg');
    assert.equal(svg.fileName, `training-${runs.map((r) => r.name).join('-')}.svg`);
    assert.match(svg.data, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const paths = (svg.data.match(/<path[^>]*class|<path /g) ?? []).length;
    assert.ok(paths >= 17, `series and axis paths in the SVG (${paths})`);
    assert.ok(!svg.data.includes('var(--'), 'colours are resolved, not CSS variables');
    assert.ok(svg.data.includes('Router and expert robustness'));
    fs.writeFileSync(path.join(RESULTS, 'training-export.svg'), svg.data);
    await exportedPng(v, 10_000, 'training-export.png');
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('a run with 100k points renders fast, draws a bounded path, exports every point', async () => {
    const v = await h.open('training', { width: 1000 });
    const big = await v.page.evaluate(() => {
      const records = [];
      let seed = 1;
      const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      for (let i = 1; i <= 100_000; i++) {
        records.push({ kind: 'train', step: i, epoch: i / 1000, time: i * 0.01, metrics: { loss: 2 * Math.exp(-i / 30000) + 0.3 * rnd(), lr: 0.1 } });
      }
      (window as unknown as { __big: unknown }).__big = { type: 'init', runs: [{ runId: 'big', name: 'big', status: 'running', method: 'advmoe', records }] };
      return records.length;
    });
    assert.equal(big, 100_000);
    const n = await v.renders();
    const ms = await v.page.evaluate(async (before) => {
      const t0 = performance.now();
      window.postMessage((window as unknown as { __big: unknown }).__big, '*');
      while (Number(document.body.dataset.renders) <= before) await new Promise((r) => setTimeout(r, 5));
      return performance.now() - t0;
    }, n);
    const segs = await v.page.$eval('section.chart[data-chart="Loss"] path.series', (p) => (p.getAttribute('d') ?? '').split('L').length);
    const width = await v.page.$eval('section.chart[data-chart="Loss"] rect.overlay', (r) => Number(r.getAttribute('width')));
    assert.ok(segs <= width * 4 + 4, `downsampled for drawing: ${segs} points for ${width} px`);
    assert.ok(segs > width, `keeps the min/max envelope: ${segs} points`);
    // Live appends: 300 messages in ~1.5 s must not render more than 10 times a second.
    const r0 = await v.renders();
    const t0 = Date.now();
    for (let k = 0; k < 300; k++) {
      await v.post({ type: 'append', runId: 'big', records: [{ kind: 'train', step: 100_001 + k, epoch: 100 + k / 1000, time: 1000 + k, metrics: { loss: 0.5, lr: 0.1 } }] });
    }
    await new Promise((r) => setTimeout(r, 250));
    const elapsed = Date.now() - t0;
    const renders = (await v.renders()) - r0;
    assert.ok(renders >= 1 && renders <= elapsed / 100 + 2, `${renders} renders in ${elapsed} ms`);
    const t1 = Date.now();
    await setSmoothing(v, 0.95);
    const smoothMs = Date.now() - t1;
    const csv = await exported(v, 'csv');
    assert.equal(csv.data.trim().split('\n').length - 1, 2 * 100_300, 'CSV has every point');
    assert.ok(ms < 3000, `first render of 100k points took ${ms.toFixed(0)} ms`);
    assert.ok(smoothMs < 3000, `re-smoothing 100k points took ${smoothMs} ms`);
    console.log(`# 100k points: first render ${ms.toFixed(0)} ms, re-smooth ${smoothMs} ms, ${segs} drawn points, ${renders} renders in ${elapsed} ms of appends`);
    await v.page.close();
  });

  test('a resumed run that rewinds replaces the overlapping steps', async () => {
    const v = await h.open('training');
    const rec = (step: number, loss: number) => ({ kind: 'train', step, epoch: step / 10, time: step, metrics: { loss } });
    let n = await v.renders();
    await v.post({ type: 'init', runs: [{ runId: 'r', name: 'r', status: 'running', method: 'advmoe', records: [1, 2, 3, 4, 5, 6].map((s) => rec(s, 1)) }] });
    await v.waitRender(n);
    n = await v.renders();
    await v.post({ type: 'append', runId: 'r', records: [rec(5, 2), rec(6, 2), rec(7, 2)] });
    await v.waitRender(n);
    const csv = (await exported(v, 'csv')).data.trim().split('\n').slice(1);
    assert.deepEqual(csv.map((l) => l.split(',').slice(4, 5).join() + '=' + l.split(',').pop()), ['1=1', '2=1', '3=1', '4=1', '5=2', '6=2', '7=2']);
    await v.page.close();
  });

  test('rejects malformed host messages with a log line and answers describe', async () => {
    const v = await openWithRuns();
    await v.post({ type: 'bogus' });
    await v.post({ type: 'append', runId: 'x', records: [{ kind: 'train' }] });
    await v.post({ type: 'describe', requestId: 7 });
    await v.page.waitForFunction(() => (window as unknown as { __sent: { type: string }[] }).__sent.some((m) => m.type === 'description'));
    const sent = await v.sent();
    const logs = sent.filter((m) => m.type === 'log').map((m) => String(m.message));
    assert.equal(logs.length, 2);
    assert.match(logs[0], /unknown message type "bogus"/);
    assert.match(logs[1], /append: bad fields/);
    const desc = sent.find((m) => m.type === 'description') as unknown as { requestId: number; series: { runId: string; metric: string; points: number }[] };
    assert.equal(desc.requestId, 7);
    const loss = desc.series.find((s) => s.runId === '20260101-advmoe' && s.metric === 'loss')!;
    assert.equal(loss.points, metricsOf(runs.find((r) => r.runId === '20260101-advmoe')!).get('loss')!.length);
    await v.page.close();
  });

  test('a run recorded from the engine: every metric key it logged gets one path, in a sensible chart', async () => {
    const dir = path.join(ROOT, 'test/webview/fixtures/recorded');
    const [state] = await listRuns(dir);
    const { records } = await readMetrics(dir, state.id);
    const v = await openWithRuns({}, [{ runId: state.id, name: state.name, status: state.status, method: state.method, records }]);
    const keys = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
    const drawn = await v.page.$$eval('path.series', (ps) => ps.map((p) => p.getAttribute('data-metric')!).sort());
    assert.deepEqual(drawn, keys);
    const chartOf = async (metric: string) =>
      v.page.$eval(`path.series[data-metric="${metric}"]`, (p) => p.closest('section.chart')!.getAttribute('data-chart'));
    assert.equal(await chartOf('routerLoss'), 'Loss');
    assert.equal(await chartOf('expertLoss'), 'Loss');
    assert.equal(await chartOf('sa'), 'Accuracy (SA, RA)');
    assert.equal(await chartOf('expertRobustness'), 'Router and expert robustness');
    assert.equal(await chartOf('routerGradNorm'), 'Gradient norm');
    assert.equal(await chartOf('routerLr'), 'Learning rate');
    assert.equal(await chartOf('trainEps'), 'trainEps');
    const lossPoints = records.filter((r) => 'loss' in r.metrics).length;
    const d = await v.page.$eval('path.series[data-metric="loss"]', (p) => p.getAttribute('d')!);
    assert.equal(d.split('L').length, lossPoints, 'a short series is drawn point for point');
    await v.page.screenshot({ path: path.join(RESULTS, 'training-view-recorded.png'), fullPage: true });
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  test('a short run: accuracies in % on a 0–100% axis like the other views, and a lone evaluation says its value', async () => {
    const full = runs[0];
    const firstEval = full.records.find((r) => r.kind === 'eval' && r.metrics.sa !== undefined)!;
    const short: RunSeriesData = { ...full, records: [...full.records.filter((r) => r.kind === 'train' && r.step <= firstEval.step), firstEval] };
    const v = await openWithRuns({ width: 450 }, [short]);
    const chart = 'section.chart[data-chart="Accuracy (SA, RA)"]';
    const ticks = await v.page.$$eval(`${chart} g.y-axis .tick text`, (t) => t.map((e) => e.textContent ?? ''));
    assert.ok(ticks.length >= 2 && ticks.every((t) => /^\d+%$/.test(t)), `percent ticks: ${ticks.join(' ')}`);
    assert.equal(ticks[0], '0%');
    assert.equal(ticks[ticks.length - 1], '100%');
    const lone = await v.page.$$eval(`${chart} text.lone-value`, (t) => t.map((e) => ({ metric: e.getAttribute('data-metric'), text: e.textContent })));
    const sa = lone.find((l) => l.metric === 'sa');
    assert.ok(sa, `the single SA point is labelled (${JSON.stringify(lone)})`);
    // The series' own label (as in the legend), then the value in %.
    assert.equal(sa.text?.toLowerCase(), `sa ${(firstEval.metrics.sa * 100).toFixed(1)}%`);
    // The loss chart keeps its own scale (not a share).
    const lossTicks = await v.page.$$eval('section.chart[data-chart="Loss"] g.y-axis .tick text', (t) => t.map((e) => e.textContent ?? ''));
    assert.ok(lossTicks.every((t) => !t.endsWith('%')), lossTicks.join(' '));
    await v.page.screenshot({ path: path.join(RESULTS, 'training-short-run-450.png'), fullPage: true });
    assert.deepEqual(v.errors, []);
    await v.page.close();
  });

  screenshotTests('training', ({ theme, width }) => openWithRuns({ theme, width }), {
    text: 'g.y-axis .tick text',
    thickLine: 'path.series',
    hover: async (v) => {
      const box = (await v.page.$('section.chart[data-chart="Accuracy (SA, RA)"] rect.overlay'))!;
      const b = (await box.boundingBox())!;
      await v.page.mouse.move(b.x + b.width * 0.6, b.y + b.height / 2);
      await v.page.waitForSelector('.tooltip:not([hidden])');
    },
  });
});

describe('host-side validation of webview messages', () => {
  test('accepts the known messages and rejects unknown or malformed ones', async () => {
    const { parseTrainingToHost } = await import('../../webview/protocol');
    assert.equal(parseTrainingToHost({ type: 'ready' }).ok, true);
    assert.equal(parseTrainingToHost({ type: 'export', format: 'csv', fileName: 'a.csv', data: 'x' }).ok, true);
    assert.equal(parseTrainingToHost({ type: 'export', format: 'exe', fileName: 'a.csv', data: 'x' }).ok, false);
    assert.equal(parseTrainingToHost({ type: 'export', format: 'csv', fileName: '../../etc/passwd', data: 'x' }).ok, false);
    assert.equal(parseTrainingToHost({ type: 'nope' }).ok, false);
    assert.equal(parseTrainingToHost('ready').ok, false);
    assert.equal(parseTrainingToHost({ type: 'log', level: 'fatal', message: 'x' }).ok, false);
  });
});
