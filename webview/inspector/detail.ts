/** Inspector: the selected sample — live re-attacks (debounced, stale answers dropped) and its detail pane. */
import { epsText, pct } from '../shared/format';
import { expertsOf, routingChanged } from '../analysisProtocol';
import { el } from '../shared/dom';
import { epsStep, isOver255, parseEps, snapEps } from './eps';
import { formatScale, hwcToPicture, perturbation, type Perturbation, type Picture } from './images';
import { type AttackChoice, ATTACKS, type Split } from './protocol';
import { updateRows } from './gallery';
import { ATTACK_LABELS, attackSelect, bigAdv, bigClean, bigPert, detail, detailTitle, epsInput, epsText_, exportBtn, freezeInput, freezeLabel, predTable, routingLegend, routingTable, sourceNote, stepsInput } from './skeleton';
import { analysisEps, className, clearCanvas, currentEps, currentSteps, drawPicture, epsMax, imageCache, INSPECT_DEBOUNCE_MS, layerName, numExperts, post, saveState, SELECT_DEBOUNCE_MS, st } from './state';

export function selectSample(id: number, split: Split): void {
  const same = st.selected?.id === id && st.selected.split === split;
  st.selected = { id, split };
  if (!same) {
    st.live = null;
    st.liveError = null;
  }
  saveState();
  updateRows();
  renderDetail();
  // Short debounce: holding an arrow key in the gallery does not start an attack per row.
  if (!same) scheduleInspect(SELECT_DEBOUNCE_MS);
}

export function scheduleInspect(delay = INSPECT_DEBOUNCE_MS): void {
  if (st.inspectTimer) clearTimeout(st.inspectTimer);
  st.inspectTimer = undefined;
  if (!st.selected || !st.model?.trusted) return;
  st.inspectTimer = setTimeout(() => {
    st.inspectTimer = undefined;
    if (!st.selected) return;
    const requestId = st.nextRequestId++;
    st.latestRequestId = requestId;
    st.inspectPending = true;
    st.liveError = null;
    const steps = currentSteps();
    post({
      type: 'inspect',
      requestId,
      id: st.selected.id,
      split: st.selected.split,
      attack: st.controls.attack,
      eps: currentEps(),
      ...(steps !== undefined ? { steps } : {}),
      freezeRouting: st.controls.freezeRouting,
    });
    renderSource();
  }, delay);
}

function controlsChanged(delay = INSPECT_DEBOUNCE_MS): void {
  if (st.controls.attack === 'expert') st.controls.freezeRouting = true;
  if (st.controls.attack === 'router') st.controls.freezeRouting = false;
  syncControls();
  saveState();
  scheduleInspect(delay);
}

function syncControls(): void {
  const max = epsMax();
  // A typed ε beyond the range widens it; the grid holds the values people type (./eps.ts).
  const top = Math.max(max, currentEps());
  epsInput.max = String(top);
  epsInput.step = String(epsStep(top, analysisEps(), currentEps()));
  epsInput.value = String(currentEps());
  if (document.activeElement !== epsText_) epsText_.value = epsInputText(currentEps());
  epsText_.title = epsText(currentEps());
  attackSelect.value = st.controls.attack;
  const steps = currentSteps();
  stepsInput.value = steps !== undefined ? String(steps) : '';
  stepsInput.disabled = st.controls.attack === 'fgsm';
  freezeInput.checked = st.controls.freezeRouting;
  freezeInput.disabled = st.controls.attack === 'expert' || st.controls.attack === 'router';
  freezeLabel.title =
    st.controls.attack === 'expert'
      ? 'The expert attack always runs with the routing frozen to the clean decision'
      : st.controls.attack === 'router'
        ? 'The router attack targets the routing itself: it cannot run with frozen routing'
        : 'Attack the experts with the routing frozen to the clean decision';
  const enabled = !!st.model?.trusted && !!st.selected;
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
  st.controls.eps = snapEps(v, Number(epsInput.step));
  controlsChanged();
});
epsText_.addEventListener('change', () => {
  const v = parseEps(epsText_.value);
  epsText_.setCustomValidity(v === undefined ? 'ε is a number from 0 to 1, e.g. 0.1 or 8/255' : '');
  if (v === undefined) {
    epsText_.reportValidity();
    return;
  }
  st.controls.eps = v;
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
  st.controls.attack = a;
  controlsChanged(0);
});
stepsInput.addEventListener('change', () => {
  const v = Math.round(Number(stepsInput.value));
  if (!Number.isFinite(v) || v < 1) return;
  st.controls.steps = Math.min(1000, v);
  controlsChanged(0);
});
freezeInput.addEventListener('change', () => {
  st.controls.freezeRouting = freezeInput.checked;
  controlsChanged(0);
});

/** Where the detail's numbers come from: the live re-attack when it has answered for the selection, else the analysis row. */
export function detailSource(): 'live' | 'analysis' | 'none' {
  if (!st.selected) return 'none';
  if (st.live && st.live.id === st.selected.id) return 'live';
  if (st.selected.split === 'test' && st.model?.per && st.model.idToIndex.has(st.selected.id)) return 'analysis';
  return 'none';
}

