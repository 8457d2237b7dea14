/** Inspector: drawing the view — status, mismatch cells, filter chips and the virtualised gallery of samples. */
import { epsText, pct } from '../shared/format';
import { imageBytesToRgba, type MismatchCellName, routingChanged } from '../analysisProtocol';
import { el } from '../shared/dom';
import { base64ToBytes, formatScale, perturbation, type Perturbation, type Picture, type Shape } from './images';
import { CELL_LABELS, MAX_IMAGE_BATCH, MISMATCH_CELLS } from './protocol';
import { renderDetail, selectSample } from './detail';
import { chipsOf } from './filters';
import { analysisSelect, banner, cellsPanel, chips, classSelect, countLine, evaluateBtn, filtersBar, gallery, galleryHead, idButton, idInput, layerSelect, retryImagesBtn, runTitle, spacer, targetInfo } from './skeleton';
import { className, drawPicture, failedImages, IMAGE_DEBOUNCE_MS, imageCache, layerName, numClasses, OVERSCAN, post, requested, ROW_H, st } from './state';

let renders = 0;
export function renderAll(): void {
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
  runTitle.textContent = st.model ? `Inspector · ${st.model.runName}` : 'Inspector';
  const names = st.model?.analyses ?? [];
  analysisSelect.replaceChildren(
    ...(names.length === 0 ? [el('option', { value: '' }, 'none')] : names.map((a) => el('option', { value: a.name }, a.name))),
  );
  analysisSelect.value = st.model?.analysisName ?? '';
  analysisSelect.disabled = names.length <= 1;
  const parts: string[] = [];
  if (st.model) {
    const ck = st.model.target.checkpoint ?? st.model.checkpoint;
    parts.push(`checkpoint ${ck ?? 'last'}`);
    parts.push(`split ${st.model.target.split ?? 'test'}`);
    const r = st.model.report;
    if (r) parts.push(`${r.attack.steps ? 'PGD-' + r.attack.steps : 'attack'} ε ${epsText(r.attack.eps)}`);
    if (st.model.target.split === 'train' && st.model.per) parts.push('(the gallery lists test samples of the analysis)');
  }
  targetInfo.textContent = parts.join(' · ');
  const canRun = !!st.model?.trusted;
  idInput.disabled = !canRun;
  idButton.disabled = !canRun;
}

export function renderBanner(): void {
  const parts: HTMLElement[] = [];
  if (!st.model) {
    parts.push(el('p', {}, 'Waiting for the run…'));
  } else {
    if (st.model.error) parts.push(el('p', { class: 'error', id: 'analysis-error' }, st.model.error));
    if (!st.model.per) {
      const p = el('p', { id: 'no-per-sample' }, 'No per-sample analysis yet — run Evaluate Robustness. ');
      evaluateBtn.disabled = !st.model.trusted || st.evaluating;
      evaluateBtn.textContent = st.evaluating ? 'Evaluating…' : 'Evaluate Robustness';
      p.append(evaluateBtn);
      if (st.model.trusted) p.append(el('span', { class: 'muted' }, ' Meanwhile, type a sample id above to inspect it live.'));
      parts.push(p);
    }
    if (!st.model.trusted) {
      parts.push(
        el(
          'p',
          { id: 'untrusted', class: 'warn' },
          'Restricted Mode: images and live re-attacks need the engine, which does not run in an untrusted workspace. The columns below come from the saved analysis.',
        ),
      );
    } else if (st.imagesMessage) {
      const p = el('p', { id: 'images-error', class: 'warn' }, `${st.imagesMessage} The columns below come from the saved analysis. `);
      p.append(retryImagesBtn);
      parts.push(p);
    }
    if (st.imagesNote && st.model.trusted) parts.push(el('p', { id: 'images-note', class: 'warn' }, st.imagesNote));
    if (st.statusMessage) parts.push(el('p', { id: 'status-message', class: 'muted' }, st.statusMessage));
  }
  banner.replaceChildren(...parts);
  banner.hidden = parts.length === 0;
}

