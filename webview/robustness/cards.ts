/** Robustness view: one card per run (name, analysis picker, actions, live progress, notes). */
import { el } from '../shared/dom';
import { dateTime, epsText } from '../shared/format';
import { isDense } from './protocol';
import { PALETTE_SIZE, post, reportOf, runs, type RunView, saveState, ui, view } from './state';

function fileLabel(name: string, mtime: number): string {
  const when = dateTime(mtime);
  return when ? `${name} (${when})` : name;
}

/** Run headers are kept while nothing in them changes, so that a live update does not close an open picker. */
export const headCache = new Map<string, { sig: string; el: HTMLElement }>();

function renderRunHead(r: RunView, i: number): HTMLElement {
  const d = r.data;
  const report = reportOf(r);
  const shown = d.analysis?.name ?? ui.selected[d.runId];
  const sig = JSON.stringify([i, d.name, d.method, d.status, d.files, shown, view.trusted, r.running, !!report && isDense(report), !!report && report.layers.length > 0]);
  const cached = headCache.get(d.runId);
  if (cached?.sig === sig) return cached.el;
  const head = el('div', { class: 'run-head' });
  head.append(
    el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }),
    el('span', { class: 'run-name', title: d.runId }, d.name),
    el('span', { class: 'badge' }, d.method),
    el('span', { class: 'run-status' }, d.status),
  );
  if (report && isDense(report)) head.append(el('span', { class: 'badge dense' }, 'dense'));
  const actions = el('span', { class: 'run-actions' });
  if (d.files.length > 0) {
    const sel = el('select', { class: 'analysis-select', 'aria-label': `Analysis of ${d.name}`, 'data-run': d.runId });
    for (const f of d.files) sel.appendChild(el('option', { value: f.name }, fileLabel(f.name, f.mtime)));
    if (shown && d.files.some((f) => f.name === shown)) sel.value = shown;
    sel.addEventListener('change', () => {
      ui.selected[d.runId] = sel.value;
      saveState();
      post({ type: 'selectAnalysis', runId: d.runId, name: sel.value });
    });
    actions.append(sel);
  }
  if (view.trusted && !r.running) {
    const ev = el('button', { type: 'button', class: 'evaluate', 'data-run': d.runId, title: 'Run the engine’s robustness analysis on this run' }, 'Evaluate');
    ev.addEventListener('click', () => post({ type: 'evaluate', runId: d.runId }));
    actions.append(ev);
  }
  if (report && report.layers.length > 0) {
    const rt = el('button', { type: 'button', class: 'secondary open-routing', 'data-run': d.runId, title: 'Open the Routing view on this analysis' }, 'Routing…');
    rt.addEventListener('click', () => {
      const now = runs.find((x) => x.data.runId === d.runId);
      post({ type: 'openRouting', runId: d.runId, analysis: now?.live ? undefined : now?.data.analysis?.name });
    });
    actions.append(rt);
  }
  const rm = el('button', { type: 'button', class: 'icon remove', 'data-run': d.runId, 'aria-label': `Remove ${d.name} from the view`, title: 'Remove from the view' }, '×');
  rm.addEventListener('click', () => post({ type: 'removeRun', runId: d.runId }));
  actions.append(rm);
  head.append(actions);
  headCache.set(d.runId, { sig, el: head });
  return head;
}

export function renderRunCard(r: RunView, i: number): HTMLElement {
  const d = r.data;
  const card = el('article', { class: 'run-card', 'data-run': d.runId });
  card.append(renderRunHead(r, i));

  const meta = el('div', { class: 'run-meta' });
  if (r.live) {
    meta.textContent = `live report over ${r.live.done} of ${r.live.total} samples`;
  } else if (d.analysis) {
    const a = d.analysis;
    meta.textContent = [
      a.name,
      a.checkpoint ? `checkpoint ${a.checkpoint}` : '',
      `${a.report.samples} samples`,
      `PGD-${a.report.attack.steps} ${a.report.attack.norm} ε=${epsText(a.report.attack.eps)}`,
      `${+a.report.seconds.toFixed(1)} s`,
    ]
      .filter(Boolean)
      .join(' · ');
  }
  if (meta.textContent) card.append(meta);

  if (r.running || r.live) {
    const prog = el('div', { class: 'progress', 'data-run': d.runId, role: 'status' });
    const text = el('span', { class: 'progress-text' });
    if (r.live) {
      const frac = r.live.total > 0 ? r.live.done / r.live.total : 0;
      text.textContent = r.live.final
        ? `Evaluation finished: ${r.live.done} of ${r.live.total} samples`
        : `Evaluating: ${r.live.done} of ${r.live.total} samples (${Math.floor(frac * 100)}%)`;
      const bar = el('progress', { max: String(r.live.total || 1), value: String(r.live.done), 'aria-label': 'Samples evaluated' });
      prog.append(bar);
    } else {
      text.textContent = `Evaluating: ${r.activity ?? 'starting…'}`;
    }
    prog.prepend(text);
    if (r.running && !r.live?.final) {
      const cancel = el('button', { type: 'button', class: 'cancel', 'data-run': d.runId }, 'Cancel');
      cancel.addEventListener('click', () => {
        cancel.disabled = true;
        cancel.textContent = 'Cancelling…';
        post({ type: 'cancel', runId: d.runId });
      });
      prog.append(cancel);
    }
    card.append(prog);
  }
  if (r.note) card.append(el('div', { class: 'note run-note' }, r.note));
  if (d.error && !r.live) card.append(el('div', { class: 'run-error', role: 'alert' }, d.error));
  for (const w of d.warnings ?? []) card.append(el('div', { class: 'run-warning' }, w));
  return card;
}
