/**
 * The training attack of the reference AdvMoE code (README "Methods", `official`), step for step:
 *
 *   the model in evaluation mode (BatchNorm on running statistics);
 *   f(x), r(x) computed once on the clean batch and held fixed;
 *   x′ ← x + 0.001·N(0, 1);
 *   `steps` times: x′ ← clip_[0,1]( clip_{ε-ball of x}( x′ + α·sign ∇ₓ′ [kl(f(x′), f(x)) + Σ_routers kl(r(x′), r(x))] ) );
 *   the last iterate is returned (no best-point tracking, no restarts).
 *
 * kl(a, b) = Σ softmax(b)·(log softmax(b) − log softmax(a)), summed over the batch (PyTorch's
 * `KLDivLoss(reduction="sum")(log_softmax(a), softmax(b))`; the sum's scale does not change the sign step).
 * r are the scores of the model's distinct routers (one for a shared router, one per MoE layer otherwise).
 * L∞ only, as the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig } from '../config/types';
import type { ForwardOptions, Model } from '../models/types';
import { AdvMoEError } from '../util/errors';
import type { Rng } from '../util/rng';
import { checkConfig, throwIfCancelled, yieldToLoop } from './common';
import type { CancelSignal } from './types';

const EVAL: ForwardOptions = { training: false, updateBnStats: false };

/** Standard deviation of the Gaussian start (the reference's 0.001). */
export const REFERENCE_START_STD = 0.001;

export interface ReferenceTradesOptions {
  /** One draw per call seeds the Gaussian start. */
  rng: Rng;
  signal?: CancelSignal;
}

/** Logits of the distinct routers of a forward pass (a shared router once). */
export function distinctRouterLogits(model: Model, routing: readonly { logits: tf.Tensor2D }[]): tf.Tensor2D[] {
  const seen = new Set<number>();
  const out: tf.Tensor2D[] = [];
  model.moeLayers.forEach((layer, i) => {
    if (seen.has(layer.router)) return;
    seen.add(layer.router);
    out.push(routing[i].logits);
  });
  return out;
}

/** Σ over the batch of KL(softmax(target) ‖ softmax(logits)), with `targetProbs` = softmax(target) fixed. */
function klSum(targetProbs: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.log(tf.maximum(targetProbs, 1e-30));
    return tf.sum(tf.mul(targetProbs, tf.sub(logP, tf.logSoftmax(logits)))) as tf.Scalar;
  });
}

/** The reference attack's objective at x′ against fixed clean distributions: kl(f) + Σ kl(r). */
export function referenceObjective(model: Model, xa: tf.Tensor4D, cleanProbs: tf.Tensor2D, cleanRouterProbs: readonly tf.Tensor2D[]): tf.Scalar {
  return tf.tidy(() => {
    const out = model.forward(xa, EVAL);
    const routers = distinctRouterLogits(model, out.routing);
    let total = klSum(cleanProbs, out.logits);
    routers.forEach((r, i) => (total = tf.add(total, klSum(cleanRouterProbs[i], r))));
    return total;
  });
}

export async function referenceTradesAttack(model: Model, x: tf.Tensor4D, cfg: AttackConfig, opts: ReferenceTradesOptions): Promise<tf.Tensor4D> {
  checkConfig(cfg, 'reference TRADES attack');
  if (cfg.norm !== 'linf') {
    throw new AdvMoEError('CONFIG_INVALID', `the reference TRADES attack (method "official") is L∞ only; method.attack.norm is "${cfg.norm}"`);
  }
  throwIfCancelled(opts.signal);
  const seed = opts.rng.seed();
  const clean = tf.tidy(() => {
    const out = model.forward(x, EVAL);
    return { probs: tf.softmax(out.logits) as tf.Tensor2D, routers: distinctRouterLogits(model, out.routing).map((r) => tf.softmax(r) as tf.Tensor2D) };
  });
  let xa: tf.Tensor4D = tf.tidy(() => tf.add(x, tf.randomNormal(x.shape, 0, REFERENCE_START_STD, 'float32', seed)) as tf.Tensor4D);
  try {
    const grad = tf.grad((xi: tf.Tensor) => referenceObjective(model, xi as tf.Tensor4D, clean.probs, clean.routers));
    for (let i = 0; i < cfg.steps; i++) {
      const cur = xa;
      xa = tf.tidy(() => {
        const g = grad(cur);
        const stepped = tf.add(cur, tf.mul(tf.sign(g), cfg.stepSize));
        const inBall = tf.minimum(tf.maximum(stepped, tf.sub(x, cfg.eps)), tf.add(x, cfg.eps));
        return tf.clipByValue(inBall, 0, 1) as tf.Tensor4D;
      });
      cur.dispose();
      await yieldToLoop();
      throwIfCancelled(opts.signal);
    }
    // With zero steps the reference still clamps its Gaussian start to [0, 1].
    const out = tf.clipByValue(xa, 0, 1) as tf.Tensor4D;
    xa.dispose();
    return out;
  } catch (e) {
    xa.dispose();
    throw e;
  } finally {
    clean.probs.dispose();
    tf.dispose(clean.routers);
  }
}
