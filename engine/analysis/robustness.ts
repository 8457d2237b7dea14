/**
 * Robustness analysis of a trained model, following DESIGN.md "Metric definitions":
 * SA, RA (PGD-k of the EvalConfig), router robustness, expert robustness, per-expert SA/RA, an attack
 * table, the RA-vs-ε curve, per-layer routing statistics, router-expert mismatch cells, inference cost.
 *
 * Everything runs batch by batch (memory), reports progress in units of forward/backward passes, and
 * can be cancelled between passes. Per-sample values are read once per batch with `await data()`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { apgdCe } from '../attacks/apgd';
import { yieldToLoop } from '../attacks/common';
import { fgsm, pgd } from '../attacks/pgd';
import { expertAttack, routerAttack } from '../attacks/routing';
import type { CancelSignal } from '../attacks/types';
import type { AttackConfig, EvalConfig } from '../config/types';
import type { ForwardOptions, Model, RoutingMode } from '../models/types';
import { measureLatency } from '../models/sparse';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { Batches, type EvalData, predictions } from './data';
import type { AttackResult, InferenceCost, LayerRoutingStats, MismatchCells, PerSampleData, RobustnessReport } from './types';

/** Which parts to compute; all default to true. SA, RA, layer stats and mismatch are always computed. */
export interface AnalysisParts {
  /** Router and expert robustness (MoE models only). */
  routing?: boolean;
  /** SA/RA with routing forced to each expert: N extra PGD runs. */
  perExpert?: boolean;
  /** FGSM and APGD-CE besides PGD (router/expert rows need `routing`). */
  attackTable?: boolean;
  /** RA over `cfg.epsCurve`: one PGD run per ε (ε = 0 and ε = cfg.attack.eps reuse SA and RA). */
  curve?: boolean;
  /** Measure forward latency (a few timed passes of one batch). */
  latency?: boolean;
}

/** What one batch produced; tensors are valid only during the `onBatch` call (for exports and tests). */
export interface BatchDetail {
  /** Sample ids (indices into the evaluated subset). */
  ids: number[];
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  /** Hard clean routing masks, one [B, N] per MoE layer. */
  cleanMasks: tf.Tensor2D[];
  /** Inputs of the full attack (PGD-k, defines RA). */
  xAdv: tf.Tensor4D;
  xRouter?: tf.Tensor4D;
  xExpert?: tf.Tensor4D;
  /** PGD inputs against the model forced to each expert. */
  xPerExpert?: tf.Tensor4D[];
}

export interface AnalysisOptions {
  /** Random starts of every attack, drawn in a fixed order, so a seed reproduces the report. */
  rng: Rng;
  /** Samples per batch (default 64). */
  batchSize?: number;
  onProgress?: (done: number, total: number, message: string) => void;
  signal?: CancelSignal;
  parts?: AnalysisParts;
  onBatch?: (detail: BatchDetail) => void;
  /** A dense counterpart of an MoE model (same backbone and width) to time beside it for `cost.latencyMs`. */
  denseCounterpart?: Model;
  /** The report over the samples done so far, after each batch but the last (no `perSample`; `seconds` so far). */
  onPartial?: (report: RobustnessReport, samplesDone: number, samplesTotal: number) => void;
}

const EVAL: ForwardOptions = { training: false, updateBnStats: false };

function attackPasses(cfg: AttackConfig): number {
  return cfg.restarts * (cfg.steps + 1);
}

/** Predictions (argmax) of `model` on x under `routing`. */
async function predict(model: Model, x: tf.Tensor4D, routing?: RoutingMode): Promise<Int32Array> {
  return (await predictWithConf(model, x, routing)).pred;
}

async function predictWithConf(model: Model, x: tf.Tensor4D, routing?: RoutingMode): Promise<{ pred: Int32Array; conf: Float32Array }> {
  const logits = tf.tidy(() => model.forward(x, { ...EVAL, routing }).logits);
  try {
    return await predictions(logits);
  } finally {
    logits.dispose();
  }
}

function countCorrect(pred: Int32Array, y: Int32Array): number {
  let c = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === y[i]) c++;
  return c;
}

