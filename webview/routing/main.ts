/**
 * Routing view: how a MoE model's routers use their experts, on clean and adversarial inputs.
 * - layer × expert selection frequency, clean and adversarial, and their difference (clean − adversarial) on a
 *   diverging scale centred at 0;
 * - class × expert selections of one layer (clean or adversarial; counts or row-normalised shares);
 * - load balance per layer (per-expert bars, max share, coefficient of variation, normalised entropy, top-1 share),
 *   collapsed routers flagged with an icon and words.
 * A cell click (or Enter on a focused cell) asks the host to open the Inspector on the samples routed that way.
 * Talks to the host only through ./protocol.ts.
 */
import { interpolateLab, interpolateViridis, piecewise, scaleDiverging, scaleSequential, schemeRdBu } from 'd3';
import type { InspectorFilter, RobustnessReport } from '../analysisProtocol';
import { svgToPngBase64 } from '../shared/exportImage';
import { connectView } from '../shared/vscode';
import { Heatmap, type HeatmapSpec, type TooltipContent } from './heatmap';
import {
  countOf,
  diffOf,
  loadBalance,
  parseHostToRouting,
  parseRoutingViewState,
  routingCsv,
  routingJson,
  topK,
  type ClassNorm,
  type DrawnHeatmap,
  type HostToRouting,
  type InputKind,
  type RoutingDescription,
  type RoutingExportFormat,
  type RoutingToHost,
  type RoutingViewState,
  type ShowMessage,
} from './protocol';
import { el, headerRow, svgEl } from '../shared/dom';
import { exportGroup } from '../shared/exportGroup';
import { dateTime, pct } from '../shared/format';

const host = connectView<RoutingViewState, RoutingToHost, HostToRouting>('routing view', parseRoutingViewState, parseHostToRouting);

// ---------------- state ----------------
const ui: Pick<RoutingViewState, 'classLayer' | 'classOn' | 'classNorm'> = {
  classLayer: host.restored?.classLayer ?? 0,
  classOn: host.restored?.classOn ?? 'clean',
  classNorm: host.restored?.classNorm ?? 'count',
};
let shown: ShowMessage | undefined;
let report: RobustnessReport | undefined;
let status: RoutingDescription['status'] = 'waiting';
let statusText = 'Loading…';
let lastRenderMs = 0;
/** The host's passing line (evaluation progress), shown when the analysis has no notice of its own. */
let liveNotice = '';

const post = host.post;
function saveState(): void {
  if (!shown) return;
  host.saveState({
    runsDir: shown.runsDir,
    runId: shown.runId,
    analysis: shown.followLatest ? undefined : shown.analysis?.name,
    ...ui,
  });
}

// ---------------- formatting ----------------
/** A number as exact as it is useful: up to 6 significant digits, no trailing zeros. */
function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  return String(Number(v.toPrecision(6)));
}
const signed = (v: number) => (v > 0 ? `+${fmt(v)}` : fmt(v));
/** Legend ticks: 3 significant digits (the tooltips give the exact numbers). */
const tick = (v: number) => (v === 0 ? '0' : String(Number(v.toPrecision(3))));
const signedTick = (v: number) => (v > 0 ? `+${tick(v)}` : tick(v));
/** Two decimals with a sign, for numbers written inside cells ("0.00" without a sign). */
function signedFixed(v: number): string {
  const t = Math.abs(v).toFixed(2);
  return Number(t) === 0 ? t : `${v > 0 ? '+' : '−'}${t}`;
}

// ---------------- DOM skeleton ----------------

