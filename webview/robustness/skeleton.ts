/** Robustness view: the page's fixed parts (toolbar, banner, run list, chart boxes, table sections, tooltip). */
import { el, svgEl } from '../shared/dom';
import { exportGroup } from '../shared/exportGroup';
import { type RobustnessExportFormat } from './protocol';
import { exportAs } from './export';
import { scheduleRender } from './main';
import { PALETTE_SIZE, post, runs, saveState, ui, view } from './state';

export const app = document.getElementById('app') ?? document.body.appendChild(el('div', { id: 'app' }));
const toolbar = el('header', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Robustness view' });
const addRunsBtn = el('button', { id: 'add-runs', type: 'button', title: 'Show other runs side by side' }, 'Add runs…');
export const epsInput = el('input', { id: 'eps-255', type: 'checkbox' });
const epsLabel = el('label', { class: 'control', title: 'Show ε in units of 1/255' });
epsLabel.append(epsInput, document.createTextNode(' ε in /255'));
const exports = exportGroup<RobustnessExportFormat>(['png', 'svg', 'csv', 'json'], (f) => exportAs(f), post);
toolbar.append(addRunsBtn, epsLabel, el('span', { class: 'spacer' }), exports.group);

export const banner = el('div', { id: 'error-banner', class: 'banner error', role: 'alert' });
banner.hidden = true;
export const bannerTextEl = el('span', { class: 'banner-text' });
const bannerClose = el('button', { type: 'button', class: 'icon', 'aria-label': 'Dismiss' }, '×');
banner.append(bannerTextEl, bannerClose);
bannerClose.addEventListener('click', () => {
  view.bannerText = undefined;
  scheduleRender();
});

export const runsEl = el('section', { id: 'runs', class: 'runs', 'aria-label': 'Runs' });
export const emptyMsg = el('div', { id: 'empty', class: 'empty' }, 'Waiting for runs…');

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
export const barsBox = chartBox('bars', 'Accuracy and robustness');
export const curveBox = chartBox('curves', 'RA vs ε');
export const layersBox = chartBox('layers', 'Routing change rate per MoE layer');

function tableSection(id: string, title: string): { root: HTMLElement; body: HTMLElement } {
  const root = el('section', { id, class: 'table-section' });
  const body = el('div', { class: 'table-wrap' });
  root.append(el('h3', {}, title), body);
  return { root, body };
}
export const attacksSec = tableSection('attacks', 'Attacks');
export const perExpertSec = tableSection('per-expert', 'Per-expert robustness (routing forced to one expert)');
export const costSec = tableSection('cost', 'Inference cost');

export const main = el('main', { id: 'content', class: 'content' });
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
export function dataMark<E extends SVGElement>(e: E, tip: string): E {
  e.setAttribute('data-tip', tip);
  e.setAttribute('tabindex', '0');
  e.setAttribute('aria-label', tip);
  e.setAttribute('role', 'img');
  return e;
}

function runLabel(i: number): string {
  return runs[i].data.name;
}
export function cssColor(index: number): string {
  return getComputedStyle(document.body).getPropertyValue(`--advmoe-series-${index % PALETTE_SIZE}`).trim() || '#3794ff';
}
export function legendItems(box: ChartBox, indices: number[]): void {
  box.legend.replaceChildren(
    ...indices.map((i) => {
      const item = el('span', { class: 'legend-item', 'data-run': runs[i].data.runId });
      item.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(runLabel(i)));
      return item;
    }),
  );
}
