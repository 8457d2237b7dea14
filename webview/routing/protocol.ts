/**
 * Messages between the extension host and the Routing view, typed, with validators for both directions, and the
 * plain computations both sides (and the tests) share: counts from frequencies, the difference map, load-balance
 * summaries, the CSV, and the bounds check of an Inspector filter against the report it came from.
 * Types and plain functions only (no DOM, no Node): the host and the webview import it.
 *
 * Handshake: the webview posts `ready` once its script runs; only then does the host post `show`.
 */
import { hostToViewParser, viewToHostParser, type ViewDescribeMessage, type ViewExportMessage, type ViewLogMessage, type ViewReadyMessage } from '../shared/messages';
import { fail, isNum, isObj, isStr, ok } from '../../contract/guards';
import { isAnalysisName } from '../../contract/runFolder';
import {
  isRunId,
  parseInspectorFilter,
  parseRobustnessReport,
  type InspectorFilter,
  type LayerRoutingStats,
  type RobustnessReport,
  type StoredAnalysis,
} from '../analysisProtocol';

export type { InspectorFilter, LayerRoutingStats, RobustnessReport, StoredAnalysis };

export type RoutingExportFormat = 'png' | 'svg' | 'csv' | 'json';
const EXPORT_FORMATS: readonly RoutingExportFormat[] = ['png', 'svg', 'csv', 'json'];
export type InputKind = 'clean' | 'adversarial';
export type ClassNorm = 'count' | 'share';

/** An `analysis/*.json` of the run, as the picker lists it (newest first). */
export interface AnalysisFileEntry {
  name: string;
  mtime: number;
}

/** What the Routing view persists with `setState` (and what the serializer restores after a reload). */
export interface RoutingViewState {
  runsDir: string;
  runId: string;
  /** The analysis the user picked; absent = follow the newest. */
  analysis?: string;
  /** Class × expert heatmap: MoE layer index, input kind, counts or row-normalised shares. */
  classLayer: number;
  classOn: InputKind;
  classNorm: ClassNorm;
}

// ---- host → Routing view ----
export interface ShowMessage {
  type: 'show';
  runsDir: string;
  runId: string;
  runName: string;
  /** The run's analysis files, newest first. */
  analyses: AnalysisFileEntry[];
  /** The analysis shown; absent when the run has none or it could not be read (see `error`). */
  analysis?: StoredAnalysis;
  /** True when the view follows the newest analysis (no explicit pick). */
  followLatest: boolean;
  /** readAnalysis's error text (file and problem), shown instead of a heatmap. */
  error?: string;
  /** The run trains a dense model (from its state.json), when known. */
  moe?: boolean;
  /** A line for the status bar of the view, e.g. "A newer analysis exists". */
  notice?: string;
}
export type RoutingDescribeMessage = ViewDescribeMessage;
/** A passing line for the view, e.g. the progress of an evaluation of the shown run ('' clears it). */
export interface RoutingNoticeMessage {
  type: 'notice';
  text: string;
}
export type HostToRouting = ShowMessage | RoutingDescribeMessage | RoutingNoticeMessage;

// ---- Routing view → host ----
export type RoutingReadyMessage = ViewReadyMessage;
export interface SelectAnalysisMessage {
  type: 'selectAnalysis';
  /** File name, or null to follow the newest. */
  name: string | null;
}
export interface RefreshMessage {
  type: 'refresh';
}
export interface OpenInspectorMessage {
  type: 'openInspector';
  filter: InspectorFilter;
}
export type RoutingExportMessage = ViewExportMessage<RoutingExportFormat>;
export type RoutingLogMessage = ViewLogMessage;

/** One heatmap as drawn. Values are row-major (row r, column c at r·cols + c). */
export interface DrawnHeatmap {
  id: 'clean' | 'adversarial' | 'difference' | 'class';
  rows: number;
  cols: number;
  rowLabels: string[];
  values: number[];
  /** Sample counts behind each value (selections, for frequencies; the count itself for class × expert counts). */
  counts: number[];
  /** Colour scale domain: [min, max] (sequential) or [−m, 0, m] (diverging). */
  domain: number[];
  /** The colour the scale gives 0 (the centre of a diverging scale). */
  zeroColor: string;
  cells: number;
  /**
   * Canvas geometry in CSS pixels: cell (r, c) spans x0 + c·cellW … and y0 + r·pitch + labelAbove … (pitch = cellH
   * and labelAbove = 0 when the row labels stand left of the rows; in a narrow column they stand above each row).
   */
  geometry: { x0: number; y0: number; cellW: number; cellH: number; pitch: number; labelAbove: number };
  renderMs: number;
}
export interface RoutingDescription {
  type: 'description';
  requestId: number;
  /** What the view shows: heatmaps, or a message instead. */
  status: 'waiting' | 'none' | 'error' | 'dense' | 'shown';
  message: string;
  analysis?: string;
  heatmaps: DrawnHeatmap[];
  classLayer: number;
  classOn: InputKind;
  classNorm: ClassNorm;
  /** Indices of the layers flagged as collapsed. */
  collapsedLayers: number[];
  /** Layer rows of the load-balance table. */
  balanceRows: number;
  renderMs: number;
}
export type RoutingToHost =
  | RoutingReadyMessage
  | SelectAnalysisMessage
  | RefreshMessage
  | OpenInspectorMessage
  | RoutingExportMessage
  | RoutingLogMessage
  | RoutingDescription;

