/**
 * The Sweep Table view in headless Chromium, fed a sweep table the way the host feeds it: sorting by a header,
 * grouping by an axis with mean ± sample std over the seeds (checked against numbers computed here), filtering,
 * selecting rows to open them in another view, exports equal to the CLI's, and a damaged sweep shown as such.
 * Needs `dist/webview/sweep.js` (npm run test:webview builds it) and Debian's chromium.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { renderTable, type SweepTable } from '../../contract/sweepTable';
import { RESULTS, rendered, fileHarness, type LoadedView } from './harness';

const TABLE: SweepTable = {
  sweep: 'methods-seeds',
  axes: ['method.kind', 'seed'],
  rows: [
    { runId: 'methods-seeds-a452c79c45', values: { 'method.kind': 'pgd-at', seed: 0 }, status: 'finished', sa: 0.912, ra: 0.301, routerRobustness: 0.62, expertRobustness: 0.21, collapsed: true, activeFlops: 680_000, wallSeconds: 61 },
    { runId: 'methods-seeds-5014c6d1e9', values: { 'method.kind': 'pgd-at', seed: 1 }, status: 'finished', sa: 0.874, ra: 0.259, routerRobustness: 0.7, expertRobustness: 0.19, collapsed: false, activeFlops: 680_000, wallSeconds: 75 },
    { runId: 'methods-seeds-6b07059ce4', values: { 'method.kind': 'advmoe', seed: 0 }, status: 'finished', sa: 0.801, ra: 0.412, routerRobustness: 0.55, expertRobustness: 0.4, collapsed: true, activeFlops: 680_000, wallSeconds: 130 },
    { runId: 'methods-seeds-f29dedfb82', values: { 'method.kind': 'advmoe', seed: 1 }, status: 'finished', sa: 0.822, ra: 0.388, routerRobustness: 0.51, expertRobustness: 0.37, collapsed: true, activeFlops: 680_000, wallSeconds: 128 },
  ],
};

const h = fileHarness();

async function open(table: SweepTable | undefined = TABLE, error?: string, state?: unknown): Promise<LoadedView> {
  const v = await h.open('sweep', { state });
  await rendered(v, () => v.post({ type: 'show', sweepDir: '/ws/.advmoe/sweeps/methods-seeds', table, error }));
  return v;
}

/** The body cells of the table as drawn, row by row (without the selection column). */
function cells(v: LoadedView): Promise<string[][]> {
  return v.page.$$eval('table.sweep tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td:not(.select)')).map((td) => td.textContent ?? '')));
}
function header(v: LoadedView): Promise<string[]> {
  return v.page.$$eval('table.sweep thead th:not(.select)', (ths) => ths.map((th) => (th.textContent ?? '').replace(/ [▲▼]$/, '')));
}

const clickAndRender = (v: LoadedView, selector: string) => rendered(v, () => v.page.click(selector));

async function lastSent(v: LoadedView, type: string, count: number): Promise<Record<string, unknown>> {
  await v.page.waitForFunction(([t, c]) => (window as unknown as { __sent: { type: string }[] }).__sent.filter((m) => m.type === t).length > (c as number), [type, count] as const);
  const all = (await v.sent()).filter((m) => m.type === type);
  return all[all.length - 1];
}

const meanStd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { m, s: Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) };
};

test('one row per run with every column; a header click sorts, a second one reverses', async () => {
  const v = await open();
  assert.deepEqual(await header(v), ['run', 'method.kind', 'seed', 'status', 'SA %', 'RA %', 'router rob. %', 'expert rob. %', 'active MFLOPs', 'wall time', 'collapsed']);
  const rows = await cells(v);
  assert.equal(rows.length, 4);
  assert.deepEqual(rows[0], ['methods-seeds-a452c79c45', 'pgd-at', '0', 'finished', '91.2', '30.1', '62.0', '21.0', '0.68', '1m01s', 'yes']);
  await clickAndRender(v, 'th[data-column="ra"]');
  assert.deepEqual((await cells(v)).map((r) => r[5]), ['25.9', '30.1', '38.8', '41.2']);
  await clickAndRender(v, 'th[data-column="ra"]');
  assert.deepEqual((await cells(v)).map((r) => r[5]), ['41.2', '38.8', '30.1', '25.9']);
  assert.equal(await v.page.getAttribute('th[data-column="ra"]', 'aria-sort'), 'descending');
  const state = (await v.page.evaluate(() => (window as unknown as { __state: Record<string, unknown> }).__state)) as Record<string, unknown>;
  assert.equal(state.sort, 'ra');
  assert.equal(state.descending, true);
  await v.page.screenshot({ path: path.join(RESULTS, 'sweep-runs.png') });
  assert.deepEqual(v.errors, []);
});

