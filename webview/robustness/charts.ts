/** Robustness view: the charts (grouped SA/RA/robustness bars, RA-vs-ε curves, routing change rate per MoE layer). */
import { axisBottom, axisLeft, line, scaleBand, scaleLinear, select } from 'd3';
import { svgEl } from '../shared/dom';
import { epsText, pct } from '../shared/format';
import { formatValue } from '../shared/series';
import { BAR_METRICS, isDense, type RobDescriptionMessage } from './protocol';
import { barsBox, curveBox, dataMark, layersBox, legendItems, main } from './skeleton';
import { exact, PALETTE_SIZE, reportOf, runs, ui } from './state';

const BAR_H = 260;
/** Width of one character of a bar label (10 px tabular digits), to decide whether it fits across its bar. */
const BAR_LABEL_CHAR_PX = 6.2;
const M = { top: 22, right: 16, bottom: 46, left: 52 };

interface DrawnBar {
  metric: string;
  runId: string;
  value: number | null;
}
/** What the last render drew (answers `describe`); the tables module sets `attackRows`. */
export const drawn = {
  bars: [] as DrawnBar[],
  curves: [] as RobDescriptionMessage['curves'],
  layers: [] as RobDescriptionMessage['layers'],
  attackRows: 0,
};

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

/**
 * What every chart here draws first: the SVG sized to `width` × `height`, the plot area inside the margins, a
 * percentage axis over `yDomain` (made nice) with its grid, the group the chart's x axis goes into, and the one its
 * marks go into.
 */
function chartFrame(svg: SVGSVGElement, width: number, height: number, yDomain: [number, number], yTicks: number) {
  const iw = width - M.left - M.right;
  const ih = height - M.top - M.bottom;
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  const y = scaleLinear().domain(yDomain).range([ih, 0]).nice();
  const plot = svgEl('g', { transform: `translate(${M.left},${M.top})` });
  svg.append(plot);
  const yg = svgEl('g');
  plot.append(yg);
  yAxis(yg, y, y.domain() as [number, number], iw, yTicks, true);
  const xg = svgEl('g', { class: 'x-axis', transform: `translate(0,${ih})` });
  const marks = svgEl('g', { class: 'marks' });
  plot.append(xg, marks);
  return { iw, ih, y, xg, marks };
}

export function renderBars(shown: number[]): void {
  const box = barsBox;
  const svg = box.svg;
  svg.replaceChildren();
  drawn.bars = [];
  legendItems(box, shown);
  if (shown.length === 0) {
    box.root.hidden = true;
    return;
  }
  box.root.hidden = false;
  const metrics = BAR_METRICS;
  const { iw, ih, y, xg, marks } = chartFrame(svg, chartWidth(), BAR_H, [0, 1], 5);
  const x0 = scaleBand<string>().domain(metrics.map((m) => m.key)).range([0, iw]).paddingInner(0.22).paddingOuter(0.08);
  const x1 = scaleBand<string>().domain(shown.map((i) => runs[i].data.runId)).range([0, x0.bandwidth()]).padding(0.08);
  select(xg).call(axisBottom(x0).tickFormat((k) => BAR_METRICS.find((m) => m.key === k)?.label ?? k));
  wrapTicks(xg, x0.bandwidth());
  // Wrapped metric names take more lines in a narrow column: the chart grows instead of running into the note.
  const axisHeight = xg.getBBox().height;
  if (M.top + ih + axisHeight + 6 > BAR_H) svg.setAttribute('height', String(Math.ceil(M.top + ih + axisHeight + 6)));
  for (const m of metrics) {
    for (const i of shown) {
      const r = runs[i];
      const rep = reportOf(r)!;
      const v = m.value(rep);
      const bx = (x0(m.key) ?? 0) + (x1(r.data.runId) ?? 0);
      const bw = x1.bandwidth();
      drawn.bars.push({ metric: m.key, runId: r.data.runId, value: v });
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
      marks.append(barLabel(bx, bw, y(Math.max(0, Math.min(1, v))), ih, pct(v), r.data.runId, m.key));
    }
  }
  box.note.textContent = 'Router robustness: fraction of (sample, MoE layer) routing decisions kept under an attack on the routers alone. Expert robustness: accuracy under PGD with routing frozen to the clean decision.';
}