export function analysisRowIndex(): number | undefined {
  return st.selected && st.selected.split === 'test' ? st.model?.idToIndex.get(st.selected.id) : undefined;
}

function renderSource(): void {
  const src = detailSource();
  const r = st.model?.report;
  const parts: string[] = [];
  const i = analysisRowIndex();
  if (src === 'live' && st.live) {
    parts.push(
      `Shown: live re-attack — ${ATTACK_LABELS[st.live.attack]}, ε ${epsText(st.live.eps)}${st.live.frozenRouting ? ', routing frozen to the clean decision' : ''}.`,
    );
    if (i !== undefined && r) {
      const differs = Math.abs(st.live.eps - r.attack.eps) > 1e-9 || st.live.attack !== 'pgd' || st.live.frozenRouting;
      if (differs) parts.push(`The analysis row is PGD at ε ${epsText(r.attack.eps)} (its numbers are in the last row of the table).`);
      else parts.push('Same attack as the analysis row (random starts may differ).');
    }
  } else if (src === 'analysis' && r) {
    parts.push(`Shown: the analysis row (${st.model!.analysisName}: PGD-${r.attack.steps}, ε ${epsText(r.attack.eps)}).`);
    if (!st.model!.trusted) parts.push('Live re-attack needs a trusted workspace.');
  } else if (st.selected && !st.model?.trusted) {
    parts.push('Live inspection needs a trusted workspace.');
  }
  if (st.inspectPending) parts.push('Re-attacking…');
  if (st.liveError) parts.push(`Live re-attack failed: ${st.liveError}`);
  sourceNote.textContent = parts.join(' ');
  sourceNote.dataset.source = src;
  sourceNote.classList.toggle('error', !!st.liveError);
}

interface DetailImages {
  clean: Picture | null;
  adv: Picture | null;
  pert: Perturbation | null;
}

export function detailImages(): DetailImages {
  const src = detailSource();
  if (src === 'live' && st.live) {
    return {
      clean: hwcToPicture(st.live.clean, st.live.shape, 1),
      adv: hwcToPicture(st.live.adversarial, st.live.shape, 1),
      pert: perturbation(st.live.clean, st.live.adversarial, st.live.shape, 1),
    };
  }
  const c = st.selected ? imageCache.get(st.selected.id) : undefined;
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

export function routingRows(): RoutingRow[] {
  const src = detailSource();
  if (src === 'live' && st.live) return st.live.routing.map((r) => ({ ...r }));
  const i = analysisRowIndex();
  const per = st.model?.per;
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

export function renderDetail(): void {
  syncControls();
  exportBtn.disabled = !st.selected || detailSource() === 'none';
  if (!st.selected) {
    detailTitle.textContent = st.model?.per ? 'Select a sample in the gallery' : 'No sample selected';
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
  const label = st.live && st.live.id === st.selected.id ? st.live.label : i !== undefined ? st.model!.per!.labels[i] : undefined;
  detailTitle.textContent = `Sample #${st.selected.id}${st.selected.split === 'train' ? ' (train split)' : ''}${label !== undefined ? ` · label ${className(label)}` : ''}`;
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
    f.cap.textContent = pic ? cap : `${cap.split(' ')[0]} — ${!st.model?.trusted ? 'needs a trusted workspace' : st.imagesMessage && src !== 'live' ? 'unavailable' : 'loading…'}`;
    f.canvas.setAttribute('aria-label', cap);
    f.fig.classList.toggle('empty', !pic);
  }
  if (imgs.pert) bigPert.cap.dataset.scale = String(imgs.pert.scale);
  else delete bigPert.cap.dataset.scale;

  // Predictions: clean vs adversarial (and the analysis row when the live result is shown).
  const rows: { name: string; source: string; pred: number; conf: number }[] = [];
  const per = st.model?.per;
  if (src === 'live' && st.live) {
    rows.push({ name: 'clean', source: 'live', pred: st.live.predClean, conf: st.live.confClean });
    rows.push({ name: `adversarial (${ATTACK_LABELS[st.live.attack]}, ε ${epsText(st.live.eps)}${st.live.frozenRouting ? ', frozen routing' : ''})`, source: 'live', pred: st.live.predAdv, conf: st.live.confAdv });
    if (per && i !== undefined) rows.push({ name: `adversarial — analysis row (PGD, ε ${epsText(st.model!.report!.attack.eps)})`, source: 'analysis', pred: per.predAdv[i], conf: per.confAdv[i] });
  } else if (src === 'analysis' && per && i !== undefined) {
    rows.push({ name: 'clean', source: 'analysis', pred: per.predClean[i], conf: per.confClean[i] });
    rows.push({ name: `adversarial (PGD, ε ${epsText(st.model!.report!.attack.eps)})`, source: 'analysis', pred: per.predAdv[i], conf: per.confAdv[i] });
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
  const frozen = src === 'live' && !!st.live?.frozenRouting;
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
