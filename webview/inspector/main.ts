/**
 * Inspector view: routing of single samples under attack.
 * - a virtualised gallery of the samples of an analysis' per-sample columns (clean, amplified perturbation,
 *   adversarial thumbnails; label, predictions and confidences), filtered by mismatch cell, class, layer whose
 *   routing changed and a route (from the Routing view);
 * - the four router-expert mismatch cells with their counts (click to filter);
 * - the selected sample: large images, predictions clean vs adversarial, the routing path through every MoE layer
 *   (changed layers marked), router scores per expert; live re-attack through the engine (ε, attack, freeze
 *   routing), and export (PNGs + JSON).
 * Talks to the host only through ./protocol.ts.
 */
import {
  expertsOf,
  filterSamples,
  imageBytesToRgba,
  mismatchCellOf,
  parseInspectorFilter,
  routingChanged,
  type InspectorFilter,
  type MismatchCellName,
  type PerSampleData,
  type RobustnessReport,
  type SampleInspection,
} from '../analysisProtocol';
import { getVsCodeApi } from '../shared/vscode';
import { base64ToBytes, formatScale, hwcToPicture, perturbation, type Perturbation, type Picture, type Shape } from './images';
import {
  ATTACKS,
  CELL_LABELS,
  MAX_IMAGE_BATCH,
  MISMATCH_CELLS,
  parseHostToInspector,
  parseInspectorViewState,
  type AttackChoice,
  type InitMessage,
  type InspectorControls,
  type InspectorDescription,
  type InspectorTargetState,
  type InspectorToHost,
  type InspectorViewState,
  type Split,
} from './protocol';
import { el } from '../shared/dom';
import { epsStep, isOver255, parseEps, snapEps } from './eps';

const vscode = getVsCodeApi<InspectorViewState, InspectorToHost>();
const ROW_H = 48;
const OVERSCAN = 6;
const IMAGE_DEBOUNCE_MS = 60;
const INSPECT_DEBOUNCE_MS = 300;
const SELECT_DEBOUNCE_MS = 120;
const EXPORT_SIZE = 224; // exported PNGs are upscaled by the integer factor that gets closest to this

// ---------------- state ----------------
interface Model {
  target: InspectorTargetState;
  runName: string;
  analyses: InitMessage['analyses'];
  analysisName: string | null;
  checkpoint?: string;
  report: RobustnessReport | null;
  per: PerSampleData | null;
  cells: MismatchCellName[];
  idToIndex: Map<number, number>;
  classNames?: string[];
  trusted: boolean;
  error?: string;
}
let model: Model | null = null;
let filter: InspectorFilter = {};
let filtered: number[] = [];
let selected: { id: number; split: Split } | null = null;
const persisted = parseInspectorViewState(vscode.getState());
let controls: InspectorControls = persisted?.controls ?? { attack: 'pgd', freezeRouting: false };

interface CachedImages {
  shape: Shape;
  cleanBytes: Uint8Array;
  clean: Picture;
  adv: Picture | null;
  pert: Perturbation | null;
}
const imageCache = new Map<number, CachedImages>();
const requested = new Set<number>();
const failedImages = new Set<number>();
let imagesMessage: string | null = null;
let imagesNote: string | null = null;
let wantImages = new Set<number>();
let imageTimer: ReturnType<typeof setTimeout> | undefined;

let live: SampleInspection | null = null;
let liveError: string | null = null;
let inspectPending = false;
let nextRequestId = 1;
let latestRequestId = 0;
let inspectTimer: ReturnType<typeof setTimeout> | undefined;
let evaluating = false;
let statusMessage = '';

function post(msg: InspectorToHost): void {
  vscode.postMessage(msg);
}

function saveState(): void {
  if (!model) return;
  const target: InspectorTargetState = { ...model.target, filter: { ...filter } };
  if (model.analysisName) target.analysis = model.analysisName;
  const s: InspectorViewState = { target, controls: { ...controls } };
  if (selected) {
    s.selected = selected.id;
    s.selectedSplit = selected.split;
  }
  vscode.setState(s);
}

// ---------------- DOM ----------------