/** Hard masks (kept tensors) and their values, for the routers' own decisions on x. */
async function routerMasks(model: Model, x: tf.Tensor4D): Promise<{ masks: tf.Tensor2D[]; values: Float32Array[]; probs: Float32Array[] }> {
  const { masks, probs } = tf.tidy(() => {
    const out = model.forward(x, { ...EVAL, routing: { kind: 'router' } });
    return { masks: out.routing.map((r) => r.mask.clone()), probs: out.routing.map((r) => r.probs.clone()) };
  });
  const values = await Promise.all(masks.map(async (m) => Float32Array.from(await m.data())));
  const probValues = await Promise.all(probs.map(async (p) => Float32Array.from(await p.data())));
  tf.dispose(probs);
  return { masks, values, probs: probValues };
}

function maskDiffers(a: Float32Array, b: Float32Array, n: number, i: number): boolean {
  for (let e = 0; e < n; e++) if (a[i * n + e] > 0.5 !== b[i * n + e] > 0.5) return true;
  return false;
}

/** Scales an attack to another ε, keeping the step/ε ratio (so α = ε/4 stays α = ε/4). */
export function atEps(cfg: AttackConfig, eps: number): AttackConfig {
  const stepSize = cfg.eps > 0 ? (cfg.stepSize * eps) / cfg.eps : cfg.stepSize;
  return { ...cfg, eps, stepSize };
}

export function fgsmSettings(cfg: AttackConfig): AttackConfig {
  return { norm: cfg.norm, eps: cfg.eps, stepSize: cfg.eps, steps: 1, randomStart: false, restarts: 1 };
}

export function apgdSettings(cfg: AttackConfig): AttackConfig {
  return { norm: cfg.norm, eps: cfg.eps, stepSize: 2 * cfg.eps, steps: cfg.steps, randomStart: true, restarts: cfg.restarts };
}

export function inferenceCost(model: Model, latency?: InferenceCost['latencyMs']): InferenceCost {
  const f = model.flops();
  return { denseFlops: f.dense, activeFlops: f.active, reduction: f.dense > 0 ? 1 - f.active / f.dense : 0, ...(latency ? { latencyMs: latency } : {}) };
}

