/**
 * Robustness view: SA, RA, router and expert robustness of one or more runs side by side (grouped bars, one colour
 * per run), RA-vs-ε curves, the per-attack table with its settings, per-expert SA/RA, routing change rate per MoE
 * layer and inference cost. Fills in live while an evaluation streams partial reports.
 * Talks to the host only through the messages of ./protocol.ts.
 */
import { axisBottom, axisLeft, line, scaleBand, scaleLinear, select } from 'd3';
import { buildExportSvg, svgToPngBase64, type ChartForExport } from '../shared/exportImage';
import { formatValue } from '../shared/series';
import { getVsCodeApi } from '../shared/vscode';
import {
  ATTACK_ORDER,
  BAR_METRICS,
  isDense,
  parseHostToRobustness,
  parseRobustnessViewState,
  robustnessCsv,
  robustnessJson,
  type ExportRun,
  type HostToRobustness,
  type RobDescriptionMessage,
  type RobustnessExportFormat,
  type RobustnessReport,
  type RobustnessRunData,
  type RobustnessToHost,
  type RobustnessViewState,
} from './protocol';

const vscode = getVsCodeApi<RobustnessViewState, RobustnessToHost>();
const PALETTE_SIZE = 8;
const MIN_RENDER_INTERVAL_MS = 100;
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---------------- state ----------------
interface RunView {
  data: RobustnessRunData;
  /** Reports streamed by a running evaluation (shown instead of the stored analysis). */
  live?: { report: RobustnessReport; done: number; total: number; final: boolean };
  running: boolean;
  /** Last job outcome to tell the user (cancelled, failed). */
  note?: string;
}

const restored = parseRobustnessViewState(vscode.getState());
const ui = { selected: restored?.selected ?? {}, epsIn255: restored?.epsIn255 ?? false };
let runs: RunView[] = [];
let trusted = false;
let initialised = false;
let bannerText: string | undefined;

function saveState(): void {
  const ids = runs.map((r) => r.data.runId);
  const selected: Record<string, string> = {};
  for (const id of ids) if (ui.selected[id]) selected[id] = ui.selected[id];
  ui.selected = selected;
  vscode.setState({ runIds: ids, selected, epsIn255: ui.epsIn255 });
}

function post(msg: RobustnessToHost): void {
  vscode.postMessage(msg);
}

/** The report drawn for a run: the live one while an evaluation streams, else the stored analysis. */
function reportOf(r: RunView): RobustnessReport | undefined {
  return r.live?.report ?? r.data.analysis?.report;
}

// ---------------- DOM helpers ----------------
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const pct = (v: number, digits = 1) => `${(v * 100).toFixed(digits)}%`;
/** Exact value with its percentage, e.g. `0.8515625 (85.15625%)`. */
const exact = (v: number) => `${String(v)} (${String(+(v * 100).toPrecision(12))}%)`;
function epsText(eps: number): string {
  const n = eps * 255;
  const r = Math.round(n);
  if (eps > 0 && eps < 1 && Math.abs(n - r) < 1e-6) return `${r}/255`;
  return formatValue(eps);
}
function flopsText(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [u, s] of units) if (Math.abs(n) >= u) return `${+(n / u).toPrecision(4)} ${s}FLOPs`;
  return `${n} FLOPs`;
}
const ATTACK_LABEL: Record<string, (steps: number) => string> = {
  fgsm: () => 'FGSM',
  pgd: (k) => `PGD-${k}`,
  'apgd-ce': () => 'APGD-CE',
  router: () => 'Router attack',
  expert: () => 'Expert attack (routing frozen)',
};
const attackLabel = (name: string, steps: number) => (ATTACK_LABEL[name] ?? (() => name))(steps);

