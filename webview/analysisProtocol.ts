/**
 * What the three analysis views (Robustness, Routing, Inspector) share with the host: saved analyses, the
 * validator of a robustness report read from disk, and the sample filters of the Inspector (which the Routing
 * view's cell clicks produce). Types and plain functions only: both the host and the webviews import it.
 */
import type {
  LayerRoutingStats,
  MismatchCells,
  PerSampleData,
  RobustnessReport,
  SampleInspection,
} from '../engine/analysis/types';

export type { LayerRoutingStats, MismatchCells, PerSampleData, RobustnessReport, SampleInspection };

/** One `analysis/*.json` of a run. */
export interface StoredAnalysis {
  /** File name under the run's `analysis/`. */
  name: string;
  /** Checkpoint the analysis was computed on. */
  checkpoint?: string;
  report: RobustnessReport;
  /** File modification time, ms since the epoch. */
  mtime: number;
}

/** A run id is its folder's name: no separators, not `.` or `..` (README "Runs on disk"). */
export function isRunId(x: unknown): x is string {
  return typeof x === 'string' && /^[A-Za-z0-9._-]{1,200}$/.test(x) && x !== '.' && x !== '..';
}

export type MismatchCellName = keyof MismatchCells;
export const MISMATCH_CELLS: readonly MismatchCellName[] = ['keptRight', 'keptWrong', 'changedRight', 'changedWrong'];

/** Samples routed a given way: MoE layer index (order of `report.layers`), expert, clean or adversarial input. */
export interface RouteFilter {
  layer: number;
  expert: number;
  on: 'clean' | 'adversarial';
}

