/**
 * Training view: live curves of every metric of one or more runs, drawn with d3.
 * Talks to the host only through the messages of ../protocol.ts.
 */
import { axisBottom, axisLeft, line, scaleLinear, scaleLog, select, type Selection } from 'd3';
import {
  parseHostToTraining,
  parseTrainingViewState,
  type DescriptionMessage,
  type DrawnSeries,
  type ExportFormat,
  type HostToTraining,
  type TrainingToHost,
  type TrainingViewState,
  type XAxis,
} from '../protocol';
import { chartsImage, type ChartForExport } from '../shared/exportImage';
import {
  RunModel,
  downsampleMinMax,
  formatValue,
  groupSeries,
  nearestIndex,
  seriesLabel,
  toCsv,
  type ChartGroup,
  type Series,
} from '../shared/series';
import { connectView } from '../shared/vscode';
import { el } from '../shared/dom';
import { exportGroup } from '../shared/exportGroup';
import { isShareMetric, num, pct } from '../shared/format';

const host = connectView<TrainingViewState, TrainingToHost, HostToTraining>('training view', parseTrainingViewState, parseHostToTraining);
const PALETTE_SIZE = 8;
const DASHES = ['', '6 3', '2 3', '10 3 2 3', '1 4'];
const MIN_RENDER_INTERVAL_MS = 100; // ≤ 10 renders per second
const CHART_HEIGHT = 220;
const MARGIN = { top: 10, right: 18, bottom: 34, left: 60 };
const SPARSE_POINTS = 24; // series this short (e.g. per-epoch evaluations) also get a dot per point

// ---------------- state ----------------
const ui: Omit<TrainingViewState, 'runIds'> = {
  smoothing: host.restored?.smoothing ?? 0.6,
  xAxis: host.restored?.xAxis ?? 'step',
  logScale: host.restored?.logScale ?? false,
};
let runs: RunModel[] = [];
let initialised = false;

function saveState(): void {
  host.saveState({ runIds: runs.map((r) => r.runId), ...ui });
}

const post = host.post;

// ---------------- DOM skeleton ----------------

const app = document.getElementById('app') ?? document.body.appendChild(el('div', { id: 'app' }));
const toolbar = el('header', { class: 'toolbar', role: 'toolbar' });
const smoothingInput = el('input', { id: 'smoothing', type: 'range', min: '0', max: '0.99', step: '0.01', 'aria-label': 'Smoothing' });
const smoothingOut = el('output', { id: 'smoothing-value', for: 'smoothing' });
const xAxisSelect = el('select', { id: 'x-axis', 'aria-label': 'X axis' });
for (const [v, label] of [['step', 'Step'], ['epoch', 'Epoch'], ['time', 'Wall time']] as const) {
  xAxisSelect.appendChild(el('option', { value: v }, label));
}
const logInput = el('input', { id: 'log-scale', type: 'checkbox' });
const smoothingLabel = el('label', { class: 'control' }, 'Smoothing ');
smoothingLabel.append(smoothingInput, smoothingOut);
const xLabel = el('label', { class: 'control' }, 'X axis ');
xLabel.append(xAxisSelect);
const logLabel = el('label', { class: 'control' });
logLabel.append(logInput, document.createTextNode(' Log scale'));
const addRunsBtn = el('button', { id: 'add-runs', type: 'button', title: 'Overlay other runs' }, 'Add runs…');
const exports = exportGroup<ExportFormat>(['png', 'svg', 'csv'], exportAs, post);
toolbar.append(smoothingLabel, xLabel, logLabel, el('span', { class: 'spacer' }), addRunsBtn, exports.group);
const runsLegend = el('div', { id: 'runs-legend', class: 'runs-legend' });
const emptyMsg = el('div', { id: 'empty', class: 'empty' }, 'Waiting for runs…');
const chartsEl = el('main', { id: 'charts', class: 'charts' });
app.append(toolbar, runsLegend, emptyMsg, chartsEl);

function syncControls(): void {
  smoothingInput.value = String(ui.smoothing);
  smoothingOut.textContent = ui.smoothing.toFixed(2);
  xAxisSelect.value = ui.xAxis;
  logInput.checked = ui.logScale;
}
syncControls();

