/**
 * Sweep Table view: one row per run of a sweep (axis values, status, SA, RA, router and expert robustness,
 * collapse flag, active FLOPs, wall time), or one row per group of runs with mean ± sample std over the others
 * (typically the seeds). Click a header to sort (again to reverse); filter by words and status; select rows (their
 * check boxes; a group selects its runs) to open them in the Training, Robustness or Routing view; export what is
 * shown as CSV, JSON or LaTeX. The host posts a fresh table whenever the sweep's files change.
 * Talks to the host only through ./protocol.ts; sorting, grouping and exports are engine/sweeps/table.ts.
 */
import {
  allButSeed,
  filterRows,
  groupCells,
  groupRows,
  renderTable,
  runCells,
  sortGroups,
  sortRows,
  type GroupRow,
  type SweepTable,
  type SweepTableRow,
} from '../../contract/sweepTable';
import { connectView } from '../shared/vscode';
import {
  GROUP_ALL_BUT_SEED,
  GROUP_NONE,
  parseHostToSweep,
  parseSweepViewState,
  type SweepDescription,
  type HostToSweep,
  type SweepExportFormat,
  type SweepOpenView,
  type SweepToHost,
  type SweepViewState,
} from './protocol';

const host = connectView<SweepViewState, SweepToHost, HostToSweep>('Sweep Table', parseSweepViewState, parseHostToSweep);

const ui = {
  sort: host.restored?.sort ?? '',
  descending: host.restored?.descending ?? false,
  groupBy: host.restored?.groupBy ?? GROUP_NONE,
  filterText: host.restored?.filterText ?? '',
  status: host.restored?.status ?? '',
};
let sweepDir = host.restored?.sweepDir ?? '';
let table: SweepTable | undefined;
let error = '';
/** Selected run ids (kept across refreshes while those runs exist). */
const selected = new Set<string>();
let renders = 0;

const post = host.post;
function saveState(): void {
  if (sweepDir) host.saveState({ sweepDir, ...ui });
}

// ---------------- layout ----------------
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const app = document.getElementById('app')!;
const toolbar = el('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Sweep table controls' });
const title = el('span', { class: 'sweep-name' }, 'Sweep');
const summary = el('span', { class: 'summary' });
const filterInput = el('input', { id: 'filter', type: 'search', placeholder: 'filter: words, e.g. advmoe seed=1', 'aria-label': 'Filter runs' });
const statusSelect = el('select', { id: 'status', 'aria-label': 'Status' });
const groupSelect = el('select', { id: 'group', 'aria-label': 'Group by' });
const openButtons = (['training', 'robustness', 'routing'] as SweepOpenView[]).map((v) =>
  el('button', { class: 'open', 'data-view': v, title: v === 'routing' ? 'Open the one selected run in the Routing view' : `Open the selected runs in the ${v} view` }, `Open in ${v[0].toUpperCase()}${v.slice(1)}`),
);
const exportButtons = (['csv', 'json', 'tex'] as SweepExportFormat[]).map((f) => el('button', { class: 'export', 'data-format': f }, f === 'tex' ? 'LaTeX' : f.toUpperCase()));
const refreshButton = el('button', { id: 'refresh', title: 'Read the sweep again' }, 'Refresh');
const message = el('div', { class: 'message', role: 'status' });
const tableEl = el('table', { class: 'sweep', 'aria-label': 'Runs of the sweep' });

filterInput.value = ui.filterText;
toolbar.append(
  title,
  summary,
  el('span', { class: 'spacer' }),
  labelled('Filter', filterInput),
  labelled('Status', statusSelect),
  labelled('Group by', groupSelect),
  ...openButtons,
  el('span', { class: 'sep' }),
  ...exportButtons,
  refreshButton,
);
app.append(toolbar, message, tableEl);

function labelled(text: string, control: HTMLElement): HTMLElement {
  const l = el('label', { class: 'control' });
  l.append(el('span', {}, text), control);
  return l;
}

function setOptions(select: HTMLSelectElement, options: [string, string][], value: string): void {
  select.replaceChildren(...options.map(([v, label]) => el('option', { value: v }, label)));
  select.value = options.some(([v]) => v === value) ? value : options[0][0];
}

