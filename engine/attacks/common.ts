/**
 * Machinery shared by the attacks: projection onto the ε-ball ∩ [0,1], random starts, losses, one
 * loss+gradient evaluation, and per-sample "best point so far" bookkeeping across steps and restarts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../util/registerGradients';
import type { AttackConfig, Norm } from '../config/types';
import type { ForwardOptions, ForwardResult, Model } from '../models/types';
import { AdvMoEError } from '../util/errors';
import type { AttackLoss, AttackOptions, CancelSignal } from './types';

/** Guards divisions by a per-sample norm that can be 0 (zero gradient, zero perturbation). */
const TINY = 1e-12;

export function checkConfig(cfg: AttackConfig, what: string): void {
  if (!(cfg.eps >= 0) || !Number.isFinite(cfg.eps)) throw new AdvMoEError('INVALID_ARGUMENT', `${what}: ε must be a finite number ≥ 0, got ${cfg.eps}`);
  if (!(cfg.stepSize >= 0)) throw new AdvMoEError('INVALID_ARGUMENT', `${what}: step size must be ≥ 0, got ${cfg.stepSize}`);
  if (!Number.isInteger(cfg.steps) || cfg.steps < 0) throw new AdvMoEError('INVALID_ARGUMENT', `${what}: steps must be an integer ≥ 0, got ${cfg.steps}`);
  if (!Number.isInteger(cfg.restarts) || cfg.restarts < 1) throw new AdvMoEError('INVALID_ARGUMENT', `${what}: restarts must be an integer ≥ 1, got ${cfg.restarts}`);
  if (cfg.norm !== 'linf' && cfg.norm !== 'l2') throw new AdvMoEError('INVALID_ARGUMENT', `${what}: norm must be "linf" or "l2", got ${String(cfg.norm)}`);
}

export function throwIfCancelled(signal: CancelSignal | undefined): void {
  if (signal?.aborted) throw new AdvMoEError('CANCELLED', 'cancelled');
}

/** Lets pending I/O (a cancel request) run between steps; setImmediate costs microseconds. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Per-sample L2 norm over all but the batch axis, shaped [B,1,1,1] for broadcasting. */
export function l2PerSample(t: tf.Tensor4D): tf.Tensor4D {
  return tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true)) as tf.Tensor4D;
}

/** Projects xa onto {x' : ‖x' − x‖ ≤ ε} ∩ [0,1]. The clamp after the ball projection only moves each
 * coordinate of δ towards 0, so it cannot leave the ball (for both norms). */
export function project(xa: tf.Tensor4D, x: tf.Tensor4D, eps: number, norm: Norm): tf.Tensor4D {
  return tf.tidy(() => {
    let delta = tf.sub(xa, x) as tf.Tensor4D;
    if (norm === 'linf') delta = tf.clipByValue(delta, -eps, eps);
    else delta = tf.mul(delta, tf.minimum(1, tf.div(eps, tf.add(l2PerSample(delta), TINY)))) as tf.Tensor4D;
    return tf.clipByValue(tf.add(x, delta), 0, 1) as tf.Tensor4D;
  });
}

/** Ascent direction of unit norm: sign(g) for L∞, g/‖g‖₂ for L2 (times the per-sample or global step). */
export function ascentStep(xa: tf.Tensor4D, grad: tf.Tensor4D, step: number | tf.Tensor, norm: Norm): tf.Tensor4D {
  return tf.tidy(() => {
    const dir = norm === 'linf' ? tf.sign(grad) : tf.div(grad, tf.add(l2PerSample(grad), TINY));
    return tf.add(xa, tf.mul(dir, step)) as tf.Tensor4D;
  });
}

/** Uniform random start in the ball: U(−ε, ε)^d for L∞; for L2 a uniformly random direction with
 * radius ε·u, u ~ U(0,1) (the common choice; it favours points nearer x than a volume-uniform draw). */