// ---------------- skeleton ----------------
const app = document.getElementById('app') ?? document.body.appendChild(el('div', { id: 'app' }));
const toolbar = el('header', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Robustness view' });
const addRunsBtn = el('button', { id: 'add-runs', type: 'button', title: 'Show other runs side by side' }, 'Add runs…');
const epsInput = el('input', { id: 'eps-255', type: 'checkbox' });
const epsLabel = el('label', { class: 'control', title: 'Show ε in units of 1/255' });
epsLabel.append(epsInput, document.createTextNode(' ε in /255'));
const exportBtns = (['png', 'svg', 'csv', 'json'] as RobustnessExportFormat[]).map((f) =>
  el('button', { type: 'button', 'data-format': f, class: 'export', title: `Export ${f.toUpperCase()}` }, f.toUpperCase()),
);
const exportGroup = el('span', { class: 'export-group' }, 'Export ');
exportGroup.append(...exportBtns);
toolbar.append(addRunsBtn, epsLabel, el('span', { class: 'spacer' }), exportGroup);

const banner = el('div', { id: 'error-banner', class: 'banner error', role: 'alert' });
banner.hidden = true;
const bannerTextEl = el('span', { class: 'banner-text' });
const bannerClose = el('button', { type: 'button', class: 'icon', 'aria-label': 'Dismiss' }, '×');
banner.append(bannerTextEl, bannerClose);
bannerClose.addEventListener('click', () => {
  bannerText = undefined;
  scheduleRender();
});

const runsEl = el('section', { id: 'runs', class: 'runs', 'aria-label': 'Runs' });
const emptyMsg = el('div', { id: 'empty', class: 'empty' }, 'Waiting for runs…');

interface ChartBox {
  root: HTMLElement;
  legend: HTMLElement;
  note: HTMLElement;
  svg: SVGSVGElement;
  title: string;
}
function chartBox(id: string, title: string): ChartBox {
  const root = el('section', { id, class: 'chart', 'data-chart': title });
  const legend = el('div', { class: 'legend' });
  const note = el('div', { class: 'note' });
  const svg = svgEl('svg', { class: 'plot', role: 'img', 'aria-label': title });
  root.append(el('h3', {}, title), legend, svg, note);
  return { root, legend, note, svg, title };
}
const barsBox = chartBox('bars', 'Accuracy and robustness');
const curveBox = chartBox('curves', 'RA vs ε');
const layersBox = chartBox('layers', 'Routing change rate per MoE layer');

function tableSection(id: string, title: string): { root: HTMLElement; body: HTMLElement } {
  const root = el('section', { id, class: 'table-section' });
  const body = el('div', { class: 'table-wrap' });
  root.append(el('h3', {}, title), body);
  return { root, body };
}
const attacksSec = tableSection('attacks', 'Attacks');
const perExpertSec = tableSection('per-expert', 'Per-expert robustness (routing forced to one expert)');
const costSec = tableSection('cost', 'Inference cost');

const main = el('main', { id: 'content', class: 'content' });
main.append(barsBox.root, curveBox.root, attacksSec.root, perExpertSec.root, layersBox.root, costSec.root);
const tooltip = el('div', { id: 'tooltip', class: 'tooltip', role: 'status' });
tooltip.hidden = true;
app.append(toolbar, banner, runsEl, emptyMsg, main, tooltip);

epsInput.addEventListener('change', () => {
  ui.epsIn255 = epsInput.checked;
  saveState();
  scheduleRender();
});
addRunsBtn.addEventListener('click', () => post({ type: 'addRuns' }));
for (const b of exportBtns) {
  b.addEventListener('click', () => {
    void exportAs(b.dataset.format as RobustnessExportFormat).catch((e: unknown) =>
      post({ type: 'log', level: 'error', message: `export failed: ${e instanceof Error ? e.message : String(e)}` }),
    );
  });
}

// Exact values on hover and on keyboard focus: every mark carries its text in `data-tip`.
function showTip(target: Element, x: number, y: number): void {
  const tip = target.getAttribute('data-tip');
  if (!tip) return;
  tooltip.textContent = tip;
  tooltip.hidden = false;
  const w = tooltip.offsetWidth;
  tooltip.style.left = `${Math.max(4, Math.min(x + 12, window.innerWidth - w - 8))}px`;
  tooltip.style.top = `${y + 14 + window.scrollY}px`;
}
document.addEventListener('mouseover', (ev) => {
  const t = (ev.target as Element | null)?.closest?.('[data-tip]');
  if (t) showTip(t, ev.clientX, ev.clientY);
  else tooltip.hidden = true;
});
document.addEventListener('focusin', (ev) => {
  const t = (ev.target as Element | null)?.closest?.('[data-tip]');
  if (!t) return;
  const r = t.getBoundingClientRect();
  showTip(t, r.left + r.width / 2, r.bottom - 10);
});
document.addEventListener('focusout', () => (tooltip.hidden = true));

/** Marks an SVG element as a focusable, labelled data point. */
function dataMark<E extends SVGElement>(e: E, tip: string): E {
  e.setAttribute('data-tip', tip);
  e.setAttribute('tabindex', '0');
  e.setAttribute('aria-label', tip);
  e.setAttribute('role', 'img');
  return e;
}

function runLabel(i: number): string {
  return runs[i].data.name;
}
function cssColor(index: number): string {
  return getComputedStyle(document.body).getPropertyValue(`--advmoe-series-${index % PALETTE_SIZE}`).trim() || '#3794ff';
}
function legendItems(box: ChartBox, indices: number[]): void {
  box.legend.replaceChildren(
    ...indices.map((i) => {
      const item = el('span', { class: 'legend-item', 'data-run': runs[i].data.runId });
      item.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(runLabel(i)));
      return item;
    }),
  );
}

// ---------------- run cards ----------------
function fileLabel(name: string, mtime: number): string {
  const d = new Date(mtime);
  const when = Number.isFinite(d.getTime()) ? d.toISOString().replace('T', ' ').slice(0, 16) : '';
  return when ? `${name} (${when})` : name;
}

/** Run headers are kept while nothing in them changes, so that a live update does not close an open picker. */
const headCache = new Map<string, { sig: string; el: HTMLElement }>();

function renderRunHead(r: RunView, i: number): HTMLElement {
  const d = r.data;
  const report = reportOf(r);
  const shown = d.analysis?.name ?? ui.selected[d.runId];
  const sig = JSON.stringify([i, d.name, d.method, d.status, d.files, shown, trusted, r.running, !!report && isDense(report), !!report && report.layers.length > 0]);
  const cached = headCache.get(d.runId);
  if (cached?.sig === sig) return cached.el;
  const head = el('div', { class: 'run-head' });
  head.append(
    el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }),
    el('span', { class: 'run-name', title: d.runId }, d.name),
    el('span', { class: 'badge' }, d.method),
    el('span', { class: 'run-status' }, d.status),
  );
  if (report && isDense(report)) head.append(el('span', { class: 'badge dense' }, 'dense'));
  const actions = el('span', { class: 'run-actions' });
  if (d.files.length > 0) {
    const sel = el('select', { class: 'analysis-select', 'aria-label': `Analysis of ${d.name}`, 'data-run': d.runId });
    for (const f of d.files) sel.appendChild(el('option', { value: f.name }, fileLabel(f.name, f.mtime)));
    if (shown && d.files.some((f) => f.name === shown)) sel.value = shown;
    sel.addEventListener('change', () => {
      ui.selected[d.runId] = sel.value;
      saveState();
      post({ type: 'selectAnalysis', runId: d.runId, name: sel.value });
    });
    actions.append(sel);
  }
  if (trusted && !r.running) {
    const ev = el('button', { type: 'button', class: 'evaluate', 'data-run': d.runId, title: 'Run the engine’s robustness analysis on this run' }, 'Evaluate');
    ev.addEventListener('click', () => post({ type: 'evaluate', runId: d.runId }));
    actions.append(ev);
  }
  if (report && report.layers.length > 0) {
    const rt = el('button', { type: 'button', class: 'secondary open-routing', 'data-run': d.runId, title: 'Open the Routing view on this analysis' }, 'Routing…');
    rt.addEventListener('click', () => {
      const now = runs.find((x) => x.data.runId === d.runId);
      post({ type: 'openRouting', runId: d.runId, analysis: now?.live ? undefined : now?.data.analysis?.name });
    });
    actions.append(rt);
  }
  const rm = el('button', { type: 'button', class: 'icon remove', 'data-run': d.runId, 'aria-label': `Remove ${d.name} from the view`, title: 'Remove from the view' }, '×');
  rm.addEventListener('click', () => post({ type: 'removeRun', runId: d.runId }));
  actions.append(rm);
  head.append(actions);
  headCache.set(d.runId, { sig, el: head });
  return head;
}