// ---- validation ----

/** Validates a message the host received from the Routing view (indices are checked later by `checkFilter`). */
export const parseRoutingToHost = viewToHostParser<RoutingToHost, RoutingExportFormat>(EXPORT_FORMATS, {
  refresh: () => ok({ type: 'refresh' }),
  selectAnalysis: (x) => {
    if (x.name !== null && !isAnalysisName(x.name)) return fail('selectAnalysis: bad `name`');
    return ok({ type: 'selectAnalysis', name: x.name });
  },
  openInspector: (x) => {
    const filter = parseInspectorFilter(x.filter);
    return filter ? ok({ type: 'openInspector', filter }) : fail('openInspector: bad `filter`');
  },
  description: (x) => {
    if (!isNum(x.requestId) || !isStr(x.status) || !Array.isArray(x.heatmaps)) return fail('description: bad fields');
    return ok(x as unknown as RoutingDescription);
  },
});

/** Validates a message the Routing view received from the host (the report is checked field by field). */
export const parseHostToRouting = hostToViewParser<HostToRouting>({
  notice: (x) => (isStr(x.text) ? ok({ type: 'notice', text: x.text.slice(0, 500) }) : fail('notice: bad `text`')),
  show: (x) => {
    if (!isStr(x.runsDir) || !isStr(x.runId) || !isStr(x.runName)) return fail('show: bad run fields');
    if (!Array.isArray(x.analyses) || !x.analyses.every((a) => isObj(a) && isStr(a.name) && isNum(a.mtime))) return fail('show: bad `analyses`');
    if (typeof x.followLatest !== 'boolean') return fail('show: bad `followLatest`');
    for (const f of ['error', 'notice'] as const) if (x[f] !== undefined && !isStr(x[f])) return fail(`show: bad \`${f}\``);
    if (x.moe !== undefined && typeof x.moe !== 'boolean') return fail('show: bad `moe`');
    if (x.analysis !== undefined) {
      const a = x.analysis;
      if (!isObj(a) || !isStr(a.name) || !isNum(a.mtime) || (a.checkpoint !== undefined && !isStr(a.checkpoint))) return fail('show: bad `analysis`');
      const r = parseRobustnessReport(a.report);
      if (!r.ok) return fail(`show: analysis ${a.name}: ${r.error}`);
    }
    return ok(x as unknown as ShowMessage);
  },
});

/** Validates a persisted view state (it may come from an older version). */
export function parseRoutingViewState(x: unknown): RoutingViewState | undefined {
  // Saved state is input like any other: a run id is a folder name (the host also checks runsDir, see routingPanel).
  if (!isObj(x) || !isStr(x.runsDir) || !x.runsDir || !isRunId(x.runId)) return undefined;
  return {
    runsDir: x.runsDir,
    runId: x.runId,
    analysis: isAnalysisName(x.analysis) ? x.analysis : undefined,
    classLayer: Number.isInteger(x.classLayer) && (x.classLayer as number) >= 0 ? (x.classLayer as number) : 0,
    classOn: x.classOn === 'adversarial' ? 'adversarial' : 'clean',
    classNorm: x.classNorm === 'share' ? 'share' : 'count',
  };
}

/**
 * Checks a filter's indices against the report it was made from: layer and expert inside the report, label a class
 * the per-class tables have. Returns the problem, or undefined when the filter fits.
 */
export function checkFilter(f: InspectorFilter, report: RobustnessReport): string | undefined {
  const layers = report.layers.length;
  const experts = layers > 0 ? report.layers[0].loadClean.length : 0;
  const classes = layers > 0 ? report.layers[0].perClassClean.length : 0;
  if (f.route) {
    if (f.route.layer >= layers) return `layer ${f.route.layer} is not one of the ${layers} MoE layers`;
    if (f.route.expert >= experts) return `expert ${f.route.expert} is not one of the ${experts} experts`;
  }
  if (f.changedLayer !== undefined && f.changedLayer >= layers) return `layer ${f.changedLayer} is not one of the ${layers} MoE layers`;
  if (f.label !== undefined && classes > 0 && f.label >= classes) return `class ${f.label} is not one of the ${classes} classes`;
  return undefined;
}

/**
 * Which analysis the host shows: the user's pick while it exists, else the newest (files newest first). Says so in
 * `notice` when the pick is gone or a newer file exists; `picked` is the pick still in force.
 */
