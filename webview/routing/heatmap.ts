/**
 * A heatmap on a canvas (thousands of cells stay cheap: 50 layers × 64 experts is one canvas of 3,200 rectangles),
 * with row and column labels in SVG, a colour legend, a tooltip with exact values on hover and on keyboard focus,
 * arrow-key navigation, Enter/Space or a click to activate a cell, and a standalone SVG for export.
 * Colours of cells come from the given scale; everything else from the theme's CSS variables (media/routing.css).
 */
import { el, svgEl } from '../shared/dom';


export interface TooltipContent {
  header: string;
  rows: [string, string][];
  /** A line under the numbers, e.g. what a click opens. */
  hint?: string;
  /** Raw numbers for tests and diagnostics (set as data-* attributes of the tooltip). */
  data: Record<string, string>;
}

export interface HeatmapSpec {
  id: string;
  title: string;
  rows: number;
  cols: number;
  /** Row-major values: row r, column c at r·cols + c. Non-finite values are drawn as "no data". */
  values: ArrayLike<number>;
  /** Full row labels (tooltips, export) and flagged rows (drawn with a ⚠ and the flagged style). */
  rowLabels: string[];
  rowFlags?: boolean[];
  colLabels: string[];
  rowAxis: string;
  colAxis: string;
  /** Colour of a value. */
  color: (v: number) => string;
  /** Legend: its title, the scale's domain and how ticks are written. */
  legend: { title: string; domain: number[]; format: (v: number) => string; note?: string };
  tooltip: (r: number, c: number) => TooltipContent;
  /** Short text drawn inside a cell when cells are large enough (e.g. the count). */
  cellText?: (r: number, c: number) => string;
  onActivate?: (r: number, c: number) => void;
  /** Words for a screen reader (what Enter does). */
  activateHint?: string;
}

export interface HeatmapGeometry {
  x0: number;
  y0: number;
  cellW: number;
  cellH: number;
  /** Distance from one row's top to the next one's (cellH, plus the label line when labels stand above rows). */
  pitch: number;
  /** Height of the label line above each row (0: labels stand left of the rows). */
  labelAbove: number;
}

/** Top of row r's cells. */
const rowTop = (g: HeatmapGeometry, r: number, y0 = g.y0) => y0 + r * g.pitch + g.labelAbove;

const MAX_CELL_W = 48;
/** In a narrow column, cells may widen to this to use the space that the label column gave back. */
const MAX_CELL_W_NARROW = 128;
/** Row labels move above their rows in a column narrower than this, or when they would take more than LABEL_SHARE_MAX. */
const NARROW_PX = 600;
const LABEL_SHARE_MAX = 0.3;
const LABEL_LINE = 14;
const MIN_CELL_W = 4;
const LABEL_GAP = 6;
const TOP = 18;
const LEGEND_W = 200;
const LEGEND_PAD = 18;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Black or white, whichever reads better on a fill colour (relative luminance). */
export function textOn(fill: string): string {
  const m = /^rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(fill) ?? /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(fill);
  if (!m) return '#000';
  const ch = m.slice(1, 4).map((v) => (fill.startsWith('#') ? parseInt(v, 16) : Number(v)) / 255);
  const lin = ch.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const L = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  return L > 0.35 ? '#000' : '#fff';
}

/** Ticks of a legend: the domain's ends and its centre for a diverging scale, a few even steps otherwise. */
function legendTicks(domain: number[]): number[] {
  if (domain.length === 3) return domain;
  const [lo, hi] = domain;
  return [lo, lo + (hi - lo) / 2, hi];
}

let gradientSeq = 0;