/**
 * A bar's value, always written the same way (one formatter: `97.7%`). Above the bar when it fits across the bar;
 * on a narrow bar, turned upright: inside the bar when the bar is tall enough, else above it.
 */
function barLabel(bx: number, bw: number, top: number, bottom: number, text: string, runId: string, metric: string): SVGTextElement {
  const cx = bx + bw / 2;
  const attrs = { 'data-run': runId, 'data-metric': metric };
  const across = text.length * BAR_LABEL_CHAR_PX;
  if (bw >= across) {
    const lbl = svgEl('text', { ...attrs, class: 'bar-label', x: cx, y: top - 4, 'text-anchor': 'middle' });
    lbl.textContent = text;
    return lbl;
  }
  const inside = bottom - top >= across + 8;
  const y = inside ? top + 4 : top - 4;
  const lbl = svgEl('text', {
    ...attrs,
    class: `bar-label upright${inside ? ' inside' : ''}`,
    x: cx,
    y,
    'text-anchor': inside ? 'end' : 'start',
    'dominant-baseline': 'central',
    transform: `rotate(-90 ${cx} ${y})`,
  });
  lbl.textContent = text;
  return lbl;
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

export function renderCurves(shown: number[]): void {
  const box = curveBox;
  const h = 240;
  const svg = box.svg;
  svg.replaceChildren();
  drawn.curves = [];
  const withCurve = shown.filter((i) => reportOf(runs[i])!.raCurve.length > 0);
  legendItems(box, withCurve);
  box.root.hidden = withCurve.length === 0;
  if (withCurve.length === 0) return;
  let maxEps = 0;
  for (const i of withCurve) for (const p of reportOf(runs[i])!.raCurve) maxEps = Math.max(maxEps, p.eps);
  // The axis is in display units (ε, or ε × 255) so that its ticks are round numbers in the unit shown.
  const unit = ui.epsIn255 ? 255 : 1;
  const { iw, y, xg, marks } = chartFrame(svg, chartWidth(), h, [0, 1], 5);
  const xu = scaleLinear().domain([0, (maxEps || 1) * unit]).range([0, iw]).nice();
  const x = (eps: number) => xu(eps * unit);
  select(xg).call(
    axisBottom(xu)
      .ticks(Math.max(2, Math.min(10, Math.floor(iw / 90))))
      .tickFormat((v) => `${+Number(v).toPrecision(4)}`),
  );
  const xl = svgEl('text', { class: 'axis-label', x: M.left + iw, y: h - 6, 'text-anchor': 'end' });
  xl.textContent = ui.epsIn255 ? 'ε (× 1/255)' : 'ε';
  svg.append(xl);
  for (const i of withCurve) {
    const r = runs[i];
    const pts = [...reportOf(r)!.raCurve].sort((a, b) => a.eps - b.eps);
    drawn.curves.push({ runId: r.data.runId, points: pts.map((p) => ({ eps: p.eps, ra: p.ra })) });
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

export function renderLayers(shown: number[]): void {
  const box = layersBox;
  const svg = box.svg;
  svg.replaceChildren();
  drawn.layers = [];
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
  const top = Math.min(1, Math.max(0.05, maxRate * 1.15));
  const { iw, ih, y, xg, marks } = chartFrame(svg, width, 240, [0, top], 4);
  const x0 = scaleBand<string>().domain(names).range([0, iw]).paddingInner(0.2).paddingOuter(0.05);
  const x1 = scaleBand<string>().domain(moe.map((i) => runs[i].data.runId)).range([0, x0.bandwidth()]).padding(0.06);
  const step = Math.ceil(names.length / Math.max(1, Math.floor(iw / 70)));
  select(xg).call(axisBottom(x0).tickValues(names.filter((_, k) => k % step === 0)));
  for (const i of moe) {
    const r = runs[i];
    for (const l of reportOf(r)!.layers) {
      drawn.layers.push({ layer: l.layer, runId: r.data.runId, changeRate: l.changeRate, collapsed: l.collapsed });
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