function renderRunCard(r: RunView, i: number): HTMLElement {
  const d = r.data;
  const card = el('article', { class: 'run-card', 'data-run': d.runId });
  card.append(renderRunHead(r, i));

  const meta = el('div', { class: 'run-meta' });
  if (r.live) {
    meta.textContent = `live report over ${r.live.done} of ${r.live.total} samples`;
  } else if (d.analysis) {
    const a = d.analysis;
    meta.textContent = [
      a.name,
      a.checkpoint ? `checkpoint ${a.checkpoint}` : '',
      `${a.report.samples} samples`,
      `PGD-${a.report.attack.steps} ${a.report.attack.norm} ε=${epsText(a.report.attack.eps)}`,
      `${+a.report.seconds.toFixed(1)} s`,
    ]
      .filter(Boolean)
      .join(' · ');
  }
  if (meta.textContent) card.append(meta);

  if (r.running || r.live) {
    const prog = el('div', { class: 'progress', 'data-run': d.runId, role: 'status' });
    const text = el('span', { class: 'progress-text' });
    if (r.live) {
      const frac = r.live.total > 0 ? r.live.done / r.live.total : 0;
      text.textContent = r.live.final
        ? `Evaluation finished: ${r.live.done} of ${r.live.total} samples`
        : `Evaluating: ${r.live.done} of ${r.live.total} samples (${Math.floor(frac * 100)}%)`;
      const bar = el('progress', { max: String(r.live.total || 1), value: String(r.live.done), 'aria-label': 'Samples evaluated' });
      prog.append(bar);
    } else {
      text.textContent = 'Evaluating: starting…';
    }
    prog.prepend(text);
    if (r.running && !r.live?.final) {
      const cancel = el('button', { type: 'button', class: 'cancel', 'data-run': d.runId }, 'Cancel');
      cancel.addEventListener('click', () => {
        cancel.disabled = true;
        cancel.textContent = 'Cancelling…';
        post({ type: 'cancel', runId: d.runId });
      });
      prog.append(cancel);
    }
    card.append(prog);
  }
  if (r.note) card.append(el('div', { class: 'note run-note' }, r.note));
  if (d.error && !r.live) card.append(el('div', { class: 'run-error', role: 'alert' }, d.error));
  for (const w of d.warnings ?? []) card.append(el('div', { class: 'run-warning' }, w));
  return card;
}

// ---------------- charts ----------------
const BAR_H = 260;
const M = { top: 22, right: 16, bottom: 46, left: 52 };

interface DrawnBar {
  metric: string;
  runId: string;
  value: number | null;
}
let drawnBars: DrawnBar[] = [];
let drawnCurves: RobDescriptionMessage['curves'] = [];
let drawnLayers: RobDescriptionMessage['layers'] = [];
let attackRows = 0;

function chartWidth(): number {
  return Math.max(360, Math.floor(main.clientWidth || 700));
}

function yAxis(g: SVGGElement, y: (v: number) => number, domain: [number, number], iw: number, ticks: number, asPct: boolean): void {
  const scale = scaleLinear().domain(domain).range([y(domain[0]), y(domain[1])]);
  select(g)
    .attr('class', 'y-axis')
    .call(axisLeft(scale).ticks(ticks).tickFormat((v) => (asPct ? `${+(Number(v) * 100).toFixed(1)}%` : String(v))));
  const grid = svgEl('g', { class: 'grid-y' });
  select(grid)
    .call(axisLeft(scale).ticks(ticks).tickSize(-iw).tickFormat(() => ''))
    .call((s) => s.select('.domain').remove());
  g.parentNode?.insertBefore(grid, g);
}