smoothingInput.addEventListener('input', () => {
  ui.smoothing = Math.min(0.99, Math.max(0, Number(smoothingInput.value)));
  syncControls();
  saveState();
  scheduleRender();
});
xAxisSelect.addEventListener('change', () => {
  ui.xAxis = xAxisSelect.value as XAxis;
  saveState();
  scheduleRender();
});
logInput.addEventListener('change', () => {
  ui.logScale = logInput.checked;
  saveState();
  scheduleRender();
});
addRunsBtn.addEventListener('click', () => post({ type: 'addRuns' }));

// ---------------- styling helpers ----------------
function seriesStyle(runIndex: number, keyIndex: number): { colorIndex: number; dash: string } {
  const multiRun = runs.length > 1;
  return {
    colorIndex: (multiRun ? runIndex : keyIndex) % PALETTE_SIZE,
    dash: multiRun ? DASHES[keyIndex % DASHES.length] : '',
  };
}
function cssColor(index: number): string {
  return getComputedStyle(document.body).getPropertyValue(`--advmoe-series-${index}`).trim() || '#3794ff';
}

// ---------------- charts ----------------
interface ChartView {
  group: ChartGroup;
  root: HTMLElement;
  legend: HTMLElement;
  svg: Selection<SVGSVGElement, unknown, null, undefined>;
  tooltip: HTMLElement;
  /** What the last render drew, for hover and `describe`. */
  drawn: { run: RunModel; runIndex: number; key: string; label: string; series: Series; colorIndex: number; drawn: number }[];
  x?: (v: number) => number;
  xInvert?: (px: number) => number;
  y?: (v: number) => number;
  innerWidth: number;
}
const charts = new Map<string, ChartView>();

function createChart(group: ChartGroup): ChartView {
  const root = el('section', { class: 'chart', 'data-chart': group.title });
  root.appendChild(el('h3', {}, group.title));
  const legend = el('div', { class: 'legend' });
  const plot = el('div', { class: 'plot-wrap' });
  const tooltip = el('div', { class: 'tooltip', role: 'status' });
  tooltip.hidden = true;
  root.append(legend, plot);
  plot.appendChild(tooltip);
  const svg = select(plot).insert('svg', '.tooltip').attr('class', 'plot') as Selection<SVGSVGElement, unknown, null, undefined>;
  svg.append('g').attr('class', 'grid-y');
  svg.append('g').attr('class', 'x-axis');
  svg.append('g').attr('class', 'y-axis');
  svg.append('text').attr('class', 'axis-label x-label');
  svg.append('g').attr('class', 'series-layer');
  svg.append('g').attr('class', 'hover-layer').attr('data-export', 'skip');
  svg.append('rect').attr('class', 'overlay').attr('data-export', 'skip');
  const view: ChartView = { group, root, legend, svg, tooltip, drawn: [], innerWidth: 0 };
  svg
    .select<SVGRectElement>('rect.overlay')
    .on('mousemove', (ev: MouseEvent) => showTooltip(view, ev))
    .on('mouseleave', () => hideTooltip(view));
  return view;
}

/** A chart whose every series is a share in [0, 1] (accuracy, SA/RA, robustness). */
function isShareChart(group: ChartGroup): boolean {
  return group.keys.length > 0 && group.keys.every((k) => isShareMetric(k.slice(k.indexOf(':') + 1)));
}

function xLabelText(axis: XAxis): string {
  return axis === 'step' ? 'step' : axis === 'epoch' ? 'epoch' : 'wall time (s)';
}

function formatSeconds(s: number): string {
  if (s < 60) return `${+s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  const sec = Math.round(s - m * 60);
  if (m < 60) return `${m}:${String(sec).padStart(2, '0')}`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}`;
}

/** The x range of every series of every run, so that all charts line up on one x axis. */
function globalXExtent(): [number, number] {
  let x0 = Infinity;
  let x1 = -Infinity;
  for (const run of runs) {
    for (const s of run.series.values()) {
      if (s.length === 0) continue;
      const xs = s.xs(ui.xAxis);
      x0 = Math.min(x0, xs[0]);
      x1 = Math.max(x1, xs[xs.length - 1]);
    }
  }
  return [x0, x1];
}