const app = document.getElementById('app') ?? document.body.appendChild(el('div', { id: 'app' }));
const toolbar = el('header', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Routing view' });
const runLabel = el('span', { class: 'run-name', id: 'run-name' });
const analysisSelect = el('select', { id: 'analysis', 'aria-label': 'Analysis file' });
const analysisLabel = el('label', { class: 'control' }, 'Analysis ');
analysisLabel.append(analysisSelect);
const refreshBtn = el('button', { id: 'refresh', type: 'button', title: 'Reload the analysis files of this run' }, 'Refresh');
const exports = exportGroup<RoutingExportFormat>(['png', 'svg', 'csv', 'json'], exportAs, post);
toolbar.append(runLabel, analysisLabel, refreshBtn, el('span', { class: 'spacer' }), exports.group);

const messageEl = el('div', { id: 'message', class: 'message', role: 'status' }, 'Loading…');
const infoEl = el('div', { id: 'info', class: 'info' });
const noticeEl = el('div', { id: 'notice', class: 'notice', role: 'status' });
noticeEl.hidden = true;
const content = el('main', { id: 'content', class: 'content' });

/** A section of the page: its heading and, when given, the note that explains how to read it. */
function section(id: string, heading: string, note?: string): HTMLElement {
  const s = el('section', { id, class: 'section' });
  s.append(el('h2', {}, heading));
  if (note) s.append(el('p', { class: 'section-note' }, note));
  return s;
}

const loadSection = section(
  'load',
  'Expert selection frequency per MoE layer',
  'Fraction of inputs that select each expert (a row sums to k). Difference = clean − adversarial: blue where clean inputs use the expert more, red where adversarial inputs do. Click a cell (or focus it and press Enter) to open those samples in the Inspector.',
);
const loadGrid = el('div', { class: 'heatmap-grid' });
loadSection.appendChild(loadGrid);

const classSection = section('per-class', 'Class × expert');
const classControls = el('div', { class: 'controls' });
const classLayerSelect = el('select', { id: 'class-layer', 'aria-label': 'MoE layer' });
const classLayerLabel = el('label', { class: 'control' }, 'Layer ');
classLayerLabel.append(classLayerSelect);
function radioGroup(name: string, legend: string, options: [string, string][]): { fieldset: HTMLFieldSetElement; inputs: HTMLInputElement[] } {
  const fieldset = el('fieldset', { class: 'control radio-group' });
  fieldset.appendChild(el('legend', {}, legend));
  const inputs = options.map(([value, label]) => {
    const input = el('input', { type: 'radio', name, value, id: `${name}-${value}` });
    const l = el('label', { for: `${name}-${value}` }, label);
    fieldset.append(input, l);
    return input;
  });
  return { fieldset, inputs };
}
const classOnGroup = radioGroup('class-on', 'Inputs', [
  ['clean', 'Clean'],
  ['adversarial', 'Adversarial'],
]);
const classNormGroup = radioGroup('class-norm', 'Show', [
  ['count', 'Counts'],
  ['share', 'Row share'],
]);
classControls.append(classLayerLabel, classOnGroup.fieldset, classNormGroup.fieldset);
classSection.append(classControls);
const classHost = el('div', { class: 'heatmap-grid single' });
classSection.appendChild(classHost);

const balanceSection = section(
  'balance',
  'Load balance per layer',
  'Bars: each expert’s selection frequency on clean inputs (ticks: adversarial; dashed line: an even split, k/N). Max share and entropy are of the k selections per input; entropy is normalised (1 = even, 0 = one expert). A router is flagged as collapsed when more than 90% of inputs get the same decision (the same k experts; for k = 1, one expert) or it gives non-finite scores.',
);
const balanceTable = el('table', { id: 'balance-table', class: 'balance' });
const balanceTip = el('div', { class: 'tooltip balance-tooltip', role: 'tooltip' });
balanceTip.hidden = true;
const balanceWrap = el('div', { class: 'balance-wrap' });
balanceWrap.append(balanceTable, balanceTip);
balanceSection.appendChild(balanceWrap);

content.append(loadSection, classSection, balanceSection);
app.append(toolbar, messageEl, noticeEl, infoEl, content);
content.hidden = true;

const maps = {
  clean: new Heatmap(loadGrid),
  adversarial: new Heatmap(loadGrid),
  difference: new Heatmap(loadGrid),
  class: new Heatmap(classHost),
};

// ---------------- controls ----------------
analysisSelect.addEventListener('change', () => {
  post({ type: 'selectAnalysis', name: analysisSelect.value === '' ? null : analysisSelect.value });
});
refreshBtn.addEventListener('click', () => post({ type: 'refresh' }));
/** A class-map option changed: keep the choice (`apply`) and draw the class map again. */
function classOptionChanged(apply: () => void): void {
  apply();
  saveState();
  renderClass();
}
/** The radio buttons of one class-map option: the value of the one checked becomes the choice. */
function onRadioChoice(inputs: readonly HTMLInputElement[], choose: (value: string) => void): void {
  for (const i of inputs) i.addEventListener('change', () => i.checked && classOptionChanged(() => choose(i.value)));
}
classLayerSelect.addEventListener('change', () => classOptionChanged(() => (ui.classLayer = Number(classLayerSelect.value) || 0)));
onRadioChoice(classOnGroup.inputs, (v) => (ui.classOn = v as InputKind));
onRadioChoice(classNormGroup.inputs, (v) => (ui.classNorm = v as ClassNorm));

function syncControls(): void {
  for (const i of classOnGroup.inputs) i.checked = i.value === ui.classOn;
  for (const i of classNormGroup.inputs) i.checked = i.value === ui.classNorm;
  classLayerSelect.value = String(ui.classLayer);
}

// ---------------- colour scales ----------------
/** ColorBrewer RdBu (11 classes) interpolated in Lab: its centre class, #f7f7f7, is exactly the colour of 0. */
const RDBU = piecewise(interpolateLab, [...schemeRdBu[11]]);
const ZERO_DIFF = RDBU(0.5);

function freqScale(max: number): (v: number) => string {
  const s = scaleSequential(interpolateViridis).domain([0, max > 0 ? max : 1]);
  return (v) => s(v);
}
/** Diverging, symmetric around 0: −m → red (more on adversarial), 0 → neutral, +m → blue (more on clean). */
function diffScale(m: number): (v: number) => string {
  const s = scaleDiverging(RDBU).domain([-m, 0, m]);
  return (v) => (m > 0 ? s(v) : ZERO_DIFF);
}

// ---------------- rendering ----------------
function layerLabel(r: RobustnessReport, l: number): string {
  return `L${l} ${r.layers[l].layer}`;
}

function inspectorHint(layer: number, expert: number, on: InputKind, label?: number): string {
  const who = label === undefined ? 'the samples' : `the samples of class ${label}`;
  return `Click or Enter: open ${who} routed to expert ${expert} in layer ${layer} on ${on} inputs in the Inspector`;
}

function openInspector(filter: InspectorFilter): void {
  post({ type: 'openInspector', filter });
  const r = filter.route;
  showNotice(
    r
      ? `Opening the Inspector: ${filter.label !== undefined ? `class ${filter.label}, ` : ''}routed to expert ${r.expert} in layer ${r.layer} on ${r.on} inputs…`
      : 'Opening the Inspector…',
  );
}

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
function showNotice(text: string, sticky = false): void {
  noticeEl.textContent = text;
  noticeEl.hidden = !text;
  if (noticeTimer) clearTimeout(noticeTimer);
  noticeTimer = sticky
    ? undefined
    : setTimeout(() => {
        noticeEl.textContent = shown?.notice ?? '';
        noticeEl.hidden = !shown?.notice;
      }, 4000);
}

function contentWidth(): number {
  return Math.max(300, content.clientWidth || document.body.clientWidth - 24 || 900);
}

function renderLoad(r: RobustnessReport): void {
  const L = r.layers.length;
  const N = r.layers[0].loadClean.length;
  const n = r.samples;
  const clean = new Float64Array(L * N);
  const adv = new Float64Array(L * N);
  const diff = new Float64Array(L * N);
  let maxFreq = 0;
  let maxAbs = 0;
  r.layers.forEach((layer, l) => {
    for (let e = 0; e < N; e++) {
      const c = layer.loadClean[e];
      const a = layer.loadAdv[e];
      clean[l * N + e] = c;
      adv[l * N + e] = a;
      const d = diffOf(c, a);
      diff[l * N + e] = d;
      if (Number.isFinite(c) && c > maxFreq) maxFreq = c;
      if (Number.isFinite(a) && a > maxFreq) maxFreq = a;
      if (Number.isFinite(d) && Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
    }
  });
  const rowLabels = r.layers.map((_, l) => layerLabel(r, l));
  const rowFlags = r.layers.map((l) => l.collapsed);
  const colLabels = Array.from({ length: N }, (_, e) => String(e));
  const fColor = freqScale(maxFreq);
  const dColor = diffScale(maxAbs);
  // Three maps side by side when they fit, else stacked.
  const total = contentWidth();
  // A map needs room for its row labels and cells of a readable size; in a narrow column they stack.
  const perMapMin = 220 + N * 12;
  const perRow = Math.max(1, Math.min(3, Math.floor(total / (perMapMin + 24))));
  loadGrid.dataset.columns = String(perRow);
  const width = Math.floor((total - (perRow - 1) * 24) / perRow);

  const tip = (l: number, e: number, which: 'clean' | 'adversarial' | 'difference'): TooltipContent => {
    const c = clean[l * N + e];
    const a = adv[l * N + e];
    const d = diff[l * N + e];
    const cc = countOf(c, n);
    const ac = countOf(a, n);
    const value = which === 'clean' ? c : which === 'adversarial' ? a : d;
    const count = which === 'clean' ? cc : which === 'adversarial' ? ac : cc - ac;
    return {
      header: `${layerLabel(r, l)} · expert ${e}${r.layers[l].collapsed ? ' · ⚠ collapsed router' : ''}`,
      rows: [
        ['Clean', `${fmt(c)} (${cc} of ${n} samples)`],
        ['Adversarial', `${fmt(a)} (${ac} of ${n} samples)`],
        ['Difference (clean − adversarial)', `${signed(d)} (${cc - ac > 0 ? '+' : ''}${cc - ac} samples)`],
      ],
      hint:
        which === 'difference'
          ? `${inspectorHint(l, e, 'adversarial')} (the difference map opens the adversarial side)`
          : inspectorHint(l, e, which),
      data: { value: String(value), count: String(count), clean: String(c), adversarial: String(a), samples: String(n), layer: String(l), expert: String(e) },
    };
  };
  const base = {
    rows: L,
    cols: N,
    rowLabels,
    rowFlags,
    colLabels,
    rowAxis: 'layer',
    colAxis: 'expert',
  };
  /** The selection-frequency map of clean or adversarial inputs. */
  const frequencyMap = (on: 'clean' | 'adversarial', values: Float64Array): HeatmapSpec => ({
    ...base,
    id: on,
    title: on === 'clean' ? 'Clean inputs' : 'Adversarial inputs',
    values,
    color: fColor,
    legend: { title: 'selection frequency', domain: [0, maxFreq > 0 ? maxFreq : 1], format: tick },
    tooltip: (l, e) => tip(l, e, on),
    cellText: (l, e) => values[l * N + e].toFixed(2),
    onActivate: (l, e) => openInspector({ route: { layer: l, expert: e, on } }),
    activateHint: `opens the samples routed to that expert on ${on} inputs in the Inspector`,
  });
  const specs: HeatmapSpec[] = [
    frequencyMap('clean', clean),
    frequencyMap('adversarial', adv),
    {
      ...base,
      id: 'difference',
      title: 'Difference (clean − adversarial)',
      values: diff,
      color: dColor,
      legend: { title: 'clean − adversarial', domain: [-maxAbs, 0, maxAbs], format: signedTick, note: 'blue: more on clean · red: more on adversarial' },
      tooltip: (l, e) => tip(l, e, 'difference'),
      cellText: (l, e) => signedFixed(diff[l * N + e]),
      onActivate: (l, e) => openInspector({ route: { layer: l, expert: e, on: 'adversarial' } }),
      activateHint: 'opens the samples routed to that expert on adversarial inputs in the Inspector',
    },
  ];
  maps.clean.render(specs[0], width);
  maps.adversarial.render(specs[1], width);
  maps.difference.render(specs[2], width);
  extra.set('clean', { counts: Array.from(clean, (v) => countOf(v, n)), zero: fColor(0) });
  extra.set('adversarial', { counts: Array.from(adv, (v) => countOf(v, n)), zero: fColor(0) });
  extra.set('difference', { counts: Array.from(clean, (v, i) => countOf(v, n) - countOf(adv[i], n)), zero: dColor(0) });
}

/** Per heatmap: the counts behind its values and the colour of 0 (for `describe`). */
const extra = new Map<string, { counts: number[]; zero: string }>();

function renderClass(): void {
  const r = report;
  if (!r || r.layers.length === 0) return;
  if (ui.classLayer >= r.layers.length) ui.classLayer = 0;
  syncControls();
  const l = ui.classLayer;
  const layer = r.layers[l];
  const table = ui.classOn === 'clean' ? layer.perClassClean : layer.perClassAdv;
  const C = table.length;
  const N = layer.loadClean.length;
  const k = topK(r);
  const counts = new Float64Array(C * N);
  const values = new Float64Array(C * N);
  const rowTotals = table.map((row) => row.reduce((s, v) => s + v, 0));
  let max = 0;
  for (let c = 0; c < C; c++) {
    for (let e = 0; e < N; e++) {
      const v = table[c][e];
      counts[c * N + e] = v;
      const shown = ui.classNorm === 'count' ? v : rowTotals[c] > 0 ? v / rowTotals[c] : 0;
      values[c * N + e] = shown;
      if (shown > max) max = shown;
    }
  }
  const domainMax = ui.classNorm === 'share' ? 1 : max > 0 ? max : 1;
  const color = freqScale(domainMax);
  const on = ui.classOn;
  maps.class.render(
    {
      id: 'class',
      title: `Class × expert — ${layerLabel(r, l)}, ${on} inputs, ${ui.classNorm === 'count' ? 'selection counts' : 'row-normalised share'}`,
      rows: C,
      cols: N,
      values,
      rowLabels: Array.from({ length: C }, (_, c) => `class ${c}`),
      colLabels: Array.from({ length: N }, (_, e) => String(e)),
      rowAxis: 'class',
      colAxis: 'expert',
      color,
      legend: { title: ui.classNorm === 'count' ? 'selections' : 'share of the class’s selections', domain: [0, domainMax], format: tick },
      cellText: (c, e) => (ui.classNorm === 'count' ? String(counts[c * N + e]) : values[c * N + e].toFixed(2)),
      tooltip: (c, e) => {
        const count = counts[c * N + e];
        const total = rowTotals[c];
        const share = total > 0 ? count / total : 0;
        return {
          header: `${layerLabel(r, l)} · class ${c} · expert ${e} (${on})`,
          rows: [
            ['Selections', `${count} of ${total} (${pct(share)} of the class’s)`],
            ['Samples of the class', `${fmt(total / k)} (k = ${k})`],
          ],
          hint: inspectorHint(l, e, on, c),
          data: { value: String(values[c * N + e]), count: String(count), share: String(share), total: String(total), layer: String(l), expert: String(e), label: String(c) },
        };
      },
      onActivate: (c, e) => openInspector({ route: { layer: l, expert: e, on }, label: c }),
      activateHint: 'opens the samples of that class routed to that expert in the Inspector',
    },
    Math.min(contentWidth(), 140 + N * 40),
  );
  extra.set('class', { counts: Array.from(counts), zero: color(0) });
}

const SVG_NS = 'http://www.w3.org/2000/svg';

function renderBalance(r: RobustnessReport): void {
  const N = r.layers[0].loadClean.length;
  const k = topK(r);
  const head = el('thead');
  const hr = headerRow([
    ['#', 'MoE layer index'],
    ['Layer', ''],
    ['Load per expert', 'Bars: clean selection frequency per expert; ticks: adversarial; dashed: even split k/N'],
    ['Max share', 'Largest share of the selections one expert takes, clean / adversarial'],
    ['CV', 'Coefficient of variation of the per-expert load, clean / adversarial (0 = even)'],
    ['Entropy', 'Normalised entropy of the load, clean / adversarial (1 = even, 0 = one expert)'],
    ['Same decision', 'Largest share of clean inputs routed to the same set of k experts (above 90%: collapsed)'],
    ['Top-1 share', 'Largest share of clean inputs whose top-1 expert is the same expert'],
    ['Routing change', 'Fraction of samples whose routing in this layer changes under the attack'],
    ['Status', ''],
  ]);
  head.appendChild(hr);
  const body = el('tbody');
  const barW = Math.max(2, Math.min(24, Math.floor(256 / N)));
  const W = barW * N;
  const H = 22;
  r.layers.forEach((layer, l) => {
    const tr = el('tr', { 'data-layer': String(l), 'data-collapsed': String(layer.collapsed) });
    if (layer.collapsed) tr.classList.add('collapsed');
    const bc = loadBalance(layer.loadClean);
    const ba = loadBalance(layer.loadAdv);
    const max = Math.max(k / N, ...layer.loadClean.filter(Number.isFinite), ...layer.loadAdv.filter(Number.isFinite)) || 1;
    const svg = svgEl('svg', { width: W, height: H, class: 'bars', role: 'img', 'data-layer': l });
    svg.setAttribute('aria-label', `Load of ${layer.layer}: ${layer.loadClean.map((v, e) => `expert ${e} ${fmt(v)}`).join(', ')}`);
    let dClean = '';
    let dAdv = '';
    for (let e = 0; e < N; e++) {
      const hc = (Math.max(0, layer.loadClean[e]) / max) * (H - 2);
      const ha = (Math.max(0, layer.loadAdv[e]) / max) * (H - 2);
      const x = e * barW;
      if (hc > 0) dClean += `M${x},${H}v${-hc}h${Math.max(1, barW - 1)}v${hc}Z`;
      dAdv += `M${x},${(H - ha).toFixed(2)}h${Math.max(1, barW - 1)}`;
    }
    const even = H - ((k / N) / max) * (H - 2);
    svg.append(
      svgEl('path', { d: dClean, class: 'bar-clean' }),
      svgEl('path', { d: dAdv, class: 'bar-adv' }),
      svgEl('line', { x1: 0, x2: W, y1: even, y2: even, class: 'bar-even' }),
    );
    svg.addEventListener('mousemove', (ev) => {
      const e = Math.min(N - 1, Math.max(0, Math.floor((ev as MouseEvent).offsetX / barW)));
      balanceTip.replaceChildren(
        el('div', { class: 'tooltip-header' }, `${layerLabel(r, l)} · expert ${e}`),
        el('div', {}, `clean ${fmt(layer.loadClean[e])} (${countOf(layer.loadClean[e], r.samples)} of ${r.samples})`),
        el('div', {}, `adversarial ${fmt(layer.loadAdv[e])} (${countOf(layer.loadAdv[e], r.samples)} of ${r.samples})`),
      );
      balanceTip.hidden = false;
      const wr = balanceWrap.getBoundingClientRect();
      balanceTip.style.left = `${(ev as MouseEvent).clientX - wr.left + 14}px`;
      balanceTip.style.top = `${(ev as MouseEvent).clientY - wr.top + 10}px`;
    });
    svg.addEventListener('mouseleave', () => (balanceTip.hidden = true));
    const statusCell = el('td', { class: 'status' });
    const problems: string[] = [];
    if (layer.collapsed) problems.push('Collapsed');
    if ((layer.nonFinite ?? 0) > 0) problems.push(`${layer.nonFinite} non-finite router output${layer.nonFinite === 1 ? '' : 's'}`);
    if (problems.length > 0) {
      statusCell.append(el('span', { class: 'flag', 'aria-hidden': 'true' }, '⚠'), document.createTextNode(` ${problems.join('; ')}`));
      statusCell.title =
        'Router collapse: more than 90% of inputs get the same routing decision, or the router gave non-finite scores. ' +
        'method.routing (balanceBias, classTarget, balance, entropy, noise) and model.moe.routerNorm counter it (README: "Routing that does not collapse").';
    } else {
      statusCell.append(el('span', { class: 'ok', 'aria-hidden': 'true' }, '✓'), document.createTextNode(' OK'));
    }
    const cell = (text: string, cls = 'num') => el('td', { class: cls }, text);
    const barCell = el('td', { class: 'bars-cell' });
    barCell.appendChild(svg);
    const nameCell = el('td', { class: 'layer-name', title: layer.layer }, layer.layer);
    tr.append(
      cell(String(l)),
      nameCell,
      barCell,
      cell(`${fmt(bc.maxShare)} / ${fmt(ba.maxShare)}`),
      cell(`${bc.cv.toFixed(3)} / ${ba.cv.toFixed(3)}`),
      cell(`${bc.entropy.toFixed(3)} / ${ba.entropy.toFixed(3)}`),
      cell(layer.decisionShare === undefined ? '—' : pct(layer.decisionShare)),
      cell(layer.top1Share === undefined ? '—' : pct(layer.top1Share)),
      cell(pct(layer.changeRate)),
      statusCell,
    );
    body.appendChild(tr);
  });
  balanceTable.replaceChildren(el('caption', { class: 'visually-hidden' }, 'Load balance per MoE layer'), head, body);
}

function renderInfo(r: RobustnessReport): void {
  const a = shown!.analysis!;
  const L = r.layers.length;
  const N = L > 0 ? r.layers[0].loadClean.length : 0;
  const collapsed = r.layers.flatMap((l, i) => (l.collapsed ? [i] : []));
  const parts = [
    `${r.samples} samples`,
    `${L} MoE layer${L === 1 ? '' : 's'} × ${N} experts, k = ${topK(r)}`,
    `SA ${pct(r.sa)}, RA ${pct(r.ra)}`,
    a.checkpoint ? `checkpoint ${a.checkpoint}` : '',
    dateTime(a.mtime),
  ].filter(Boolean);
  infoEl.replaceChildren(el('span', {}, parts.join(' · ')));
  if (collapsed.length > 0) {
    const warn = el('div', { class: 'collapse-summary', role: 'note' });
    warn.append(
      el('span', { class: 'flag', 'aria-hidden': 'true' }, '⚠'),
      document.createTextNode(
        ` Router collapse in ${collapsed.length} of ${L} layer${L === 1 ? '' : 's'}: ${collapsed.map((i) => layerLabel(r, i)).join(', ')}`,
      ),
    );
    infoEl.appendChild(warn);
  }
  if (!r.perSample) {
    infoEl.appendChild(
      el('div', { class: 'hint' }, 'This analysis has no per-sample routing: the Inspector can show the samples only for analyses written with per-sample data.'),
    );
  }
}

function renderToolbar(): void {
  const s = shown;
  runLabel.textContent = s ? s.runName : '';
  runLabel.title = s ? `${s.runId} in ${s.runsDir}` : '';
  const opts: HTMLOptionElement[] = [];
  if (s) {
    const newest = s.analyses[0];
    opts.push(el('option', { value: '' }, newest ? `Newest (${newest.name})` : 'Newest'));
    for (const a of s.analyses) opts.push(el('option', { value: a.name }, `${a.name} — ${dateTime(a.mtime)}`));
  }
  analysisSelect.replaceChildren(...opts);
  analysisSelect.value = s && !s.followLatest && s.analysis ? s.analysis.name : '';
  analysisSelect.disabled = !s || s.analyses.length === 0;
  for (const b of exports.buttons) b.disabled = status !== 'shown';
}

let renderCount = 0;
function render(): void {
  const t0 = performance.now();
  renderCount++;
  document.body.dataset.renders = String(renderCount);
  const s = shown;
  report = s?.analysis?.report;
  if (!s) {
    status = 'waiting';
    statusText = 'Loading…';
  } else if (s.error) {
    status = 'error';
    statusText = s.error;
  } else if (!report) {
    status = s.moe === false ? 'dense' : 'none';
    statusText =
      s.moe === false
        ? 'This run trains a dense model (no MoE layers): there is no routing to show.'
        : 'No analysis for this run yet. Run “AdvMoE: Evaluate” on it; this view refreshes when the analysis is written.';
  } else if (report.layers.length === 0 || report.layers[0].loadClean.length === 0) {
    status = 'dense';
    statusText = `${s.analysis!.name} has no MoE layers: the model is dense, so there is no routing to show.`;
  } else {
    status = 'shown';
    statusText = '';
  }
  renderToolbar();
  messageEl.textContent = statusText;
  messageEl.hidden = status === 'shown';
  messageEl.className = `message ${status}`;
  noticeEl.textContent = s?.notice || liveNotice;
  noticeEl.hidden = !noticeEl.textContent;
  content.hidden = status !== 'shown';
  infoEl.hidden = status !== 'shown';
  if (status === 'shown' && report) {
    renderInfo(report);
    classLayerSelect.replaceChildren(
      ...report.layers.map((l, i) => el('option', { value: String(i) }, `${layerLabel(report!, i)}${l.collapsed ? ' ⚠ collapsed' : ''}`)),
    );
    renderLoad(report);
    renderClass();
    renderBalance(report);
  }
  lastRenderMs = performance.now() - t0;
  document.body.dataset.status = status;
  document.body.dataset.renderMs = lastRenderMs.toFixed(1);
}

let resizeFrame: number | undefined;
let lastWidth = 0;
new ResizeObserver(() => {
  const w = content.clientWidth;
  if (w === lastWidth || status !== 'shown') return;
  lastWidth = w;
  if (resizeFrame !== undefined) cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(() => {
    resizeFrame = undefined;
    if (report && status === 'shown') {
      renderLoad(report);
      renderClass();
    }
  });
}).observe(content);

// ---------------- export ----------------
function exportBaseName(): string {
  const a = shown?.analysis?.name.replace(/\.json$/, '') ?? 'analysis';
  return `routing-${shown?.runId ?? 'run'}-${a}`.replace(/[^\w.\- ]+/g, '_').slice(0, 100);
}

function buildSvg(): string {
  const cs = getComputedStyle(document.body);
  const theme = {
    bg: cs.getPropertyValue('--vscode-editor-background').trim() || cs.backgroundColor || '#ffffff',
    fg: cs.color || '#000000',
    font: cs.fontFamily || 'sans-serif',
  };
  const gap = 16;
  let y = gap;
  let width = 0;
  const groups: string[] = [];
  for (const m of [maps.clean, maps.adversarial, maps.difference, maps.class]) {
    const f = m.exportSvg(theme);
    if (!f.markup) continue;
    groups.push(`<g transform="translate(${gap},${y})">${f.markup}</g>`);
    y += f.height + gap;
    width = Math.max(width, f.width + 2 * gap);
  }
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  return (
    `<svg xmlns="${SVG_NS}" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">` +
    `<rect width="${width}" height="${y}" fill="${esc(theme.bg)}"/>${groups.join('')}</svg>`
  );
}

async function exportAs(format: RoutingExportFormat): Promise<void> {
  const r = report;
  if (!r || !shown?.analysis || status !== 'shown') return;
  const fileName = `${exportBaseName()}.${format}`;
  if (format === 'csv') return post({ type: 'export', format, fileName, data: routingCsv(r) });
  if (format === 'json') return post({ type: 'export', format, fileName, data: routingJson(shown.runId, shown.analysis.name, r) });
  const svg = buildSvg();
  if (format === 'svg') post({ type: 'export', format, fileName, data: svg });
  else post({ type: 'export', format, fileName, data: await svgToPngBase64(svg, 1.5) });
}

// ---------------- messages ----------------
function describe(requestId: number): RoutingDescription {
  const heatmaps: DrawnHeatmap[] = [];
  if (status === 'shown') {
    for (const m of [maps.clean, maps.adversarial, maps.difference, maps.class]) {
      const s = m.current;
      if (!s) continue;
      const x = extra.get(s.id);
      heatmaps.push({
        id: s.id as DrawnHeatmap['id'],
        rows: s.rows,
        cols: s.cols,
        rowLabels: s.rowLabels,
        values: Array.from(s.values),
        counts: x?.counts ?? [],
        domain: s.legend.domain,
        zeroColor: x?.zero ?? '',
        cells: s.rows * s.cols,
        geometry: m.geometry,
        renderMs: m.lastRenderMs,
      });
    }
  }
  return {
    type: 'description',
    requestId,
    status,
    message: statusText,
    analysis: shown?.analysis?.name,
    heatmaps,
    ...ui,
    collapsedLayers: report ? report.layers.flatMap((l, i) => (l.collapsed ? [i] : [])) : [],
    balanceRows: status === 'shown' ? balanceTable.tBodies[0]?.rows.length ?? 0 : 0,
    renderMs: lastRenderMs,
  };
}

function handle(msg: HostToRouting): void {
  switch (msg.type) {
    case 'show': {
      const prev = shown;
      shown = msg;
      // A different run resets the layer choice; the same run keeps it.
      if (prev && prev.runId !== msg.runId) ui.classLayer = 0;
      saveState();
      render();
      break;
    }
    case 'describe':
      post(describe(msg.requestId));
      break;
    case 'notice':
      liveNotice = msg.text;
      showNotice(shown?.notice || liveNotice, true);
      break;
  }
}

syncControls();
render();
host.listen(handle);
