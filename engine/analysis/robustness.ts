/**
 * Robustness analysis of a trained model, following README "Metric definitions": SA, RA (PGD-k of the EvalConfig),
 * router robustness, expert robustness, per-expert SA/RA, an attack table, the RA-vs-ε curve, per-layer routing
 * statistics, router-expert mismatch cells, inference cost.
 *
 * One batch loop (memory): each batch's clean and full-attack passes are made once, then every metric's probe
 * (probes.ts) adds its part. Progress is counted in forward/backward passes; a cancel is seen between passes and,
 * through the attacks' signal, inside them. Per-sample values are read once per batch with `await data()`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { yieldToLoop } from '../attacks/common';
import { pgd } from '../attacks/pgd';
import type { CancelSignal } from '../attacks/types';
import type { EvalConfig } from '../config/types';
import type { Model } from '../models/types';
import { measureLatency } from '../models/sparse';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { Batches, type EvalData } from './data';
import {
  AttackTableProbe,
  CurveProbe,
  PerExpertProbe,
  RouterExpertProbe,
  RoutingStatsProbe,
  apgdSettings,
  atEps,
  attackPasses,
  checkCancelled,
  countCorrect,
  fgsmSettings,
  predictWithConf,
  routerDecisions,
  type BatchView,
  type Probe,
  type ProbeEnv,
} from './probes';
import type { InferenceCost, RobustnessReport } from './types';

export { apgdSettings, atEps, fgsmSettings };
export { normalisedEntropy } from './probes';

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

export function inferenceCost(model: Model, latency?: InferenceCost['latencyMs']): InferenceCost {
  const f = model.flops();
  return { denseFlops: f.dense, activeFlops: f.active, reduction: f.dense > 0 ? 1 - f.active / f.dense : 0, ...(latency ? { latencyMs: latency } : {}) };
}

/** The probes an analysis runs, by its parts (SA, RA, layer statistics and mismatch always). */
interface Probes {
  stats: RoutingStatsProbe;
  routing?: RouterExpertProbe;
  perExpert?: PerExpertProbe;
  table?: AttackTableProbe;
  curve?: CurveProbe;
  perExpertNote?: string;
  latency: boolean;
}

function chooseProbes(env: ProbeEnv, cfg: EvalConfig, opts: AnalysisOptions): Probes {
  const { model } = env;
  const parts = { routing: true, perExpert: true, attackTable: true, curve: true, latency: true, ...opts.parts };
  const moe = model.moeLayers.length > 0;
  // Forcing one expert everywhere is a configuration a top-1 model was trained for; a top-k (k > 1) model never ran
  // with one expert alone, so its figures would describe another network (README "Metric definitions").
  const perExpertNote =
    parts.perExpert && moe && model.topK > 1
      ? `n/a: the model routes each input to k = ${model.topK} experts; one expert alone is a configuration it was never trained for`
      : undefined;
  return {
    stats: new RoutingStatsProbe(model),
    routing: moe && parts.routing ? new RouterExpertProbe(env) : undefined,
    perExpert: moe && parts.perExpert && !perExpertNote ? new PerExpertProbe(env) : undefined,
    table: parts.attackTable ? new AttackTableProbe(env) : undefined,
    curve: parts.curve ? new CurveProbe(env, cfg.epsCurve.filter((e) => e !== 0 && e !== cfg.attack.eps)) : undefined,
    perExpertNote,
    latency: parts.latency,
  };
}

/** Timed forwards of the first batch: the sparse and masked MoE (and a dense counterpart), or the dense model. */
function latencyOf(model: Model, x: tf.Tensor4D, dense: Model | undefined): InferenceCost['latencyMs'] {
  const B = x.shape[0];
  if (model.moeLayers.length === 0) return { dense: measureLatency(model, B, 5, { input: x }).masked.median / B, batch: B };
  const lat = measureLatency(model, B, 5, { input: x, dense });
  return { moe: lat.sparse.median / B, moeMasked: lat.masked.median / B, batch: B, ...(lat.dense ? { dense: lat.dense.median / B } : {}) };
}

