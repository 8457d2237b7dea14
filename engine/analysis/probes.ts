/**
 * The metrics of a robustness analysis as probes over one batch loop (robustness.ts): the loop makes each batch's
 * clean and full-attack (PGD-k) passes once, every probe adds what its metric needs from that batch, and the report
 * is assembled from the probes. Definitions: README "Metric definitions"; docs/architecture.md "One evaluation".
 */
import * as tf from '@tensorflow/tfjs-core';
import { apgdCe } from '../attacks/apgd';
import { fgsm, pgd } from '../attacks/pgd';
import { expertAttack, routerAttack } from '../attacks/routing';
import type { CancelSignal } from '../attacks/types';
import type { AttackConfig } from '../config/types';
import type { ForwardOptions, Model, RoutingMode } from '../models/types';
import { AdvMoEError } from '../util/errors';
import type { Rng } from '../util/rng';
import { predictions } from './data';
import type { AttackResult, LayerRoutingStats, MismatchCells, PerSampleData } from './types';

const EVAL: ForwardOptions = { training: false, updateBnStats: false };

/** Forward/backward passes of one attack run (its progress units). */
export function attackPasses(cfg: AttackConfig): number {
  return cfg.restarts * (cfg.steps + 1);
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

/** Predictions (argmax) and confidences of `model` on x under `routing`. */
export async function predictWithConf(model: Model, x: tf.Tensor4D, routing?: RoutingMode): Promise<{ pred: Int32Array; conf: Float32Array }> {
  const logits = tf.tidy(() => model.forward(x, { ...EVAL, routing }).logits);
  try {
    return await predictions(logits);
  } finally {
    logits.dispose();
  }
}

/** How many of `model`'s predictions on x (under `routing`) equal y. */
async function correctOn(model: Model, x: tf.Tensor4D, y: Int32Array, routing?: RoutingMode): Promise<number> {
  return countCorrect((await predictWithConf(model, x, routing)).pred, y);
}

export function countCorrect(pred: Int32Array, y: Int32Array): number {
  let c = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === y[i]) c++;
  return c;
}

/** The routers' own hard decisions on an input: masks (kept tensors, one [B, N] per MoE layer), their values, scores. */
export interface Decisions {
  masks: tf.Tensor2D[];
  values: Float32Array[];
  probs: Float32Array[];
}

export async function routerDecisions(model: Model, x: tf.Tensor4D): Promise<Decisions> {
  const { masks, probs } = tf.tidy(() => {
    const out = model.forward(x, { ...EVAL, routing: { kind: 'router' } });
    return { masks: out.routing.map((r) => r.mask.clone()), probs: out.routing.map((r) => r.probs.clone()) };
  });
  const values = await Promise.all(masks.map(async (m) => Float32Array.from(await m.data())));
  const probValues = await Promise.all(probs.map(async (p) => Float32Array.from(await p.data())));
  tf.dispose(probs);
  return { masks, values, probs: probValues };
}

/**
 * Sample i's routing decision in a 0/1 mask [B, N] read on the host: its first k experts. A mask with fewer than k
 * ones (not produced by top-k routing) is padded with -1 rather than shifting columns.
 */
export function decisionOf(mask: ArrayLike<number>, n: number, i: number, k: number): number[] {
  const experts: number[] = [];
  for (let e = 0; e < n && experts.length < k; e++) if (mask[i * n + e] > 0.5) experts.push(e);
  while (experts.length < k) experts.push(-1);
  return experts;
}

export function maskDiffers(a: Float32Array, b: Float32Array, n: number, i: number): boolean {
  for (let e = 0; e < n; e++) if (a[i * n + e] > 0.5 !== b[i * n + e] > 0.5) return true;
  return false;
}

/** What every probe may read of one batch: its data, and the clean and full-attack passes the loop made. */
export interface BatchView {
  tag: string;
  ids: number[];
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  /** Labels as numbers. */
  yv: Int32Array;
  clean: Decisions;
  predClean: Int32Array;
  confClean: Float32Array;
  /** Inputs of the full attack (PGD-k; defines RA). */
  xAdv: tf.Tensor4D;
  adv: Decisions;
  predAdv: Int32Array;
  confAdv: Float32Array;
  /** Keeps a tensor until the batch is done (then the loop disposes it). */
  own<T extends tf.Tensor>(t: T): T;
}