export class Heatmap {
  readonly root: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly legendSvg: SVGSVGElement;
  private readonly legendCaption: HTMLElement;
  private readonly wrap: HTMLElement;
  private readonly labels: SVGSVGElement;
  readonly canvas: HTMLCanvasElement;
  private readonly highlight: SVGRectElement;
  private readonly focusRect: SVGRectElement;
  readonly tooltip: HTMLElement;
  private readonly live: HTMLElement;
  private spec: HeatmapSpec | undefined;
  private geo: HeatmapGeometry = { x0: 0, y0: 0, cellW: 0, cellH: 0, pitch: 0, labelAbove: 0 };
  private focus = { r: 0, c: 0 };
  private hover: { r: number; c: number } | undefined;
  private keyboard = false;
  lastRenderMs = 0;
  private readonly gradientId = `hm-grad-${gradientSeq++}`;

  constructor(parent: HTMLElement) {
    this.root = el('figure', { class: 'heatmap' });
    const head = el('figcaption', { class: 'heatmap-head' });
    this.titleEl = el('h3', {});
    this.legendSvg = svgEl('svg', { class: 'legend-bar', width: LEGEND_W + 2 * LEGEND_PAD, height: 30 });
    this.legendCaption = el('span', { class: 'legend-caption' });
    const legend = el('div', { class: 'legend' });
    legend.append(this.legendSvg, this.legendCaption);
    head.append(this.titleEl, legend);
    this.wrap = el('div', { class: 'heatmap-wrap' });
    this.labels = svgEl('svg', { class: 'heatmap-labels', 'aria-hidden': 'true' });
    this.canvas = el('canvas', { class: 'heatmap-canvas', tabindex: '0', role: 'application', 'aria-roledescription': 'heatmap' });
    const overlay = svgEl('svg', { class: 'heatmap-overlay', 'aria-hidden': 'true' });
    this.highlight = svgEl('rect', { class: 'cell-hover' });
    this.focusRect = svgEl('rect', { class: 'cell-focus' });
    overlay.append(this.highlight, this.focusRect);
    this.tooltip = el('div', { class: 'tooltip heatmap-tooltip', role: 'tooltip' });
    this.tooltip.hidden = true;
    this.live = el('div', { class: 'visually-hidden', 'aria-live': 'polite' });
    this.wrap.append(this.labels, this.canvas, overlay, this.tooltip);
    this.root.append(head, this.wrap, this.live);
    parent.appendChild(this.root);
    this.highlight.setAttribute('visibility', 'hidden');
    this.focusRect.setAttribute('visibility', 'hidden');

    this.canvas.addEventListener('mousemove', (ev) => {
      const cell = this.cellAt(ev.offsetX, ev.offsetY);
      this.keyboard = false;
      if (!cell) return this.clearHover();
      this.hover = cell;
      this.showCell(cell.r, cell.c, this.highlight);
    });
    this.canvas.addEventListener('mouseleave', () => this.clearHover());
    this.canvas.addEventListener('click', (ev) => {
      const cell = this.cellAt(ev.offsetX, ev.offsetY);
      if (!cell || !this.spec?.onActivate) return;
      this.focus = cell;
      this.spec.onActivate(cell.r, cell.c);
    });
    // A press puts the keyboard focus on the pressed cell (before the canvas's focus event fires).
    this.canvas.addEventListener('mousedown', (ev) => {
      const cell = this.cellAt(ev.offsetX, ev.offsetY);
      this.keyboard = false;
      if (cell) this.focus = cell;
    });
    this.canvas.addEventListener('focus', () => {
      // Focus by mouse shows the hovered cell; by keyboard (Tab), the focused one.
      if (!this.canvas.matches(':focus-visible')) return;
      this.keyboard = true;
      this.showFocus();
    });
    this.canvas.addEventListener('blur', () => {
      this.focusRect.setAttribute('visibility', 'hidden');
      if (!this.hover) this.tooltip.hidden = true;
    });
    this.canvas.addEventListener('keydown', (ev) => this.onKey(ev));
  }

  get id(): string | undefined {
    return this.spec?.id;
  }
  get geometry(): HeatmapGeometry {
    return { ...this.geo };
  }
  get current(): HeatmapSpec | undefined {
    return this.spec;
  }