export async function analyzeRobustness(model: Model, data: EvalData, cfg: EvalConfig, opts: AnalysisOptions): Promise<RobustnessReport> {
  const started = performance.now();
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
  const batches = new Batches(model, data, cfg.samples);
  const n = batches.n;
  if (n === 0) throw new AdvMoEError('INVALID_ARGUMENT', 'no samples to evaluate');
  const numBatches = Math.ceil(n / batchSize);
  let done = 0;
  let total = 0;
  const env: ProbeEnv = {
    model,
    attack: cfg.attack,
    // Each metric draws its random starts from its own stream, forked from one draw of `opts.rng`: a metric's figure
    // then depends on the seed, the samples and the batch size only, not on which other parts run beside it (train's
    // final analysis and `advmoe eval` agree on the metrics both compute).
    stream: metricStreams(opts.rng),
    signal: opts.signal,
    progress: (units, message) => {
      done += units;
      opts.onProgress?.(Math.min(done, total), total, message);
    },
  };
  const probes = chooseProbes(env, cfg, opts);
  const extra = [probes.routing, probes.perExpert, probes.table, probes.curve].filter((p): p is NonNullable<typeof p> => !!p);
  // Per batch: the clean pass (2), the full attack and its prediction, then each probe's passes.
  total = numBatches * (2 + attackPasses(cfg.attack) + 1 + extra.reduce((s, p) => s + p.passes, 0));
  const counts = { clean: 0, adv: 0 };
  let latency: InferenceCost['latencyMs'];

  for (let b = 0; b < numBatches; b++) {
    checkCancelled(opts.signal);
    const from = b * batchSize;
    const to = Math.min(n, from + batchSize);
    const owned: tf.Tensor[] = [];
    try {
      const view = await cleanAndFullPasses(env, batches, from, to, `batch ${b + 1}/${numBatches}`, owned);
      if (b === 0 && probes.latency) latency = latencyOf(model, view.x, opts.denseCounterpart);
      counts.clean += countCorrect(view.predClean, view.yv);
      counts.adv += countCorrect(view.predAdv, view.yv);
      for (const probe of [probes.stats as Probe, ...extra]) await probe.batch(view);
      opts.onBatch?.({
        ids: view.ids, x: view.x, y: view.y, cleanMasks: view.clean.masks, xAdv: view.xAdv,
        ...(probes.routing ? { xRouter: probes.routing.xRouter, xExpert: probes.routing.xExpert } : {}),
        ...(probes.perExpert ? { xPerExpert: probes.perExpert.xPerExpert } : {}),
      });
    } finally {
      tf.dispose(owned);
    }
    if (to < n) opts.onPartial?.(assembleReport(env, cfg, probes, counts, latency, to, started, false), to, n);
    await yieldToLoop();
  }
  return assembleReport(env, cfg, probes, counts, latency, n, started, true);
}

/** A batch with its clean pass (predictions, routing) and its full attack (PGD-k: RA, routing change, mismatch). */
async function cleanAndFullPasses(env: ProbeEnv, batches: Batches, from: number, to: number, tag: string, owned: tf.Tensor[]): Promise<BatchView> {
  const { model, attack, signal } = env;
  const own = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  const { x, y } = batches.slice(from, to);
  own(x);
  own(y);
  const yv = batches.labels.subarray(from, to);
  const ids = Array.from({ length: to - from }, (_, i) => from + i);
  const { pred: predClean, conf: confClean } = await predictWithConf(model, x);
  const clean = await routerDecisions(model, x);
  clean.masks.forEach(own);
  env.progress(2, `${tag}: clean`);

  checkCancelled(signal);
  const full = await pgd(model, x, y, attack, { rng: env.stream('pgd'), signal });
  own(full.xAdv);
  const { pred: predAdv, conf: confAdv } = await predictWithConf(model, full.xAdv);
  const adv = await routerDecisions(model, full.xAdv);
  adv.masks.forEach(own);
  env.progress(attackPasses(attack) + 1, `${tag}: PGD-${attack.steps}`);
  return { tag, ids, x, y, yv, clean, predClean, confClean, xAdv: full.xAdv, adv, predAdv, confAdv, own };
}

/** The report over the first `m` samples (every probe holds exactly those). */
function assembleReport(
  env: ProbeEnv,
  cfg: EvalConfig,
  probes: Probes,
  counts: { clean: number; adv: number },
  latency: InferenceCost['latencyMs'],
  m: number,
  started: number,
  final: boolean,
): RobustnessReport {
  const { model, attack } = env;
  const sa = counts.clean / m;
  const ra = counts.adv / m;
  const { routing, perExpert, table, curve } = probes;
  const L = model.moeLayers.length;
  return {
    samples: m,
    sa,
    ra,
    attack,
    routerRobustness: routing ? { settings: attack, decisionsKept: routing.keptDecisions / (m * L), accuracy: routing.correctRouter / m } : null,
    expertRobustness: routing ? { settings: attack, accuracy: routing.correctExpert / m } : null,
    perExpert: perExpert ? perExpert.sa.map((c, e) => ({ expert: e, sa: c / m, ra: perExpert.ra[e] / m })) : [],
    ...(probes.perExpertNote ? { perExpertNote: probes.perExpertNote } : {}),
    attacks: table ? table.rows(m, ra, routing) : [],
    raCurve: (curve ? cfg.epsCurve : []).map((eps) => ({ eps, ra: eps === 0 ? sa : eps === attack.eps ? ra : curve!.correct.get(eps)! / m })),
    layers: probes.stats.layers(m),
    mismatch: probes.stats.mismatch(),
    cost: inferenceCost(model, latency),
    ...(final ? { perSample: probes.stats.perSample } : {}),
    seconds: (performance.now() - started) / 1000,
  };
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