const app = document.getElementById('app') ?? document.body.appendChild(el('div', { id: 'app' }));
const toolbar = el('header', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Inspector' });
const runTitle = el('span', { id: 'run-title', class: 'run-title' });
const analysisSelect = el('select', { id: 'analysis', 'aria-label': 'Analysis' });
const analysisLabel = el('label', { class: 'control' }, 'Analysis ');
analysisLabel.append(analysisSelect);
const targetInfo = el('span', { id: 'target-info', class: 'muted' });
const idInput = el('input', { id: 'sample-id', type: 'number', min: '0', step: '1', 'aria-label': 'Sample id', placeholder: 'id' });
const idButton = el('button', { id: 'inspect-id', type: 'button', title: 'Inspect this sample id live' }, 'Inspect id');
const idGroup = el('span', { class: 'control' }, 'Sample ');
idGroup.append(idInput, idButton);
toolbar.append(runTitle, analysisLabel, targetInfo, el('span', { class: 'spacer' }), idGroup);

const banner = el('div', { id: 'banner', class: 'banner', role: 'status' });
const evaluateBtn = el('button', { id: 'evaluate', type: 'button' }, 'Evaluate Robustness');
const retryImagesBtn = el('button', { id: 'retry-images', type: 'button' }, 'Retry images');

const layout = el('div', { class: 'layout' });
const left = el('section', { class: 'left', 'aria-label': 'Samples' });
const cellsPanel = el('div', { id: 'cells', class: 'cells', role: 'group', 'aria-label': 'Router-expert mismatch cells' });
const filtersBar = el('div', { id: 'filters', class: 'filters' });
const classSelect = el('select', { id: 'filter-class', 'aria-label': 'Filter by class' });
const layerSelect = el('select', { id: 'filter-layer', 'aria-label': 'Filter by layer whose routing changed' });
const classLabel = el('label', { class: 'control' }, 'Class ');
classLabel.append(classSelect);
const layerLabel = el('label', { class: 'control' }, 'Routing changed in ');
layerLabel.append(layerSelect);
const chips = el('div', { id: 'chips', class: 'chips', 'aria-label': 'Active filters' });
filtersBar.append(classLabel, layerLabel, chips);
const galleryHead = el('div', { class: 'gallery-head' });
const countLine = el('div', { id: 'count', class: 'count muted' });
const galleryCols = el('div', { class: 'row head', 'aria-hidden': 'true' });
for (const [cls, t] of [
  ['c-id', 'id'],
  ['c-img', 'clean'],
  ['c-img', 'perturb.'],
  ['c-img', 'adv.'],
  ['c-label', 'label'],
  ['c-pred', 'clean pred'],
  ['c-pred', 'adv. pred'],
  ['c-cell', 'cell'],
]) {
  galleryCols.appendChild(el('span', { class: cls }, t));
}
galleryHead.append(countLine, galleryCols);
const gallery = el('div', { id: 'gallery', class: 'gallery', role: 'listbox', tabindex: '0', 'aria-label': 'Samples (arrow keys move the selection)' });
const spacer = el('div', { class: 'spacer-rows' });
gallery.appendChild(spacer);
left.append(cellsPanel, filtersBar, galleryHead, gallery);

const detail = el('section', { id: 'detail', class: 'detail', 'aria-label': 'Selected sample' });
const detailTitle = el('h2', { id: 'detail-title' }, 'No sample selected');
const controlsBar = el('div', { id: 'controls', class: 'controls' });
const epsInput = el('input', { id: 'eps', type: 'range', min: '0', max: '1', step: '0.001', 'aria-label': 'Attack ε' });
/** ε as typed (0.1, 8/255); the slider follows it. */
const epsText_ = el('input', { id: 'eps-value', type: 'text', inputmode: 'decimal', size: '7', 'aria-label': 'Attack ε (type a value such as 0.1 or 8/255)' });
const epsLabel = el('label', { class: 'control' }, 'ε ');
epsLabel.append(epsInput, epsText_);
const attackSelect = el('select', { id: 'attack', 'aria-label': 'Attack' });
const ATTACK_LABELS: Record<AttackChoice, string> = {
  pgd: 'PGD',
  fgsm: 'FGSM',
  'apgd-ce': 'APGD-CE',
  router: 'Router attack',
  expert: 'Expert attack (routing frozen)',
};
for (const a of ATTACKS) attackSelect.appendChild(el('option', { value: a }, ATTACK_LABELS[a]));
const attackLabel = el('label', { class: 'control' }, 'Attack ');
attackLabel.append(attackSelect);
const stepsInput = el('input', { id: 'steps', type: 'number', min: '1', max: '1000', step: '1', 'aria-label': 'Attack steps' });
const stepsLabel = el('label', { class: 'control' }, 'Steps ');
stepsLabel.append(stepsInput);
const freezeInput = el('input', { id: 'freeze', type: 'checkbox' });
const freezeLabel = el('label', { class: 'control', title: 'Attack the experts with the routing frozen to the clean decision' });
freezeLabel.append(freezeInput, document.createTextNode(' Freeze routing'));
const exportBtn = el('button', { id: 'export', type: 'button', title: 'Export the selected sample: PNG images and JSON' }, 'Export sample…');
controlsBar.append(epsLabel, attackLabel, stepsLabel, freezeLabel, el('span', { class: 'spacer' }), exportBtn);
const sourceNote = el('div', { id: 'source', class: 'source', role: 'status' });
const figures = el('div', { class: 'figures' });
function figure(kind: string, caption: string): { fig: HTMLElement; canvas: HTMLCanvasElement; cap: HTMLElement } {
  const fig = el('figure', { class: 'big', 'data-kind': kind });
  const canvas = el('canvas', { class: 'img big-img', 'data-kind': kind, role: 'img', 'aria-label': caption });
  const cap = el('figcaption', {}, caption);
  fig.append(canvas, cap);
  return { fig, canvas, cap };
}
const bigClean = figure('clean', 'clean');
const bigPert = figure('perturbation', 'perturbation');
const bigAdv = figure('adversarial', 'adversarial');
figures.append(bigClean.fig, bigPert.fig, bigAdv.fig);
const predTable = el('table', { id: 'predictions', class: 'predictions' });
const routingTitle = el('h3', {}, 'Routing path');
const routingLegend = el('div', { class: 'muted small routing-legend' });
const routingTable = el('table', { id: 'routing', class: 'routing' });
detail.append(detailTitle, controlsBar, sourceNote, figures, predTable, routingTitle, routingLegend, routingTable);
layout.append(left, detail);
app.append(toolbar, banner, layout);

// ---------------- helpers ----------------
function className(label: number): string {
  const n = model?.classNames?.[label];
  return n !== undefined && n !== String(label) ? `${label} ${n}` : String(label);
}
function pct(v: number): string {
  return `${(v * 100).toFixed(1)}%`;
}
function epsText(e: number): string {
  const over255 = e * 255;
  const near = Math.abs(over255 - Math.round(over255 * 10) / 10) < 1e-6 && e < 0.25;
  return near ? `${+e.toFixed(4)} (${+over255.toFixed(1)}/255)` : `${+e.toFixed(4)}`;
}
function analysisEps(): number | undefined {
  return model?.report?.attack.eps;
}
function epsMax(): number {
  const e = analysisEps();
  return e !== undefined && e > 0 ? 2 * e : Math.max(0.5, 2 * (controls.eps ?? 0.25));
}
function currentEps(): number {
  return controls.eps ?? analysisEps() ?? 0.3;
}
function currentSteps(): number | undefined {
  return controls.steps ?? model?.report?.attack.steps;
}
function layerName(l: number): string {
  return model?.report?.layers[l]?.layer ?? `layer ${l}`;
}
function numExperts(): number {
  return model?.report?.layers[0]?.loadClean.length ?? 0;
}
function numClasses(): number {
  const r = model?.report;
  let n = model?.classNames?.length ?? 0;
  if (r) for (const l of r.layers) n = Math.max(n, l.perClassClean.length);
  if (model?.per) for (const v of model.per.labels) n = Math.max(n, v + 1);
  return n;
}
function drawPicture(canvas: HTMLCanvasElement, pic: Picture): void {
  canvas.width = pic.width;
  canvas.height = pic.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const data = new ImageData(pic.width, pic.height);
  data.data.set(pic.rgba);
  ctx.putImageData(data, 0, 0);
  canvas.dataset.drawn = '1';
}
function clearCanvas(canvas: HTMLCanvasElement): void {
  canvas.width = 1;
  canvas.height = 1;
  delete canvas.dataset.drawn;
}

// ---------------- filters ----------------
/** Drops filter parts that do not fit the report (e.g. a layer index from another run); returns what was dropped. */
function sanitizeFilter(f: InspectorFilter): string[] {
  const dropped: string[] = [];
  const r = model?.report;
  const L = r?.layers.length ?? 0;
  const N = numExperts();
  if (f.changedLayer !== undefined && f.changedLayer >= L) {
    dropped.push(`changed layer ${f.changedLayer}`);
    delete f.changedLayer;
  }
  if (f.route && (f.route.layer >= L || f.route.expert >= N)) {
    dropped.push(`route layer ${f.route.layer} expert ${f.route.expert}`);
    delete f.route;
  }
  return dropped;
}

function applyFilter(): void {
  filtered = model?.per ? filterSamples(model.per, filter) : [];
}

function setFilter(f: InspectorFilter): void {
  filter = f;
  sanitizeFilter(filter);
  applyFilter();
  saveState();
  gallery.scrollTop = 0;
  renderAll();
}

function chipsOf(f: InspectorFilter): { key: keyof InspectorFilter; text: string }[] {
  const out: { key: keyof InspectorFilter; text: string }[] = [];
  if (f.cell) out.push({ key: 'cell', text: `cell: ${CELL_LABELS[f.cell]}` });
  if (f.label !== undefined) out.push({ key: 'label', text: `class: ${className(f.label)}` });
  if (f.changedLayer !== undefined) out.push({ key: 'changedLayer', text: `routing changed in ${layerName(f.changedLayer)}` });
  if (f.route) out.push({ key: 'route', text: `${f.route.on === 'clean' ? 'clean' : 'adversarial'} input routed to expert ${f.route.expert} in ${layerName(f.route.layer)}` });
  return out;
}

// ---------------- rendering ----------------
let renders = 0;
function renderAll(): void {
  renderToolbar();
  renderBanner();
  renderCells();
  renderFilters();
  renderGallery();
  renderDetail();
  renders++;
  document.body.dataset.renders = String(renders);
}

function renderToolbar(): void {
  runTitle.textContent = model ? `Inspector · ${model.runName}` : 'Inspector';
  const names = model?.analyses ?? [];
  analysisSelect.replaceChildren(
    ...(names.length === 0 ? [el('option', { value: '' }, 'none')] : names.map((a) => el('option', { value: a.name }, a.name))),
  );
  analysisSelect.value = model?.analysisName ?? '';
  analysisSelect.disabled = names.length <= 1;
  const parts: string[] = [];
  if (model) {
    const ck = model.target.checkpoint ?? model.checkpoint;
    parts.push(`checkpoint ${ck ?? 'last'}`);
    parts.push(`split ${model.target.split ?? 'test'}`);
    const r = model.report;
    if (r) parts.push(`${r.attack.steps ? 'PGD-' + r.attack.steps : 'attack'} ε ${epsText(r.attack.eps)}`);
    if (model.target.split === 'train' && model.per) parts.push('(the gallery lists test samples of the analysis)');
  }
  targetInfo.textContent = parts.join(' · ');
  const canRun = !!model?.trusted;
  idInput.disabled = !canRun;
  idButton.disabled = !canRun;
}

function renderBanner(): void {
  const parts: HTMLElement[] = [];
  if (!model) {
    parts.push(el('p', {}, 'Waiting for the run…'));
  } else {
    if (model.error) parts.push(el('p', { class: 'error', id: 'analysis-error' }, model.error));
    if (!model.per) {
      const p = el('p', { id: 'no-per-sample' }, 'No per-sample analysis yet — run Evaluate Robustness. ');
      evaluateBtn.disabled = !model.trusted || evaluating;
      evaluateBtn.textContent = evaluating ? 'Evaluating…' : 'Evaluate Robustness';
      p.append(evaluateBtn);
      if (model.trusted) p.append(el('span', { class: 'muted' }, ' Meanwhile, type a sample id above to inspect it live.'));
      parts.push(p);
    }
    if (!model.trusted) {
      parts.push(
        el(
          'p',
          { id: 'untrusted', class: 'warn' },
          'Restricted Mode: images and live re-attacks need the engine, which does not run in an untrusted workspace. The columns below come from the saved analysis.',
        ),
      );
    } else if (imagesMessage) {
      const p = el('p', { id: 'images-error', class: 'warn' }, `${imagesMessage} The columns below come from the saved analysis. `);
      p.append(retryImagesBtn);
      parts.push(p);
    }
    if (imagesNote && model.trusted) parts.push(el('p', { id: 'images-note', class: 'warn' }, imagesNote));
    if (statusMessage) parts.push(el('p', { id: 'status-message', class: 'muted' }, statusMessage));
  }
  banner.replaceChildren(...parts);
  banner.hidden = parts.length === 0;
}

function renderCells(): void {
  const per = model?.per;
  cellsPanel.hidden = !per;
  if (!per || !model) return;
  const counts: Record<MismatchCellName, number> = { keptRight: 0, keptWrong: 0, changedRight: 0, changedWrong: 0 };
  for (const c of model.cells) counts[c]++;
  const mm = model.report?.mismatch;
  const corner = el('span', { class: 'corner muted' }, 'under attack →');
  const grid: HTMLElement[] = [corner, el('span', { class: 'axis' }, 'prediction right'), el('span', { class: 'axis' }, 'prediction wrong')];
  for (const kept of [true, false]) {
    grid.push(el('span', { class: 'axis' }, kept ? 'routing kept' : 'routing changed'));
    for (const right of [true, false]) {
      const cell: MismatchCellName = kept ? (right ? 'keptRight' : 'keptWrong') : right ? 'changedRight' : 'changedWrong';
      const active = filter.cell === cell;
      const b = el('button', {
        type: 'button',
        class: `cell-btn ${cell}${active ? ' active' : ''}`,
        'data-cell': cell,
        'data-count': String(counts[cell]),
        'aria-pressed': String(active),
        title: `${CELL_LABELS[cell]}: ${counts[cell]} of ${per.ids.length} samples${mm ? ` (report: ${mm[cell].length})` : ''}. Click to filter.`,
      });
      b.append(el('span', { class: 'cell-count' }, String(counts[cell])), el('span', { class: 'cell-pct muted' }, pct(counts[cell] / Math.max(1, per.ids.length))));
      grid.push(b);
    }
  }
  const mismatchNote =
    mm && MISMATCH_CELLS.some((c) => mm[c].length !== counts[c])
      ? el('div', { class: 'warn small', id: 'cells-mismatch' }, `The report's mismatch lists (${MISMATCH_CELLS.map((c) => mm[c].length).join(', ')}) differ from its per-sample columns.`)
      : null;
  cellsPanel.replaceChildren(el('div', { class: 'cells-grid' }, undefined), ...(mismatchNote ? [mismatchNote] : []));
  (cellsPanel.firstChild as HTMLElement).append(...grid);
}

function renderFilters(): void {
  const per = model?.per;
  filtersBar.hidden = !per;
  if (!per) return;
  const nc = numClasses();
  classSelect.replaceChildren(el('option', { value: '' }, 'all'), ...Array.from({ length: nc }, (_, c) => el('option', { value: String(c) }, className(c))));
  classSelect.value = filter.label !== undefined ? String(filter.label) : '';
  const L = model?.report?.layers.length ?? 0;
  layerSelect.replaceChildren(el('option', { value: '' }, 'any layer'), ...Array.from({ length: L }, (_, l) => el('option', { value: String(l) }, `${l}: ${layerName(l)}`)));
  layerSelect.value = filter.changedLayer !== undefined ? String(filter.changedLayer) : '';
  chips.replaceChildren(
    ...chipsOf(filter).map((c) => {
      const b = el('button', { type: 'button', class: 'chip', 'data-filter': c.key, 'aria-label': `Remove filter ${c.text}`, title: 'Remove this filter' });
      b.append(el('span', {}, c.text), el('span', { class: 'chip-x', 'aria-hidden': 'true' }, '✕'));
      return b;
    }),
  );
  if (chips.childElementCount > 1) {
    const clear = el('button', { type: 'button', class: 'chip clear', 'data-filter': 'all' }, 'Clear all');
    chips.appendChild(clear);
  }
}

// ---- virtual gallery ----
const rowEls = new Map<number, HTMLElement>(); // position in `filtered` → row element

function renderGallery(): void {
  const per = model?.per;
  gallery.hidden = !per;
  galleryHead.hidden = !per;
  if (!per) {
    for (const r of rowEls.values()) r.remove();
    rowEls.clear();
    return;
  }
  countLine.textContent = `${filtered.length} of ${per.ids.length} samples`;
  spacer.style.height = `${filtered.length * ROW_H}px`;
  for (const r of rowEls.values()) r.remove();
  rowEls.clear();
  updateRows();
}

function visibleRange(): [number, number] {
  const h = gallery.clientHeight || 600;
  const first = Math.max(0, Math.floor(gallery.scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(filtered.length, Math.ceil((gallery.scrollTop + h) / ROW_H) + OVERSCAN);
  return [first, last];
}

function updateRows(): void {
  if (!model?.per) return;
  const [first, last] = visibleRange();
  for (const [pos, r] of rowEls) {
    if (pos < first || pos >= last) {
      r.remove();
      rowEls.delete(pos);
    }
  }
  const need: number[] = [];
  for (let pos = first; pos < last; pos++) {
    let r = rowEls.get(pos);
    const i = filtered[pos];
    const id = model.per.ids[i];
    if (!r) {
      r = buildRow(pos, i);
      rowEls.set(pos, r);
      gallery.appendChild(r);
    }
    const isSel = selected?.split === 'test' && selected.id === id;
    r.classList.toggle('selected', isSel);
    r.setAttribute('aria-selected', String(isSel));
    if (model.trusted && !imageCache.has(id) && !requested.has(id) && !failedImages.has(id)) need.push(id);
  }
  const selPos = selected ? filtered.findIndex((i) => model!.per!.ids[i] === selected!.id) : -1;
  if (selPos >= first && selPos < last && selected?.split === 'test') gallery.setAttribute('aria-activedescendant', `row-${selPos}`);
  else gallery.removeAttribute('aria-activedescendant');
  if (need.length) queueImages(need);
}

function buildRow(pos: number, i: number): HTMLElement {
  const per = model!.per!;
  const id = per.ids[i];
  const cell = model!.cells[i];
  const r = el('div', { class: 'row sample', role: 'option', id: `row-${pos}`, 'data-id': String(id), 'data-index': String(i) });
  r.style.top = `${pos * ROW_H}px`;
  r.appendChild(el('span', { class: 'c-id' }, `#${id}`));
  const cached = imageCache.get(id);
  for (const kind of ['clean', 'perturbation', 'adversarial'] as const) {
    const slot = el('span', { class: 'c-img' });
    const pic = cached ? (kind === 'clean' ? cached.clean : kind === 'adversarial' ? cached.adv : cached.pert) : null;
    if (pic) {
      const c = el('canvas', { class: 'img thumb', 'data-kind': kind, 'data-id': String(id) });
      if (kind === 'perturbation' && cached?.pert) c.title = `perturbation ${formatScale(cached.pert.scale)} (max |δ| ${cached.pert.maxAbs.toFixed(4)}); grey = unchanged`;
      drawPicture(c, pic);
      slot.appendChild(c);
    } else {
      const unavailable = !model!.trusted || failedImages.has(id) || (cached && !pic);
      slot.appendChild(el('span', { class: `placeholder${unavailable ? ' none' : ''}`, 'data-kind': kind }, unavailable ? '—' : '…'));
    }
    r.appendChild(slot);
  }
  r.appendChild(el('span', { class: 'c-label', title: `true label ${className(per.labels[i])}` }, className(per.labels[i])));
  const predCell = (pred: number, conf: number, what: string) => {
    const right = pred === per.labels[i];
    const s = el('span', { class: `c-pred ${right ? 'right' : 'wrong'}`, title: `${what}: ${className(pred)}, confidence ${conf}` });
    s.append(el('span', { class: 'mark', 'aria-hidden': 'true' }, right ? '✓' : '✗'), document.createTextNode(` ${className(pred)} `), el('span', { class: 'muted' }, pct(conf)));
    return s;
  };
  r.append(predCell(per.predClean[i], per.confClean[i], 'clean prediction'), predCell(per.predAdv[i], per.confAdv[i], 'adversarial prediction'));
  const changed: number[] = [];
  for (let l = 0; l < per.routeClean.length; l++) if (routingChanged(per, l, i)) changed.push(l);
  r.appendChild(
    el(
      'span',
      { class: `c-cell cell-tag ${cell}`, title: `${CELL_LABELS[cell]}${changed.length ? `; routing changed in ${changed.map(layerName).join(', ')}` : ''}` },
      `${cell.startsWith('kept') ? 'kept' : `Δ${changed.length}`} ${cell.endsWith('Right') ? '✓' : '✗'}`,
    ),
  );
  return r;
}

function refreshRowsFor(ids: Set<number>): void {
  for (const [pos, r] of rowEls) {
    if (ids.has(Number(r.dataset.id))) {
      const nr = buildRow(pos, filtered[pos]);
      r.replaceWith(nr);
      rowEls.set(pos, nr);
    }
  }
  updateRows();
}

let scrollQueued = false;
gallery.addEventListener('scroll', () => {
  if (scrollQueued) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    updateRows();
  });
});
gallery.addEventListener('click', (ev) => {
  const row = (ev.target as HTMLElement).closest<HTMLElement>('.row.sample');
  if (!row) return;
  selectSample(Number(row.dataset.id), 'test');
});
gallery.addEventListener('keydown', (ev) => {
  if (!model?.per || filtered.length === 0) return;
  const per = model.per;
  const cur = selected?.split === 'test' ? filtered.findIndex((i) => per.ids[i] === selected!.id) : -1;
  const page = Math.max(1, Math.floor(gallery.clientHeight / ROW_H) - 1);
  let next = cur;
  switch (ev.key) {
    case 'ArrowDown':
      next = cur < 0 ? 0 : Math.min(filtered.length - 1, cur + 1);
      break;
    case 'ArrowUp':
      next = cur < 0 ? 0 : Math.max(0, cur - 1);
      break;
    case 'PageDown':
      next = Math.min(filtered.length - 1, Math.max(0, cur) + page);
      break;
    case 'PageUp':
      next = Math.max(0, cur - page);
      break;
    case 'Home':
      next = 0;
      break;
    case 'End':
      next = filtered.length - 1;
      break;
    default:
      return;
  }
  ev.preventDefault();
  scrollToPos(next);
  selectSample(per.ids[filtered[next]], 'test');
});

function scrollToPos(pos: number): void {
  const top = pos * ROW_H;
  if (top < gallery.scrollTop) gallery.scrollTop = top;
  else if (top + ROW_H > gallery.scrollTop + gallery.clientHeight) gallery.scrollTop = top + ROW_H - gallery.clientHeight;
}

// ---- images from the host ----
function queueImages(ids: number[]): void {
  for (const id of ids) wantImages.add(id);
  if (imageTimer) return;
  imageTimer = setTimeout(() => {
    imageTimer = undefined;
    const all = [...wantImages].filter((id) => !imageCache.has(id) && !requested.has(id) && !failedImages.has(id));
    wantImages = new Set();
    for (let k = 0; k < all.length; k += MAX_IMAGE_BATCH) {
      const batch = all.slice(k, k + MAX_IMAGE_BATCH);
      for (const id of batch) requested.add(id);
      post({ type: 'needImages', ids: batch });
    }
  }, IMAGE_DEBOUNCE_MS);
}

function onImages(shape: Shape, items: { id: number; clean: string; adversarial: string | null }[]): void {
  const got = new Set<number>();
  for (const it of items) {
    requested.delete(it.id);
    try {
      const cleanBytes = base64ToBytes(it.clean);
      const clean: Picture = { width: shape[1], height: shape[0], rgba: imageBytesToRgba(it.clean, shape) };
      let adv: Picture | null = null;
      let pert: Perturbation | null = null;
      if (it.adversarial) {
        adv = { width: shape[1], height: shape[0], rgba: imageBytesToRgba(it.adversarial, shape) };
        pert = perturbation(cleanBytes, base64ToBytes(it.adversarial), shape, 255);
      }
      imageCache.set(it.id, { shape, cleanBytes, clean, adv, pert });
      got.add(it.id);
    } catch (e) {
      failedImages.add(it.id);
      post({ type: 'log', level: 'warn', message: `image of sample ${it.id}: ${e instanceof Error ? e.message : String(e)}` });
    }
  }
  refreshRowsFor(got);
  if (selected && got.has(selected.id) && !live) renderDetail();
}

// ---------------- selection & live inspection ----------------
function selectSample(id: number, split: Split): void {
  const same = selected?.id === id && selected.split === split;
  selected = { id, split };
  if (!same) {
    live = null;
    liveError = null;
  }
  saveState();
  updateRows();
  renderDetail();
  // Short debounce: holding an arrow key in the gallery does not start an attack per row.
  if (!same) scheduleInspect(SELECT_DEBOUNCE_MS);
}

function scheduleInspect(delay = INSPECT_DEBOUNCE_MS): void {
  if (inspectTimer) clearTimeout(inspectTimer);
  inspectTimer = undefined;
  if (!selected || !model?.trusted) return;
  inspectTimer = setTimeout(() => {
    inspectTimer = undefined;
    if (!selected) return;
    const requestId = nextRequestId++;
    latestRequestId = requestId;
    inspectPending = true;
    liveError = null;
    const steps = currentSteps();
    post({
      type: 'inspect',
      requestId,
      id: selected.id,
      split: selected.split,
      attack: controls.attack,
      eps: currentEps(),
      ...(steps !== undefined ? { steps } : {}),
      freezeRouting: controls.freezeRouting,
    });
    renderSource();
  }, delay);
}

function controlsChanged(delay = INSPECT_DEBOUNCE_MS): void {
  if (controls.attack === 'expert') controls.freezeRouting = true;
  if (controls.attack === 'router') controls.freezeRouting = false;
  syncControls();
  saveState();
  scheduleInspect(delay);
}

function syncControls(): void {
  const max = epsMax();
  // A typed ε beyond the range widens it; the grid holds the values people type (./eps.ts).
  const top = Math.max(max, currentEps());
  epsInput.max = String(top);
  epsInput.step = String(epsStep(top, analysisEps()));
  epsInput.value = String(currentEps());
  if (document.activeElement !== epsText_) epsText_.value = epsInputText(currentEps());
  epsText_.title = epsText(currentEps());
  attackSelect.value = controls.attack;
  const steps = currentSteps();
  stepsInput.value = steps !== undefined ? String(steps) : '';
  stepsInput.disabled = controls.attack === 'fgsm';
  freezeInput.checked = controls.freezeRouting;
  freezeInput.disabled = controls.attack === 'expert' || controls.attack === 'router';
  freezeLabel.title =
    controls.attack === 'expert'
      ? 'The expert attack always runs with the routing frozen to the clean decision'
      : controls.attack === 'router'
        ? 'The router attack targets the routing itself: it cannot run with frozen routing'
        : 'Attack the experts with the routing frozen to the clean decision';
  const enabled = !!model?.trusted && !!selected;
  for (const c of [epsInput, attackSelect, stepsInput]) if (!enabled) c.disabled = true;
  if (enabled) {
    epsInput.disabled = false;
    attackSelect.disabled = false;
  }
  if (!enabled) freezeInput.disabled = true;
}

epsInput.addEventListener('input', () => {
  const v = Number(epsInput.value);
  if (!Number.isFinite(v) || v < 0) return;
  controls.eps = snapEps(v, Number(epsInput.step));
  controlsChanged();
});
epsText_.addEventListener('change', () => {
  const v = parseEps(epsText_.value);
  epsText_.setCustomValidity(v === undefined ? 'ε is a number from 0 to 1, e.g. 0.1 or 8/255' : '');
  if (v === undefined) {
    epsText_.reportValidity();
    return;
  }
  controls.eps = v;
  epsText_.blur();
  controlsChanged(0);
});
/** The text field's form of ε: k/255 when it is one, else the decimal. */
function epsInputText(e: number): string {
  return isOver255(e) ? `${Math.round(e * 255)}/255` : String(Number(e.toPrecision(6)));
}
attackSelect.addEventListener('change', () => {
  const a = attackSelect.value as AttackChoice;
  if (!ATTACKS.includes(a)) return;
  controls.attack = a;
  controlsChanged(0);
});
stepsInput.addEventListener('change', () => {
  const v = Math.round(Number(stepsInput.value));
  if (!Number.isFinite(v) || v < 1) return;
  controls.steps = Math.min(1000, v);
  controlsChanged(0);
});
freezeInput.addEventListener('change', () => {
  controls.freezeRouting = freezeInput.checked;
  controlsChanged(0);
});

/** Where the detail's numbers come from: the live re-attack when it has answered for the selection, else the analysis row. */
function detailSource(): 'live' | 'analysis' | 'none' {
  if (!selected) return 'none';
  if (live && live.id === selected.id) return 'live';
  if (selected.split === 'test' && model?.per && model.idToIndex.has(selected.id)) return 'analysis';
  return 'none';
}

function analysisRowIndex(): number | undefined {
  return selected && selected.split === 'test' ? model?.idToIndex.get(selected.id) : undefined;
}

function renderSource(): void {
  const src = detailSource();
  const r = model?.report;
  const parts: string[] = [];
  const i = analysisRowIndex();
  if (src === 'live' && live) {
    parts.push(
      `Shown: live re-attack — ${ATTACK_LABELS[live.attack]}, ε ${epsText(live.eps)}${live.frozenRouting ? ', routing frozen to the clean decision' : ''}.`,
    );
    if (i !== undefined && r) {
      const differs = Math.abs(live.eps - r.attack.eps) > 1e-9 || live.attack !== 'pgd' || live.frozenRouting;
      if (differs) parts.push(`The analysis row is PGD at ε ${epsText(r.attack.eps)} (its numbers are in the last row of the table).`);
      else parts.push('Same attack as the analysis row (random starts may differ).');
    }
  } else if (src === 'analysis' && r) {
    parts.push(`Shown: the analysis row (${model!.analysisName}: PGD-${r.attack.steps}, ε ${epsText(r.attack.eps)}).`);
    if (!model!.trusted) parts.push('Live re-attack needs a trusted workspace.');
  } else if (selected && !model?.trusted) {
    parts.push('Live inspection needs a trusted workspace.');
  }
  if (inspectPending) parts.push('Re-attacking…');
  if (liveError) parts.push(`Live re-attack failed: ${liveError}`);
  sourceNote.textContent = parts.join(' ');
  sourceNote.dataset.source = src;
  sourceNote.classList.toggle('error', !!liveError);
}

interface DetailImages {
  clean: Picture | null;
  adv: Picture | null;
  pert: Perturbation | null;
}

function detailImages(): DetailImages {
  const src = detailSource();
  if (src === 'live' && live) {
    return {
      clean: hwcToPicture(live.clean, live.shape, 1),
      adv: hwcToPicture(live.adversarial, live.shape, 1),
      pert: perturbation(live.clean, live.adversarial, live.shape, 1),
    };
  }
  const c = selected ? imageCache.get(selected.id) : undefined;
  if (c && src === 'analysis') return { clean: c.clean, adv: c.adv, pert: c.pert };
  return { clean: null, adv: null, pert: null };
}

interface RoutingRow {
  layer: string;
  expertsClean: number[];
  expertsAdv: number[];
  changed: boolean;
  probsClean?: number[];
  probsAdv?: number[];
}

function routingRows(): RoutingRow[] {
  const src = detailSource();
  if (src === 'live' && live) return live.routing.map((r) => ({ ...r }));
  const i = analysisRowIndex();
  const per = model?.per;
  if (src === 'analysis' && per && i !== undefined) {
    return per.routeClean.map((_, l) => ({
      layer: layerName(l),
      expertsClean: expertsOf(per, l, i, 'clean'),
      expertsAdv: expertsOf(per, l, i, 'adversarial'),
      changed: routingChanged(per, l, i),
    }));
  }
  return [];
}

function renderDetail(): void {
  syncControls();
  exportBtn.disabled = !selected || detailSource() === 'none';
  if (!selected) {
    detailTitle.textContent = model?.per ? 'Select a sample in the gallery' : 'No sample selected';
    for (const f of [bigClean, bigPert, bigAdv]) clearCanvas(f.canvas);
    predTable.replaceChildren();
    routingTable.replaceChildren();
    routingLegend.textContent = '';
    renderSource();
    detail.dataset.source = 'none';
    return;
  }
  const src = detailSource();
  detail.dataset.source = src;
  const i = analysisRowIndex();
  const label = live && live.id === selected.id ? live.label : i !== undefined ? model!.per!.labels[i] : undefined;
  detailTitle.textContent = `Sample #${selected.id}${selected.split === 'train' ? ' (train split)' : ''}${label !== undefined ? ` · label ${className(label)}` : ''}`;
  renderSource();

  // Images.
  const imgs = detailImages();
  const pairs: [typeof bigClean, Picture | null, string][] = [
    [bigClean, imgs.clean, 'clean'],
    [bigPert, imgs.pert, imgs.pert ? `perturbation ${formatScale(imgs.pert.scale)} (grey = unchanged; max |δ| ${imgs.pert.maxAbs.toFixed(4)})` : 'perturbation'],
    [bigAdv, imgs.adv, 'adversarial'],
  ];
  for (const [f, pic, cap] of pairs) {
    if (pic) drawPicture(f.canvas, pic);
    else clearCanvas(f.canvas);
    f.cap.textContent = pic ? cap : `${cap.split(' ')[0]} — ${!model?.trusted ? 'needs a trusted workspace' : imagesMessage && src !== 'live' ? 'unavailable' : 'loading…'}`;
    f.canvas.setAttribute('aria-label', cap);
    f.fig.classList.toggle('empty', !pic);
  }
  if (imgs.pert) bigPert.cap.dataset.scale = String(imgs.pert.scale);
  else delete bigPert.cap.dataset.scale;

  // Predictions: clean vs adversarial (and the analysis row when the live result is shown).
  const rows: { name: string; source: string; pred: number; conf: number }[] = [];
  const per = model?.per;
  if (src === 'live' && live) {
    rows.push({ name: 'clean', source: 'live', pred: live.predClean, conf: live.confClean });
    rows.push({ name: `adversarial (${ATTACK_LABELS[live.attack]}, ε ${epsText(live.eps)}${live.frozenRouting ? ', frozen routing' : ''})`, source: 'live', pred: live.predAdv, conf: live.confAdv });
    if (per && i !== undefined) rows.push({ name: `adversarial — analysis row (PGD, ε ${epsText(model!.report!.attack.eps)})`, source: 'analysis', pred: per.predAdv[i], conf: per.confAdv[i] });
  } else if (src === 'analysis' && per && i !== undefined) {
    rows.push({ name: 'clean', source: 'analysis', pred: per.predClean[i], conf: per.confClean[i] });
    rows.push({ name: `adversarial (PGD, ε ${epsText(model!.report!.attack.eps)})`, source: 'analysis', pred: per.predAdv[i], conf: per.confAdv[i] });
  }
  const head = el('tr');
  head.append(el('th', {}, 'input'), el('th', {}, 'prediction'), el('th', {}, 'confidence'), el('th', {}, ''));
  predTable.replaceChildren(
    head,
    ...rows.map((r) => {
      const tr = el('tr', { 'data-source': r.source, 'data-pred': String(r.pred), 'data-conf': String(r.conf) });
      const right = label !== undefined && r.pred === label;
      tr.append(
        el('td', {}, r.name),
        el('td', {}, className(r.pred)),
        el('td', { title: String(r.conf) }, pct(r.conf)),
        el('td', { class: right ? 'right' : 'wrong' }, label === undefined ? '' : right ? '✓ right' : '✗ wrong'),
      );
      return tr;
    }),
  );

  // Routing path.
  const rr = routingRows();
  const N = Math.max(numExperts(), ...rr.map((r) => Math.max(r.probsClean?.length ?? 0, ...r.expertsClean.map((e) => e + 1), ...r.expertsAdv.map((e) => e + 1))));
  const hasProbs = rr.some((r) => r.probsClean);
  const frozen = src === 'live' && !!live?.frozenRouting;
  routingLegend.textContent = rr.length
    ? (frozen
        ? `Routing was frozen to the clean decision for the attack and the prediction; in ${rr.filter((r) => r.changed).length} of ${rr.length} MoE layers the routers would choose differently on the adversarial input (marked ⇄).`
        : `${rr.filter((r) => r.changed).length} of ${rr.length} MoE layers change routing under attack (marked ⇄).`) +
      (hasProbs ? ' Router scores per expert: upper bar clean, lower bar adversarial; ● chosen on the clean input, ◆ on the adversarial one (hover for exact values).' : ' Router scores come with the live re-attack.')
    : detailSource() === 'none' ? '' : 'No MoE layers.';
  const th = el('tr');
  th.append(el('th', {}, 'layer'), el('th', {}, 'clean → experts'), el('th', {}, 'adversarial → experts'), el('th', {}, ''));
  if (hasProbs) th.append(el('th', {}, 'router scores'));
  routingTable.replaceChildren(
    th,
    ...rr.map((r, l) => {
      const tr = el('tr', {
        class: `route-row${r.changed ? ' changed' : ''}`,
        'data-layer': String(l),
        'data-changed': String(r.changed),
        'data-clean': r.expertsClean.join(','),
        'data-adv': r.expertsAdv.join(','),
      });
      tr.append(
        el('td', { class: 'layer-name' }, `${l}: ${r.layer}`),
        el('td', { class: 'experts' }, r.expertsClean.map((e) => `E${e}`).join(' ')),
        el('td', { class: 'experts' }, r.expertsAdv.map((e) => `E${e}`).join(' ')),
        el('td', { class: 'change-mark' }, r.changed ? (frozen ? '⇄ router would change (frozen)' : '⇄ changed') : '= kept'),
      );
      if (hasProbs) {
        const td = el('td', { class: 'scores' });
        for (let e = 0; e < N; e++) {
          const pc = r.probsClean?.[e];
          const pa = r.probsAdv?.[e];
          const box = el('span', {
            class: 'score',
            'data-expert': String(e),
            title: `expert ${e}: clean ${pc ?? '—'}${r.expertsClean.includes(e) ? ' (chosen)' : ''}, adversarial ${pa ?? '—'}${r.expertsAdv.includes(e) ? ' (chosen)' : ''}`,
          });
          const bar = (p: number | undefined, kind: 'clean' | 'adv', chosen: boolean) => {
            const b = el('span', { class: `bar ${kind}${chosen ? ' chosen' : ''}`, 'data-p': String(p ?? '') });
            b.style.width = `${Math.max(0, Math.min(1, p ?? 0)) * 100}%`;
            return b;
          };
          const track = el('span', { class: 'track' });
          track.append(bar(pc, 'clean', r.expertsClean.includes(e)), bar(pa, 'adv', r.expertsAdv.includes(e)));
          box.append(
            el('span', { class: 'score-label' }, `E${e}${r.expertsClean.includes(e) ? '●' : ''}${r.expertsAdv.includes(e) ? '◆' : ''}`),
            track,
          );
          td.appendChild(box);
        }
        tr.appendChild(td);
      }
      return tr;
    }),
  );
  if (!rr.length) routingTable.replaceChildren();
}

// ---------------- export ----------------
function pictureToPng(pic: Picture, scale: number): string {
  const small = document.createElement('canvas');
  small.width = pic.width;
  small.height = pic.height;
  const sctx = small.getContext('2d')!;
  const data = new ImageData(pic.width, pic.height);
  data.data.set(pic.rgba);
  sctx.putImageData(data, 0, 0);
  const big = document.createElement('canvas');
  big.width = pic.width * scale;
  big.height = pic.height * scale;
  const bctx = big.getContext('2d')!;
  bctx.imageSmoothingEnabled = false;
  bctx.drawImage(small, 0, 0, big.width, big.height);
  return big.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}

/** The JSON of the selected sample, with the very numbers the view shows (never rounded). */
function exportJson(): Record<string, unknown> | null {
  if (!selected || !model) return null;
  const src = detailSource();
  if (src === 'none') return null;
  const imgs = detailImages();
  const w = imgs.clean?.width ?? 1;
  const scale = Math.max(1, Math.round(EXPORT_SIZE / w));
  const base: Record<string, unknown> = {
    runId: model.target.runId,
    runName: model.runName,
    analysis: model.analysisName,
    checkpoint: model.target.checkpoint ?? model.checkpoint ?? null,
    split: selected.split,
    id: selected.id,
    source: src,
  };
  const routing = routingRows().map((r) => ({
    layer: r.layer,
    expertsClean: r.expertsClean,
    expertsAdv: r.expertsAdv,
    changed: r.changed,
    ...(r.probsClean ? { probsClean: r.probsClean, probsAdv: r.probsAdv } : {}),
  }));
  const i = analysisRowIndex();
  const per = model.per;
  const row =
    per && i !== undefined
      ? {
          label: per.labels[i],
          predClean: per.predClean[i],
          confClean: per.confClean[i],
          predAdv: per.predAdv[i],
          confAdv: per.confAdv[i],
          cell: model.cells[i],
          attack: 'pgd',
          eps: model.report!.attack.eps,
          steps: model.report!.attack.steps,
        }
      : null;
  const out: Record<string, unknown> =
    src === 'live' && live
      ? {
          ...base,
          label: live.label,
          labelName: model.classNames?.[live.label] ?? null,
          predClean: live.predClean,
          confClean: live.confClean,
          predAdv: live.predAdv,
          confAdv: live.confAdv,
          attack: live.attack,
          eps: live.eps,
          steps: currentSteps() ?? null,
          frozenRouting: live.frozenRouting,
          routing,
          analysisRow: row,
        }
      : {
          ...base,
          label: row!.label,
          labelName: model.classNames?.[row!.label] ?? null,
          predClean: row!.predClean,
          confClean: row!.confClean,
          predAdv: row!.predAdv,
          confAdv: row!.confAdv,
          attack: 'pgd',
          eps: row!.eps,
          steps: row!.steps,
          frozenRouting: false,
          cell: row!.cell,
          routing,
        };
  out.perturbation = imgs.pert
    ? { convention: '0.5 + (adversarial - clean) * scale, pixels in [0,1]', scale: imgs.pert.scale, maxAbs: imgs.pert.maxAbs }
    : null;
  out.pngScale = scale;
  return out;
}

exportBtn.addEventListener('click', () => {
  try {
    const json = exportJson();
    if (!json || !selected) return;
    const imgs = detailImages();
    const scale = json.pngScale as number;
    const files: { kind: 'clean' | 'perturbation' | 'adversarial' | 'json'; data: string }[] = [];
    if (imgs.clean) files.push({ kind: 'clean', data: pictureToPng(imgs.clean, scale) });
    if (imgs.pert) files.push({ kind: 'perturbation', data: pictureToPng(imgs.pert, scale) });
    if (imgs.adv) files.push({ kind: 'adversarial', data: pictureToPng(imgs.adv, scale) });
    files.push({ kind: 'json', data: JSON.stringify(json, null, 2) + '\n' });
    post({ type: 'exportSample', id: selected.id, files });
  } catch (e) {
    post({ type: 'log', level: 'error', message: `export failed: ${e instanceof Error ? e.message : String(e)}` });
  }
});

// ---------------- other controls ----------------
cellsPanel.addEventListener('click', (ev) => {
  const b = (ev.target as HTMLElement).closest<HTMLElement>('button.cell-btn');
  if (!b) return;
  const cell = b.dataset.cell as MismatchCellName;
  const f = { ...filter };
  if (f.cell === cell) delete f.cell;
  else f.cell = cell;
  setFilter(f);
});
classSelect.addEventListener('change', () => {
  const f = { ...filter };
  if (classSelect.value === '') delete f.label;
  else f.label = Number(classSelect.value);
  setFilter(f);
});
layerSelect.addEventListener('change', () => {
  const f = { ...filter };
  if (layerSelect.value === '') delete f.changedLayer;
  else f.changedLayer = Number(layerSelect.value);
  setFilter(f);
});
chips.addEventListener('click', (ev) => {
  const b = (ev.target as HTMLElement).closest<HTMLElement>('button.chip');
  if (!b) return;
  const key = b.dataset.filter as keyof InspectorFilter | 'all';
  if (key === 'all') return setFilter({});
  const f = { ...filter };
  delete f[key];
  setFilter(f);
  (chips.querySelector('button.chip') as HTMLElement | null)?.focus();
});
analysisSelect.addEventListener('change', () => {
  if (analysisSelect.value && analysisSelect.value !== model?.analysisName) post({ type: 'selectAnalysis', name: analysisSelect.value });
});
evaluateBtn.addEventListener('click', () => {
  evaluating = true;
  renderBanner();
  post({ type: 'evaluate' });
});
retryImagesBtn.addEventListener('click', () => {
  failedImages.clear();
  imagesMessage = null;
  renderAll();
});
function inspectTyped(): void {
  const v = Number(idInput.value);
  if (!Number.isInteger(v) || v < 0) {
    statusMessage = `"${idInput.value}" is not a sample id (a whole number ≥ 0).`;
    renderBanner();
    return;
  }
  statusMessage = '';
  const split: Split = model?.target.split ?? 'test';
  if (split === 'test' && model?.per && model.idToIndex.has(v)) {
    const pos = filtered.findIndex((i) => model!.per!.ids[i] === v);
    if (pos >= 0) scrollToPos(pos);
  }
  selectSample(v, split);
  renderBanner();
}
idButton.addEventListener('click', inspectTyped);
idInput.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') inspectTyped();
});