  private clearHover(): void {
    this.hover = undefined;
    this.highlight.setAttribute('visibility', 'hidden');
    if (this.keyboard && document.activeElement === this.canvas) this.showFocus();
    else this.tooltip.hidden = true;
  }

  private cellAt(x: number, y: number): { r: number; c: number } | undefined {
    const s = this.spec;
    if (!s) return undefined;
    const g = this.geo;
    const c = Math.floor((x - g.x0) / g.cellW);
    const r = Math.floor((y - g.y0) / g.pitch);
    if (r < 0 || c < 0 || r >= s.rows || c >= s.cols) return undefined;
    if (y < rowTop(g, r)) return undefined; // on the row's label line
    return { r, c };
  }

  private onKey(ev: KeyboardEvent): void {
    const s = this.spec;
    if (!s) return;
    let { r, c } = this.focus;
    switch (ev.key) {
      case 'ArrowLeft': c--; break;
      case 'ArrowRight': c++; break;
      case 'ArrowUp': r--; break;
      case 'ArrowDown': r++; break;
      case 'Home': c = 0; if (ev.ctrlKey) r = 0; break;
      case 'End': c = s.cols - 1; if (ev.ctrlKey) r = s.rows - 1; break;
      case 'PageUp': r -= 10; break;
      case 'PageDown': r += 10; break;
      case 'Enter':
      case ' ':
        ev.preventDefault();
        s.onActivate?.(this.focus.r, this.focus.c);
        return;
      case 'Escape':
        this.tooltip.hidden = true;
        return;
      default:
        return;
    }
    ev.preventDefault();
    this.keyboard = true;
    this.focus = { r: Math.max(0, Math.min(s.rows - 1, r)), c: Math.max(0, Math.min(s.cols - 1, c)) };
    this.showFocus();
  }

  private showFocus(): void {
    if (!this.spec) return;
    this.showCell(this.focus.r, this.focus.c, this.focusRect);
    const t = this.spec.tooltip(this.focus.r, this.focus.c);
    this.live.textContent = `${t.header}. ${t.rows.map(([k, v]) => `${k} ${v}`).join('; ')}. ${t.hint ?? ''}`;
  }

  /** Outlines cell (r, c) with `mark` and shows its tooltip beside it. */
  private showCell(r: number, c: number, mark: SVGRectElement): void {
    const s = this.spec;
    if (!s) return;
    const { x0, cellW, cellH } = this.geo;
    const top = rowTop(this.geo, r);
    mark.setAttribute('x', String(x0 + c * cellW + 0.5));
    mark.setAttribute('y', String(top + 0.5));
    mark.setAttribute('width', String(Math.max(1, cellW - 1)));
    mark.setAttribute('height', String(Math.max(1, cellH - 1)));
    mark.setAttribute('visibility', 'visible');
    const t = s.tooltip(r, c);
    const rows = t.rows.map(([k, v]) => {
      const row = el('div', { class: 'tooltip-row' });
      row.append(el('span', { class: 'tooltip-name' }, k), el('span', { class: 'tooltip-value' }, v));
      return row;
    });
    this.tooltip.replaceChildren(el('div', { class: 'tooltip-header' }, t.header), ...rows);
    if (t.hint) this.tooltip.appendChild(el('div', { class: 'tooltip-hint' }, t.hint));
    for (const a of [...this.tooltip.attributes]) if (a.name.startsWith('data-')) this.tooltip.removeAttribute(a.name);
    this.tooltip.dataset.heatmap = s.id;
    this.tooltip.dataset.row = String(r);
    this.tooltip.dataset.col = String(c);
    for (const [k, v] of Object.entries(t.data)) this.tooltip.setAttribute(`data-${k}`, v);
    this.tooltip.hidden = false;
    const wrapW = this.wrap.clientWidth;
    const cx = x0 + (c + 1) * cellW + 10;
    const tw = this.tooltip.offsetWidth;
    this.tooltip.style.left = `${cx + tw > wrapW ? Math.max(0, x0 + c * cellW - tw - 10) : cx}px`;
    this.tooltip.style.top = `${Math.max(0, top - 8)}px`;
  }

