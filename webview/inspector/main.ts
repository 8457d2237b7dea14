/**
 * Inspector: a virtualised gallery of the analysed samples, the router-expert mismatch cells as filters, and the
 * selected sample's routing path, re-attacked live. This module handles the host's messages (./protocol.ts); the
 * other modules of this folder hold the state (state.ts), the page (skeleton.ts), the filters, the gallery, the
 * detail pane, the export and the controls.
 */
import { type MismatchCellName, mismatchCellOf, parseInspectorFilter } from '../analysisProtocol';
import { type HostToInspector, type InitMessage, type InspectorDescription } from './protocol';
import { detailSource, renderDetail, scheduleInspect } from './detail';
import { applyFilter, sanitizeFilter } from './filters';
import { onImages, refreshRowsFor, renderAll, renderBanner, scrollToPos } from './gallery';
import { banner, gallery, routingTable } from './skeleton';
import { epsMax, failedImages, host, imageCache, persisted, post, requested, saveState, st } from './state';
// Modules that only attach listeners to the page's controls.
import './controls';
import './export';

function onInit(m: InitMessage): void {
  const prevRun = st.model?.target.runId;
  const prevAnalysis = st.model?.analysisName;
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
  st.model = {
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
  if (prevRun !== m.target.runId || prevAnalysis !== st.model.analysisName) {
    imageCache.clear();
    requested.clear();
    failedImages.clear();
    st.imagesMessage = null;
    st.imagesNote = null;
  }
  st.evaluating = false;
  const f = parseInspectorFilter(m.target.filter ?? {}) ?? {};
  const dropped = sanitizeFilter(f);
  st.statusMessage = dropped.length ? `Filter parts that do not fit this analysis were dropped: ${dropped.join(', ')}.` : '';
  const sameView = prevRun === m.target.runId && prevAnalysis === st.model.analysisName && JSON.stringify(f) === JSON.stringify(st.filter);
  st.filter = f;
  applyFilter();
  if (m.restore) {
    if (m.restore.controls) st.controls = { ...m.restore.controls };
    st.selected = m.restore.selected !== undefined ? { id: m.restore.selected, split: m.restore.selectedSplit ?? 'test' } : null;
  } else if (prevRun !== m.target.runId || prevAnalysis !== st.model.analysisName) {
    st.selected = null;
  }
  // Open on a sample rather than an empty detail: the gallery's first (the filter's first when filtered).
  if (!st.selected && st.model.per && st.filtered.length > 0) st.selected = { id: st.model.per.ids[st.filtered[0]], split: 'test' };
  if (st.controls.eps !== undefined && st.controls.eps > epsMax()) st.controls.eps = undefined;
  st.live = null;
  st.liveError = null;
  st.inspectPending = false;
  if (!sameView) gallery.scrollTop = 0;
  saveState();
  renderAll();
  if (st.selected) {
    const sel = st.selected;
    const pos = st.model.per && sel.split === 'test' ? st.filtered.findIndex((i) => st.model!.per!.ids[i] === sel.id) : -1;
    if (pos >= 0) scrollToPos(pos);
    scheduleInspect(0);
  }
}

function describe(): InspectorDescription {
  const rows = [...gallery.querySelectorAll<HTMLElement>('.row.sample')];
  const rr = [...routingTable.querySelectorAll<HTMLElement>('tr.route-row')];
  const msg = [...banner.querySelectorAll('p')].map((p) => p.textContent ?? '').join(' ').trim();
  return {
    totalSamples: st.model?.per?.ids.length ?? 0,
    filteredCount: st.filtered.length,
    filteredIds: st.model?.per ? st.filtered.map((i) => st.model!.per!.ids[i]) : [],
    domRows: rows.length,
    domIds: rows.map((r) => Number(r.dataset.id)).sort((a, b) => a - b),
    selectedId: st.selected?.id ?? null,
    drawnImages: document.querySelectorAll('canvas[data-drawn="1"]').length,
    routingRows: rr.length,
    changedRows: rr.filter((r) => r.dataset.changed === 'true').length,
    detailSource: detailSource(),
    analysis: st.model?.analysisName ?? null,
    filter: { ...st.filter },
    message: msg || null,
  };
}

function handle(m: HostToInspector): void {
  switch (m.type) {
    case 'init':
      onInit(m);
      break;
    case 'images':
      if (m.note && m.note !== st.imagesNote) {
        st.imagesNote = m.note;
        renderBanner();
      }
      onImages(m.shape, m.items);
      break;
    case 'imagesUnavailable':
      for (const id of m.ids) {
        requested.delete(id);
        failedImages.add(id);
      }
      st.imagesMessage = m.message;
      renderBanner();
      refreshRowsFor(new Set(m.ids));
      if (st.selected && !st.live) renderDetail();
      break;
    case 'inspection':
      if (m.requestId !== st.latestRequestId) return; // an answer to an older request
      st.inspectPending = false;
      if (!st.selected || m.sample.id !== st.selected.id) return;
      st.live = m.sample;
      st.liveError = null;
      renderDetail();
      break;
    case 'inspectError':
      if (m.requestId !== st.latestRequestId) return;
      st.inspectPending = false;
      st.liveError = m.message;
      renderDetail();
      break;
    case 'evaluateState':
      st.evaluating = m.running;
      st.statusMessage = m.message ?? '';
      renderBanner();
      break;
    case 'exportDone':
      st.statusMessage = m.message;
      renderBanner();
      break;
    case 'describe':
      post({ type: 'description', requestId: m.requestId, ...describe() });
      break;
  }
}

// Restore from a reload before the host answers (the host's init replaces it).
if (persisted) {
  st.controls = { ...persisted.controls };
  if (persisted.selected !== undefined) st.selected = { id: persisted.selected, split: persisted.selectedSplit ?? 'test' };
}
renderAll();
host.listen(handle);