export async function analyzeRobustness(model: Model, data: EvalData, cfg: EvalConfig, opts: AnalysisOptions): Promise<RobustnessReport> {
  const started = performance.now();
  const parts = { routing: true, perExpert: true, attackTable: true, curve: true, latency: true, ...opts.parts };
  // Forcing one expert everywhere is a configuration a top-1 model was trained for; a top-k (k > 1) model never ran
  // with one expert alone, so its figures would describe another network (README "Metric definitions").
  const perExpertNote =
    parts.perExpert && model.moeLayers.length > 0 && model.topK > 1
      ? `n/a: the model routes each input to k = ${model.topK} experts; one expert alone is a configuration it was never trained for`
      : undefined;
  if (perExpertNote) parts.perExpert = false;
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
  const batches = new Batches(model, data, cfg.samples);
  const n = batches.n;
  if (n === 0) throw new AdvMoEError('INVALID_ARGUMENT', 'no samples to evaluate');
  const moe = model.moeLayers.length > 0;
  const L = model.moeLayers.length;
  const N = model.numExperts;
  const C = model.numClasses;
  const attack = cfg.attack;
  const cancelled = () => {
    if (opts.signal?.aborted) throw new AdvMoEError('CANCELLED', 'analysis cancelled');
  };
  // Each metric draws its random starts from its own stream, forked from one draw of `opts.rng`: a metric's figure
  // then depends on the seed, the samples and the batch size only, not on which other parts run beside it (train's
  // final analysis and `advmoe eval` agree on the metrics both compute).
  const stream = metricStreams(opts.rng);

  // The ε of the curve that need their own PGD run.
  const curveEps = parts.curve ? cfg.epsCurve : [];
  const curveRuns = curveEps.filter((e) => e !== 0 && e !== attack.eps);
  const pgdPasses = attackPasses(attack);
  const perBatchUnits =
    2 + pgdPasses + 1 +
    (moe && parts.routing ? 2 * (pgdPasses + 2) : 0) +
    (moe && parts.perExpert ? N * (pgdPasses + 2) : 0) +
    (parts.attackTable ? 3 + attackPasses(apgdSettings(attack)) + 1 : 0) +
    curveRuns.length * (pgdPasses + 1);
  const numBatches = Math.ceil(n / batchSize);
  const total = numBatches * perBatchUnits;
  let done = 0;
  const progress = (units: number, message: string) => {
    done += units;
    opts.onProgress?.(Math.min(done, total), total, message);
  };

  // Accumulators.
  let correctClean = 0;
  let correctAdv = 0;
  let keptDecisions = 0;
  let correctRouter = 0;
  let correctExpert = 0;
  let correctFgsm = 0;
  let correctApgd = 0;
  const perExpertSa = new Array<number>(N).fill(0);
  const perExpertRa = new Array<number>(N).fill(0);
  const curveCorrect = new Map<number, number>(curveRuns.map((e) => [e, 0]));
  const changed = new Array<number>(L).fill(0);
  const loadClean = Array.from({ length: L }, () => new Array<number>(N).fill(0));
  const loadAdv = Array.from({ length: L }, () => new Array<number>(N).fill(0));
  const perClassClean = Array.from({ length: L }, () => Array.from({ length: C }, () => new Array<number>(N).fill(0)));
  const perClassAdv = Array.from({ length: L }, () => Array.from({ length: C }, () => new Array<number>(N).fill(0)));
  const top1 = Array.from({ length: L }, () => new Array<number>(N).fill(0));
  const nonFinite = new Array<number>(L).fill(0);
  /** Per layer: how many clean inputs got each routing decision (expert set, as "e1,e2"). */
  const decisions = Array.from({ length: L }, () => new Map<string, number>());
  const cells: MismatchCells = { keptRight: [], keptWrong: [], changedRight: [], changedWrong: [] };
  const k = model.topK;
  const perSample: PerSampleData = {
    ids: [], labels: [], predClean: [], confClean: [], predAdv: [], confAdv: [], k,
    routeClean: Array.from({ length: L }, () => []),
    routeAdv: Array.from({ length: L }, () => []),
  };
  let latency: InferenceCost['latencyMs'];

  for (let b = 0; b < numBatches; b++) {
    cancelled();
    const from = b * batchSize;
    const to = Math.min(n, from + batchSize);
    const B = to - from;
    const tag = `batch ${b + 1}/${numBatches}`;
    const owned: tf.Tensor[] = [];
    const own = <T extends tf.Tensor>(t: T): T => {
      owned.push(t);
      return t;
    };
    try {
      const { x, y } = batches.slice(from, to);
      own(x);
      own(y);
      const yv = batches.labels.subarray(from, to);
      const ids = Array.from({ length: B }, (_, i) => from + i);

      // Clean pass: predictions and routing.
      const { pred: predClean, conf: confClean } = await predictWithConf(model, x);
      correctClean += countCorrect(predClean, yv);
      const clean = await routerMasks(model, x);
      clean.masks.forEach(own);
      if (b === 0 && parts.latency) {
        if (moe) {
          const lat = measureLatency(model, B, 5, { input: x, dense: opts.denseCounterpart });
          latency = { moe: lat.sparse.median / B, moeMasked: lat.masked.median / B, batch: B };
          if (lat.dense) latency.dense = lat.dense.median / B;
        } else {
          latency = { dense: measureLatency(model, B, 5, { input: x }).masked.median / B, batch: B };
        }
      }
      progress(2, `${tag}: clean`);

      // Full attack (defines RA, routing change, mismatch).
      cancelled();
      const full = await pgd(model, x, y, attack, { rng: stream('pgd'), signal: opts.signal });
      own(full.xAdv);
      const { pred: predAdv, conf: confAdv } = await predictWithConf(model, full.xAdv);
      correctAdv += countCorrect(predAdv, yv);
      const adv = await routerMasks(model, full.xAdv);
      adv.masks.forEach(own);
      progress(pgdPasses + 1, `${tag}: PGD-${attack.steps}`);

      for (let i = 0; i < B; i++) {
        perSample.ids.push(ids[i]);
        perSample.labels.push(yv[i]);
        perSample.predClean.push(predClean[i]);
        perSample.confClean.push(round6(confClean[i]));
        perSample.predAdv.push(predAdv[i]);
        perSample.confAdv.push(round6(confAdv[i]));
        let anyChanged = false;
        for (let l = 0; l < L; l++) {
          pushExperts(perSample.routeClean[l], clean.values[l], N, i, k);
          pushExperts(perSample.routeAdv[l], adv.values[l], N, i, k);
          const decision = perSample.routeClean[l].slice(-k).join();
          decisions[l].set(decision, (decisions[l].get(decision) ?? 0) + 1);
          const differs = maskDiffers(clean.values[l], adv.values[l], N, i);
          if (differs) {
            changed[l]++;
            anyChanged = true;
          }
          let best = 0;
          let finite = true;
          for (let e = 0; e < N; e++) {
            const p = clean.probs[l][i * N + e];
            if (!Number.isFinite(p)) finite = false;
            if (p > clean.probs[l][i * N + best]) best = e;
            if (clean.values[l][i * N + e] > 0.5) {
              loadClean[l][e]++;
              perClassClean[l][yv[i]][e]++;
            }
            if (adv.values[l][i * N + e] > 0.5) {
              loadAdv[l][e]++;
              perClassAdv[l][yv[i]][e]++;
            }
          }
          if (finite) top1[l][best]++;
          else nonFinite[l]++;
        }
        if (moe) {
          const right = predAdv[i] === yv[i];
          const cell = anyChanged ? (right ? cells.changedRight : cells.changedWrong) : right ? cells.keptRight : cells.keptWrong;
          cell.push(ids[i]);
        }
      }

      const detail: BatchDetail = { ids, x, y, cleanMasks: clean.masks, xAdv: full.xAdv };

      if (moe && parts.routing) {
        cancelled();
        const r = await routerAttack(model, x, y, attack, { rng: stream('router'), signal: opts.signal });
        own(r.xAdv);
        const routed = await routerMasks(model, r.xAdv);
        routed.masks.forEach((m) => m.dispose());
        for (let l = 0; l < L; l++) for (let i = 0; i < B; i++) if (!maskDiffers(clean.values[l], routed.values[l], N, i)) keptDecisions++;
        correctRouter += countCorrect(await predict(model, r.xAdv), yv);
        progress(pgdPasses + 2, `${tag}: router attack`);

        cancelled();
        const e = await expertAttack(model, x, y, attack, { rng: stream('expert'), signal: opts.signal, cleanMasks: clean.masks });
        own(e.xAdv);
        correctExpert += countCorrect(await predict(model, e.xAdv, { kind: 'fixed', masks: clean.masks }), yv);
        progress(pgdPasses + 2, `${tag}: expert attack`);
        detail.xRouter = r.xAdv;
        detail.xExpert = e.xAdv;
      }

      if (moe && parts.perExpert) {
        detail.xPerExpert = [];
        for (let ex = 0; ex < N; ex++) {
          cancelled();
          const routing: RoutingMode = { kind: 'force', expert: ex };
          perExpertSa[ex] += countCorrect(await predict(model, x, routing), yv);
          const o = await pgd(model, x, y, attack, { rng: stream(`expert-${ex}-alone`), signal: opts.signal, routing });
          own(o.xAdv);
          perExpertRa[ex] += countCorrect(await predict(model, o.xAdv, routing), yv);
          detail.xPerExpert.push(o.xAdv);
          progress(pgdPasses + 2, `${tag}: expert ${ex} alone`);
        }
      }

      if (parts.attackTable) {
        cancelled();
        const f = await fgsm(model, x, y, fgsmSettings(attack), { rng: stream('fgsm'), signal: opts.signal });
        correctFgsm += countCorrect(await predict(model, own(f.xAdv)), yv);
        progress(3, `${tag}: FGSM`);
        cancelled();
        const a = await apgdCe(model, x, y, apgdSettings(attack), { rng: stream('apgd-ce'), signal: opts.signal });
        correctApgd += countCorrect(await predict(model, own(a.xAdv)), yv);
        progress(attackPasses(apgdSettings(attack)) + 1, `${tag}: APGD-CE`);
      }

      for (const eps of curveRuns) {
        cancelled();
        const o = await pgd(model, x, y, atEps(attack, eps), { rng: stream(`pgd-eps-${eps}`), signal: opts.signal });
        curveCorrect.set(eps, curveCorrect.get(eps)! + countCorrect(await predict(model, own(o.xAdv)), yv));
        progress(pgdPasses + 1, `${tag}: PGD at ε=${eps}`);
      }

      opts.onBatch?.(detail);
    } finally {
      tf.dispose(owned);
    }
    if (to < n) opts.onPartial?.(report(to, false), to, n);
    await yieldToLoop();
  }
  return report(n, true);

  /** The report over the first `m` samples (all accumulators hold exactly those). */
  function report(m: number, final: boolean): RobustnessReport {
    const sa = correctClean / m;
    const ra = correctAdv / m;
    const layers: LayerRoutingStats[] = model.moeLayers.map((info, l) => {
      const share = Math.max(...top1[l]) / m;
      const decisionShare = Math.max(0, ...decisions[l].values()) / m;
      const decisionEntropy = normalisedEntropy([...decisions[l].values()], m, binomial(N, k));
      return {
        layer: info.name,
        changeRate: changed[l] / m,
        loadClean: loadClean[l].map((c) => c / m),
        loadAdv: loadAdv[l].map((c) => c / m),
        perClassClean: perClassClean[l].map((row) => row.slice()),
        perClassAdv: perClassAdv[l].map((row) => row.slice()),
        // Collapsed: (nearly) every input gets the same decision, so routing carries no information (with k = N
        // every input gets all experts: nothing to collapse). For k = 1 this is "> 90% of inputs to one expert".
        collapsed: nonFinite[l] > 0 || (k < N && decisionShare > 0.9),
        top1Share: share,
        decisionShare,
        decisionEntropy,
        nonFinite: nonFinite[l],
      };
    });

    const attacks: AttackResult[] = [];
    if (parts.attackTable) {
      attacks.push({ name: 'fgsm', settings: fgsmSettings(attack), accuracy: correctFgsm / m });
      attacks.push({ name: 'pgd', settings: attack, accuracy: ra });
      attacks.push({ name: 'apgd-ce', settings: apgdSettings(attack), accuracy: correctApgd / m });
      if (moe && parts.routing) {
        attacks.push({ name: 'router', settings: attack, accuracy: correctRouter / m });
        attacks.push({ name: 'expert', settings: attack, accuracy: correctExpert / m });
      }
    }

    return {
      samples: m,
      sa,
      ra,
      attack,
      routerRobustness: moe && parts.routing ? { settings: attack, decisionsKept: keptDecisions / (m * L), accuracy: correctRouter / m } : null,
      expertRobustness: moe && parts.routing ? { settings: attack, accuracy: correctExpert / m } : null,
      perExpert: moe && parts.perExpert ? perExpertSa.map((c, e) => ({ expert: e, sa: c / m, ra: perExpertRa[e] / m })) : [],
      ...(perExpertNote ? { perExpertNote } : {}),
      attacks,
      raCurve: curveEps.map((eps) => ({ eps, ra: eps === 0 ? sa : eps === attack.eps ? ra : curveCorrect.get(eps)! / m })),
      layers,
      mismatch: moe
        ? { keptRight: cells.keptRight.slice(), keptWrong: cells.keptWrong.slice(), changedRight: cells.changedRight.slice(), changedWrong: cells.changedWrong.slice() }
        : null,
      cost: inferenceCost(model, latency),
      ...(final ? { perSample } : {}),
      seconds: (performance.now() - started) / 1000,
    };
  }
}