export function randomStart(x: tf.Tensor4D, eps: number, norm: Norm, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    let delta: tf.Tensor4D;
    if (norm === 'linf') {
      delta = tf.randomUniform(x.shape, -eps, eps, 'float32', seed) as tf.Tensor4D;
    } else {
      const g = tf.randomNormal(x.shape, 0, 1, 'float32', seed) as tf.Tensor4D;
      const r = tf.randomUniform([x.shape[0], 1, 1, 1], 0, eps, 'float32', seed + 1);
      delta = tf.mul(tf.div(g, tf.add(l2PerSample(g), TINY)), r) as tf.Tensor4D;
    }
    return project(tf.add(x, delta) as tf.Tensor4D, x, eps, norm);
  });
}

/** Per-sample cross-entropy of logits against int labels (oneHot built outside the input's gradient path).
 * The one-hot is made int32 and cast: tfjs-backend-wasm 4.22's OneHot ignores `dtype` and writes int bits
 * into a float32 tensor (1 reads as 1.4e-45), which silently zeroes the loss. */
export function crossEntropy(logits: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const target = tf.cast(tf.oneHot(tf.cast(y, 'int32') as tf.Tensor1D, logits.shape[1]), 'float32');
    return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
  });
}

/** The default attack loss: CE of the model's logits against the true labels. */
export const ceLoss: AttackLoss = (out, y) => crossEntropy(out.logits, y);

/**
 * TRADES' attack loss KL(f(x) ‖ f(x')) per sample, for clean probabilities `cleanProbs` [B, C] that the
 * caller computed (and owns, for the attack's duration). Zero at x' = x, so a random start is needed
 * (TRADES uses a small Gaussian one; any random start works).
 */
export function klLoss(cleanProbs: tf.Tensor2D): AttackLoss {
  return (out) =>
    tf.tidy(() => {
      const p = cleanProbs;
      const logP = tf.log(tf.maximum(p, 1e-12));
      return tf.sum(tf.mul(p, tf.sub(logP, tf.logSoftmax(out.logits))), 1) as tf.Tensor1D;
    });
}