  /** Draws `spec` in the width available (CSS pixels). */
  render(spec: HeatmapSpec, width: number): void {
    const t0 = performance.now();
    this.spec = spec;
    this.root.dataset.heatmap = spec.id;
    this.titleEl.textContent = spec.title;
    this.canvas.setAttribute(
      'aria-label',
      `${spec.title}: ${spec.rows} ${spec.rowAxis} rows × ${spec.cols} ${spec.colAxis} columns. Arrow keys move between cells${spec.activateHint ? `; Enter ${spec.activateHint}` : ''}.`,
    );
    if (this.focus.r >= spec.rows || this.focus.c >= spec.cols) this.focus = { r: 0, c: 0 };

    // Label column: as wide as the longest label (capped), measured in the labels' font.
    const cs = getComputedStyle(this.root);
    const measure = document.createElement('canvas').getContext('2d');
    let labelW = 30;
    if (measure) {
      measure.font = `11px ${cs.fontFamily || 'sans-serif'}`;
      for (let r = 0; r < spec.rows; r++) labelW = Math.max(labelW, measure.measureText(this.rowLabelText(r)).width);
    }
    labelW = Math.min(200, Math.ceil(labelW)) + LABEL_GAP;
    // A narrow column (a view beside the editor, ~450 px): the labels go above their rows and the cells take the
    // whole width, instead of a label column eating the cells.
    const above = width < NARROW_PX || labelW > width * LABEL_SHARE_MAX;
    const x0 = above ? 0 : labelW;
    const cellW = Math.max(MIN_CELL_W, Math.min(above ? MAX_CELL_W_NARROW : MAX_CELL_W, Math.floor((width - x0 - 4) / spec.cols)));
    const cellH = Math.max(spec.rows > 40 ? 8 : 10, Math.min(26, Math.round(cellW * 0.6)));
    const labelAbove = above ? LABEL_LINE : 0;
    this.geo = { x0, y0: TOP, cellW, cellH, pitch: cellH + labelAbove, labelAbove };
    this.root.dataset.labels = above ? 'above' : 'left';
    const w = x0 + cellW * spec.cols + 2;
    const h = TOP + this.geo.pitch * spec.rows + 2;
    this.wrap.style.width = `${w}px`;
    this.wrap.style.height = `${h}px`;
    for (const svg of [this.labels, this.wrap.querySelector('svg.heatmap-overlay') as SVGSVGElement]) {
      svg.setAttribute('width', String(w));
      svg.setAttribute('height', String(h));
    }

    // Cells.
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    const ctx = this.canvas.getContext('2d');
    if (ctx) {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const gap = cellW >= 6 && cellH >= 6 ? 1 : 0;
      const empty = cs.getPropertyValue('--advmoe-nodata').trim() || '#808080';
      const showText = !!spec.cellText && cellW >= 30 && cellH >= 16;
      ctx.font = `11px ${cs.fontFamily || 'sans-serif'}`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      for (let r = 0; r < spec.rows; r++) {
        for (let c = 0; c < spec.cols; c++) {
          const v = spec.values[r * spec.cols + c];
          const fill = Number.isFinite(v) ? spec.color(v) : empty;
          ctx.fillStyle = fill;
          const x = x0 + c * cellW;
          const y = rowTop(this.geo, r);
          ctx.fillRect(x, y, cellW - gap, cellH - gap);
          if (showText) {
            ctx.fillStyle = textOn(fill);
            ctx.fillText(spec.cellText!(r, c), x + (cellW - gap) / 2, y + (cellH - gap) / 2 + 0.5);
          }
        }
      }
    }

    // Labels: every row and column that fits; flagged rows always.
    const rowStep = above ? 1 : Math.max(1, Math.ceil(11 / cellH));
    const colStep = [1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100].find((s) => s * cellW >= 18) ?? 128;
    this.labels.replaceChildren();
    for (let r = 0; r < spec.rows; r++) {
      const flagged = spec.rowFlags?.[r] === true;
      if (r % rowStep !== 0 && !flagged) continue;
      const at = above ? { x: 0, y: rowTop(this.geo, r) - LABEL_LINE / 2, class: `row-label above${flagged ? ' flagged' : ''}` } : { x: labelW - LABEL_GAP, y: rowTop(this.geo, r) + cellH / 2, class: `row-label${flagged ? ' flagged' : ''}` };
      const t = svgEl('text', { ...at, 'data-row': r });
      t.textContent = this.rowLabelText(r);
      const title = svgEl('title');
      title.textContent = spec.rowLabels[r] + (flagged ? ' (flagged)' : '');
      t.appendChild(title);
      this.labels.appendChild(t);
    }
    for (let c = 0; c < spec.cols; c += colStep) {
      const t = svgEl('text', { x: x0 + c * cellW + cellW / 2, y: TOP - 5, class: 'col-label' });
      t.textContent = spec.colLabels[c];
      this.labels.appendChild(t);
    }
    this.drawLegend(spec, Math.max(80, Math.min(LEGEND_W, w - 2 * LEGEND_PAD - 60)));
    this.root.style.maxWidth = `${Math.max(w, 380)}px`;
    this.lastRenderMs = performance.now() - t0;
    this.root.dataset.renderMs = this.lastRenderMs.toFixed(1);
    // Keep the hovered / focused cell's tooltip current after a redraw.
    if (this.hover && this.hover.r < spec.rows && this.hover.c < spec.cols) this.showCell(this.hover.r, this.hover.c, this.highlight);
    else this.highlight.setAttribute('visibility', 'hidden');
    if (document.activeElement === this.canvas) this.showFocus();
  }

