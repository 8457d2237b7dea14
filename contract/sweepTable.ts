/**
 * The sweep table (README "Sweeps"): one row per run, or one row per group of runs with mean ± std. Pure
 * functions, no Node modules: `advmoe sweep table` and the Sweep Table view (webview/sweep) share them, so both
 * sort, group and export alike.
 */
/** A value an axis takes: anything JSON (numbers, strings, booleans; objects for whole sub-settings). */
export type AxisValue = string | number | boolean | null | AxisValue[] | { [k: string]: AxisValue };

export interface SweepTableRow {
  runId: string;
  values: Record<string, AxisValue>;
  /** The run's status (`missing`: not created yet; `unreadable`: its folder is damaged). */
  status: string;
  /** Fractions in [0, 1]. */
  sa?: number;
  ra?: number;
  routerRobustness?: number;
  expertRobustness?: number;
  /** Any MoE layer's router collapsed in the final analysis (README "Metric definitions"). */
  collapsed?: boolean;
  /** Active FLOPs per image of the final analysis. */
  activeFlops?: number;
  /** Seconds the run trained (and analysed), from its last metrics record. */
  wallSeconds?: number;
}

export interface SweepTable {
  sweep: string;
  axes: string[];
  rows: SweepTableRow[];
}

export type MetricKey = 'sa' | 'ra' | 'routerRobustness' | 'expertRobustness' | 'activeFlops' | 'wallSeconds';

export const METRICS: readonly { key: MetricKey; label: string; csv: string; unit: 'pct' | 'mflops' | 'seconds' }[] = [
  { key: 'sa', label: 'SA %', csv: 'sa', unit: 'pct' },
  { key: 'ra', label: 'RA %', csv: 'ra', unit: 'pct' },
  { key: 'routerRobustness', label: 'router rob. %', csv: 'router_robustness', unit: 'pct' },
  { key: 'expertRobustness', label: 'expert rob. %', csv: 'expert_robustness', unit: 'pct' },
  { key: 'activeFlops', label: 'active MFLOPs', csv: 'active_flops', unit: 'mflops' },
  { key: 'wallSeconds', label: 'wall time', csv: 'wall_seconds', unit: 'seconds' },
];

/** A column to sort by: an axis key, `status`, `collapsed`, `runId` or a metric. */
export type SortColumn = string;

