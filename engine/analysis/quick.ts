/** Cheap evaluations: SA/RA during training, one attack's accuracy, and per-sample inspection. */
import * as tf from '@tensorflow/tfjs-core';
import { runAttack } from '../attacks';
import { routingMasks } from '../attacks/routing';
import type { AttackOptions, CancelSignal } from '../attacks/types';
import type { AttackConfig, AttackName } from '../config/types';
import type { ForwardOptions, Model, RoutingMode } from '../models/types';
import { AdvMoEError } from '../util/errors';
import { Rng } from '../util/rng';
import { Batches, type Images, type Labels, predictions, selected } from './data';
import { decisionOf } from './probes';
import { atEps, metricStreams } from './robustness';
import type { SampleInspection } from './types';

const EVAL: ForwardOptions = { training: false, updateBnStats: false };

export interface QuickOptions {
  /** Random starts (default: a fixed seed, so repeated calls during training are comparable). */
  rng?: Rng;
  batchSize?: number;
  signal?: CancelSignal;
}

/**
 * Runs attack `name` on every sample and returns the model's accuracy on the adversarial inputs — under
 * the routing the attack assumed: frozen clean routing for `expert`, the routers' own choice otherwise.
 */
export async function evaluateAttack(
  model: Model,
  x: Images,
  y: Labels,
  name: AttackName,
  cfg: AttackConfig,
  opts: QuickOptions = {},
): Promise<{ accuracy: number; samples: number }> {
  const batches = new Batches(model, { x, y });
  const rng = opts.rng ?? new Rng(0);
  const bs = Math.max(1, Math.floor(opts.batchSize ?? 64));
  let correct = 0;
  for (let from = 0; from < batches.n; from += bs) {
    const to = Math.min(batches.n, from + bs);
    const { x: xb, y: yb } = batches.slice(from, to);
    const masks = name === 'expert' ? routingMasks(model, xb) : [];
    try {
      const out = await runAttack(name, model, xb, yb, cfg, { rng, signal: opts.signal, ...(name === 'expert' ? { cleanMasks: masks } : {}) } as AttackOptions);
      const routing: RoutingMode | undefined = name === 'expert' ? { kind: 'fixed', masks } : undefined;
      const logits = tf.tidy(() => model.forward(out.xAdv, { ...EVAL, routing }).logits);
      const { pred } = await predictions(logits);
      tf.dispose([logits, out.xAdv]);
      const yv = batches.labels.subarray(from, to);
      for (let i = 0; i < pred.length; i++) if (pred[i] === yv[i]) correct++;
    } finally {
      tf.dispose([xb, yb, ...masks]);
    }
  }
  return { accuracy: correct / batches.n, samples: batches.n };
}

/** What the periodic evaluation during training reports. */
export interface QuickEvalResult {
  sa: number;
  ra: number;
  /**
   * Per MoE layer, the largest share of the clean samples given the same routing decision (expert set), routed as
   * inference routes them (running BN statistics): the final analysis' `decisionShare`, per epoch. The training
   * passes' routing can be balanced while this one is collapsed (README "Routing that does not collapse").
   */
  routingShares: number[];
}

/** SA, RA (PGD with `attack`) and the clean routing's balance on the given samples: the figures logged during training. */
export async function quickEval(model: Model, x: Images, y: Labels, attack: AttackConfig, opts: QuickOptions = {}): Promise<QuickEvalResult> {
  const batches = new Batches(model, { x, y });
  const bs = Math.max(1, Math.floor(opts.batchSize ?? 64));
  const decisions = model.moeLayers.map(() => new Map<string, number>());
  let correct = 0;
  for (let from = 0; from < batches.n; from += bs) {
    const to = Math.min(batches.n, from + bs);
    const { x: xb, y: yb } = batches.slice(from, to);
    const out = tf.tidy(() => {
      const o = model.forward(xb, EVAL);
      return { logits: o.logits, masks: o.routing.map((r) => r.mask) };
    });
    const { pred } = await predictions(out.logits);
    out.masks.forEach((mask, l) => countDecisions(mask, model.topK, decisions[l]));
    tf.dispose([out.logits, ...out.masks, xb, yb]);
    const yv = batches.labels.subarray(from, to);
    for (let i = 0; i < pred.length; i++) if (pred[i] === yv[i]) correct++;
  }
  // The PGD stream of the full analysis (`metricStreams`), so the same seed gives the same RA in both.
  const { accuracy } = await evaluateAttack(model, x, y, 'pgd', attack, { ...opts, rng: metricStreams(opts.rng ?? new Rng(0))('pgd') });
  const routingShares = decisions.map((d) => Math.max(0, ...d.values()) / batches.n);
  return { sa: correct / batches.n, ra: accuracy, routingShares };
}