/** What the probes share: the model, the attack, the random streams, cancellation and progress. */
export interface ProbeEnv {
  model: Model;
  attack: AttackConfig;
  stream: (name: string) => Rng;
  signal?: CancelSignal;
  /** Counts `units` passes done and reports them with `message`. */
  progress: (units: number, message: string) => void;
}

/** Throws CANCELLED once the signal is set; probes call it before each attack. */
export function checkCancelled(signal: CancelSignal | undefined): void {
  if (signal?.aborted) throw new AdvMoEError('CANCELLED', 'analysis cancelled');
}

/** One metric over the batch loop. */
export interface Probe {
  /** Forward/backward passes it makes per batch (progress units). */
  readonly passes: number;
  batch(b: BatchView): Promise<void>;
}

/** Per-layer routing statistics, router-expert mismatch cells and per-sample data, from the clean and full passes. */
export class RoutingStatsProbe implements Probe {
  readonly passes = 0;
  private readonly changed: number[];
  private readonly loadClean: number[][];
  private readonly loadAdv: number[][];
  private readonly perClassClean: number[][][];
  private readonly perClassAdv: number[][][];
  private readonly top1: number[][];
  private readonly nonFinite: number[];
  /** Per layer: how many clean inputs got each routing decision (expert set, as "e1,e2"). */
  private readonly decisions: Map<string, number>[];
  private readonly cells: MismatchCells = { keptRight: [], keptWrong: [], changedRight: [], changedWrong: [] };
  readonly perSample: PerSampleData;

  constructor(private readonly model: Model) {
    const L = model.moeLayers.length;
    const N = model.numExperts;
    const row = () => new Array<number>(N).fill(0);
    const perLayer = <T>(make: () => T) => Array.from({ length: L }, make);
    this.changed = new Array<number>(L).fill(0);
    this.loadClean = perLayer(row);
    this.loadAdv = perLayer(row);
    this.perClassClean = perLayer(() => Array.from({ length: model.numClasses }, row));
    this.perClassAdv = perLayer(() => Array.from({ length: model.numClasses }, row));
    this.top1 = perLayer(row);
    this.nonFinite = new Array<number>(L).fill(0);
    this.decisions = perLayer(() => new Map<string, number>());
    this.perSample = {
      ids: [], labels: [], predClean: [], confClean: [], predAdv: [], confAdv: [], k: model.topK,
      routeClean: perLayer(() => []),
      routeAdv: perLayer(() => []),
    };
  }

  async batch(b: BatchView): Promise<void> {
    const p = this.perSample;
    for (let i = 0; i < b.ids.length; i++) {
      p.ids.push(b.ids[i]);
      p.labels.push(b.yv[i]);
      p.predClean.push(b.predClean[i]);
      p.confClean.push(round6(b.confClean[i]));
      p.predAdv.push(b.predAdv[i]);
      p.confAdv.push(round6(b.confAdv[i]));
      let anyChanged = false;
      for (let l = 0; l < this.model.moeLayers.length; l++) anyChanged = this.addDecision(b, l, i) || anyChanged;
      if (this.model.moeLayers.length > 0) {
        const right = b.predAdv[i] === b.yv[i];
        const c = this.cells;
        (anyChanged ? (right ? c.changedRight : c.changedWrong) : right ? c.keptRight : c.keptWrong).push(b.ids[i]);
      }
    }
  }