function renderBars(shown: number[]): void {
  const box = barsBox;
  const width = chartWidth();
  const iw = width - M.left - M.right;
  const ih = BAR_H - M.top - M.bottom;
  const svg = box.svg;
  svg.replaceChildren();
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(BAR_H));
  drawnBars = [];
  legendItems(box, shown);
  if (shown.length === 0) {
    box.root.hidden = true;
    return;
  }
  box.root.hidden = false;
  const metrics = BAR_METRICS;
  const x0 = scaleBand<string>().domain(metrics.map((m) => m.key)).range([0, iw]).paddingInner(0.22).paddingOuter(0.08);
  const x1 = scaleBand<string>().domain(shown.map((i) => runs[i].data.runId)).range([0, x0.bandwidth()]).padding(0.08);
  const y = scaleLinear().domain([0, 1]).range([ih, 0]);
  const plot = svgEl('g', { transform: `translate(${M.left},${M.top})` });
  svg.append(plot);
  const yg = svgEl('g');
  plot.append(yg);
  yAxis(yg, y, [0, 1], iw, 5, true);
  const xg = svgEl('g', { class: 'x-axis', transform: `translate(0,${ih})` });
  plot.append(xg);
  select(xg).call(axisBottom(x0).tickFormat((k) => BAR_METRICS.find((m) => m.key === k)?.label ?? k));
  wrapTicks(xg, x0.bandwidth());
  const marks = svgEl('g', { class: 'marks' });
  plot.append(marks);
  for (const m of metrics) {
    for (const i of shown) {
      const r = runs[i];
      const rep = reportOf(r)!;
      const v = m.value(rep);
      const bx = (x0(m.key) ?? 0) + (x1(r.data.runId) ?? 0);
      const bw = x1.bandwidth();
      drawnBars.push({ metric: m.key, runId: r.data.runId, value: v });
      if (v === null) {
        const why = isDense(rep) ? 'n/a (dense)' : 'n/a';
        const t = dataMark(svgEl('text', { class: 'na', 'data-run': r.data.runId, 'data-metric': m.key, x: bx + bw / 2, y: ih - 6, transform: `rotate(-90 ${bx + bw / 2} ${ih - 6})`, 'dominant-baseline': 'central' }), `${m.label} · ${r.data.name}: ${why}`);
        t.textContent = why;
        marks.append(t);
        continue;
      }
      const extra = m.key === 'routerKept' ? ' of (sample, MoE layer) routing decisions unchanged under the router attack' : '';
      const tip = `${m.label} · ${r.data.name}: ${exact(v)}${extra} on ${rep.samples} samples${r.live && !r.live.final ? ' (live, partial)' : ''}`;
      const rect = dataMark(
        svgEl('rect', {
          class: `bar c${i % PALETTE_SIZE}${r.live && !r.live.final ? ' live' : ''}`,
          'data-run': r.data.runId,
          'data-metric': m.key,
          'data-value': String(v),
          x: bx,
          y: y(Math.max(0, Math.min(1, v))),
          width: bw,
          height: Math.max(0, ih - y(Math.max(0, Math.min(1, v)))),
        }),
        tip,
      );
      marks.append(rect);
      if (bw >= 22) {
        const lbl = svgEl('text', { class: 'bar-label', x: bx + bw / 2, y: y(Math.min(1, v)) - 4, 'text-anchor': 'middle', 'data-run': r.data.runId, 'data-metric': m.key });
        lbl.textContent = bw >= 34 ? pct(v) : `${Math.round(v * 100)}`;
        marks.append(lbl);
      }
    }
  }
  box.note.textContent = 'Router robustness: fraction of (sample, MoE layer) routing decisions kept under an attack on the routers alone. Expert robustness: accuracy under PGD with routing frozen to the clean decision.';
}

/** Splits long x tick labels over lines so that they fit their band. */
function wrapTicks(g: SVGGElement, width: number): void {
  g.querySelectorAll<SVGTextElement>('.tick text').forEach((t) => {
    const words = (t.textContent ?? '').split(/\s+/);
    t.textContent = '';
    let lineWords: string[] = [];
    let lineNo = 0;
    const tspan = () => svgEl('tspan', { x: 0, dy: lineNo === 0 ? '0.71em' : '1.1em' });
    let cur = tspan();
    t.append(cur);
    for (const w of words) {
      lineWords.push(w);
      cur.textContent = lineWords.join(' ');
      if (lineWords.length > 1 && cur.getComputedTextLength() > width) {
        lineWords.pop();
        cur.textContent = lineWords.join(' ');
        lineWords = [w];
        lineNo++;
        cur = tspan();
        cur.textContent = w;
        t.append(cur);
      }
    }
  });
}

function renderCurves(shown: number[]): void {
  const box = curveBox;
  const width = chartWidth();
  const h = 240;
  const iw = width - M.left - M.right;
  const ih = h - M.top - M.bottom;
  const svg = box.svg;
  svg.replaceChildren();
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(h));
  drawnCurves = [];
  const withCurve = shown.filter((i) => reportOf(runs[i])!.raCurve.length > 0);
  legendItems(box, withCurve);
  box.root.hidden = withCurve.length === 0;
  if (withCurve.length === 0) return;
  let maxEps = 0;
  for (const i of withCurve) for (const p of reportOf(runs[i])!.raCurve) maxEps = Math.max(maxEps, p.eps);
  // The axis is in display units (ε, or ε × 255) so that its ticks are round numbers in the unit shown.
  const unit = ui.epsIn255 ? 255 : 1;
  const xu = scaleLinear().domain([0, (maxEps || 1) * unit]).range([0, iw]).nice();
  const x = (eps: number) => xu(eps * unit);
  const y = scaleLinear().domain([0, 1]).range([ih, 0]);
  const plot = svgEl('g', { transform: `translate(${M.left},${M.top})` });
  svg.append(plot);
  const yg = svgEl('g');
  plot.append(yg);
  yAxis(yg, y, [0, 1], iw, 5, true);
  const xg = svgEl('g', { class: 'x-axis', transform: `translate(0,${ih})` });
  plot.append(xg);
  select(xg).call(
    axisBottom(xu)
      .ticks(Math.max(2, Math.min(10, Math.floor(iw / 90))))
      .tickFormat((v) => `${+Number(v).toPrecision(4)}`),
  );
  const xl = svgEl('text', { class: 'axis-label', x: M.left + iw, y: h - 6, 'text-anchor': 'end' });
  xl.textContent = ui.epsIn255 ? 'ε (× 1/255)' : 'ε';
  svg.append(xl);
  const marks = svgEl('g', { class: 'marks' });
  plot.append(marks);
  for (const i of withCurve) {
    const r = runs[i];
    const pts = [...reportOf(r)!.raCurve].sort((a, b) => a.eps - b.eps);
    drawnCurves.push({ runId: r.data.runId, points: pts.map((p) => ({ eps: p.eps, ra: p.ra })) });
    const d = line<{ eps: number; ra: number }>()
      .x((p) => x(p.eps))
      .y((p) => y(p.ra))(pts);
    marks.append(svgEl('path', { class: `curve c${i % PALETTE_SIZE}`, 'data-run': r.data.runId, d: d ?? '' }));
    for (const p of pts) {
      const c = dataMark(
        svgEl('circle', { class: `point c${i % PALETTE_SIZE}`, 'data-run': r.data.runId, 'data-eps': String(p.eps), 'data-ra': String(p.ra), cx: x(p.eps), cy: y(p.ra), r: 3.5 }),
        `${r.data.name}: RA ${exact(p.ra)} at ε = ${formatValue(p.eps)} (${epsText(p.eps)})`,
      );
      marks.append(c);
    }
  }
  const atk = reportOf(runs[withCurve[0]])!.attack;
  box.note.textContent = `PGD-${atk.steps} (${atk.norm}, step ${epsText(atk.stepSize)}) at each ε; ε = 0 is SA.`;
}