/** Counts each row's decision of a 0/1 routing mask [B, N] (`decisionOf`, as the analysis counts it) into `into`. */
function countDecisions(mask: tf.Tensor2D, k: number, into: Map<string, number>): void {
  const [rows, n] = mask.shape;
  const v = mask.dataSync();
  for (let r = 0; r < rows; r++) {
    const key = decisionOf(v, n, r, k).join();
    into.set(key, (into.get(key) ?? 0) + 1);
  }
}

export interface InspectOptions {
  attack: AttackName;
  /** The attack's settings (e.g. the run's eval attack). */
  config: AttackConfig;
  /** Overrides config.eps; the step size scales with it (same α/ε). */
  eps?: number;
  /** Attack (and predict) with routing frozen to the clean decision. Implied by `attack: 'expert'`. */
  freezeRouting?: boolean;
  rng?: Rng;
  signal?: CancelSignal;
}

/**
 * Per-sample view for the Inspector. Predictions on the adversarial input use the routing the attack
 * assumed (frozen clean masks when `freezeRouting`/`expert`); the adversarial routing shown per layer is
 * always the routers' own decision on the adversarial input, so a frozen attack still shows which
 * decisions the routers would have changed.
 */
export async function inspectSamples(model: Model, x: Images, y: Labels, ids: number[], opts: InspectOptions): Promise<SampleInspection[]> {
  if (ids.length === 0) return [];
  const frozen = opts.attack === 'expert' || !!opts.freezeRouting;
  if (frozen && opts.attack === 'router') throw new AdvMoEError('INVALID_ARGUMENT', 'the router attack cannot run with routing frozen');
  if (frozen && model.moeLayers.length === 0) throw new AdvMoEError('INVALID_ARGUMENT', 'routing can only be frozen for an MoE model; this model is dense');
  const cfg = opts.eps === undefined ? opts.config : atEps(opts.config, opts.eps);
  const batches = new Batches(model, { x, y });
  const { x: xb, y: yb } = batches.gather(ids);
  const owned: tf.Tensor[] = [xb, yb];
  try {
    const clean = routingMasks(model, xb);
    owned.push(...clean);
    const fixed: RoutingMode | undefined = frozen ? { kind: 'fixed', masks: clean } : undefined;
    const attackOpts: AttackOptions & { cleanMasks?: tf.Tensor2D[] } = { rng: opts.rng ?? new Rng(0), signal: opts.signal };
    if (opts.attack === 'expert') attackOpts.cleanMasks = clean;
    else if (frozen) attackOpts.routing = fixed;
    const out = await runAttack(opts.attack, model, xb, yb, cfg, attackOpts);
    const xAdv = out.xAdv;
    owned.push(xAdv);

    const read = async (input: tf.Tensor4D, routing?: RoutingMode) => {
      const res = tf.tidy(() => {
        const o = model.forward(input, { ...EVAL, routing });
        return { logits: o.logits, probs: o.routing.map((r) => r.probs) };
      });
      const pc = await predictions(res.logits);
      const probs = await Promise.all(res.probs.map(async (p) => Float32Array.from(await p.data())));
      tf.dispose([res.logits, ...res.probs]);
      return { ...pc, probs };
    };
    const cleanOut = await read(xb);
    const advPred = await read(xAdv, fixed);
    const advRouting = frozen ? await read(xAdv) : advPred;
    const advMasks = routingMasks(model, xAdv);
    owned.push(...advMasks);
    const cleanVals = await Promise.all(clean.map(async (m) => Float32Array.from(await m.data())));
    const advVals = await Promise.all(advMasks.map(async (m) => Float32Array.from(await m.data())));
    const xv = await xb.data();
    const av = await xAdv.data();
    const shape = model.inputShape;
    const per = shape[0] * shape[1] * shape[2];
    const N = model.numExperts;
    return ids.map((id, i) => {
      const routing = model.moeLayers.map((info, l) => {
        const expertsClean = selected(cleanVals[l], N, i);
        const expertsAdv = selected(advVals[l], N, i);
        return {
          layer: info.name,
          probsClean: Array.from(cleanOut.probs[l].subarray(i * N, (i + 1) * N)),
          probsAdv: Array.from(advRouting.probs[l].subarray(i * N, (i + 1) * N)),
          expertsClean,
          expertsAdv,
          changed: expertsClean.join() !== expertsAdv.join(),
        };
      });
      return {
        id,
        label: batches.labels[id],
        shape: [...shape] as [number, number, number],
        clean: Array.from(xv.subarray(i * per, (i + 1) * per)),
        adversarial: Array.from(av.subarray(i * per, (i + 1) * per)),
        predClean: cleanOut.pred[i],
        confClean: cleanOut.conf[i],
        predAdv: advPred.pred[i],
        confAdv: advPred.conf[i],
        routing,
        attack: opts.attack,
        eps: cfg.eps,
        frozenRouting: frozen,
      };
    });
  } finally {
    tf.dispose(owned);
  }
}