  /** Counts sample i's decisions in layer l; whether the full attack changed them. */
  private addDecision(b: BatchView, l: number, i: number): boolean {
    const N = this.model.numExperts;
    const k = this.model.topK;
    const { clean, adv } = b;
    const decision = decisionOf(clean.values[l], N, i, k);
    this.perSample.routeClean[l].push(...decision);
    this.perSample.routeAdv[l].push(...decisionOf(adv.values[l], N, i, k));
    const key = decision.join();
    this.decisions[l].set(key, (this.decisions[l].get(key) ?? 0) + 1);
    const differs = maskDiffers(clean.values[l], adv.values[l], N, i);
    if (differs) this.changed[l]++;
    let best = 0;
    let finite = true;
    for (let e = 0; e < N; e++) {
      const p = clean.probs[l][i * N + e];
      if (!Number.isFinite(p)) finite = false;
      if (p > clean.probs[l][i * N + best]) best = e;
      if (clean.values[l][i * N + e] > 0.5) {
        this.loadClean[l][e]++;
        this.perClassClean[l][b.yv[i]][e]++;
      }
      if (adv.values[l][i * N + e] > 0.5) {
        this.loadAdv[l][e]++;
        this.perClassAdv[l][b.yv[i]][e]++;
      }
    }
    if (finite) this.top1[l][best]++;
    else this.nonFinite[l]++;
    return differs;
  }

  /** The per-layer statistics over the first `m` samples. */
  layers(m: number): LayerRoutingStats[] {
    const N = this.model.numExperts;
    const k = this.model.topK;
    return this.model.moeLayers.map((info, l) => {
      const decisionShare = Math.max(0, ...this.decisions[l].values()) / m;
      return {
        layer: info.name,
        changeRate: this.changed[l] / m,
        loadClean: this.loadClean[l].map((c) => c / m),
        loadAdv: this.loadAdv[l].map((c) => c / m),
        perClassClean: this.perClassClean[l].map((row) => row.slice()),
        perClassAdv: this.perClassAdv[l].map((row) => row.slice()),
        // Collapsed: (nearly) every input gets the same decision, so routing carries no information (with k = N
        // every input gets all experts: nothing to collapse). For k = 1 this is "> 90% of inputs to one expert".
        collapsed: this.nonFinite[l] > 0 || (k < N && decisionShare > 0.9),
        top1Share: Math.max(...this.top1[l]) / m,
        decisionShare,
        decisionEntropy: normalisedEntropy([...this.decisions[l].values()], m, binomial(N, k)),
        nonFinite: this.nonFinite[l],
      };
    });
  }

  mismatch(): MismatchCells | null {
    if (this.model.moeLayers.length === 0) return null;
    const c = this.cells;
    return { keptRight: c.keptRight.slice(), keptWrong: c.keptWrong.slice(), changedRight: c.changedRight.slice(), changedWrong: c.changedWrong.slice() };
  }
}

/** Router robustness (decisions kept and accuracy under the router attack) and expert robustness (routing frozen). */
export class RouterExpertProbe implements Probe {
  readonly passes: number;
  keptDecisions = 0;
  correctRouter = 0;
  correctExpert = 0;
  xRouter?: tf.Tensor4D;
  xExpert?: tf.Tensor4D;

  constructor(private readonly env: ProbeEnv) {
    this.passes = 2 * (attackPasses(env.attack) + 2);
  }

  async batch(b: BatchView): Promise<void> {
    const { model, attack, signal } = this.env;
    const N = model.numExperts;
    checkCancelled(signal);
    const r = await routerAttack(model, b.x, b.y, attack, { rng: this.env.stream('router'), signal });
    b.own(r.xAdv);
    const routed = await routerDecisions(model, r.xAdv);
    routed.masks.forEach((m) => m.dispose());
    for (let l = 0; l < model.moeLayers.length; l++) {
      for (let i = 0; i < b.ids.length; i++) if (!maskDiffers(b.clean.values[l], routed.values[l], N, i)) this.keptDecisions++;
    }
    this.correctRouter += await correctOn(model, r.xAdv, b.yv);
    this.env.progress(attackPasses(attack) + 2, `${b.tag}: router attack`);

    checkCancelled(signal);
    const e = await expertAttack(model, b.x, b.y, attack, { rng: this.env.stream('expert'), signal, cleanMasks: b.clean.masks });
    b.own(e.xAdv);
    this.correctExpert += await correctOn(model, e.xAdv, b.yv, { kind: 'fixed', masks: b.clean.masks });
    this.env.progress(attackPasses(attack) + 2, `${b.tag}: expert attack`);
    this.xRouter = r.xAdv;
    this.xExpert = e.xAdv;
  }
}