function renderLayers(shown: number[]): void {
  const box = layersBox;
  const svg = box.svg;
  svg.replaceChildren();
  drawnLayers = [];
  const moe = shown.filter((i) => reportOf(runs[i])!.layers.length > 0);
  legendItems(box, moe);
  const dense = shown.filter((i) => reportOf(runs[i])!.layers.length === 0).map((i) => runs[i].data.name);
  box.root.hidden = shown.length === 0;
  box.note.textContent =
    (moe.some((i) => reportOf(runs[i])!.layers.some((l) => l.collapsed)) ? '⚠ marks a collapsed router (> 90% of inputs get the same routing decision, or non-finite scores). ' : '') +
    (dense.length ? `No MoE layers (dense): ${dense.join(', ')}.` : '');
  if (moe.length === 0) {
    svg.setAttribute('width', '0');
    svg.setAttribute('height', '0');
    return;
  }
  const names: string[] = [];
  for (const i of moe) for (const l of reportOf(runs[i])!.layers) if (!names.includes(l.layer)) names.push(l.layer);
  let maxRate = 0;
  for (const i of moe) for (const l of reportOf(runs[i])!.layers) maxRate = Math.max(maxRate, l.changeRate);
  const width = Math.max(chartWidth(), Math.min(6000, M.left + M.right + names.length * (moe.length * 10 + 14)));
  const h = 240;
  const iw = width - M.left - M.right;
  const ih = h - M.top - M.bottom;
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(h));
  const x0 = scaleBand<string>().domain(names).range([0, iw]).paddingInner(0.2).paddingOuter(0.05);
  const x1 = scaleBand<string>().domain(moe.map((i) => runs[i].data.runId)).range([0, x0.bandwidth()]).padding(0.06);
  const top = Math.min(1, Math.max(0.05, maxRate * 1.15));
  const y = scaleLinear().domain([0, top]).range([ih, 0]).nice();
  const plot = svgEl('g', { transform: `translate(${M.left},${M.top})` });
  svg.append(plot);
  const yg = svgEl('g');
  plot.append(yg);
  yAxis(yg, y, y.domain() as [number, number], iw, 4, true);
  const xg = svgEl('g', { class: 'x-axis', transform: `translate(0,${ih})` });
  plot.append(xg);
  const step = Math.ceil(names.length / Math.max(1, Math.floor(iw / 70)));
  select(xg).call(axisBottom(x0).tickValues(names.filter((_, k) => k % step === 0)));
  const marks = svgEl('g', { class: 'marks' });
  plot.append(marks);
  for (const i of moe) {
    const r = runs[i];
    for (const l of reportOf(r)!.layers) {
      drawnLayers.push({ layer: l.layer, runId: r.data.runId, changeRate: l.changeRate, collapsed: l.collapsed });
      const bx = (x0(l.layer) ?? 0) + (x1(r.data.runId) ?? 0);
      const bw = x1.bandwidth();
      const yv = y(Math.min(l.changeRate, y.domain()[1]));
      const tip =
        `${r.data.name} · ${l.layer}: routing changed for ${exact(l.changeRate)} of samples under the full attack` +
        (l.collapsed ? ` — router collapsed${l.decisionShare !== undefined ? ` (same decision for ${exact(l.decisionShare)} of inputs)` : l.top1Share !== undefined ? ` (top-1 share ${exact(l.top1Share)})` : ''}${l.nonFinite ? `, ${l.nonFinite} non-finite` : ''}` : '');
      marks.append(
        dataMark(
          svgEl('rect', {
            class: `bar c${i % PALETTE_SIZE}${l.collapsed ? ' collapsed' : ''}`,
            'data-run': r.data.runId,
            'data-layer': l.layer,
            'data-value': String(l.changeRate),
            'data-collapsed': String(l.collapsed),
            x: bx,
            y: yv,
            width: bw,
            height: Math.max(0, ih - yv),
          }),
          tip,
        ),
      );
      if (l.collapsed) {
        const warn = svgEl('text', { class: 'collapsed-mark', 'data-run': r.data.runId, 'data-layer': l.layer, x: bx + bw / 2, y: yv - 4, 'text-anchor': 'middle' });
        warn.textContent = '⚠';
        marks.append(warn);
      }
    }
  }
}

// ---------------- tables ----------------
function cell(tag: 'td' | 'th', text: string, attrs: Record<string, string> = {}): HTMLTableCellElement {
  return el(tag, attrs, text);
}