function renderChart(view: ChartView, allKeys: ReadonlySet<string>, xExtent: [number, number]): void {
  const width = Math.max(320, Math.floor(view.root.clientWidth || chartsEl.clientWidth || 600));
  const iw = width - MARGIN.left - MARGIN.right;
  const ih = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
  view.innerWidth = iw;
  const beta = ui.smoothing;
  const positive = (v: number) => Number.isFinite(v) && (!ui.logScale || v > 0);
  // Accuracies and robustness are shares: drawn on 0–100% like every other view shows them.
  const share = isShareChart(view.group) && !ui.logScale;

  // y extent over every point (raw, which bounds the smoothed curve too); x is shared by all charts.
  let [x0, x1] = xExtent;
  let y0 = Infinity;
  let y1 = -Infinity;
  const entries: ChartView['drawn'] = [];
  runs.forEach((run, runIndex) => {
    view.group.keys.forEach((key, keyIndex) => {
      const s = run.series.get(key);
      if (!s || s.length === 0) return;
      for (const v of s.value) {
        if (!positive(v)) continue;
        if (v < y0) y0 = v;
        if (v > y1) y1 = v;
      }
      const { colorIndex } = seriesStyle(runIndex, keyIndex);
      entries.push({ run, runIndex, key, label: seriesLabel(key, allKeys), series: s, colorIndex, drawn: 0 });
    });
  });
  if (!Number.isFinite(x0)) {
    x0 = 0;
    x1 = 1;
  } else if (x0 === x1) {
    x0 -= 0.5;
    x1 += 0.5;
  }
  if (share) {
    y0 = Math.min(0, y0);
    y1 = Math.max(1, y1);
  } else if (!Number.isFinite(y0)) {
    y0 = ui.logScale ? 0.1 : 0;
    y1 = 1;
  } else if (y0 === y1) {
    const pad = Math.abs(y0) * 0.05 || 0.5;
    y0 = ui.logScale ? y0 / 1.5 : y0 - pad;
    y1 = ui.logScale ? y1 * 1.5 : y1 + pad;
  }
  const x = scaleLinear().domain([x0, x1]).range([0, iw]);
  const y = (ui.logScale ? scaleLog().domain([y0, y1]) : scaleLinear().domain([y0, y1])).range([ih, 0]).nice();
  view.x = (v) => x(v);
  view.xInvert = (p) => x.invert(p);
  view.y = (v) => y(v);

  const svg = view.svg.attr('width', width).attr('height', CHART_HEIGHT);
  const xTicks = Math.max(2, Math.floor(iw / 90));
  const xAxisGen = axisBottom(x).ticks(xTicks);
  if (ui.xAxis === 'time') xAxisGen.tickFormat((d) => formatSeconds(Number(d)));
  svg
    .select<SVGGElement>('g.x-axis')
    .attr('transform', `translate(${MARGIN.left},${MARGIN.top + ih})`)
    .call(xAxisGen);
  const yAxisGen = axisLeft(y).ticks(Math.max(2, Math.floor(ih / 40)), '~g');
  if (share) yAxisGen.tickFormat((d) => pct(Number(d), 0));
  svg.select<SVGGElement>('g.y-axis').attr('transform', `translate(${MARGIN.left},${MARGIN.top})`).call(yAxisGen);
  svg
    .select<SVGGElement>('g.grid-y')
    .attr('transform', `translate(${MARGIN.left},${MARGIN.top})`)
    .call(axisLeft(y).ticks(Math.max(2, Math.floor(ih / 40))).tickSize(-iw).tickFormat(() => ''))
    .call((g) => g.select('.domain').remove());
  svg
    .select('text.x-label')
    .attr('x', MARGIN.left + iw)
    .attr('y', CHART_HEIGHT - 4)
    .attr('text-anchor', 'end')
    .text(xLabelText(ui.xAxis));
  svg
    .select('rect.overlay')
    .attr('x', MARGIN.left)
    .attr('y', MARGIN.top)
    .attr('width', iw)
    .attr('height', ih);

  const layer = svg.select<SVGGElement>('g.series-layer').attr('transform', `translate(${MARGIN.left},${MARGIN.top})`);
  const px = (v: number) => x(v);
  interface PathDatum {
    id: string;
    d: string;
    raw: boolean;
    entry: ChartView['drawn'][number];
    dash: string;
  }
  const paths: PathDatum[] = [];
  const dots: { id: string; cx: number; cy: number; colorIndex: number }[] = [];
  for (const e of entries) {
    const xs = e.series.xs(ui.xAxis);
    const keyIndex = view.group.keys.indexOf(e.key);
    const { dash } = seriesStyle(e.runIndex, keyIndex);
    const id = `${e.run.runId}|${e.key}`;
    const raw = e.series.value;
    const shown = e.series.smoothed(beta);
    const lineOf = (ys: readonly number[]) => {
      const idx = downsampleMinMax(xs, ys, px, positive, iw);
      return {
        n: idx.length,
        d:
          line<number>()
            .x((i) => x(xs[i]))
            .y((i) => y(ys[i]))(idx) ?? '',
      };
    };
    if (beta > 0) paths.push({ id: `${id}|raw`, d: lineOf(raw).d, raw: true, entry: e, dash });
    const sm = lineOf(shown);
    e.drawn = sm.n;
    paths.push({ id, d: sm.d, raw: false, entry: e, dash });
    if (e.series.length <= SPARSE_POINTS) {
      for (let i = 0; i < e.series.length; i++) {
        if (positive(shown[i])) dots.push({ id: `${id}|${i}`, cx: x(xs[i]), cy: y(shown[i]), colorIndex: e.colorIndex });
      }
    }
  }
  layer
    .selectAll<SVGPathElement, PathDatum>('path')
    .data(paths, (d) => d.id)
    .join('path')
    .attr('class', (d) => `${d.raw ? 'series-raw' : 'series'} c${d.entry.colorIndex}`)
    .attr('data-run', (d) => d.entry.run.runId)
    .attr('data-metric', (d) => d.entry.series.metric)
    .attr('data-kind', (d) => d.entry.series.kind)
    .attr('stroke-dasharray', (d) => d.dash || null)
    .attr('d', (d) => d.d)
    .order();
  layer
    .selectAll<SVGCircleElement, (typeof dots)[number]>('circle')
    .data(dots, (d) => d.id)
    .join('circle')
    .attr('class', (d) => `dot c${d.colorIndex}`)
    .attr('r', 2.5)
    .attr('cx', (d) => d.cx)
    .attr('cy', (d) => d.cy);
  view.drawn = entries;
  // A series of one point (a short run's single evaluation) says its value beside the dot.
  const lone = entries.filter((e) => e.series.length === 1 && positive(e.series.value[0]));
  layer
    .selectAll<SVGTextElement, (typeof lone)[number]>('text.lone-value')
    .data(lone, (e) => `${e.run.runId}|${e.key}`)
    .join('text')
    .attr('class', 'lone-value')
    .attr('data-run', (e) => e.run.runId)
    .attr('data-metric', (e) => e.series.metric)
    .attr('x', (e) => x(e.series.xs(ui.xAxis)[0]))
    .attr('y', (e) => y(e.series.value[0]) - 7)
    .attr('text-anchor', (e) => (x(e.series.xs(ui.xAxis)[0]) > iw / 2 ? 'end' : 'start'))
    .text((e) => `${runs.length > 1 ? `${e.run.name} · ` : ''}${e.label} ${share ? pct(e.series.value[0]) : num(e.series.value[0])}`);

  // Legend: one entry per drawn series.
  view.legend.replaceChildren(
    ...entries.map((e) => {
      const keyIndex = view.group.keys.indexOf(e.key);
      const { dash } = seriesStyle(e.runIndex, keyIndex);
      const item = el('span', { class: 'legend-item', 'data-run': e.run.runId, 'data-metric': e.series.metric });
      const sw = select(item).append('svg').attr('width', 26).attr('height', 10).attr('class', 'swatch');
      sw.append('line')
        .attr('x1', 1)
        .attr('x2', 25)
        .attr('y1', 5)
        .attr('y2', 5)
        .attr('class', `series c${e.colorIndex}`)
        .attr('stroke-dasharray', dash || null);
      item.append(document.createTextNode(runs.length > 1 ? `${e.run.name} · ${e.label}` : e.label));
      return item;
    }),
  );
  if (!view.tooltip.hidden && lastHover?.view === view) showTooltip(view, lastHover.ev);
}