test('group by method: mean ± sample std over the seeds, equal to the numbers computed here', async () => {
  const v = await open();
  await rendered(v, () => v.page.selectOption('#group', 'method.kind'));
  assert.deepEqual(await header(v), ['method.kind', 'runs', 'status', 'SA %', 'RA %', 'router rob. %', 'expert rob. %', 'active MFLOPs', 'wall time', 'collapsed']);
  const rows = await cells(v);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    const own = TABLE.rows.filter((r) => r.values['method.kind'] === row[0]);
    assert.equal(row[1], '2');
    assert.equal(row[2], '2 finished');
    for (const [col, key] of [[3, 'sa'], [4, 'ra'], [5, 'routerRobustness'], [6, 'expertRobustness']] as const) {
      const { m, s } = meanStd(own.map((r) => r[key]!));
      assert.equal(row[col], `${(100 * m).toFixed(1)} ± ${(100 * s).toFixed(1)}`, `${row[0]} ${key}`);
    }
    assert.equal(row[9], `${own.filter((r) => r.collapsed).length}/2`);
  }
  assert.equal(rows[0][3], '89.3 ± 2.7'); // pgd-at SA: 91.2 and 87.4
  // Every axis but seed: the same grouping here.
  await rendered(v, () => v.page.selectOption('#group', '*seeds'));
  assert.deepEqual(await cells(v), rows);
  // Sorted by a group's mean.
  await clickAndRender(v, 'th[data-column="ra"]');
  assert.deepEqual((await cells(v)).map((r) => r[0]), ['pgd-at', 'advmoe']);
  await v.page.screenshot({ path: path.join(RESULTS, 'sweep-grouped.png') });
  assert.deepEqual(v.errors, []);
});

test('filter, select, open in another view; exports carry what is shown, as the CLI writes it', async () => {
  const v = await open();
  await rendered(v, () => v.page.fill('#filter', 'advmoe'));
  assert.deepEqual((await cells(v)).map((r) => r[0]), ['methods-seeds-6b07059ce4', 'methods-seeds-f29dedfb82']);
  assert.equal(await v.page.isDisabled('button.open[data-view="training"]'), true, 'nothing selected yet');
  await clickAndRender(v, 'table.sweep thead input[type="checkbox"]');
  assert.equal(await v.page.isDisabled('button.open[data-view="routing"]'), true, 'Routing shows one run');
  await v.page.click('button.open[data-view="robustness"]');
  const opened = await lastSent(v, 'open', 0);
  assert.deepEqual(opened, { type: 'open', view: 'robustness', runIds: ['methods-seeds-6b07059ce4', 'methods-seeds-f29dedfb82'] });
  await clickAndRender(v, 'tr[data-runs="methods-seeds-6b07059ce4"] input[type="checkbox"]');
  await v.page.click('button.open[data-view="routing"]');
  assert.deepEqual(await lastSent(v, 'open', 1), { type: 'open', view: 'routing', runIds: ['methods-seeds-f29dedfb82'] });

  await v.page.click('button.export[data-format="csv"]');
  const csv = await lastSent(v, 'export', 0);
  assert.equal(csv.fileName, 'methods-seeds.csv');
  assert.equal(csv.data, renderTable(TABLE, 'csv', { filter: { text: 'advmoe' } }));
  await rendered(v, () => v.page.fill('#filter', ''));
  await rendered(v, () => v.page.selectOption('#group', 'method.kind'));
  await v.page.click('button.export[data-format="tex"]');
  const tex = await lastSent(v, 'export', 1);
  assert.equal(tex.fileName, 'methods-seeds-grouped.tex');
  assert.equal(tex.data, renderTable(TABLE, 'latex', { groupBy: ['method.kind'], filter: { text: '' } }));
  assert.match(String(tex.data), /pgd-at & 2 & 2 finished & \$89\.3 \\pm 2\.7\$/);
  await v.page.click('button.export[data-format="json"]');
  const json = JSON.parse(String((await lastSent(v, 'export', 2)).data));
  assert.equal(json.groups.length, 2);
  assert.equal(json.rows.length, 4);
  assert.deepEqual(v.errors, []);
});

test('a live update keeps the sort and the selection; a damaged sweep is shown as such; a malformed table is refused', async () => {
  const v = await open();
  await clickAndRender(v, 'th[data-column="sa"]');
  await clickAndRender(v, 'tr[data-runs="methods-seeds-a452c79c45"] input[type="checkbox"]');
  const changed: SweepTable = { ...TABLE, rows: TABLE.rows.map((r) => (r.runId.endsWith('a452c79c45') ? { ...r, sa: 0.5 } : r)) };
  await rendered(v, () => v.post({ type: 'show', sweepDir: '/ws/.advmoe/sweeps/methods-seeds', table: changed }));
  assert.equal((await cells(v))[0][0], 'methods-seeds-a452c79c45', 'still sorted by SA');
  assert.equal((await cells(v))[0][4], '50.0');
  assert.equal(await v.page.isChecked('tr[data-runs="methods-seeds-a452c79c45"] input[type="checkbox"]'), true);
  await rendered(v, () => v.post({ type: 'show', sweepDir: '/ws/x', error: '/ws/x/sweep.json is damaged: runs is not a list' }));
  assert.equal(await v.page.textContent('.message'), '/ws/x/sweep.json is damaged: runs is not a list');
  assert.equal((await cells(v)).length, 0);
  await v.post({ type: 'show', sweepDir: '/ws/x', table: { ...TABLE, rows: [{ runId: '../etc', values: {}, status: 'finished' }] } });
  const warn = await lastSent(v, 'log', 0);
  assert.match(String(warn.message), /rows\[0\] is malformed/);
});