function renderAttacks(shown: number[]): void {
  const rows = new Map<string, { name: string; s: RobustnessReport['attack']; acc: Map<string, number> }>();
  for (const i of shown) {
    for (const a of reportOf(runs[i])!.attacks) {
      const s = a.settings;
      const key = `${a.name}|${s.norm}|${s.eps}|${s.stepSize}|${s.steps}|${s.restarts}|${s.randomStart}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = { name: a.name, s, acc: new Map() }));
      row.acc.set(runs[i].data.runId, a.accuracy);
    }
  }
  const order = (n: string) => {
    const k = (ATTACK_ORDER as readonly string[]).indexOf(n);
    return k < 0 ? ATTACK_ORDER.length : k;
  };
  const sorted = [...rows.values()].sort((a, b) => order(a.name) - order(b.name) || a.s.eps - b.s.eps || a.s.steps - b.s.steps);
  attackRows = sorted.length;
  attacksSec.root.hidden = sorted.length === 0;
  const table = el('table', { class: 'data attacks' });
  table.append(el('caption', {}, 'Accuracy of the whole model under each attack (expert attack: routing frozen to the clean decision)'));
  const head = el('tr');
  for (const h of ['Attack', 'Norm', 'ε', 'Step α', 'Steps', 'Restarts', 'Random start']) head.append(cell('th', h, { scope: 'col' }));
  for (const i of shown) {
    const th = cell('th', '', { scope: 'col', 'data-run': runs[i].data.runId, class: 'run-col' });
    th.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(` ${runs[i].data.name}`));
    head.append(th);
  }
  table.append(el('thead'));
  table.tHead!.append(head);
  const body = el('tbody');
  for (const row of sorted) {
    const s = row.s;
    const tr = el('tr', {
      'data-attack': row.name,
      'data-norm': s.norm,
      'data-eps': String(s.eps),
      'data-step-size': String(s.stepSize),
      'data-steps': String(s.steps),
      'data-restarts': String(s.restarts),
      'data-random-start': String(s.randomStart),
    });
    tr.append(
      cell('th', attackLabel(row.name, s.steps), { scope: 'row' }),
      cell('td', s.norm === 'linf' ? 'L∞' : s.norm === 'l2' ? 'L2' : s.norm),
      cell('td', epsText(s.eps), { title: formatValue(s.eps), class: 'num' }),
      cell('td', epsText(s.stepSize), { title: formatValue(s.stepSize), class: 'num' }),
      cell('td', String(s.steps), { class: 'num' }),
      cell('td', String(s.restarts), { class: 'num' }),
      cell('td', s.randomStart ? 'yes' : 'no'),
    );
    for (const i of shown) {
      const v = row.acc.get(runs[i].data.runId);
      const attrs: Record<string, string> = { class: 'num acc', 'data-run': runs[i].data.runId };
      if (v !== undefined) {
        attrs['data-value'] = String(v);
        attrs['data-tip'] = `${attackLabel(row.name, s.steps)} · ${runs[i].data.name}: accuracy ${exact(v)}`;
        attrs.tabindex = '0';
      }
      tr.append(cell('td', v === undefined ? '—' : pct(v, 2), attrs));
    }
    body.append(tr);
  }
  table.append(body);
  attacksSec.body.replaceChildren(table);
}

function renderPerExpert(shown: number[]): void {
  const withExperts = shown.filter((i) => reportOf(runs[i])!.perExpert.length > 0);
  const notes = shown.flatMap((i) => {
    const note = reportOf(runs[i])!.perExpertNote;
    return note ? [el('p', { class: 'note' }, `${runs[i].data.name}: ${note}`)] : [];
  });
  perExpertSec.root.hidden = withExperts.length === 0 && notes.length === 0;
  if (withExperts.length === 0) return perExpertSec.body.replaceChildren(...notes);
  const experts = [...new Set(withExperts.flatMap((i) => reportOf(runs[i])!.perExpert.map((p) => p.expert)))].sort((a, b) => a - b);
  const table = el('table', { class: 'data per-expert' });
  const h1 = el('tr');
  h1.append(cell('th', 'Expert', { scope: 'col', rowspan: '2' }));
  const h2 = el('tr');
  for (const i of withExperts) {
    const th = cell('th', '', { scope: 'colgroup', colspan: '2', 'data-run': runs[i].data.runId });
    th.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(` ${runs[i].data.name}`));
    h1.append(th);
    h2.append(cell('th', 'SA', { scope: 'col' }), cell('th', 'RA', { scope: 'col' }));
  }
  const thead = el('thead');
  thead.append(h1, h2);
  const body = el('tbody');
  for (const e of experts) {
    const tr = el('tr', { 'data-expert': String(e) });
    tr.append(cell('th', `expert ${e}`, { scope: 'row' }));
    for (const i of withExperts) {
      const rep = reportOf(runs[i])!;
      const p = rep.perExpert.find((q) => q.expert === e);
      for (const k of ['sa', 'ra'] as const) {
        const attrs: Record<string, string> = { class: 'num', 'data-run': runs[i].data.runId, 'data-metric': k };
        if (p) {
          attrs['data-value'] = String(p[k]);
          attrs['data-tip'] = `${runs[i].data.name}, every MoE layer forced to expert ${e}: ${k.toUpperCase()} ${exact(p[k])} (gated model: ${pct(rep[k], 2)})`;
          attrs.tabindex = '0';
          if (p[k] > rep[k]) attrs.class += ' better';
        }
        tr.append(cell('td', p ? pct(p[k], 2) : '—', attrs));
      }
    }
    body.append(tr);
  }
  table.append(thead, body);
  perExpertSec.body.replaceChildren(table, ...notes);
}

function renderCost(shown: number[]): void {
  costSec.root.hidden = shown.length === 0;
  const table = el('table', { class: 'data cost' });
  const head = el('tr');
  for (const [h, tip] of [
    ['Run', ''],
    ['Dense FLOPs', 'FLOPs per image of the dense counterpart (same backbone and width, MoE off)'],
    ['Active FLOPs', 'FLOPs per image with inactive experts skipped (routers included)'],
    ['Reduction', '1 − active / dense'],
    ['Latency dense', 'Measured ms per image of the dense counterpart'],
    ['Latency MoE (masked)', 'Measured ms per image of the MoE computed densely, inactive experts multiplied by 0 (the training forward)'],
    ['Latency MoE (sparse)', 'Measured ms per image with inactive experts really skipped'],
    ['Batch', 'Batch size of the latency measurements'],
  ]) head.append(cell('th', h, tip ? { scope: 'col', title: tip } : { scope: 'col' }));
  const thead = el('thead');
  thead.append(head);
  const body = el('tbody');
  let maxFlops = 0;
  for (const i of shown) maxFlops = Math.max(maxFlops, reportOf(runs[i])!.cost.denseFlops);
  for (const i of shown) {
    const r = runs[i];
    const c = reportOf(r)!.cost;
    const tr = el('tr', { 'data-run': r.data.runId });
    const name = cell('th', '', { scope: 'row' });
    name.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(` ${r.data.name}`));
    const flopsCell = (v: number, kind: string) => {
      const td = cell('td', '', { class: 'num', 'data-value': String(v), 'data-metric': kind, 'data-tip': `${r.data.name}: ${v.toLocaleString('en-US')} FLOPs per image (${kind})`, tabindex: '0' });
      const bar = el('span', { class: `cost-bar ${kind === 'activeFlops' ? `fill-c${i % PALETTE_SIZE}` : 'dense'}` });
      bar.style.width = `${maxFlops > 0 ? Math.max(1, (60 * v) / maxFlops) : 0}px`;
      td.append(el('span', {}, flopsText(v)), bar);
      return td;
    };
    const lat = c.latencyMs;
    const ms = (v: number | undefined, kind: string) =>
      v === undefined
        ? cell('td', '—', { class: 'num', 'data-metric': kind })
        : cell('td', `${formatValue(v)} ms`, { class: 'num', 'data-value': String(v), 'data-metric': kind, 'data-tip': `${r.data.name}: ${formatValue(v)} ms per image, measured at batch ${lat?.batch}` , tabindex: '0' });
    tr.append(
      name,
      flopsCell(c.denseFlops, 'denseFlops'),
      flopsCell(c.activeFlops, 'activeFlops'),
      cell('td', pct(c.reduction, 2), { class: 'num', 'data-value': String(c.reduction), 'data-metric': 'reduction', 'data-tip': `1 − active / dense = ${exact(c.reduction)}`, tabindex: '0' }),
      ms(lat?.dense, 'latencyDenseMs'),
      ms(lat?.moeMasked, 'latencyMoeMaskedMs'),
      ms(lat?.moe, 'latencyMoeMs'),
      cell('td', lat ? String(lat.batch) : '—', { class: 'num', 'data-metric': 'latencyBatch' }),
    );
    body.append(tr);
  }
  table.append(thead, body);
  costSec.body.replaceChildren(table);
}

// ---------------- render ----------------
/** Identifies a focused control or mark across re-renders (which rebuild the elements). */
const KEY_ATTRS = ['data-run', 'data-metric', 'data-layer', 'data-attack', 'data-eps', 'data-expert', 'data-format'];
function keyOf(e: Element | null): string | undefined {
  if (!e || e === document.body || !app.contains(e)) return undefined;
  const parts = [e.tagName.toLowerCase(), e.getAttribute('class') ?? ''];
  for (const a of KEY_ATTRS) if (e.hasAttribute(a)) parts.push(`${a}=${e.getAttribute(a)}`);
  const row = e.closest('tr[data-attack], tr[data-expert], tr[data-run]');
  if (row && row !== e) parts.push(`row:${keyOf(row) ?? ''}`);
  return parts.join('|');
}
function restoreFocus(key: string): void {
  const [tag] = key.split('|');
  for (const c of app.querySelectorAll<HTMLElement | SVGElement>(tag)) {
    if (keyOf(c) === key) {
      c.focus({ preventScroll: true });
      return;
    }
  }
}

let renderCount = 0;
function render(): void {
  renderCount++;
  document.body.dataset.renders = String(renderCount);
  epsInput.checked = ui.epsIn255;
  banner.hidden = bannerText === undefined;
  bannerTextEl.textContent = bannerText ?? '';
  const focusKey = keyOf(document.activeElement);
  for (const id of headCache.keys()) if (!runs.some((r) => r.data.runId === id)) headCache.delete(id);
  runsEl.replaceChildren(...runs.map((r, i) => renderRunCard(r, i)));
  const shown = runs.map((_, i) => i).filter((i) => reportOf(runs[i]) !== undefined);
  emptyMsg.hidden = shown.length > 0;
  emptyMsg.textContent = !initialised
    ? 'Waiting for runs…'
    : runs.length === 0
      ? 'No runs shown. Use “Add runs…”, or “AdvMoE: Show Robustness” on a run.'
      : 'No robustness analysis to show yet' + (trusted ? ': click Evaluate on a run.' : ' (evaluations need a trusted workspace; run `advmoe eval <run-id>` to make one).');
  main.hidden = shown.length === 0;
  renderBars(shown);
  renderCurves(shown);
  renderAttacks(shown);
  renderPerExpert(shown);
  renderLayers(shown);
  renderCost(shown);
  if (focusKey && keyOf(document.activeElement) !== focusKey) restoreFocus(focusKey);
  // What this render drew with (tests wait for it).
  document.body.dataset.rendered = runs
    .map((r) => `${r.data.runId}:${r.live ? `live-${r.live.done}-${r.live.final}` : (r.data.analysis?.name ?? 'none')}:${r.running}`)
    .join('|');
}

let renderTimer: ReturnType<typeof setTimeout> | undefined;
let lastRenderAt = -Infinity;
function scheduleRender(): void {
  if (renderTimer !== undefined) return;
  const wait = Math.max(0, lastRenderAt + MIN_RENDER_INTERVAL_MS - performance.now());
  renderTimer = setTimeout(() => {
    renderTimer = undefined;
    lastRenderAt = performance.now();
    safeRender();
  }, wait);
}
function safeRender(): void {
  try {
    render();
  } catch (e) {
    post({ type: 'log', level: 'error', message: `render failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` });
  }
}
function flushRender(): void {
  if (renderTimer !== undefined) {
    clearTimeout(renderTimer);
    renderTimer = undefined;
    lastRenderAt = performance.now();
    safeRender();
  }
}
let lastWidth = 0;
new ResizeObserver(() => {
  const w = main.clientWidth;
  if (w !== lastWidth) {
    lastWidth = w;
    scheduleRender();
  }
}).observe(main);

// ---------------- export ----------------
function exportRuns(): ExportRun[] {
  const out: ExportRun[] = [];
  for (const r of runs) {
    const rep = reportOf(r);
    if (!rep) continue;
    out.push({
      runId: r.data.runId,
      name: r.data.name,
      method: r.data.method,
      analysis: r.live ? `live ${r.live.done}/${r.live.total}` : r.data.analysis!.name,
      checkpoint: r.live ? undefined : r.data.analysis?.checkpoint,
      samplesDone: r.live?.done,
      samplesTotal: r.live?.total,
      report: rep,
    });
  }
  return out;
}

function exportBaseName(): string {
  const names = runs.map((r) => r.data.name).join('-') || 'runs';
  return `robustness-${names}`.replace(/[^\w.\- ]+/g, '_').slice(0, 100);
}

function chartsForExport(): ChartForExport[] {
  return [barsBox, curveBox, layersBox]
    .filter((b) => !b.root.hidden && b.svg.width.baseVal.value > 0)
    .map((b) => ({
      title: b.title,
      svg: b.svg,
      legend: [...b.legend.querySelectorAll('.legend-item')].map((item) => {
        const i = runs.findIndex((r) => r.data.runId === item.getAttribute('data-run'));
        return { label: item.textContent ?? '', color: cssColor(i), dash: '' };
      }),
    }));
}

async function exportAs(format: RobustnessExportFormat): Promise<void> {
  flushRender();
  const fileName = `${exportBaseName()}.${format}`;
  if (format === 'csv') return post({ type: 'export', format, fileName, data: robustnessCsv(exportRuns()) });
  if (format === 'json') return post({ type: 'export', format, fileName, data: robustnessJson(exportRuns()) });
  const cs = getComputedStyle(document.body);
  const svg = buildExportSvg(
    chartsForExport(),
    cs.getPropertyValue('--vscode-editor-background').trim() || cs.backgroundColor || '#ffffff',
    cs.color || '#000000',
    cs.fontFamily || 'sans-serif',
  );
  if (format === 'svg') post({ type: 'export', format, fileName, data: svg });
  else post({ type: 'export', format, fileName, data: await svgToPngBase64(svg) });
}

// ---------------- messages ----------------
function describe(requestId: number): RobDescriptionMessage {
  return {
    type: 'description',
    requestId,
    runs: runs.map((r) => ({
      runId: r.data.runId,
      analysis: r.data.analysis?.name,
      error: r.data.error,
      live: r.live !== undefined,
      progress: runsEl.querySelector(`.progress[data-run="${CSS.escape(r.data.runId)}"] .progress-text`)?.textContent ?? undefined,
    })),
    bars: drawnBars,
    curves: drawnCurves,
    layers: drawnLayers,
    attackRows,
    error: bannerText,
  };
}

function handle(msg: HostToRobustness): void {
  switch (msg.type) {
    case 'init': {
      initialised = true;
      trusted = msg.trusted;
      const old = new Map(runs.map((r) => [r.data.runId, r]));
      const running = new Set(msg.running ?? []);
      runs = msg.runs.map((d) => {
        const prev = old.get(d.runId);
        const isRunning = running.has(d.runId) || (msg.running === undefined && !!prev?.running);
        return { data: d, running: isRunning, live: isRunning ? prev?.live : undefined, note: prev?.note };
      });
      saveState();
      scheduleRender();
      break;
    }
    case 'run': {
      const r = runs.find((x) => x.data.runId === msg.run.runId);
      if (r) {
        r.data = msg.run;
        // The saved report replaces a finished live one; a running evaluation keeps showing its own.
        if (r.live?.final) {
          r.live = undefined;
          delete ui.selected[r.data.runId]; // the host shows the new (newest) analysis
          saveState();
        }
      } else {
        runs.push({ data: msg.run, running: false });
        saveState();
      }
      scheduleRender();
      break;
    }
    case 'job': {
      const r = runs.find((x) => x.data.runId === msg.runId);
      if (!r) return;
      r.running = msg.running;
      r.note = msg.message;
      if (msg.running) r.live = undefined;
      else if (r.live && !r.live.final) r.live = undefined; // stopped early: back to the saved analysis
      scheduleRender();
      break;
    }
    case 'partial': {
      const r = runs.find((x) => x.data.runId === msg.runId);
      if (!r) {
        post({ type: 'log', level: 'warn', message: `robustness view: report for run ${msg.runId}, which is not shown` });
        return;
      }
      r.live = { report: msg.report, done: msg.samplesDone, total: msg.samplesTotal, final: msg.final };
      r.running = !msg.final;
      r.note = undefined;
      scheduleRender();
      break;
    }
    case 'describe':
      flushRender();
      post(describe(msg.requestId));
      break;
  }
}

window.addEventListener('message', (ev: MessageEvent) => {
  const parsed = parseHostToRobustness(ev.data);
  if (!parsed.ok) {
    bannerText = `Ignored an update from the extension: ${parsed.error}`;
    post({ type: 'log', level: 'warn', message: `robustness view ignored a message: ${parsed.error}` });
    scheduleRender();
    return;
  }
  handle(parsed.value);
});

render();
post({ type: 'ready' });