export function axisText(v: AxisValue | undefined): string {
  return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

function cellValue(row: SweepTableRow, column: SortColumn): AxisValue | undefined {
  if (column === 'status' || column === 'runId') return row[column];
  if (column === 'collapsed') return row.collapsed === undefined ? undefined : row.collapsed;
  if (METRICS.some((m) => m.key === column)) return row[column as MetricKey];
  return row.values[column];
}

/** Numbers numerically, everything else as text; missing values last whatever the direction. */
function compareValues(a: AxisValue | undefined, b: AxisValue | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return axisText(a).localeCompare(axisText(b), 'en', { numeric: true });
}

/** Rows sorted by a column (stable: ties keep their order). */
export function sortRows<T extends SweepTableRow>(rows: readonly T[], column: SortColumn, descending = false): T[] {
  return rows
    .map((row, i) => ({ row, i }))
    .sort((x, y) => {
      const a = cellValue(x.row, column);
      const b = cellValue(y.row, column);
      if (a === undefined || b === undefined) return compareValues(a, b) || x.i - y.i;
      return (descending ? -compareValues(a, b) : compareValues(a, b)) || x.i - y.i;
    })
    .map((x) => x.row);
}

export interface RowFilter {
  /** Words that must each occur in the run id, its status or an axis's `key=value`. */
  text?: string;
  /** Only these statuses (empty or absent: all). */
  statuses?: string[];
  /** Per axis, the values kept (absent axis: all). */
  values?: Record<string, string[]>;
}

export function filterRows<T extends SweepTableRow>(rows: readonly T[], f: RowFilter): T[] {
  const words = (f.text ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  return rows.filter((r) => {
    if (f.statuses?.length && !f.statuses.includes(r.status)) return false;
    for (const [k, kept] of Object.entries(f.values ?? {})) if (!kept.includes(axisText(r.values[k]))) return false;
    if (!words.length) return true;
    const hay = [r.runId, r.status, ...Object.entries(r.values).map(([k, v]) => `${k}=${axisText(v)}`)].join(' ').toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

export interface Aggregate {
  /** Runs with a value. */
  n: number;
  mean?: number;
  /** Sample standard deviation (n − 1); absent for n < 2. */
  std?: number;
}

export function aggregate(xs: readonly (number | undefined)[]): Aggregate {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (!v.length) return { n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  if (v.length < 2) return { n: 1, mean };
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
  return { n: v.length, mean, std: Math.sqrt(variance) };
}

export interface GroupRow {
  /** The group's value of every grouping axis. */
  values: Record<string, AxisValue>;
  runIds: string[];
  /** Runs per status, e.g. { finished: 2 }. */
  statuses: Record<string, number>;
  /** Runs whose routers collapsed, of those with a final analysis. */
  collapsed: { count: number; of: number };
  metrics: Record<MetricKey, Aggregate>;
}

/**
 * Groups rows by the values of `by` (axis keys), aggregating each metric over the rest (typically the seeds) as
 * mean ± sample std. Groups come in the order their first row appears.
 */
export function groupRows(rows: readonly SweepTableRow[], by: readonly string[]): GroupRow[] {
  const groups = new Map<string, SweepTableRow[]>();
  for (const r of rows) {
    const key = JSON.stringify(by.map((k) => axisText(r.values[k])));
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()].map((g) => {
    const statuses: Record<string, number> = {};
    for (const r of g) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const withFlag = g.filter((r) => r.collapsed !== undefined);
    return {
      values: Object.fromEntries(by.map((k) => [k, g[0].values[k]])) as Record<string, AxisValue>,
      runIds: g.map((r) => r.runId),
      statuses,
      collapsed: { count: withFlag.filter((r) => r.collapsed).length, of: withFlag.length },
      metrics: Object.fromEntries(METRICS.map((m) => [m.key, aggregate(g.map((r) => r[m.key]))])) as Record<MetricKey, Aggregate>,
    };
  });
}

/** The grouping that averages over seeds: every axis but `seed`. */
export function allButSeed(axes: readonly string[]): string[] {
  return axes.filter((a) => a !== 'seed');
}

/** Sorts groups by a grouping axis, a metric's mean, or `runs` (group size). */
export function sortGroups(groups: readonly GroupRow[], column: SortColumn, descending = false): GroupRow[] {
  const value = (g: GroupRow): AxisValue | undefined =>
    column === 'runs' ? g.runIds.length : column === 'collapsed' ? g.collapsed.count : METRICS.some((m) => m.key === column) ? g.metrics[column as MetricKey].mean : g.values[column];
  return groups
    .map((g, i) => ({ g, i }))
    .sort((x, y) => {
      const a = value(x.g);
      const b = value(y.g);
      if (a === undefined || b === undefined) return compareValues(a, b) || x.i - y.i;
      return (descending ? -compareValues(a, b) : compareValues(a, b)) || x.i - y.i;
    })
    .map((x) => x.g);
}

// ---- formatting ----

export function formatMetric(unit: 'pct' | 'mflops' | 'seconds', x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  if (unit === 'pct') return (100 * x).toFixed(1);
  if (unit === 'mflops') return (x / 1e6).toFixed(2);
  return formatSeconds(x);
}

export function formatSeconds(s: number): string {
  const r = Math.round(s);
  const h = Math.floor(r / 3600);
  const m = Math.floor((r % 3600) / 60);
  const sec = r % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** "95.0 ± 0.8" (n ≥ 2), "95.0" (n = 1), "—" (none). */
export function formatAggregate(unit: 'pct' | 'mflops' | 'seconds', a: Aggregate): string {
  if (a.mean === undefined) return '—';
  if (a.std === undefined) return formatMetric(unit, a.mean);
  const std = unit === 'pct' ? (100 * a.std).toFixed(1) : unit === 'mflops' ? (a.std / 1e6).toFixed(2) : formatSeconds(a.std);
  return `${formatMetric(unit, a.mean)} ± ${std}`;
}

function collapsedText(c: boolean | undefined): string {
  return c === undefined ? '—' : c ? 'yes' : 'no';
}

/** Header and cells of the per-run table, as people read them. */
export function runCells(table: SweepTable, rows: readonly SweepTableRow[]): { header: string[]; cells: string[][] } {
  const header = ['run', ...table.axes, 'status', ...METRICS.map((m) => m.label), 'collapsed'];
  const cells = rows.map((r) => [r.runId, ...table.axes.map((a) => axisText(r.values[a])), r.status, ...METRICS.map((m) => formatMetric(m.unit, r[m.key])), collapsedText(r.collapsed)]);
  return { header, cells };
}

/** Header and cells of the grouped table: mean ± std per metric. */
export function groupCells(by: readonly string[], groups: readonly GroupRow[]): { header: string[]; cells: string[][] } {
  const header = [...by, 'runs', 'status', ...METRICS.map((m) => m.label), 'collapsed'];
  const cells = groups.map((g) => [
    ...by.map((a) => axisText(g.values[a])),
    String(g.runIds.length),
    Object.entries(g.statuses).map(([s, n]) => `${n} ${s}`).join(', '),
    ...METRICS.map((m) => formatAggregate(m.unit, g.metrics[m.key])),
    g.collapsed.of ? `${g.collapsed.count}/${g.collapsed.of}` : '—',
  ]);
  return { header, cells };
}

export function toText(t: { header: string[]; cells: string[][] }): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i])).join('  ').trimEnd();
  return [line(t.header), line(widths.map((w) => '-'.repeat(w))), ...t.cells.map(line)].join('\n') + '\n';
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const num = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '' : String(x));

/** CSV with raw numbers (fractions, FLOPs, seconds): for scripts and spreadsheets. */
export function toCsv(table: SweepTable, rows: readonly SweepTableRow[]): string {
  const header = ['run', ...table.axes, 'status', ...METRICS.map((m) => m.csv), 'collapsed'];
  const lines = rows.map((r) => [r.runId, ...table.axes.map((a) => axisText(r.values[a])), r.status, ...METRICS.map((m) => num(r[m.key])), r.collapsed === undefined ? '' : String(r.collapsed)]);
  return [header, ...lines].map((l) => l.map(csvField).join(',')).join('\n') + '\n';
}

export function groupsToCsv(by: readonly string[], groups: readonly GroupRow[]): string {
  const header = [...by, 'runs', ...METRICS.flatMap((m) => [`${m.csv}_mean`, `${m.csv}_std`, `${m.csv}_n`]), 'collapsed', 'collapsed_of'];
  const lines = groups.map((g) => [
    ...by.map((a) => axisText(g.values[a])),
    String(g.runIds.length),
    ...METRICS.flatMap((m) => [num(g.metrics[m.key].mean), num(g.metrics[m.key].std), String(g.metrics[m.key].n)]),
    String(g.collapsed.count),
    String(g.collapsed.of),
  ]);
  return [header, ...lines].map((l) => l.map(csvField).join(',')).join('\n') + '\n';
}

export function toJson(table: SweepTable, rows: readonly SweepTableRow[], grouped?: { by: readonly string[]; groups: readonly GroupRow[] }): string {
  return JSON.stringify({ sweep: table.sweep, axes: table.axes, rows, ...(grouped ? { groupBy: grouped.by, groups: grouped.groups } : {}) }, null, 1) + '\n';
}

function latexEscape(s: string): string {
  return s.replace(/\\/g, '\\textbackslash{}').replace(/([&%$#_{}])/g, '\\$1').replace(/~/g, '\\textasciitilde{}').replace(/\^/g, '\\textasciicircum{}');
}

/** A booktabs `tabular` (needs \usepackage{booktabs}); "±" as $\pm$, "—" as "--". */
export function toLatex(t: { header: string[]; cells: string[][] }, caption?: string): string {
  const cell = (s: string) => (s === '—' ? '--' : s.includes(' ± ') ? `$${s.replace(' ± ', ' \\pm ')}$` : latexEscape(s));
  const lines = [
    ...(caption ? [`% ${caption}`] : []),
    `\\begin{tabular}{${t.header.map(() => 'l').join('')}}`,
    '\\toprule',
    t.header.map(latexEscape).join(' & ') + ' \\\\',
    '\\midrule',
    ...t.cells.map((c) => c.map(cell).join(' & ') + ' \\\\'),
    '\\bottomrule',
    '\\end{tabular}',
  ];
  return lines.join('\n') + '\n';
}

export type TableFormat = 'text' | 'csv' | 'json' | 'latex';
export const TABLE_FORMATS: readonly TableFormat[] = ['text', 'csv', 'json', 'latex'];

/** The whole table in one format, per run or grouped by `groupBy` (mean ± std over the other axes). */
export function renderTable(table: SweepTable, format: TableFormat, opts: { groupBy?: string[]; sort?: SortColumn; descending?: boolean; filter?: RowFilter } = {}): string {
  let rows = opts.filter ? filterRows(table.rows, opts.filter) : [...table.rows];
  if (opts.groupBy) {
    let groups = groupRows(rows, opts.groupBy);
    if (opts.sort) groups = sortGroups(groups, opts.sort, opts.descending);
    if (format === 'csv') return groupsToCsv(opts.groupBy, groups);
    if (format === 'json') return toJson(table, rows, { by: opts.groupBy, groups });
    const cells = groupCells(opts.groupBy, groups);
    return format === 'latex' ? toLatex(cells, `sweep ${table.sweep}: mean ± sample std over runs grouped by ${opts.groupBy.join(', ') || '(all)'}`) : toText(cells);
  }
  if (opts.sort) rows = sortRows(rows, opts.sort, opts.descending);
  if (format === 'csv') return toCsv(table, rows);
  if (format === 'json') return toJson(table, rows);
  const cells = runCells(table, rows);
  return format === 'latex' ? toLatex(cells, `sweep ${table.sweep}`) : toText(cells);
}