/** SA and RA with routing forced to each expert in every MoE layer. */
export class PerExpertProbe implements Probe {
  readonly passes: number;
  readonly sa: number[];
  readonly ra: number[];
  xPerExpert: tf.Tensor4D[] = [];

  constructor(private readonly env: ProbeEnv) {
    const N = env.model.numExperts;
    this.passes = N * (attackPasses(env.attack) + 2);
    this.sa = new Array<number>(N).fill(0);
    this.ra = new Array<number>(N).fill(0);
  }

  async batch(b: BatchView): Promise<void> {
    const { model, attack, signal } = this.env;
    this.xPerExpert = [];
    for (let ex = 0; ex < model.numExperts; ex++) {
      checkCancelled(signal);
      const routing: RoutingMode = { kind: 'force', expert: ex };
      this.sa[ex] += await correctOn(model, b.x, b.yv, routing);
      const o = await pgd(model, b.x, b.y, attack, { rng: this.env.stream(`expert-${ex}-alone`), signal, routing });
      b.own(o.xAdv);
      this.ra[ex] += await correctOn(model, o.xAdv, b.yv, routing);
      this.xPerExpert.push(o.xAdv);
      this.env.progress(attackPasses(attack) + 2, `${b.tag}: expert ${ex} alone`);
    }
  }
}

/** FGSM and APGD-CE beside PGD (the router and expert rows come from RouterExpertProbe). */
export class AttackTableProbe implements Probe {
  readonly passes: number;
  correctFgsm = 0;
  correctApgd = 0;

  constructor(private readonly env: ProbeEnv) {
    this.passes = 3 + attackPasses(apgdSettings(env.attack)) + 1;
  }

  async batch(b: BatchView): Promise<void> {
    const { model, attack, signal } = this.env;
    checkCancelled(signal);
    const f = await fgsm(model, b.x, b.y, fgsmSettings(attack), { rng: this.env.stream('fgsm'), signal });
    this.correctFgsm += await correctOn(model, b.own(f.xAdv), b.yv);
    this.env.progress(3, `${b.tag}: FGSM`);
    checkCancelled(signal);
    const a = await apgdCe(model, b.x, b.y, apgdSettings(attack), { rng: this.env.stream('apgd-ce'), signal });
    this.correctApgd += await correctOn(model, b.own(a.xAdv), b.yv);
    this.env.progress(attackPasses(apgdSettings(attack)) + 1, `${b.tag}: APGD-CE`);
  }

  rows(m: number, ra: number, router?: RouterExpertProbe): AttackResult[] {
    const attack = this.env.attack;
    const rows: AttackResult[] = [
      { name: 'fgsm', settings: fgsmSettings(attack), accuracy: this.correctFgsm / m },
      { name: 'pgd', settings: attack, accuracy: ra },
      { name: 'apgd-ce', settings: apgdSettings(attack), accuracy: this.correctApgd / m },
    ];
    if (router) {
      rows.push({ name: 'router', settings: attack, accuracy: router.correctRouter / m });
      rows.push({ name: 'expert', settings: attack, accuracy: router.correctExpert / m });
    }
    return rows;
  }
}

/** RA over the ε of the curve that need their own PGD run (ε = 0 and the attack's own ε reuse SA and RA). */
export class CurveProbe implements Probe {
  readonly passes: number;
  readonly correct: Map<number, number>;

  constructor(
    private readonly env: ProbeEnv,
    readonly runs: readonly number[],
  ) {
    this.passes = runs.length * (attackPasses(env.attack) + 1);
    this.correct = new Map(runs.map((e) => [e, 0]));
  }

  async batch(b: BatchView): Promise<void> {
    const { model, attack, signal } = this.env;
    for (const eps of this.runs) {
      checkCancelled(signal);
      const o = await pgd(model, b.x, b.y, atEps(attack, eps), { rng: this.env.stream(`pgd-eps-${eps}`), signal });
      this.correct.set(eps, this.correct.get(eps)! + (await correctOn(model, b.own(o.xAdv), b.yv)));
      this.env.progress(attackPasses(attack) + 1, `${b.tag}: PGD at ε=${eps}`);
    }
  }
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

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;