/** Which samples the Inspector's gallery shows; every field given narrows the set (AND). */
export interface InspectorFilter {
  cell?: MismatchCellName;
  /** True label. */
  label?: number;
  /** Routing changed under the full attack in this MoE layer (index into `report.layers`). */
  changedLayer?: number;
  route?: RouteFilter;
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isNumArray = (x: unknown): x is number[] => Array.isArray(x) && x.every((v) => typeof v === 'number');
const isIntIn = (x: unknown, lo: number, hi: number): x is number => Number.isInteger(x) && (x as number) >= lo && (x as number) < hi;

/**
 * Checks the fields the views read from a report (files on disk may be from an older version or hand-edited).
 * Returns the first problem as a readable path, e.g. `layers[2].loadClean: expected numbers`.
 */
export function parseRobustnessReport(x: unknown): Result<RobustnessReport> {
  const bad = (where: string, what: string): Result<RobustnessReport> => ({ ok: false, error: `${where}: ${what}` });
  if (!isObj(x)) return bad('report', 'not an object');
  for (const f of ['samples', 'sa', 'ra', 'seconds'] as const) if (!isNum(x[f])) return bad(f, 'expected a number');
  if (!isObj(x.attack)) return bad('attack', 'expected the attack settings');
  if (!Array.isArray(x.attacks)) return bad('attacks', 'expected a list');
  for (const [i, a] of x.attacks.entries()) {
    if (!isObj(a) || typeof a.name !== 'string' || !isNum(a.accuracy) || !isObj(a.settings)) return bad(`attacks[${i}]`, 'expected {name, settings, accuracy}');
  }
  if (!Array.isArray(x.raCurve) || !x.raCurve.every((p) => isObj(p) && isNum(p.eps) && isNum(p.ra))) return bad('raCurve', 'expected [{eps, ra}]');
  if (!Array.isArray(x.perExpert) || !x.perExpert.every((p) => isObj(p) && isNum(p.expert) && isNum(p.sa) && isNum(p.ra))) {
    return bad('perExpert', 'expected [{expert, sa, ra}]');
  }
  if (x.perExpertNote !== undefined && typeof x.perExpertNote !== 'string') return bad('perExpertNote', 'expected a string');
  if (x.routerRobustness !== null && !(isObj(x.routerRobustness) && isNum(x.routerRobustness.decisionsKept) && isNum(x.routerRobustness.accuracy))) {
    return bad('routerRobustness', 'expected null or {decisionsKept, accuracy}');
  }
  if (x.expertRobustness !== null && !(isObj(x.expertRobustness) && isNum(x.expertRobustness.accuracy))) {
    return bad('expertRobustness', 'expected null or {accuracy}');
  }
  if (!isObj(x.cost) || !isNum(x.cost.denseFlops) || !isNum(x.cost.activeFlops)) return bad('cost', 'expected {denseFlops, activeFlops}');
  if (!Array.isArray(x.layers)) return bad('layers', 'expected a list');
  let experts = -1;
  for (const [i, l] of x.layers.entries()) {
    if (!isObj(l) || typeof l.layer !== 'string') return bad(`layers[${i}]`, 'expected an object with a `layer` name');
    for (const f of ['loadClean', 'loadAdv'] as const) if (!isNumArray(l[f])) return bad(`layers[${i}].${f}`, 'expected numbers');
    const n = (l.loadClean as number[]).length;
    if (experts >= 0 && n !== experts) return bad(`layers[${i}].loadClean`, `has ${n} experts, layer 0 has ${experts}`);
    experts = n;
    if ((l.loadAdv as number[]).length !== n) return bad(`layers[${i}].loadAdv`, `expected ${n} experts`);
    for (const f of ['perClassClean', 'perClassAdv'] as const) {
      const m = l[f];
      if (!Array.isArray(m) || !m.every((row) => isNumArray(row) && row.length === n)) return bad(`layers[${i}].${f}`, `expected class × ${n} counts`);
    }
    if (!isNum(l.changeRate) || typeof l.collapsed !== 'boolean') return bad(`layers[${i}]`, 'expected changeRate and collapsed');
  }
  if (x.mismatch !== null) {
    if (!isObj(x.mismatch)) return bad('mismatch', 'expected null or the four cells');
    for (const c of MISMATCH_CELLS) if (!isNumArray(x.mismatch[c])) return bad(`mismatch.${c}`, 'expected sample ids');
  }
  if (x.perSample !== undefined) {
    const p = x.perSample;
    if (!isObj(p)) return bad('perSample', 'expected an object');
    const cols = ['ids', 'labels', 'predClean', 'confClean', 'predAdv', 'confAdv'] as const;
    for (const c of cols) if (!isNumArray(p[c])) return bad(`perSample.${c}`, 'expected numbers');
    const n = (p.ids as number[]).length;
    for (const c of cols) if ((p[c] as number[]).length !== n) return bad(`perSample.${c}`, `expected ${n} values (one per sample)`);
    if (!isIntIn(p.k, 1, 1 << 16)) return bad('perSample.k', 'expected a positive integer');
    for (const c of ['routeClean', 'routeAdv'] as const) {
      const r = p[c];
      if (!Array.isArray(r) || r.length !== x.layers.length) return bad(`perSample.${c}`, `expected one list per MoE layer (${x.layers.length})`);
      for (const [l, col] of r.entries()) {
        if (!isNumArray(col) || col.length !== n * (p.k as number)) return bad(`perSample.${c}[${l}]`, `expected ${n}·k experts`);
        if (experts > 0 && !col.every((e) => isIntIn(e, 0, experts))) return bad(`perSample.${c}[${l}]`, `expert outside 0..${experts - 1}`);
      }
    }
  }
  return { ok: true, value: x as unknown as RobustnessReport };
}

/** The experts sample `i` used in MoE layer `layer` (clean or adversarial). */
export function expertsOf(p: PerSampleData, layer: number, i: number, on: 'clean' | 'adversarial'): number[] {
  const col = on === 'clean' ? p.routeClean[layer] : p.routeAdv[layer];
  return col.slice(i * p.k, (i + 1) * p.k);
}

/** Routing of sample i in `layer` changed under the full attack. */
export function routingChanged(p: PerSampleData, layer: number, i: number): boolean {
  for (let j = i * p.k; j < (i + 1) * p.k; j++) if (p.routeClean[layer][j] !== p.routeAdv[layer][j]) return true;
  return false;
}

/** The mismatch cell of sample i: routing kept in every layer or changed in one, × right or wrong under attack. */
export function mismatchCellOf(p: PerSampleData, i: number): MismatchCellName {
  let changed = false;
  for (let l = 0; l < p.routeClean.length && !changed; l++) changed = routingChanged(p, l, i);
  const right = p.predAdv[i] === p.labels[i];
  return changed ? (right ? 'changedRight' : 'changedWrong') : right ? 'keptRight' : 'keptWrong';
}

/** Indices (into the perSample columns) of the samples that pass every part of `f`, in order. */
export function filterSamples(p: PerSampleData, f: InspectorFilter): number[] {
  const out: number[] = [];
  const n = p.ids.length;
  for (let i = 0; i < n; i++) {
    if (f.label !== undefined && p.labels[i] !== f.label) continue;
    if (f.changedLayer !== undefined && !routingChanged(p, f.changedLayer, i)) continue;
    if (f.route) {
      const col = f.route.on === 'clean' ? p.routeClean[f.route.layer] : p.routeAdv[f.route.layer];
      let hit = false;
      for (let j = i * p.k; j < (i + 1) * p.k; j++) if (col[j] === f.route.expert) hit = true;
      if (!hit) continue;
    }
    if (f.cell !== undefined && mismatchCellOf(p, i) !== f.cell) continue;
    out.push(i);
  }
  return out;
}

/** Validates a filter posted by a webview (indices are checked against the report when it is applied). */
export function parseInspectorFilter(x: unknown): InspectorFilter | undefined {
  if (!isObj(x)) return undefined;
  const f: InspectorFilter = {};
  if (x.cell !== undefined) {
    if (!MISMATCH_CELLS.includes(x.cell as MismatchCellName)) return undefined;
    f.cell = x.cell as MismatchCellName;
  }
  if (x.label !== undefined) {
    if (!isIntIn(x.label, 0, 1 << 20)) return undefined;
    f.label = x.label;
  }
  if (x.changedLayer !== undefined) {
    if (!isIntIn(x.changedLayer, 0, 1 << 20)) return undefined;
    f.changedLayer = x.changedLayer;
  }
  if (x.route !== undefined) {
    const r = x.route;
    if (!isObj(r) || !isIntIn(r.layer, 0, 1 << 20) || !isIntIn(r.expert, 0, 1 << 20) || (r.on !== 'clean' && r.on !== 'adversarial')) return undefined;
    f.route = { layer: r.layer, expert: r.expert, on: r.on };
  }
  return f;
}

/** Decodes a base64 HWC byte image (SamplesResult) into RGBA pixels for a canvas. */
export function imageBytesToRgba(b64: string, shape: [number, number, number]): Uint8ClampedArray {
  const [h, w, c] = shape;
  const bin = atob(b64);
  if (bin.length !== h * w * c) throw new Error(`image has ${bin.length} bytes, expected ${h}×${w}×${c}`);
  const out = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    const r = bin.charCodeAt(p * c);
    out[p * 4] = r;
    out[p * 4 + 1] = c === 3 ? bin.charCodeAt(p * c + 1) : r;
    out[p * 4 + 2] = c === 3 ? bin.charCodeAt(p * c + 2) : r;
    out[p * 4 + 3] = 255;
  }
  return out;
}