let lastHover: { view: ChartView; ev: MouseEvent } | undefined;

function showTooltip(view: ChartView, ev: MouseEvent): void {
  if (!view.xInvert || !view.x || !view.y || view.drawn.length === 0) return;
  lastHover = { view, ev };
  const rect = (view.svg.node() as SVGSVGElement).getBoundingClientRect();
  const mx = ev.clientX - rect.left - MARGIN.left;
  const xv = view.xInvert(mx);
  const rows: HTMLElement[] = [];
  const marks: { cx: number; cy: number; colorIndex: number }[] = [];
  let header = '';
  let ruleX = Number.NaN;
  const beta = ui.smoothing;
  for (const e of view.drawn) {
    const xs = e.series.xs(ui.xAxis);
    const i = nearestIndex(xs, xv);
    if (i < 0) continue;
    const raw = e.series.value[i];
    const sm = e.series.smoothed(beta)[i];
    if (!header) {
      header = `step ${e.series.step[i]} · epoch ${+e.series.epoch[i].toFixed(3)} · ${formatSeconds(e.series.time[i])}`;
      ruleX = view.x(xs[i]);
    }
    const row = el('div', {
      class: 'tooltip-row',
      'data-run': e.run.runId,
      'data-metric': e.series.metric,
      'data-kind': e.series.kind,
      'data-step': String(e.series.step[i]),
      'data-value': String(raw),
    });
    const sw = el('span', { class: `dot-swatch c${e.colorIndex}` });
    const name = runs.length > 1 ? `${e.run.name} · ${e.label}` : e.label;
    // Shares as percentages (one formatter, ../shared/format); other metrics exact.
    const asText = (v: number) => (isShareMetric(e.series.metric) ? pct(v) : formatValue(v));
    const valueText = beta > 0 ? `${asText(raw)} (smoothed ${isShareMetric(e.series.metric) ? pct(sm) : num(sm)})` : asText(raw);
    row.append(sw, el('span', { class: 'tooltip-name' }, `${name}`), el('span', { class: 'tooltip-value' }, valueText));
    if (e.series.step[i] !== undefined && xs.length > 0) rows.push(row);
    if (Number.isFinite(raw) && (!ui.logScale || raw > 0)) marks.push({ cx: view.x(xs[i]), cy: view.y(raw), colorIndex: e.colorIndex });
  }
  view.tooltip.replaceChildren(el('div', { class: 'tooltip-header' }, header), ...rows);
  view.tooltip.hidden = false;
  const plotRect = view.root.querySelector('.plot-wrap')!.getBoundingClientRect();
  const left = ev.clientX - plotRect.left + 14;
  const tw = view.tooltip.offsetWidth;
  view.tooltip.style.left = `${left + tw > plotRect.width ? Math.max(0, left - tw - 28) : left}px`;
  view.tooltip.style.top = `${Math.max(0, ev.clientY - plotRect.top - 10)}px`;
  const hover = view.svg.select('g.hover-layer').attr('transform', `translate(${MARGIN.left},${MARGIN.top})`);
  hover
    .selectAll('line')
    .data(Number.isFinite(ruleX) ? [ruleX] : [])
    .join('line')
    .attr('class', 'hover-rule')
    .attr('x1', (d) => d)
    .attr('x2', (d) => d)
    .attr('y1', 0)
    .attr('y2', CHART_HEIGHT - MARGIN.top - MARGIN.bottom);
  hover
    .selectAll('circle')
    .data(marks)
    .join('circle')
    .attr('class', (d) => `hover-dot c${d.colorIndex}`)
    .attr('r', 4)
    .attr('cx', (d) => d.cx)
    .attr('cy', (d) => d.cy);
}

