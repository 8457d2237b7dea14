/**
 * Attacks on the routing of an MoE model: the router attack (change the routers' decisions) and the
 * expert attack (fool the experts with every routing decision frozen to its clean value).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig } from '../config/types';
import type { ForwardResult, Model } from '../models/types';
import { AdvMoEError } from '../util/errors';
import { checkConfig, checkInputs } from './common';
import { ceSpec, iterativeAttack } from './pgd';
import type { AttackLoss, AttackOptions, AttackOutput } from './types';

function requireMoe(model: Model, what: string): void {
  if (model.moeLayers.length === 0) {
    throw new AdvMoEError('INVALID_ARGUMENT', `${what} needs an MoE model: this model is dense (no MoE layers), so it has no routing to attack`);
  }
}

/** The hard routing masks (one [B, N] per MoE layer) the routers choose for x. The caller disposes them. */
export function routingMasks(model: Model, x: tf.Tensor4D, training = false): tf.Tensor2D[] {
  return tf.tidy(() => {
    const out = model.forward(x, { training, updateBnStats: false, routing: { kind: 'router' } });
    return out.routing.map((r) => r.mask.clone());
  });
}

/** Per sample, the number of MoE layers whose mask differs from `clean`. */
export function changedLayers(routing: ForwardResult['routing'], clean: tf.Tensor2D[]): tf.Tensor1D {
  return tf.tidy(() => {
    let count = tf.zeros([clean[0].shape[0]]) as tf.Tensor1D;
    routing.forEach((r, l) => {
      const differs = tf.cast(tf.greater(tf.sum(tf.abs(tf.sub(r.mask, clean[l])), 1), 0.5), 'float32');
      count = tf.add(count, differs) as tf.Tensor1D;
    });
    return count;
  });
}

/**
 * Router loss: Σ over routers of −Σ_{e ∈ clean top-k} log p_e, i.e. the CE of the router probabilities
 * against the clean choice. Maximising it pushes probability away from the clean experts. With a shared
 * router every MoE layer reports the same logits: they are counted once (first layer of each router).
 */
export function routerLoss(model: Model, cleanMasks: tf.Tensor2D[]): AttackLoss {
  const firstOfRouter: number[] = [];
  const seen = new Set<number>();
  model.moeLayers.forEach((info, l) => {
    if (!seen.has(info.router)) {
      seen.add(info.router);
      firstOfRouter.push(l);
    }
  });
  return (out) =>
    tf.tidy(() => {
      let total: tf.Tensor = tf.zeros([cleanMasks[0].shape[0]]);
      for (const l of firstOfRouter) {
        total = tf.sub(total, tf.sum(tf.mul(cleanMasks[l], tf.logSoftmax(out.routing[l].logits)), 1));
      }
      return total as tf.Tensor1D;
    });
}

/**
 * Router attack: PGD (cfg's norm, ε, steps, restarts) on `routerLoss`, routers deciding. Per sample it
 * keeps the point that changes the most layers' decisions (then the highest loss). `y` is only checked
 * for shape; `opts.loss` and `opts.routing` do not apply. `success` = routing changed in ≥ 1 layer.
 * Throws INVALID_ARGUMENT for a dense model.
 */
export async function routerAttack(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, cfg: AttackConfig, opts: AttackOptions): Promise<AttackOutput> {
  requireMoe(model, 'the router attack');
  checkConfig(cfg, 'router attack');
  checkInputs(x, y, 'router attack');
  const training = opts.training ?? false;
  const clean = routingMasks(model, x, training);
  try {
    return await iterativeAttack(model, x, y, cfg, { ...opts, loss: undefined, routing: { kind: 'router' } }, {
      loss: routerLoss(model, clean),
      primaryOf: (out) => changedLayers(out.routing, clean),
      sticky: false,
      primaryIsSuccess: true,
    });
  } finally {
    clean.forEach((m) => m.dispose());
  }
}

/**
 * Expert attack: PGD on the CE loss (or `opts.loss`) with routing fixed to the clean decisions
 * (`cleanMasks` if given — the caller keeps ownership — else computed here from x). `success` =
 * misclassified under that fixed routing. Throws INVALID_ARGUMENT for a dense model.
 */
export async function expertAttack(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  cfg: AttackConfig,
  opts: AttackOptions & { cleanMasks?: tf.Tensor2D[] },
): Promise<AttackOutput> {
  requireMoe(model, 'the expert attack');
  checkConfig(cfg, 'expert attack');
  checkInputs(x, y, 'expert attack');
  const masks = opts.cleanMasks ?? routingMasks(model, x, opts.training ?? false);
  try {
    const fixed: AttackOptions = { ...opts, routing: { kind: 'fixed', masks } };
    return await iterativeAttack(model, x, y, cfg, fixed, ceSpec(y, fixed));
  } finally {
    if (!opts.cleanMasks) masks.forEach((m) => m.dispose());
  }
}