  private rowLabelText(r: number): string {
    const s = this.spec!;
    const label = s.rowLabels[r];
    const short = label.length > 28 ? `${label.slice(0, 12)}…${label.slice(-14)}` : label;
    return s.rowFlags?.[r] ? `⚠ ${short}` : short;
  }

  private drawLegend(spec: HeatmapSpec, rampW: number): void {
    const svg = this.legendSvg;
    svg.replaceChildren();
    const dom = spec.legend.domain;
    const lo = dom[0];
    const hi = dom[dom.length - 1];
    const defs = svgEl('defs');
    const grad = svgEl('linearGradient', { id: this.gradientId, x1: 0, x2: 1, y1: 0, y2: 0 });
    for (let i = 0; i <= 20; i++) {
      const v = lo + ((hi - lo) * i) / 20;
      grad.appendChild(svgEl('stop', { offset: `${i * 5}%`, 'stop-color': spec.color(v) }));
    }
    defs.appendChild(grad);
    svg.appendChild(defs);
    const x0 = LEGEND_PAD;
    svg.appendChild(svgEl('rect', { x: x0, y: 2, width: rampW, height: 10, fill: `url(#${this.gradientId})`, class: 'legend-ramp' }));
    for (const v of legendTicks(dom)) {
      const x = hi > lo ? x0 + ((v - lo) / (hi - lo)) * rampW : x0;
      svg.appendChild(svgEl('line', { x1: x, x2: x, y1: 12, y2: 16, class: 'legend-tick' }));
      const t = svgEl('text', { x, y: 27, class: 'legend-text', 'text-anchor': 'middle' });
      t.textContent = spec.legend.format(v);
      svg.appendChild(t);
    }
    svg.setAttribute('width', String(rampW + 2 * LEGEND_PAD));
    this.legendCaption.replaceChildren(el('span', { class: 'legend-title' }, spec.legend.title));
    if (spec.legend.note) this.legendCaption.append(el('span', { class: 'legend-note' }, spec.legend.note));
  }

