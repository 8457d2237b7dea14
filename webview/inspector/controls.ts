/** Inspector: the toolbar's and detail pane's other controls (analysis picker, evaluate, keyboard). */
import { type InspectorFilter, type MismatchCellName } from '../analysisProtocol';
import { type Split } from './protocol';
import { selectSample } from './detail';
import { setFilter } from './filters';
import { renderAll, renderBanner, scrollToPos } from './gallery';
import { analysisSelect, cellsPanel, chips, classSelect, evaluateBtn, idButton, idInput, layerSelect, retryImagesBtn } from './skeleton';
import { failedImages, post, st } from './state';

cellsPanel.addEventListener('click', (ev) => {
  const b = (ev.target as HTMLElement).closest<HTMLElement>('button.cell-btn');
  if (!b) return;
  const cell = b.dataset.cell as MismatchCellName;
  const f = { ...st.filter };
  if (f.cell === cell) delete f.cell;
  else f.cell = cell;
  setFilter(f);
});
classSelect.addEventListener('change', () => {
  const f = { ...st.filter };
  if (classSelect.value === '') delete f.label;
  else f.label = Number(classSelect.value);
  setFilter(f);
});
layerSelect.addEventListener('change', () => {
  const f = { ...st.filter };
  if (layerSelect.value === '') delete f.changedLayer;
  else f.changedLayer = Number(layerSelect.value);
  setFilter(f);
});
chips.addEventListener('click', (ev) => {
  const b = (ev.target as HTMLElement).closest<HTMLElement>('button.chip');
  if (!b) return;
  const key = b.dataset.filter as keyof InspectorFilter | 'all';
  if (key === 'all') return setFilter({});
  const f = { ...st.filter };
  delete f[key];
  setFilter(f);
  (chips.querySelector('button.chip') as HTMLElement | null)?.focus();
});
analysisSelect.addEventListener('change', () => {
  if (analysisSelect.value && analysisSelect.value !== st.model?.analysisName) post({ type: 'selectAnalysis', name: analysisSelect.value });
});
evaluateBtn.addEventListener('click', () => {
  st.evaluating = true;
  renderBanner();
  post({ type: 'evaluate' });
});
retryImagesBtn.addEventListener('click', () => {
  failedImages.clear();
  st.imagesMessage = null;
  renderAll();
});
function inspectTyped(): void {
  const v = Number(idInput.value);
  if (!Number.isInteger(v) || v < 0) {
    st.statusMessage = `"${idInput.value}" is not a sample id (a whole number ≥ 0).`;
    renderBanner();
    return;
  }
  st.statusMessage = '';
  const split: Split = st.model?.target.split ?? 'test';
  if (split === 'test' && st.model?.per && st.model.idToIndex.has(v)) {
    const pos = st.filtered.findIndex((i) => st.model!.per!.ids[i] === v);
    if (pos >= 0) scrollToPos(pos);
  }
  selectSample(v, split);
  renderBanner();
}
idButton.addEventListener('click', inspectTyped);
idInput.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') inspectTyped();
});
