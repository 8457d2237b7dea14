/**
 * Robustness view: SA, RA, router and expert robustness of one or more runs side by side (grouped bars, one colour
 * per run), RA-vs-ε curves, the per-attack table with its settings, per-expert SA/RA, routing change rate per MoE
 * layer and inference cost. Fills in live while an evaluation streams partial reports. This module renders (throttled)
 * and handles the host's messages (./protocol.ts); state.ts, skeleton.ts, cards.ts, charts.ts, tables.ts and
 * export.ts hold the rest.
 */
import { type HostToRobustness, type RobDescriptionMessage } from './protocol';
import { headCache, renderRunCard } from './cards';
import { drawn, renderBars, renderCurves, renderLayers } from './charts';
import { app, banner, bannerTextEl, emptyMsg, epsInput, main, runsEl } from './skeleton';
import { host, MIN_RENDER_INTERVAL_MS, post, reportOf, runs, type RunView, saveState, ui, view } from './state';
import { renderAttacks, renderCost, renderPerExpert } from './tables';

// ---------------- render ----------------
/** Identifies a focused control or mark across re-renders (which rebuild the elements). */
const KEY_ATTRS = ['data-run', 'data-metric', 'data-layer', 'data-attack', 'data-eps', 'data-expert', 'data-format'];
function keyOf(e: Element | null): string | undefined {
  if (!e || e === document.body || !app.contains(e)) return undefined;
  const parts = [e.tagName.toLowerCase(), e.getAttribute('class') ?? ''];
  for (const a of KEY_ATTRS) if (e.hasAttribute(a)) parts.push(`${a}=${e.getAttribute(a)}`);
  const row = e.closest('tr[data-attack], tr[data-expert], tr[data-run]');
  if (row && row !== e) parts.push(`row:${keyOf(row) ?? ''}`);
  return parts.join('|');
}
function restoreFocus(key: string): void {
  const [tag] = key.split('|');
  for (const c of app.querySelectorAll<HTMLElement | SVGElement>(tag)) {
    if (keyOf(c) === key) {
      c.focus({ preventScroll: true });
      return;
    }
  }
}

let renderCount = 0;
function render(): void {
  renderCount++;
  document.body.dataset.renders = String(renderCount);
  epsInput.checked = ui.epsIn255;
  banner.hidden = view.bannerText === undefined;
  bannerTextEl.textContent = view.bannerText ?? '';
  const focusKey = keyOf(document.activeElement);
  for (const id of headCache.keys()) if (!runs.some((r) => r.data.runId === id)) headCache.delete(id);
  runsEl.replaceChildren(...runs.map((r, i) => renderRunCard(r, i)));
  const shown = runs.map((_, i) => i).filter((i) => reportOf(runs[i]) !== undefined);
  emptyMsg.hidden = shown.length > 0;
  emptyMsg.textContent = !view.initialised
    ? 'Waiting for runs…'
    : runs.length === 0
      ? 'No runs shown. Use “Add runs…”, or “AdvMoE: Show Robustness” on a run.'
      : 'No robustness analysis to show yet' + (view.trusted ? ': click Evaluate on a run.' : ' (evaluations need a trusted workspace; run `advmoe eval <run-id>` to make one).');
  main.hidden = shown.length === 0;
  renderBars(shown);
  renderCurves(shown);
  renderAttacks(shown);
  renderPerExpert(shown);
  renderLayers(shown);
  renderCost(shown);
  if (focusKey && keyOf(document.activeElement) !== focusKey) restoreFocus(focusKey);
  // What this render drew with (tests wait for it).
  document.body.dataset.rendered = runs
    .map((r) => `${r.data.runId}:${r.live ? `live-${r.live.done}-${r.live.final}` : (r.data.analysis?.name ?? 'none')}:${r.running}`)
    .join('|');
}

