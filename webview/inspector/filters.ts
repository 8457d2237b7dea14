/** Inspector: the sample filter (mismatch cell, class, changed layer, routed-to) and the samples it keeps. */
import { filterSamples, type InspectorFilter } from '../analysisProtocol';
import { CELL_LABELS } from './protocol';
import { renderAll } from './gallery';
import { gallery } from './skeleton';
import { className, layerName, numExperts, saveState, st } from './state';

/** Drops filter parts that do not fit the report (e.g. a layer index from another run); returns what was dropped. */
export function sanitizeFilter(f: InspectorFilter): string[] {
  const dropped: string[] = [];
  const r = st.model?.report;
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

export function applyFilter(): void {
  st.filtered = st.model?.per ? filterSamples(st.model.per, st.filter) : [];
}

export function setFilter(f: InspectorFilter): void {
  st.filter = f;
  sanitizeFilter(st.filter);
  applyFilter();
  saveState();
  gallery.scrollTop = 0;
  renderAll();
}

export function chipsOf(f: InspectorFilter): { key: keyof InspectorFilter; text: string }[] {
  const out: { key: keyof InspectorFilter; text: string }[] = [];
  if (f.cell) out.push({ key: 'cell', text: `cell: ${CELL_LABELS[f.cell]}` });
  if (f.label !== undefined) out.push({ key: 'label', text: `class: ${className(f.label)}` });
  if (f.changedLayer !== undefined) out.push({ key: 'changedLayer', text: `routing changed in ${layerName(f.changedLayer)}` });
  if (f.route) out.push({ key: 'route', text: `${f.route.on === 'clean' ? 'clean' : 'adversarial'} input routed to expert ${f.route.expert} in ${layerName(f.route.layer)}` });
  return out;
}