function renderCells(): void {
  const per = st.model?.per;
  cellsPanel.hidden = !per;
  if (!per || !st.model) return;
  const counts: Record<MismatchCellName, number> = { keptRight: 0, keptWrong: 0, changedRight: 0, changedWrong: 0 };
  for (const c of st.model.cells) counts[c]++;
  const mm = st.model.report?.mismatch;
  const corner = el('span', { class: 'corner muted' }, 'under attack →');
  const grid: HTMLElement[] = [corner, el('span', { class: 'axis' }, 'prediction right'), el('span', { class: 'axis' }, 'prediction wrong')];
  for (const kept of [true, false]) {
    grid.push(el('span', { class: 'axis' }, kept ? 'routing kept' : 'routing changed'));
    for (const right of [true, false]) {
      const cell: MismatchCellName = kept ? (right ? 'keptRight' : 'keptWrong') : right ? 'changedRight' : 'changedWrong';
      const active = st.filter.cell === cell;
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
  const per = st.model?.per;
  filtersBar.hidden = !per;
  if (!per) return;
  const nc = numClasses();
  classSelect.replaceChildren(el('option', { value: '' }, 'all'), ...Array.from({ length: nc }, (_, c) => el('option', { value: String(c) }, className(c))));
  classSelect.value = st.filter.label !== undefined ? String(st.filter.label) : '';
  const L = st.model?.report?.layers.length ?? 0;
  layerSelect.replaceChildren(el('option', { value: '' }, 'any layer'), ...Array.from({ length: L }, (_, l) => el('option', { value: String(l) }, `${l}: ${layerName(l)}`)));
  layerSelect.value = st.filter.changedLayer !== undefined ? String(st.filter.changedLayer) : '';
  chips.replaceChildren(
    ...chipsOf(st.filter).map((c) => {
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
  const per = st.model?.per;
  gallery.hidden = !per;
  galleryHead.hidden = !per;
  if (!per) {
    for (const r of rowEls.values()) r.remove();
    rowEls.clear();
    return;
  }
  countLine.textContent = `${st.filtered.length} of ${per.ids.length} samples`;
  spacer.style.height = `${st.filtered.length * ROW_H}px`;
  for (const r of rowEls.values()) r.remove();
  rowEls.clear();
  updateRows();
}

function visibleRange(): [number, number] {
  const h = gallery.clientHeight || 600;
  const first = Math.max(0, Math.floor(gallery.scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(st.filtered.length, Math.ceil((gallery.scrollTop + h) / ROW_H) + OVERSCAN);
  return [first, last];
}

export function updateRows(): void {
  if (!st.model?.per) return;
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
    const i = st.filtered[pos];
    const id = st.model.per.ids[i];
    if (!r) {
      r = buildRow(pos, i);
      rowEls.set(pos, r);
      gallery.appendChild(r);
    }
    const isSel = st.selected?.split === 'test' && st.selected.id === id;
    r.classList.toggle('selected', isSel);
    r.setAttribute('aria-selected', String(isSel));
    if (st.model.trusted && !imageCache.has(id) && !requested.has(id) && !failedImages.has(id)) need.push(id);
  }
  const selPos = st.selected ? st.filtered.findIndex((i) => st.model!.per!.ids[i] === st.selected!.id) : -1;
  if (selPos >= first && selPos < last && st.selected?.split === 'test') gallery.setAttribute('aria-activedescendant', `row-${selPos}`);
  else gallery.removeAttribute('aria-activedescendant');
  if (need.length) queueImages(need);
}

function buildRow(pos: number, i: number): HTMLElement {
  const per = st.model!.per!;
  const id = per.ids[i];
  const cell = st.model!.cells[i];
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
      const unavailable = !st.model!.trusted || failedImages.has(id) || (cached && !pic);
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

export function refreshRowsFor(ids: Set<number>): void {
  for (const [pos, r] of rowEls) {
    if (ids.has(Number(r.dataset.id))) {
      const nr = buildRow(pos, st.filtered[pos]);
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
  if (!st.model?.per || st.filtered.length === 0) return;
  const per = st.model.per;
  const cur = st.selected?.split === 'test' ? st.filtered.findIndex((i) => per.ids[i] === st.selected!.id) : -1;
  const page = Math.max(1, Math.floor(gallery.clientHeight / ROW_H) - 1);
  let next = cur;
  switch (ev.key) {
    case 'ArrowDown':
      next = cur < 0 ? 0 : Math.min(st.filtered.length - 1, cur + 1);
      break;
    case 'ArrowUp':
      next = cur < 0 ? 0 : Math.max(0, cur - 1);
      break;
    case 'PageDown':
      next = Math.min(st.filtered.length - 1, Math.max(0, cur) + page);
      break;
    case 'PageUp':
      next = Math.max(0, cur - page);
      break;
    case 'Home':
      next = 0;
      break;
    case 'End':
      next = st.filtered.length - 1;
      break;
    default:
      return;
  }
  ev.preventDefault();
  scrollToPos(next);
  selectSample(per.ids[st.filtered[next]], 'test');
});

export function scrollToPos(pos: number): void {
  const top = pos * ROW_H;
  if (top < gallery.scrollTop) gallery.scrollTop = top;
  else if (top + ROW_H > gallery.scrollTop + gallery.clientHeight) gallery.scrollTop = top + ROW_H - gallery.clientHeight;
}

// ---- images from the host ----
function queueImages(ids: number[]): void {
  for (const id of ids) st.wantImages.add(id);
  if (st.imageTimer) return;
  st.imageTimer = setTimeout(() => {
    st.imageTimer = undefined;
    const all = [...st.wantImages].filter((id) => !imageCache.has(id) && !requested.has(id) && !failedImages.has(id));
    st.wantImages = new Set();
    for (let k = 0; k < all.length; k += MAX_IMAGE_BATCH) {
      const batch = all.slice(k, k + MAX_IMAGE_BATCH);
      for (const id of batch) requested.add(id);
      post({ type: 'needImages', ids: batch });
    }
  }, IMAGE_DEBOUNCE_MS);
}

export function onImages(shape: Shape, items: { id: number; clean: string; adversarial: string | null }[]): void {
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
  if (st.selected && got.has(st.selected.id) && !st.live) renderDetail();
}