// ---------------- messages ----------------
function onInit(m: InitMessage): void {
  const prevRun = model?.target.runId;
  const prevAnalysis = model?.analysisName;
  const per = m.analysis?.report.perSample ?? null;
  const cells: MismatchCellName[] = [];
  const idToIndex = new Map<number, number>();
  if (per) {
    for (let i = 0; i < per.ids.length; i++) {
      cells.push(mismatchCellOf(per, i));
      idToIndex.set(per.ids[i], i);
    }
  }
  let error = m.error;
  if (m.analysis && !per && !error) error = `${m.analysis.name} has no per-sample results (written by an older version).`;
  model = {
    target: m.target,
    runName: m.runName,
    analyses: m.analyses,
    analysisName: m.analysis?.name ?? null,
    checkpoint: m.analysis?.checkpoint,
    report: m.analysis?.report ?? null,
    per,
    cells,
    idToIndex,
    classNames: m.classNames,
    trusted: m.trusted,
    error,
  };
  if (prevRun !== m.target.runId || prevAnalysis !== model.analysisName) {
    imageCache.clear();
    requested.clear();
    failedImages.clear();
    imagesMessage = null;
    imagesNote = null;
  }
  evaluating = false;
  const f = parseInspectorFilter(m.target.filter ?? {}) ?? {};
  const dropped = sanitizeFilter(f);
  statusMessage = dropped.length ? `Filter parts that do not fit this analysis were dropped: ${dropped.join(', ')}.` : '';
  const sameView = prevRun === m.target.runId && prevAnalysis === model.analysisName && JSON.stringify(f) === JSON.stringify(filter);
  filter = f;
  applyFilter();
  if (m.restore) {
    if (m.restore.controls) controls = { ...m.restore.controls };
    selected = m.restore.selected !== undefined ? { id: m.restore.selected, split: m.restore.selectedSplit ?? 'test' } : null;
  } else if (prevRun !== m.target.runId || prevAnalysis !== model.analysisName) {
    selected = null;
  }
  // Open on a sample rather than an empty detail: the gallery's first (the filter's first when filtered).
  if (!selected && model.per && filtered.length > 0) selected = { id: model.per.ids[filtered[0]], split: 'test' };
  if (controls.eps !== undefined && controls.eps > epsMax()) controls.eps = undefined;
  live = null;
  liveError = null;
  inspectPending = false;
  if (!sameView) gallery.scrollTop = 0;
  saveState();
  renderAll();
  if (selected) {
    const sel = selected;
    const pos = model.per && sel.split === 'test' ? filtered.findIndex((i) => model!.per!.ids[i] === sel.id) : -1;
    if (pos >= 0) scrollToPos(pos);
    scheduleInspect(0);
  }
}

