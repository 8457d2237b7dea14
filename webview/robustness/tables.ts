/** Robustness view: the tables (attacks with their settings, per-expert SA/RA, inference cost). */
import { el, headerRow } from '../shared/dom';
import { epsText, pct } from '../shared/format';
import { formatValue } from '../shared/series';
import { ATTACK_ORDER, type RobustnessReport } from './protocol';
import { drawn } from './charts';
import { attacksSec, costSec, perExpertSec } from './skeleton';
import { attackLabel, exact, flopsText, PALETTE_SIZE, reportOf, runs } from './state';

function cell(tag: 'td' | 'th', text: string, attrs: Record<string, string> = {}): HTMLTableCellElement {
  return el(tag, attrs, text);
}

export function renderAttacks(shown: number[]): void {
  const rows = new Map<string, { name: string; s: RobustnessReport['attack']; acc: Map<string, number> }>();
  for (const i of shown) {
    for (const a of reportOf(runs[i])!.attacks) {
      const s = a.settings;
      const key = `${a.name}|${s.norm}|${s.eps}|${s.stepSize}|${s.steps}|${s.restarts}|${s.randomStart}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = { name: a.name, s, acc: new Map() }));
      row.acc.set(runs[i].data.runId, a.accuracy);
    }
  }
  const order = (n: string) => {
    const k = (ATTACK_ORDER as readonly string[]).indexOf(n);
    return k < 0 ? ATTACK_ORDER.length : k;
  };
  const sorted = [...rows.values()].sort((a, b) => order(a.name) - order(b.name) || a.s.eps - b.s.eps || a.s.steps - b.s.steps);
  drawn.attackRows = sorted.length;
  attacksSec.root.hidden = sorted.length === 0;
  const table = el('table', { class: 'data attacks' });
  table.append(el('caption', {}, 'Accuracy of the whole model under each attack (expert attack: routing frozen to the clean decision)'));
  const head = el('tr');
  for (const h of ['Attack', 'Norm', 'ε', 'Step α', 'Steps', 'Restarts', 'Random start']) head.append(cell('th', h, { scope: 'col' }));
  for (const i of shown) {
    const th = cell('th', '', { scope: 'col', 'data-run': runs[i].data.runId, class: 'run-col' });
    th.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(` ${runs[i].data.name}`));
    head.append(th);
  }
  table.append(el('thead'));
  table.tHead!.append(head);
  const body = el('tbody');
  for (const row of sorted) {
    const s = row.s;
    const tr = el('tr', {
      'data-attack': row.name,
      'data-norm': s.norm,
      'data-eps': String(s.eps),
      'data-step-size': String(s.stepSize),
      'data-steps': String(s.steps),
      'data-restarts': String(s.restarts),
      'data-random-start': String(s.randomStart),
    });
    tr.append(
      cell('th', attackLabel(row.name, s.steps), { scope: 'row' }),
      cell('td', s.norm === 'linf' ? 'L∞' : s.norm === 'l2' ? 'L2' : s.norm),
      cell('td', epsText(s.eps), { title: formatValue(s.eps), class: 'num' }),
      cell('td', epsText(s.stepSize), { title: formatValue(s.stepSize), class: 'num' }),
      cell('td', String(s.steps), { class: 'num' }),
      cell('td', String(s.restarts), { class: 'num' }),
      cell('td', s.randomStart ? 'yes' : 'no'),
    );
    for (const i of shown) {
      const v = row.acc.get(runs[i].data.runId);
      const attrs: Record<string, string> = { class: 'num acc', 'data-run': runs[i].data.runId };
      if (v !== undefined) {
        attrs['data-value'] = String(v);
        attrs['data-tip'] = `${attackLabel(row.name, s.steps)} · ${runs[i].data.name}: accuracy ${exact(v)}`;
        attrs.tabindex = '0';
      }
      tr.append(cell('td', v === undefined ? '—' : pct(v, 2), attrs));
    }
    body.append(tr);
  }
  table.append(body);
  attacksSec.body.replaceChildren(table);
}

export function renderPerExpert(shown: number[]): void {
  const withExperts = shown.filter((i) => reportOf(runs[i])!.perExpert.length > 0);
  const notes = shown.flatMap((i) => {
    const note = reportOf(runs[i])!.perExpertNote;
    return note ? [el('p', { class: 'note' }, `${runs[i].data.name}: ${note}`)] : [];
  });
  perExpertSec.root.hidden = withExperts.length === 0 && notes.length === 0;
  if (withExperts.length === 0) return perExpertSec.body.replaceChildren(...notes);
  const experts = [...new Set(withExperts.flatMap((i) => reportOf(runs[i])!.perExpert.map((p) => p.expert)))].sort((a, b) => a - b);
  const table = el('table', { class: 'data per-expert' });
  const h1 = el('tr');
  h1.append(cell('th', 'Expert', { scope: 'col', rowspan: '2' }));
  const h2 = el('tr');
  for (const i of withExperts) {
    const th = cell('th', '', { scope: 'colgroup', colspan: '2', 'data-run': runs[i].data.runId });
    th.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(` ${runs[i].data.name}`));
    h1.append(th);
    h2.append(cell('th', 'SA', { scope: 'col' }), cell('th', 'RA', { scope: 'col' }));
  }
  const thead = el('thead');
  thead.append(h1, h2);
  const body = el('tbody');
  for (const e of experts) {
    const tr = el('tr', { 'data-expert': String(e) });
    tr.append(cell('th', `expert ${e}`, { scope: 'row' }));
    for (const i of withExperts) {
      const rep = reportOf(runs[i])!;
      const p = rep.perExpert.find((q) => q.expert === e);
      for (const k of ['sa', 'ra'] as const) {
        const attrs: Record<string, string> = { class: 'num', 'data-run': runs[i].data.runId, 'data-metric': k };
        if (p) {
          attrs['data-value'] = String(p[k]);
          attrs['data-tip'] = `${runs[i].data.name}, every MoE layer forced to expert ${e}: ${k.toUpperCase()} ${exact(p[k])} (gated model: ${pct(rep[k], 2)})`;
          attrs.tabindex = '0';
          if (p[k] > rep[k]) attrs.class += ' better';
        }
        tr.append(cell('td', p ? pct(p[k], 2) : '—', attrs));
      }
    }
    body.append(tr);
  }
  table.append(thead, body);
  perExpertSec.body.replaceChildren(table, ...notes);
}

export function renderCost(shown: number[]): void {
  costSec.root.hidden = shown.length === 0;
  const table = el('table', { class: 'data cost' });
  const head = headerRow([
    ['Run', ''],
    ['Dense FLOPs', 'FLOPs per image of the dense counterpart (same backbone and width, MoE off)'],
    ['Active FLOPs', 'FLOPs per image with inactive experts skipped (routers included)'],
    ['Reduction', '1 − active / dense'],
    ['Latency dense', 'Measured ms per image of the dense counterpart'],
    ['Latency MoE (masked)', 'Measured ms per image of the MoE computed densely, inactive experts multiplied by 0 (the training forward)'],
    ['Latency MoE (sparse)', 'Measured ms per image with inactive experts really skipped'],
    ['Batch', 'Batch size of the latency measurements'],
  ]);
  const thead = el('thead');
  thead.append(head);
  const body = el('tbody');
  let maxFlops = 0;
  for (const i of shown) maxFlops = Math.max(maxFlops, reportOf(runs[i])!.cost.denseFlops);
  for (const i of shown) {
    const r = runs[i];
    const c = reportOf(r)!.cost;
    const tr = el('tr', { 'data-run': r.data.runId });
    const name = cell('th', '', { scope: 'row' });
    name.append(el('span', { class: `dot-swatch c${i % PALETTE_SIZE}` }), document.createTextNode(` ${r.data.name}`));
    const flopsCell = (v: number, kind: string) => {
      const td = cell('td', '', { class: 'num', 'data-value': String(v), 'data-metric': kind, 'data-tip': `${r.data.name}: ${v.toLocaleString('en-US')} FLOPs per image (${kind})`, tabindex: '0' });
      const bar = el('span', { class: `cost-bar ${kind === 'activeFlops' ? `fill-c${i % PALETTE_SIZE}` : 'dense'}` });
      bar.style.width = `${maxFlops > 0 ? Math.max(1, (60 * v) / maxFlops) : 0}px`;
      td.append(el('span', {}, flopsText(v)), bar);
      return td;
    };
    const lat = c.latencyMs;
    const ms = (v: number | undefined, kind: string) =>
      v === undefined
        ? cell('td', '—', { class: 'num', 'data-metric': kind })
        : cell('td', `${formatValue(v)} ms`, { class: 'num', 'data-value': String(v), 'data-metric': kind, 'data-tip': `${r.data.name}: ${formatValue(v)} ms per image, measured at batch ${lat?.batch}` , tabindex: '0' });
    tr.append(
      name,
      flopsCell(c.denseFlops, 'denseFlops'),
      flopsCell(c.activeFlops, 'activeFlops'),
      cell('td', pct(c.reduction, 2), { class: 'num', 'data-value': String(c.reduction), 'data-metric': 'reduction', 'data-tip': `1 − active / dense = ${exact(c.reduction)}`, tabindex: '0' }),
      ms(lat?.dense, 'latencyDenseMs'),
      ms(lat?.moeMasked, 'latencyMoeMaskedMs'),
      ms(lat?.moe, 'latencyMoeMs'),
      cell('td', lat ? String(lat.batch) : '—', { class: 'num', 'data-metric': 'latencyBatch' }),
    );
    body.append(tr);
  }
  table.append(thead, body);
  costSec.body.replaceChildren(table);
}
