/**
 * Metric series as the charts hold them: growable columns per (run, kind, metric), debiased EMA smoothing,
 * min/max-per-pixel downsampling for drawing and CSV export of the raw values. No DOM here.
 */
import type { MetricsRecord, RunSeriesData, XAxis } from '../protocol';
import { ROUTING_SHARE_METRIC } from '../../contract/runFolder';

export class Series {
  readonly step: number[] = [];
  readonly epoch: number[] = [];
  readonly time: number[] = [];
  readonly value: number[] = [];
  /** Bumped whenever points are removed (a resumed run rewinding), so caches know to start over. */
  version = 0;
  private smoothCache: { beta: number; version: number; last: number; count: number; out: number[] } | undefined;

  constructor(
    readonly runId: string,
    readonly kind: MetricsRecord['kind'],
    readonly metric: string,
  ) {}

  get length(): number {
    return this.value.length;
  }

  xs(axis: XAxis): number[] {
    return axis === 'step' ? this.step : axis === 'epoch' ? this.epoch : this.time;
  }

  push(rec: MetricsRecord, value: number): void {
    const n = this.step.length;
    if (n > 0 && rec.step <= this.step[n - 1]) {
      // Same step again (a record delivered twice) or an earlier one (a run resumed from an older
      // checkpoint): drop what is at or after this step, then append.
      const cut = lowerBound(this.step, rec.step);
      this.step.length = this.epoch.length = this.time.length = this.value.length = cut;
      this.version++;
    }
    this.step.push(rec.step);
    this.epoch.push(rec.epoch);
    this.time.push(rec.time);
    this.value.push(value);
  }

  /**
   * Debiased exponential moving average, as TensorBoard draws it: s_t = β s_{t-1} + (1-β) v_t, shown as
   * s_t / (1 - β^t) so the start is not pulled towards 0. Non-finite values pass through unsmoothed.
   * Incremental: appending points only smooths the new ones.
   */
  smoothed(beta: number): number[] {
    if (beta <= 0) return this.value;
    let c = this.smoothCache;
    if (!c || c.beta !== beta || c.version !== this.version || c.out.length > this.value.length) {
      c = { beta, version: this.version, last: 0, count: 0, out: [] };
      this.smoothCache = c;
    }
    for (let i = c.out.length; i < this.value.length; i++) {
      const v = this.value[i];
      if (!Number.isFinite(v)) {
        c.out.push(v);
        continue;
      }
      c.last = c.last * beta + (1 - beta) * v;
      c.count++;
      c.out.push(c.last / (1 - Math.pow(beta, c.count)));
    }
    return c.out;
  }
}