// ---------------- the table ----------------
function groupKeys(t: SweepTable): string[] | undefined {
  if (ui.groupBy === GROUP_NONE) return undefined;
  if (ui.groupBy === GROUP_ALL_BUT_SEED) return allButSeed(t.axes);
  return t.axes.includes(ui.groupBy) ? [ui.groupBy] : undefined;
}

function visibleRows(t: SweepTable): SweepTableRow[] {
  return filterRows(t.rows, { text: ui.filterText, statuses: ui.status ? [ui.status] : undefined });
}

/** Column ids in display order, beside the header texts groupCells/runCells give. */
function columnIds(t: SweepTable, by: string[] | undefined): string[] {
  const metrics = ['sa', 'ra', 'routerRobustness', 'expertRobustness', 'activeFlops', 'wallSeconds'];
  return by ? [...by, 'runs', 'status', ...metrics, 'collapsed'] : ['runId', ...t.axes, 'status', ...metrics, 'collapsed'];
}

let shownHeader: string[] = [];
let shownRows: string[][] = [];

/** A check box cell that selects (or clears) these runs together: one row's, or every row's in the header. */
function selectCell(tag: 'th' | 'td', runs: string[], label: string): HTMLElement {
  const box = el('input', { type: 'checkbox', 'aria-label': label });
  box.checked = runs.length > 0 && runs.every((id) => selected.has(id));
  box.addEventListener('change', () => {
    for (const id of runs) {
      if (box.checked) selected.add(id);
      else selected.delete(id);
    }
    render();
  });
  const cell = el(tag, { class: 'select' });
  cell.append(box);
  return cell;
}

function render(): void {
  renders++;
  document.body.dataset.renders = String(renders);
  const t = table;
  for (const b of [...openButtons, ...exportButtons]) b.disabled = !t;
  if (!t) {
    message.textContent = error || 'Loading…';
    tableEl.replaceChildren();
    shownHeader = [];
    shownRows = [];
    updateOpenButtons();
    return;
  }
  title.textContent = `Sweep ${t.sweep}`;
  const counts: Record<string, number> = {};
  for (const r of t.rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  summary.textContent = `${t.rows.length} runs: ${Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ')}`;
  setOptions(statusSelect, [['', 'all'], ...Object.keys(counts).sort().map((s): [string, string] => [s, s])], ui.status);
  const groupOptions: [string, string][] = [[GROUP_NONE, 'none (one row per run)'], ...t.axes.map((a): [string, string] => [a, a])];
  if (t.axes.includes('seed') && t.axes.length > 1) groupOptions.push([GROUP_ALL_BUT_SEED, 'every axis but seed (mean ± std over seeds)']);
  setOptions(groupSelect, groupOptions, ui.groupBy);
  ui.groupBy = groupSelect.value;
  ui.status = statusSelect.value;
  for (const id of [...selected]) if (!t.rows.some((r) => r.runId === id)) selected.delete(id);

  const by = groupKeys(t);
  const rows = visibleRows(t);
  const ids = columnIds(t, by);
  if (!ids.includes(ui.sort)) ui.sort = '';
  let cells: { header: string[]; cells: string[][] };
  let rowRuns: string[][];
  if (by) {
    let groups: GroupRow[] = groupRows(rows, by);
    if (ui.sort) groups = sortGroups(groups, ui.sort, ui.descending);
    cells = groupCells(by, groups);
    rowRuns = groups.map((g) => g.runIds);
  } else {
    const sorted = ui.sort ? sortRows(rows, ui.sort, ui.descending) : rows;
    cells = runCells(t, sorted);
    rowRuns = sorted.map((r) => [r.runId]);
  }
  shownHeader = cells.header;
  shownRows = cells.cells;
  message.textContent = rows.length === t.rows.length ? (by ? `Grouped by ${by.join(', ') || '(nothing)'}: mean ± sample std over the runs of each group.` : '') : `${rows.length} of ${t.rows.length} runs match the filter.`;

  const thead = el('thead');
  const hr = el('tr');
  hr.append(selectCell('th', rowRuns.flat(), 'Select every row shown'));
  cells.header.forEach((h, i) => {
    const id = ids[i];
    const sorted = ui.sort === id;
    const th = el('th', { 'data-column': id, tabindex: '0', role: 'columnheader', 'aria-sort': sorted ? (ui.descending ? 'descending' : 'ascending') : 'none', title: 'Sort by this column' }, h + (sorted ? (ui.descending ? ' ▼' : ' ▲') : ''));
    const sortBy = () => {
      if (ui.sort === id) ui.descending = !ui.descending;
      else {
        ui.sort = id;
        ui.descending = false;
      }
      saveState();
      render();
    };
    th.addEventListener('click', sortBy);
    th.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        sortBy();
      }
    });
    hr.append(th);
  });
  thead.append(hr);
  const tbody = el('tbody');
  cells.cells.forEach((row, r) => {
    const runs = rowRuns[r];
    const tr = el('tr', { 'data-runs': runs.join(' ') });
    if (runs.every((id) => selected.has(id))) tr.classList.add('selected');
    tr.append(selectCell('td', runs, `Select ${runs.length > 1 ? `the ${runs.length} runs of this group` : runs[0]}`));
    row.forEach((c, i) => {
      const id = ids[i];
      const td = el('td', { 'data-column': id }, c);
      if (id === 'status') td.classList.add(`status-${c.split(/[ ,]/).pop()}`);
      if (id === 'collapsed' && (c === 'yes' || /^[1-9]/.test(c))) td.classList.add('collapsed');
      if (!['runId', 'status', 'collapsed', 'runs'].includes(id) && !(by ?? tableAxes()).includes(id)) td.classList.add('num');
      tr.append(td);
    });
    tbody.append(tr);
  });
  tableEl.replaceChildren(thead, tbody);
  updateOpenButtons();
  saveState();
}