/** Named random streams, each `new Rng` of (one draw of `rng`) mixed with a hash of its name; created once. */
export function metricStreams(rng: Rng): (name: string) => Rng {
  const base = rng.nextU32();
  const made = new Map<string, Rng>();
  return (name) => {
    let r = made.get(name);
    if (!r) {
      // FNV-1a of the name.
      let h = 0x811c9dc5;
      for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
      made.set(name, (r = new Rng((base ^ h) >>> 0)));
    }
    return r;
  };
}

/** Entropy of the distribution `counts / total` over log(`outcomes`), in [0, 1] (0 with a single outcome). */
export function normalisedEntropy(counts: readonly number[], total: number, outcomes: number): number {
  if (outcomes <= 1 || total <= 0) return 0;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / total) * Math.log(c / total);
  return h / Math.log(outcomes);
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** Appends the k experts selected for sample i (ascending) from a hard [B, N] mask's values. */
function pushExperts(out: number[], mask: Float32Array, n: number, i: number, k: number): void {
  let pushed = 0;
  for (let e = 0; e < n && pushed < k; e++) {
    if (mask[i * n + e] > 0.5) {
      out.push(e);
      pushed++;
    }
  }
  // A mask with fewer than k ones (not produced by top-k routing) is padded with -1 rather than shifting columns.
  for (; pushed < k; pushed++) out.push(-1);
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;