/** First index i with a[i] >= x (a sorted ascending). */
export function lowerBound(a: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the element of sorted `a` nearest to x (-1 when empty). */
export function nearestIndex(a: ArrayLike<number>, x: number): number {
  if (a.length === 0) return -1;
  const i = lowerBound(a, x);
  if (i <= 0) return 0;
  if (i >= a.length) return a.length - 1;
  return x - a[i - 1] <= a[i] - x ? i - 1 : i;
}

/**
 * Indices of the points to draw: per pixel column the first, lowest, highest and last point, in order.
 * Keeps the envelope of the curve exact at the given resolution while bounding the path at ~4 points
 * per pixel. `px` maps x to a pixel column; `ok` says whether a point is drawable.
 */
export function downsampleMinMax(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  px: (x: number) => number,
  ok: (y: number) => boolean,
  width: number,
): number[] {
  const n = ys.length;
  const out: number[] = [];
  if (n <= width * 4) {
    for (let i = 0; i < n; i++) if (ok(ys[i])) out.push(i);
    return out;
  }
  let col = Number.NaN;
  let first = -1;
  let lo = -1;
  let hi = -1;
  let last = -1;
  const flush = () => {
    if (first < 0) return;
    const picks = [first, lo, hi, last].sort((a, b) => a - b);
    for (let k = 0; k < picks.length; k++) if (k === 0 || picks[k] !== picks[k - 1]) out.push(picks[k]);
  };
  for (let i = 0; i < n; i++) {
    const y = ys[i];
    if (!ok(y)) continue;
    const c = Math.floor(px(xs[i]));
    if (c !== col) {
      flush();
      col = c;
      first = lo = hi = last = i;
      continue;
    }
    if (y < ys[lo]) lo = i;
    if (y > ys[hi]) hi = i;
    last = i;
  }
  flush();
  return out;
}

/** A run with its series, keyed by `kind:metric`. */
export class RunModel {
  readonly series = new Map<string, Series>();
  name: string;
  status: RunSeriesData['status'];
  method: string;

  constructor(
    readonly runId: string,
    data: Omit<RunSeriesData, 'records' | 'runId'>,
  ) {
    this.name = data.name;
    this.status = data.status;
    this.method = data.method;
  }

  append(records: readonly MetricsRecord[]): void {
    for (const rec of records) {
      for (const [metric, value] of Object.entries(rec.metrics)) {
        const key = `${rec.kind}:${metric}`;
        let s = this.series.get(key);
        if (!s) {
          s = new Series(this.runId, rec.kind, metric);
          this.series.set(key, s);
        }
        s.push(rec, value);
      }
    }
  }
}

export interface ChartGroup {
  title: string;
  /** Series keys (`kind:metric`) in this chart, in drawing order. */
  keys: string[];
}

const GROUPS: { title: string; test: (metric: string) => boolean }[] = [
  { title: 'Loss', test: (m) => /loss/i.test(m) },
  { title: 'Accuracy (SA, RA)', test: (m) => m === 'sa' || m === 'ra' || /acc/i.test(m) },
  { title: 'Router and expert robustness', test: (m) => /robust/i.test(m) },
  { title: 'Clean routing at inference: largest decision share per layer', test: (m) => m.startsWith(ROUTING_SHARE_METRIC) },
  { title: 'Gradient norm', test: (m) => /gradnorm/i.test(m) },
  { title: 'Learning rate', test: (m) => /(^|[a-z_])lr$/i.test(m) || /^lr[A-Z_]|learningrate/i.test(m) },
];

const PREFERRED_ORDER = ['loss', 'routerLoss', 'expertLoss', 'trainAcc', 'sa', 'ra', 'routerRobustness', 'expertRobustness', 'gradNorm', 'routerGradNorm', 'lr', 'routerLr'];

/** Groups every series key present in any run into charts: known families first, then one chart per other metric. */
export function groupSeries(runs: readonly RunModel[]): ChartGroup[] {
  const keys = new Set<string>();
  for (const r of runs) for (const k of r.series.keys()) keys.add(k);
  const rank = (k: string) => {
    const metric = k.slice(k.indexOf(':') + 1);
    const i = PREFERRED_ORDER.indexOf(metric);
    return i < 0 ? PREFERRED_ORDER.length : i;
  };
  const sorted = [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const groups: ChartGroup[] = GROUPS.map((g) => ({ title: g.title, keys: [] }));
  const others: ChartGroup[] = [];
  for (const k of sorted) {
    const metric = k.slice(k.indexOf(':') + 1);
    const gi = GROUPS.findIndex((g) => g.test(metric));
    if (gi >= 0) groups[gi].keys.push(k);
    else others.push({ title: metric, keys: [k] });
  }
  return [...groups.filter((g) => g.keys.length > 0), ...others];
}

/** Label of a series key: the metric name, plus the kind where the same name exists for both kinds. */
export function seriesLabel(key: string, allKeys: ReadonlySet<string>): string {
  const [kind, metric] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
  const other = `${kind === 'train' ? 'eval' : 'train'}:${metric}`;
  return allKeys.has(other) ? `${metric} (${kind})` : metric;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Every raw point of every series of the given runs (never smoothed, never downsampled). */
export function toCsv(runs: readonly RunModel[]): string {
  const lines = ['run_id,run_name,kind,metric,step,epoch,time,value'];
  for (const r of runs) {
    for (const s of r.series.values()) {
      const prefix = `${csvField(r.runId)},${csvField(r.name)},${s.kind},${csvField(s.metric)}`;
      for (let i = 0; i < s.length; i++) {
        lines.push(`${prefix},${s.step[i]},${s.epoch[i]},${s.time[i]},${s.value[i]}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** Value as the tooltip shows it: exact (shortest round-trip form) unless that is very long. */
export function formatValue(v: number): string {
  const s = String(v);
  return s.length <= 12 ? s : v.toPrecision(8);
}