  /** A standalone SVG fragment of the heatmap (title, legend, labels, cells), colours written out. */
  exportSvg(theme: { fg: string; bg: string; font: string }): { width: number; height: number; markup: string } {
    const s = this.spec;
    if (!s) return { width: 0, height: 0, markup: '' };
    const g = this.geo;
    const { x0, cellW, cellH } = g;
    const head = 52;
    const y0 = head + TOP;
    const parts: string[] = [];
    const text = (x: number, y: number, str: string, attrs = 'font-size="11"') =>
      `<text x="${x}" y="${y}" fill="${esc(theme.fg)}" font-family="${esc(theme.font)}" ${attrs}>${esc(str)}</text>`;
    parts.push(text(0, 14, s.title, 'font-size="14" font-weight="bold"'));
    // Legend ramp as small rects (a gradient id could clash when several exports are stacked).
    const dom = s.legend.domain;
    const lo = dom[0];
    const hi = dom[dom.length - 1];
    for (let i = 0; i < 50; i++) {
      const v = lo + ((hi - lo) * (i + 0.5)) / 50;
      parts.push(`<rect x="${LEGEND_PAD + (i * LEGEND_W) / 50}" y="22" width="${LEGEND_W / 50 + 0.3}" height="10" fill="${esc(s.color(v))}"/>`);
    }
    for (const v of legendTicks(dom)) {
      const x = LEGEND_PAD + (hi > lo ? ((v - lo) / (hi - lo)) * LEGEND_W : 0);
      parts.push(text(x, 45, s.legend.format(v), 'font-size="11" text-anchor="middle"'));
    }
    parts.push(text(LEGEND_PAD + LEGEND_W + 12, 31, s.legend.title + (s.legend.note ? ` — ${s.legend.note}` : '')));
    for (let r = 0; r < s.rows; r++) {
      parts.push(
        g.labelAbove
          ? text(0, rowTop(g, r, y0) - 3, this.rowLabelText(r), 'font-size="11"')
          : text(x0 - LABEL_GAP, rowTop(g, r, y0) + cellH / 2 + 4, this.rowLabelText(r), 'font-size="11" text-anchor="end"'),
      );
    }
    const colStep = [1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100].find((st) => st * cellW >= 18) ?? 128;
    for (let c = 0; c < s.cols; c += colStep) parts.push(text(x0 + c * cellW + cellW / 2, y0 - 5, s.colLabels[c], 'font-size="11" text-anchor="middle"'));
    const gap = cellW >= 6 && cellH >= 6 ? 1 : 0;
    const showText = !!s.cellText && cellW >= 30 && cellH >= 16;
    for (let r = 0; r < s.rows; r++) {
      for (let c = 0; c < s.cols; c++) {
        const v = s.values[r * s.cols + c];
        const fill = Number.isFinite(v) ? s.color(v) : '#808080';
        parts.push(
          `<rect x="${x0 + c * cellW}" y="${rowTop(g, r, y0)}" width="${cellW - gap}" height="${cellH - gap}" fill="${esc(fill)}" data-row="${r}" data-col="${c}" data-value="${v}"/>`,
        );
        if (showText) {
          parts.push(
            `<text x="${x0 + c * cellW + (cellW - gap) / 2}" y="${rowTop(g, r, y0) + (cellH - gap) / 2 + 4}" fill="${textOn(fill)}" font-family="${esc(theme.font)}" font-size="11" text-anchor="middle">${esc(s.cellText!(r, c))}</text>`,
          );
        }
      }
    }
    const width = Math.max(x0 + s.cols * cellW + 4, LEGEND_PAD + LEGEND_W + 12 + 6 * (s.legend.title.length + (s.legend.note?.length ?? 0) + 3));
    return { width, height: y0 + s.rows * g.pitch + 4, markup: parts.join('') };
  }
}