let renderTimer: ReturnType<typeof setTimeout> | undefined;
let lastRenderAt = -Infinity;
export function scheduleRender(): void {
  if (renderTimer !== undefined) return;
  const wait = Math.max(0, lastRenderAt + MIN_RENDER_INTERVAL_MS - performance.now());
  renderTimer = setTimeout(() => {
    renderTimer = undefined;
    lastRenderAt = performance.now();
    safeRender();
  }, wait);
}
function safeRender(): void {
  try {
    render();
  } catch (e) {
    post({ type: 'log', level: 'error', message: `render failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` });
  }
}
export function flushRender(): void {
  if (renderTimer !== undefined) {
    clearTimeout(renderTimer);
    renderTimer = undefined;
    lastRenderAt = performance.now();
    safeRender();
  }
}
let lastWidth = 0;
new ResizeObserver(() => {
  const w = main.clientWidth;
  if (w !== lastWidth) {
    lastWidth = w;
    scheduleRender();
  }
}).observe(main);

// ---------------- messages ----------------
function describe(requestId: number): RobDescriptionMessage {
  return {
    type: 'description',
    requestId,
    runs: runs.map((r) => ({
      runId: r.data.runId,
      analysis: r.data.analysis?.name,
      error: r.data.error,
      live: r.live !== undefined,
      progress: runsEl.querySelector(`.progress[data-run="${CSS.escape(r.data.runId)}"] .progress-text`)?.textContent ?? undefined,
    })),
    bars: drawn.bars,
    curves: drawn.curves,
    layers: drawn.layers,
    attackRows: drawn.attackRows,
    error: view.bannerText,
  };
}

function handle(msg: HostToRobustness): void {
  switch (msg.type) {
    case 'init': {
      view.initialised = true;
      view.trusted = msg.trusted;
      const old = new Map(runs.map((r) => [r.data.runId, r]));
      const running = new Set(msg.running ?? []);
      const next = msg.runs.map((d): RunView => {
        const prev = old.get(d.runId);
        const isRunning = running.has(d.runId) || (msg.running === undefined && !!prev?.running);
        return { data: d, running: isRunning, live: isRunning ? prev?.live : undefined, note: prev?.note };
      });
      runs.splice(0, runs.length, ...next);
      saveState();
      scheduleRender();
      break;
    }
    case 'run': {
      const r = runs.find((x) => x.data.runId === msg.run.runId);
      if (r) {
        r.data = msg.run;
        // The saved report replaces a finished live one; a running evaluation keeps showing its own.
        if (r.live?.final) {
          r.live = undefined;
          delete ui.selected[r.data.runId]; // the host shows the new (newest) analysis
          saveState();
        }
      } else {
        runs.push({ data: msg.run, running: false });
        saveState();
      }
      scheduleRender();
      break;
    }
    case 'job': {
      const r = runs.find((x) => x.data.runId === msg.runId);
      if (!r) return;
      const wasRunning = r.running;
      r.running = msg.running;
      r.note = msg.message;
      r.activity = msg.running ? msg.activity : undefined;
      // A new evaluation starts from nothing; a running one's activity update keeps what it has drawn.
      if (msg.running && !wasRunning) r.live = undefined;
      else if (r.live && !r.live.final) r.live = undefined; // stopped early: back to the saved analysis
      scheduleRender();
      break;
    }
    case 'partial': {
      const r = runs.find((x) => x.data.runId === msg.runId);
      if (!r) {
        post({ type: 'log', level: 'warn', message: `robustness view: report for run ${msg.runId}, which is not shown` });
        return;
      }
      r.live = { report: msg.report, done: msg.samplesDone, total: msg.samplesTotal, final: msg.final };
      r.running = !msg.final;
      r.note = undefined;
      scheduleRender();
      break;
    }
    case 'describe':
      flushRender();
      post(describe(msg.requestId));
      break;
  }
}

render();
host.listen(handle, (error) => {
  view.bannerText = `Ignored an update from the extension: ${error}`;
  scheduleRender();
});