function hideTooltip(view: ChartView): void {
  view.tooltip.hidden = true;
  lastHover = undefined;
  view.svg.select('g.hover-layer').selectAll('*').remove();
}

function renderRunsLegend(): void {
  runsLegend.replaceChildren(
    ...runs.map((r, i) => {
      const item = el('span', { class: 'run-item', 'data-run': r.runId, title: r.runId });
      if (runs.length > 1) item.appendChild(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }));
      item.append(
        el('span', { class: 'run-name' }, r.name),
        el('span', { class: `badge status-${r.status}` }, r.status),
        el('span', { class: 'run-method' }, r.method),
      );
      return item;
    }),
  );
}

let renderCount = 0;
function render(): void {
  renderCount++;
  document.body.dataset.renders = String(renderCount);
  // What this render drew with (lets tests and diagnostics wait for a control change to be on screen).
  document.body.dataset.renderedUi = `${ui.smoothing}|${ui.xAxis}|${ui.logScale}`;
  renderRunsLegend();
  const groups = groupSeries(runs);
  const allKeys = new Set(groups.flatMap((g) => g.keys));
  emptyMsg.hidden = groups.length > 0;
  emptyMsg.textContent = !initialised ? 'Waiting for runs…' : runs.length === 0 ? 'No runs selected. Use “Add runs…”.' : 'Waiting for metrics…';
  const xExtent = globalXExtent();
  const wanted = new Set(groups.map((g) => g.title));
  for (const [title, view] of charts) {
    if (!wanted.has(title)) {
      view.root.remove();
      charts.delete(title);
    }
  }
  groups.forEach((g) => {
    let view = charts.get(g.title);
    if (!view) {
      view = createChart(g);
      charts.set(g.title, view);
    }
    view.group = g;
    chartsEl.appendChild(view.root); // keeps DOM order = group order
    renderChart(view, allKeys, xExtent);
  });
}