function tableAxes(): string[] {
  return table?.axes ?? [];
}

function selectedInOrder(): string[] {
  return (table?.rows ?? []).map((r) => r.runId).filter((id) => selected.has(id));
}

function updateOpenButtons(): void {
  const n = selectedInOrder().length;
  for (const b of openButtons) {
    const view = b.dataset.view as SweepOpenView;
    b.disabled = !table || n === 0 || (view === 'routing' && n !== 1);
  }
}

// ---------------- controls ----------------
filterInput.addEventListener('input', () => {
  ui.filterText = filterInput.value;
  render();
});
statusSelect.addEventListener('change', () => {
  ui.status = statusSelect.value;
  render();
});
groupSelect.addEventListener('change', () => {
  ui.groupBy = groupSelect.value;
  ui.sort = '';
  render();
});
for (const b of openButtons) {
  b.addEventListener('click', () => {
    const runIds = selectedInOrder();
    if (runIds.length) post({ type: 'open', view: b.dataset.view as SweepOpenView, runIds });
  });
}
for (const b of exportButtons) {
  b.addEventListener('click', () => {
    if (!table) return;
    const format = b.dataset.format as SweepExportFormat;
    const by = groupKeys(table);
    const data = renderTable(table, format === 'tex' ? 'latex' : format, {
      groupBy: by,
      sort: ui.sort || undefined,
      descending: ui.descending,
      filter: { text: ui.filterText, statuses: ui.status ? [ui.status] : undefined },
    });
    post({ type: 'export', format, fileName: `${table.sweep}${by ? '-grouped' : ''}.${format}`, data });
  });
}
refreshButton.addEventListener('click', () => post({ type: 'refresh' }));

function handle(m: HostToSweep): void {
  if (m.type === 'describe') {
    const d: SweepDescription = {
      type: 'description',
      requestId: m.requestId,
      status: table ? 'shown' : error ? 'error' : 'waiting',
      message: message.textContent ?? '',
      header: shownHeader,
      rows: shownRows,
      selected: selectedInOrder(),
    };
    post(d);
    return;
  }
  sweepDir = m.sweepDir;
  table = m.table;
  error = m.error ?? '';
  render();
}

render();
host.listen(handle);
