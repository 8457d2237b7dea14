/** The sweep table's sorting, filtering, grouping (mean ± sample std) and exports (engine/sweeps/table.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, allButSeed, filterRows, groupRows, renderTable, sortGroups, sortRows, type SweepTable } from '../../../contract/sweepTable';

const table: SweepTable = {
  sweep: 'demo',
  axes: ['method.kind', 'seed'],
  rows: [
    { runId: 'demo-a', values: { 'method.kind': 'pgd-at', seed: 0 }, status: 'finished', sa: 0.9, ra: 0.3, routerRobustness: 0.6, expertRobustness: 0.2, collapsed: true, activeFlops: 680_000, wallSeconds: 60 },
    { runId: 'demo-b', values: { 'method.kind': 'pgd-at', seed: 1 }, status: 'finished', sa: 0.8, ra: 0.5, routerRobustness: 0.7, expertRobustness: 0.3, collapsed: false, activeFlops: 680_000, wallSeconds: 80 },
    { runId: 'demo-c', values: { 'method.kind': 'advmoe', seed: 0 }, status: 'finished', sa: 0.7, ra: 0.1, routerRobustness: 0.5, expertRobustness: 0.1, collapsed: true, activeFlops: 680_000, wallSeconds: 100 },
    { runId: 'demo-d', values: { 'method.kind': 'advmoe', seed: 1 }, status: 'running' },
  ],
};

test('aggregate: mean and sample standard deviation over the values present', () => {
  assert.deepEqual(aggregate([]), { n: 0 });
  assert.deepEqual(aggregate([undefined, 2]), { n: 1, mean: 2 });
  const a = aggregate([0.3, 0.5]);
  assert.equal(a.n, 2);
  assert.ok(Math.abs(a.mean! - 0.4) < 1e-12);
  assert.ok(Math.abs(a.std! - Math.SQRT2 * 0.1) < 1e-12); // sqrt(((0.1)² + (0.1)²) / 1)
  const b = aggregate([1, 2, 3, 4]);
  assert.ok(Math.abs(b.std! - Math.sqrt(5 / 3)) < 1e-12);
});

test('group by an axis: one row per value, metrics averaged over the seeds', () => {
  const groups = groupRows(table.rows, ['method.kind']);
  assert.deepEqual(groups.map((g) => g.values['method.kind']), ['pgd-at', 'advmoe']);
  assert.deepEqual(groups[0].runIds, ['demo-a', 'demo-b']);
  assert.ok(Math.abs(groups[0].metrics.sa.mean! - 0.85) < 1e-12);
  assert.ok(Math.abs(groups[0].metrics.ra.std! - Math.SQRT2 * 0.1) < 1e-12);
  assert.deepEqual(groups[0].collapsed, { count: 1, of: 2 });
  // The running run has no numbers yet: advmoe's mean is over the one finished seed.
  assert.deepEqual(groups[1].metrics.sa, { n: 1, mean: 0.7 });
  assert.deepEqual(groups[1].statuses, { finished: 1, running: 1 });
  assert.deepEqual(allButSeed(table.axes), ['method.kind']);
  assert.deepEqual(sortGroups(groups, 'ra', true).map((g) => g.values['method.kind']), ['pgd-at', 'advmoe']);
  assert.deepEqual(sortGroups(groups, 'ra').map((g) => g.values['method.kind']), ['advmoe', 'pgd-at']);
});

test('sort: numbers numerically, missing values last in either direction, ties stable; filter by words, status and value', () => {
  assert.deepEqual(sortRows(table.rows, 'ra').map((r) => r.runId), ['demo-c', 'demo-a', 'demo-b', 'demo-d']);
  assert.deepEqual(sortRows(table.rows, 'ra', true).map((r) => r.runId), ['demo-b', 'demo-a', 'demo-c', 'demo-d']);
  assert.deepEqual(sortRows(table.rows, 'method.kind').map((r) => r.runId), ['demo-c', 'demo-d', 'demo-a', 'demo-b']);
  assert.deepEqual(sortRows(table.rows, 'seed', true).map((r) => r.runId), ['demo-b', 'demo-d', 'demo-a', 'demo-c']);
  assert.deepEqual(filterRows(table.rows, { text: 'advmoe seed=1' }).map((r) => r.runId), ['demo-d']);
  assert.deepEqual(filterRows(table.rows, { statuses: ['finished'] }).map((r) => r.runId), ['demo-a', 'demo-b', 'demo-c']);
  assert.deepEqual(filterRows(table.rows, { values: { seed: ['0'] } }).map((r) => r.runId), ['demo-a', 'demo-c']);
});

test('exports carry the same numbers: CSV raw, text and LaTeX as percentages with mean ± std', () => {
  const csv = renderTable(table, 'csv').trim().split('\n');
  assert.equal(csv[0], 'run,method.kind,seed,status,sa,ra,router_robustness,expert_robustness,active_flops,wall_seconds,collapsed');
  assert.equal(csv[1], 'demo-a,pgd-at,0,finished,0.9,0.3,0.6,0.2,680000,60,true');
  assert.equal(csv[4], 'demo-d,advmoe,1,running,,,,,,,');
  const grouped = renderTable(table, 'csv', { groupBy: ['method.kind'] }).trim().split('\n');
  assert.match(grouped[0], /^method\.kind,runs,sa_mean,sa_std,sa_n,ra_mean/);
  const g = grouped[1].split(',');
  assert.equal(g[0], 'pgd-at');
  assert.ok(Math.abs(Number(g[2]) - 0.85) < 1e-12);
  const text = renderTable(table, 'text', { groupBy: ['method.kind'] });
  assert.match(text, /pgd-at\s+2\s+2 finished\s+85\.0 ± 7\.1\s+40\.0 ± 14\.1/);
  assert.match(text, /advmoe\s+2\s+1 finished, 1 running\s+70\.0\s+10\.0/);
  const latex = renderTable(table, 'latex', { groupBy: ['method.kind'] });
  assert.match(latex, /\\begin\{tabular\}/);
  assert.match(latex, /method\.kind & runs & status & SA \\% & RA \\%/);
  assert.match(latex, /pgd-at & 2 & 2 finished & \$85\.0 \\pm 7\.1\$ & \$40\.0 \\pm 14\.1\$/);
  const json = JSON.parse(renderTable(table, 'json', { groupBy: ['method.kind'] }));
  assert.equal(json.rows.length, 4);
  assert.equal(json.groups.length, 2);
  const perRun = renderTable(table, 'text', { sort: 'sa', descending: true }).split('\n');
  assert.match(perRun[2], /^demo-a\s+pgd-at\s+0\s+finished\s+90\.0\s+30\.0\s+60\.0\s+20\.0\s+0\.68\s+1m00s\s+yes$/);
});