function describe(): InspectorDescription {
  const rows = [...gallery.querySelectorAll<HTMLElement>('.row.sample')];
  const rr = [...routingTable.querySelectorAll<HTMLElement>('tr.route-row')];
  const msg = [...banner.querySelectorAll('p')].map((p) => p.textContent ?? '').join(' ').trim();
  return {
    totalSamples: model?.per?.ids.length ?? 0,
    filteredCount: filtered.length,
    filteredIds: model?.per ? filtered.map((i) => model!.per!.ids[i]) : [],
    domRows: rows.length,
    domIds: rows.map((r) => Number(r.dataset.id)).sort((a, b) => a - b),
    selectedId: selected?.id ?? null,
    drawnImages: document.querySelectorAll('canvas[data-drawn="1"]').length,
    routingRows: rr.length,
    changedRows: rr.filter((r) => r.dataset.changed === 'true').length,
    detailSource: detailSource(),
    analysis: model?.analysisName ?? null,
    filter: { ...filter },
    message: msg || null,
  };
}

window.addEventListener('message', (ev: MessageEvent) => {
  const parsed = parseHostToInspector(ev.data);
  if (!parsed.ok) {
    post({ type: 'log', level: 'warn', message: `Inspector rejected a message: ${parsed.error}` });
    return;
  }
  const m = parsed.value;
  switch (m.type) {
    case 'init':
      onInit(m);
      break;
    case 'images':
      if (m.note && m.note !== imagesNote) {
        imagesNote = m.note;
        renderBanner();
      }
      onImages(m.shape, m.items);
      break;
    case 'imagesUnavailable':
      for (const id of m.ids) {
        requested.delete(id);
        failedImages.add(id);
      }
      imagesMessage = m.message;
      renderBanner();
      refreshRowsFor(new Set(m.ids));
      if (selected && !live) renderDetail();
      break;
    case 'inspection':
      if (m.requestId !== latestRequestId) return; // an answer to an older request
      inspectPending = false;
      if (!selected || m.sample.id !== selected.id) return;
      live = m.sample;
      liveError = null;
      renderDetail();
      break;
    case 'inspectError':
      if (m.requestId !== latestRequestId) return;
      inspectPending = false;
      liveError = m.message;
      renderDetail();
      break;
    case 'evaluateState':
      evaluating = m.running;
      statusMessage = m.message ?? '';
      renderBanner();
      break;
    case 'exportDone':
      statusMessage = m.message;
      renderBanner();
      break;
    case 'describe':
      post({ type: 'description', requestId: m.requestId, ...describe() });
      break;
  }
});

// Restore from a reload before the host answers (the host's init replaces it).
if (persisted) {
  controls = { ...persisted.controls };
  if (persisted.selected !== undefined) selected = { id: persisted.selected, split: persisted.selectedSplit ?? 'test' };
}
renderAll();
post({ type: 'ready' });
