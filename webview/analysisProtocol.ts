/**
 * What the three analysis views (Robustness, Routing, Inspector) share with the host: the sample filters of the
 * Inspector (which the Routing view's cell clicks produce) and helpers over a report's per-sample columns. The report
 * itself and its validator are the contract in contract/analysisReport.ts (re-exported here for the views). Types
 * and plain functions only: both the host and the webviews import it.
 */
import type { LayerRoutingStats, PerSampleData, RobustnessReport, SampleInspection } from '../engine/analysis/types';
import { isIntIn, isObj } from '../contract/guards';
import { MISMATCH_CELLS, type MismatchCellName } from '../contract/analysisReport';

export type { LayerRoutingStats, PerSampleData, RobustnessReport, SampleInspection };
export type { MismatchCells } from '../engine/analysis/types';
export { MISMATCH_CELLS, parseRobustnessReport, type MismatchCellName, type StoredAnalysis } from '../contract/analysisReport';
export { isRunId } from '../contract/runFolder';

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