/** argmax(logits) ≠ y, as 0/1 float. */
export function misclassified(logits: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.cast(tf.notEqual(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32') as tf.Tensor1D);
}

/** One evaluation of the attack objective at a point. */
export interface Evaluation {
  /** Per-sample loss [B]. */
  loss: tf.Tensor1D;
  /** Per-sample primary score [B] (see BestTracker). */
  primary: tf.Tensor1D;
  /** d Σloss / d x, when asked for. */
  grad: tf.Tensor4D | null;
  dispose(): void;
}

/**
 * Builds `evaluate(xa, withGrad)`: one forward (and, with `withGrad`, one backward) pass giving the
 * per-sample loss, the primary score and the input gradient. The per-sample tensors are kept out of
 * the gradient's tidy scope with tf.keep, so a single pass yields all three.
 */
export function makeEvaluator(
  model: Model,
  y: tf.Tensor1D,
  fwd: ForwardOptions,
  loss: AttackLoss,
  primaryOf: (out: ForwardResult) => tf.Tensor1D,
): (xa: tf.Tensor4D, withGrad: boolean) => Evaluation {
  // An attack never changes the running BN statistics, whatever the caller passes.
  const forwardOpts: ForwardOptions = { ...fwd, updateBnStats: false };
  return (xa, withGrad) => {
    let lossT: tf.Tensor1D | null = null;
    let primaryT: tf.Tensor1D | null = null;
    const f = (xi: tf.Tensor): tf.Scalar => {
      const out = model.forward(xi as tf.Tensor4D, forwardOpts);
      const l = loss(out, y);
      lossT = tf.keep(l);
      primaryT = tf.keep(primaryOf(out));
      return tf.sum(l);
    };
    let grad: tf.Tensor4D | null = null;
    if (withGrad) {
      const { value, grad: g } = tf.valueAndGrad(f)(xa);
      value.dispose();
      grad = g as tf.Tensor4D;
    } else {
      tf.tidy(() => {
        f(xa);
      });
    }
    const l = lossT as unknown as tf.Tensor1D;
    const p = primaryT as unknown as tf.Tensor1D;
    return {
      loss: l,
      primary: p,
      grad,
      dispose() {
        l.dispose();
        p.dispose();
        grad?.dispose();
      },
    };
  };
}

/**
 * Per sample, the best point seen so far. Points are ranked by the primary score first (misclassified
 * 0/1, or the number of MoE layers whose routing changed), then by loss. With `sticky`, a sample whose
 * best point already has a positive primary score keeps it ("first misclassification": once fooled, a
 * later point of higher loss does not replace it, as in the reference PGD/AutoAttack code).
 */
export class BestTracker {
  x: tf.Tensor4D | null = null;
  loss: tf.Tensor1D | null = null;
  primary: tf.Tensor1D | null = null;

  constructor(private readonly sticky: boolean) {}

  update(xa: tf.Tensor4D, e: Evaluation): void {
    if (!this.x || !this.loss || !this.primary) {
      this.x = tf.keep(xa.clone());
      this.loss = tf.keep(e.loss.clone());
      this.primary = tf.keep(e.primary.clone());
      return;
    }
    const [bx, bl, bp] = [this.x, this.loss, this.primary];
    const next = tf.tidy(() => {
      const morePrimary = tf.greater(e.primary, bp);
      let tieBetter = tf.logicalAnd(tf.equal(e.primary, bp), tf.greater(e.loss, bl));
      if (this.sticky) tieBetter = tf.logicalAnd(tieBetter, tf.lessEqual(bp, 0));
      const better = tf.logicalOr(morePrimary, tieBetter);
      const better4 = tf.reshape(better, [-1, 1, 1, 1]);
      return {
        x: tf.keep(tf.where(tf.broadcastTo(better4, bx.shape), xa, bx) as tf.Tensor4D),
        loss: tf.keep(tf.where(better, e.loss, bl) as tf.Tensor1D),
        primary: tf.keep(tf.where(better, e.primary, bp) as tf.Tensor1D),
      };
    });
    bx.dispose();
    bl.dispose();
    bp.dispose();
    this.x = next.x;
    this.loss = next.loss;
    this.primary = next.primary;
  }

  dispose(): void {
    this.x?.dispose();
    this.loss?.dispose();
    this.primary?.dispose();
    this.x = this.loss = this.primary = null;
  }
}

/** Converts the tracker's best point to the attacks' output (reading the per-sample values once). */
export async function finish(best: BestTracker, primaryIsSuccess: boolean): Promise<{ xAdv: tf.Tensor4D; loss: Float32Array; success: Uint8Array }> {
  if (!best.x || !best.loss || !best.primary) throw new Error('attack produced no point');
  const loss = (await best.loss.data()) as Float32Array;
  const primary = await best.primary.data();
  const success = new Uint8Array(primary.length);
  if (primaryIsSuccess) for (let i = 0; i < primary.length; i++) success[i] = primary[i] > 0 ? 1 : 0;
  const xAdv = best.x;
  best.x = null;
  best.dispose();
  return { xAdv, loss: Float32Array.from(loss), success };
}

/** Forward options of an attack from its options. */
export function forwardOptions(opts: AttackOptions): ForwardOptions {
  return { training: opts.training ?? false, updateBnStats: false, routing: opts.routing, routingGradient: opts.routingGradient };
}

/** Labels as an int32 [B] tensor matching x's batch (throws on a mismatch). */
export function checkInputs(x: tf.Tensor4D, y: tf.Tensor1D, what: string): void {
  if (x.rank !== 4) throw new AdvMoEError('INVALID_ARGUMENT', `${what}: x must be [B,H,W,C], got rank ${x.rank}`);
  if (y.rank !== 1 || y.shape[0] !== x.shape[0]) {
    throw new AdvMoEError('INVALID_ARGUMENT', `${what}: y must be [${x.shape[0]}], got [${y.shape.join(', ')}]`);
  }
}
