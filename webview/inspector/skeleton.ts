/** Inspector: the page's fixed parts (toolbar, mismatch cells, filters, gallery, detail pane and its controls). */
import { el } from '../shared/dom';
import { type AttackChoice, ATTACKS } from './protocol';


const app = document.getElementById('app') ?? document.body.appendChild(el('div', { id: 'app' }));
const toolbar = el('header', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Inspector' });
export const runTitle = el('span', { id: 'run-title', class: 'run-title' });
export const analysisSelect = el('select', { id: 'analysis', 'aria-label': 'Analysis' });
const analysisLabel = el('label', { class: 'control' }, 'Analysis ');
analysisLabel.append(analysisSelect);
export const targetInfo = el('span', { id: 'target-info', class: 'muted' });
export const idInput = el('input', { id: 'sample-id', type: 'number', min: '0', step: '1', 'aria-label': 'Sample id', placeholder: 'id' });
export const idButton = el('button', { id: 'inspect-id', type: 'button', title: 'Inspect this sample id live' }, 'Inspect id');
const idGroup = el('span', { class: 'control' }, 'Sample ');
idGroup.append(idInput, idButton);
toolbar.append(runTitle, analysisLabel, targetInfo, el('span', { class: 'spacer' }), idGroup);

export const banner = el('div', { id: 'banner', class: 'banner', role: 'status' });
export const evaluateBtn = el('button', { id: 'evaluate', type: 'button' }, 'Evaluate Robustness');
export const retryImagesBtn = el('button', { id: 'retry-images', type: 'button' }, 'Retry images');

const layout = el('div', { class: 'layout' });
const left = el('section', { class: 'left', 'aria-label': 'Samples' });
export const cellsPanel = el('div', { id: 'cells', class: 'cells', role: 'group', 'aria-label': 'Router-expert mismatch cells' });
export const filtersBar = el('div', { id: 'filters', class: 'filters' });
export const classSelect = el('select', { id: 'filter-class', 'aria-label': 'Filter by class' });
export const layerSelect = el('select', { id: 'filter-layer', 'aria-label': 'Filter by layer whose routing changed' });
const classLabel = el('label', { class: 'control' }, 'Class ');
classLabel.append(classSelect);
const layerLabel = el('label', { class: 'control' }, 'Routing changed in ');
layerLabel.append(layerSelect);
export const chips = el('div', { id: 'chips', class: 'chips', 'aria-label': 'Active filters' });
filtersBar.append(classLabel, layerLabel, chips);
export const galleryHead = el('div', { class: 'gallery-head' });
export const countLine = el('div', { id: 'count', class: 'count muted' });
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
export const gallery = el('div', { id: 'gallery', class: 'gallery', role: 'listbox', tabindex: '0', 'aria-label': 'Samples (arrow keys move the selection)' });
export const spacer = el('div', { class: 'spacer-rows' });
gallery.appendChild(spacer);
left.append(cellsPanel, filtersBar, galleryHead, gallery);

export const detail = el('section', { id: 'detail', class: 'detail', 'aria-label': 'Selected sample' });
export const detailTitle = el('h2', { id: 'detail-title' }, 'No sample selected');
const controlsBar = el('div', { id: 'controls', class: 'controls' });
export const epsInput = el('input', { id: 'eps', type: 'range', min: '0', max: '1', step: '0.001', 'aria-label': 'Attack ε' });
/** ε as typed (0.1, 8/255); the slider follows it. */
export const epsText_ = el('input', { id: 'eps-value', type: 'text', inputmode: 'decimal', size: '7', 'aria-label': 'Attack ε (type a value such as 0.1 or 8/255)' });
const epsLabel = el('label', { class: 'control' }, 'ε ');
epsLabel.append(epsInput, epsText_);
export const attackSelect = el('select', { id: 'attack', 'aria-label': 'Attack' });
export const ATTACK_LABELS: Record<AttackChoice, string> = {
  pgd: 'PGD',
  fgsm: 'FGSM',
  'apgd-ce': 'APGD-CE',
  router: 'Router attack',
  expert: 'Expert attack (routing frozen)',
};
for (const a of ATTACKS) attackSelect.appendChild(el('option', { value: a }, ATTACK_LABELS[a]));
const attackLabel = el('label', { class: 'control' }, 'Attack ');
attackLabel.append(attackSelect);
export const stepsInput = el('input', { id: 'steps', type: 'number', min: '1', max: '1000', step: '1', 'aria-label': 'Attack steps' });
const stepsLabel = el('label', { class: 'control' }, 'Steps ');
stepsLabel.append(stepsInput);
export const freezeInput = el('input', { id: 'freeze', type: 'checkbox' });
export const freezeLabel = el('label', { class: 'control', title: 'Attack the experts with the routing frozen to the clean decision' });
freezeLabel.append(freezeInput, document.createTextNode(' Freeze routing'));
export const exportBtn = el('button', { id: 'export', type: 'button', title: 'Export the selected sample: PNG images and JSON' }, 'Export sample…');
controlsBar.append(epsLabel, attackLabel, stepsLabel, freezeLabel, el('span', { class: 'spacer' }), exportBtn);
export const sourceNote = el('div', { id: 'source', class: 'source', role: 'status' });
const figures = el('div', { class: 'figures' });
function figure(kind: string, caption: string): { fig: HTMLElement; canvas: HTMLCanvasElement; cap: HTMLElement } {
  const fig = el('figure', { class: 'big', 'data-kind': kind });
  const canvas = el('canvas', { class: 'img big-img', 'data-kind': kind, role: 'img', 'aria-label': caption });
  const cap = el('figcaption', {}, caption);
  fig.append(canvas, cap);
  return { fig, canvas, cap };
}
export const bigClean = figure('clean', 'clean');
export const bigPert = figure('perturbation', 'perturbation');
export const bigAdv = figure('adversarial', 'adversarial');
figures.append(bigClean.fig, bigPert.fig, bigAdv.fig);
export const predTable = el('table', { id: 'predictions', class: 'predictions' });
const routingTitle = el('h3', {}, 'Routing path');
export const routingLegend = el('div', { class: 'muted small routing-legend' });
export const routingTable = el('table', { id: 'routing', class: 'routing' });
detail.append(detailTitle, controlsBar, sourceNote, figures, predTable, routingTitle, routingLegend, routingTable);
layout.append(left, detail);
app.append(toolbar, banner, layout);