export function chooseAnalysis(files: readonly AnalysisFileEntry[], picked: string | undefined): { name?: string; picked?: string; notice?: string } {
  const newest = files[0]?.name;
  if (picked !== undefined && !files.some((f) => f.name === picked)) {
    return { name: newest, notice: `${picked} is no longer there; showing ${newest ? 'the newest analysis' : 'nothing'}.` };
  }
  if (picked !== undefined) {
    return { name: picked, picked, notice: newest !== picked ? `A newer analysis exists: ${newest} (pick “Newest” to follow it).` : undefined };
  }
  return { name: newest };
}

// ---- numbers (shared by the view, its exports and the tests) ----

/** Experts chosen per input (k): from the per-sample columns, else the sum of a layer's load (which sums to k). */
export function topK(report: RobustnessReport): number {
  if (report.perSample) return report.perSample.k;
  const l = report.layers[0];
  if (!l) return 1;
  return Math.max(1, Math.round(l.loadClean.reduce((a, b) => a + b, 0)));
}

/** Samples that selected an expert: frequency × samples (rounded to the integer it came from). */
export function countOf(freq: number, samples: number): number {
  return Math.round(freq * samples);
}

/** Difference map entry: clean − adversarial. */
export function diffOf(clean: number, adv: number): number {
  return clean - adv;
}

export interface LoadBalance {
  /** Largest share of the k selections one expert takes (load / k). */
  maxShare: number;
  /** Coefficient of variation of the per-expert load (population σ / mean). */
  cv: number;
  /** Entropy of load / k, divided by log N (1 = perfectly even, 0 = one expert takes everything). */
  entropy: number;
}

export function loadBalance(load: readonly number[]): LoadBalance {
  const n = load.length;
  const total = load.reduce((a, b) => a + b, 0);
  if (n === 0 || !(total > 0)) return { maxShare: 0, cv: 0, entropy: 0 };
  const mean = total / n;
  const variance = load.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  let h = 0;
  for (const v of load) {
    const p = v / total;
    if (p > 0) h -= p * Math.log(p);
  }
  return { maxShare: Math.max(...load) / total, cv: Math.sqrt(variance) / mean, entropy: n > 1 ? h / Math.log(n) : 1 };
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/**
 * The numbers of the view as one long CSV: `load` rows (layer × expert; clean, adversarial and difference as
 * selection frequencies, with sample counts) and `class` rows (class × expert per layer; row-normalised shares, with
 * the selection counts). Numbers are written exactly as the report holds them.
 */
export function routingCsv(report: RobustnessReport): string {
  const lines = ['table,layer_index,layer,class,expert,clean,adversarial,difference,clean_count,adversarial_count'];
  const n = report.samples;
  report.layers.forEach((l, li) => {
    const name = csvCell(l.layer);
    l.loadClean.forEach((c, e) => {
      const a = l.loadAdv[e];
      lines.push(`load,${li},${name},,${e},${c},${a},${diffOf(c, a)},${countOf(c, n)},${countOf(a, n)}`);
    });
  });
  report.layers.forEach((l, li) => {
    const name = csvCell(l.layer);
    l.perClassClean.forEach((row, cls) => {
      const rowAdv = l.perClassAdv[cls] ?? [];
      const tc = row.reduce((s, v) => s + v, 0);
      const ta = rowAdv.reduce((s, v) => s + v, 0);
      row.forEach((c, e) => {
        const a = rowAdv[e] ?? 0;
        const sc = tc > 0 ? c / tc : 0;
        const sa = ta > 0 ? a / ta : 0;
        lines.push(`class,${li},${name},${cls},${e},${sc},${sa},${diffOf(sc, sa)},${c},${a}`);
      });
    });
  });
  return lines.join('\n') + '\n';
}

/** Everything the view shows, as JSON (for scripts). */
export function routingJson(runId: string, analysis: string, report: RobustnessReport): string {
  const n = report.samples;
  return JSON.stringify(
    {
      runId,
      analysis,
      samples: n,
      k: topK(report),
      difference: 'clean − adversarial',
      layers: report.layers.map((l, index) => ({
        index,
        layer: l.layer,
        loadClean: l.loadClean,
        loadAdv: l.loadAdv,
        difference: l.loadClean.map((c, e) => diffOf(c, l.loadAdv[e])),
        countClean: l.loadClean.map((c) => countOf(c, n)),
        countAdv: l.loadAdv.map((a) => countOf(a, n)),
        perClassClean: l.perClassClean,
        perClassAdv: l.perClassAdv,
        changeRate: l.changeRate,
        collapsed: l.collapsed,
        decisionShare: l.decisionShare ?? null,
        top1Share: l.top1Share ?? null,
        nonFinite: l.nonFinite ?? null,
        balanceClean: loadBalance(l.loadClean),
        balanceAdv: loadBalance(l.loadAdv),
      })),
    },
    null,
    2,
  );
}