let renderTimer: ReturnType<typeof setTimeout> | undefined;
let lastRenderAt = -Infinity;
function scheduleRender(): void {
  if (renderTimer !== undefined) return;
  const wait = Math.max(0, lastRenderAt + MIN_RENDER_INTERVAL_MS - performance.now());
  renderTimer = setTimeout(() => {
    renderTimer = undefined;
    lastRenderAt = performance.now();
    try {
      render();
    } catch (e) {
      post({ type: 'log', level: 'error', message: `render failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` });
    }
  }, wait);
}
new ResizeObserver(() => scheduleRender()).observe(chartsEl);

// ---------------- export ----------------
function exportBaseName(): string {
  const names = runs.map((r) => r.name).join('-') || 'runs';
  return `training-${names}`.replace(/[^\w.\- ]+/g, '_').slice(0, 100);
}

function chartsForExport(): ChartForExport[] {
  return [...charts.values()].map((v) => ({
    title: v.group.title,
    svg: v.svg.node() as SVGSVGElement,
    legend: v.drawn.map((e) => ({
      label: runs.length > 1 ? `${e.run.name} · ${e.label}` : e.label,
      color: cssColor(e.colorIndex),
      dash: seriesStyle(e.runIndex, v.group.keys.indexOf(e.key)).dash,
    })),
  }));
}

async function exportAs(format: ExportFormat): Promise<void> {
  const fileName = `${exportBaseName()}.${format}`;
  if (format === 'csv') {
    post({ type: 'export', format, fileName, data: toCsv(runs) });
    return;
  }
  post({ type: 'export', format, fileName, data: await chartsImage(chartsForExport(), format) });
}

// ---------------- messages ----------------
function describe(requestId: number): DescriptionMessage {
  const series: DrawnSeries[] = [];
  for (const v of charts.values()) {
    for (const e of v.drawn) series.push({ runId: e.run.runId, metric: e.series.metric, points: e.series.length, drawn: e.drawn });
  }
  return {
    type: 'description',
    requestId,
    charts: [...charts.keys()],
    series,
    runs: runs.map((r) => ({ runId: r.runId, status: r.status })),
  };
}

function handle(msg: HostToTraining): void {
  switch (msg.type) {
    case 'init':
      initialised = true;
      runs = msg.runs.map((d) => {
        const r = new RunModel(d.runId, d);
        r.append(d.records);
        return r;
      });
      if (msg.options) {
        const o = parseTrainingViewState({ runIds: [], ...ui, ...msg.options });
        if (o) Object.assign(ui, { smoothing: o.smoothing, xAxis: o.xAxis, logScale: o.logScale });
        syncControls();
      }
      saveState();
      scheduleRender();
      break;
    case 'append': {
      const run = runs.find((r) => r.runId === msg.runId);
      if (!run) return; // not shown here
      run.append(msg.records);
      scheduleRender();
      break;
    }
    case 'runState': {
      const run = runs.find((r) => r.runId === msg.state.id);
      if (!run) return;
      run.status = msg.state.status;
      run.name = msg.state.name;
      scheduleRender();
      break;
    }
    case 'describe':
      // Describe what is on screen now: flush a pending render first.
      if (renderTimer !== undefined) {
        clearTimeout(renderTimer);
        renderTimer = undefined;
        lastRenderAt = performance.now();
        render();
      }
      post(describe(msg.requestId));
      break;
  }
}

render();
host.listen(handle);
