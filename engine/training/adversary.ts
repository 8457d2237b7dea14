/**
 * The training adversary: `engine/attacks` PGD wrapped as the `AdversaryFn` the training step calls.
 *
 * Choices (why):
 * - BN on batch statistics (`training: true`) without touching the running ones — Madry's PGD-AT, and
 *   what PyTorch code that stays in train() mode does; the attack never updates statistics itself.
 * - 'ce' attacks pass CE as a loss *override*: the attack then keeps the highest-loss point per sample
 *   instead of the first misclassified one. The first-misclassified rule is right for measuring RA, but
 *   for training it would stop at the boundary and yield weaker examples than Madry's last iterate.
 * - 'trades-kl' maximises KL(f(x) ‖ f(x')) with f(x) computed once on the clean batch (no gradient to
 *   it). The KL and its gradient are zero at x' = x, so a random start is forced on (TRADES starts
 *   from x + 0.001·N(0, 1); any random start in the ball serves the same purpose).
 * - 'reference-trades' is the reference code's attack exactly (`referenceTradesAttack`: evaluation-mode BN,
 *   Gaussian start, model and router KL, last iterate), for `official`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ceLoss, klLoss, pgd } from '../attacks';
import { referenceTradesAttack } from '../attacks/referenceTrades';
import type { CancelSignal } from '../attacks/types';
import type { AttackConfig } from '../config/types';
import type { ForwardOptions, Model } from '../models/types';
import type { Rng } from '../util/rng';
import type { AdversaryFn } from './methods';

export interface AdversaryOptions {
  /** Random starts; the trainer's Rng, so a seed reproduces the run. */
  rng: Rng;
  signal?: CancelSignal;
  /** 'none' under `method.routing.straightThrough: "router-updates"`: the attack's input gradient treats the routing
   * as a constant of each pass (the reference attack of `official` keeps the reference code's gradients). */
  routingGradient?: ForwardOptions['routingGradient'];
}

/** PGD at `attack` (the trainer passes `attackAt(...)`, i.e. ε after warm-up) against `model`. */
export function makeAdversary(model: Model, attack: AttackConfig, opts: AdversaryOptions): AdversaryFn {
  return async (x, y, loss) => {
    if (loss === 'reference-trades') return referenceTradesAttack(model, x, attack, { rng: opts.rng, signal: opts.signal });
    if (loss === 'ce') {
      const out = await pgd(model, x, y, attack, { rng: opts.rng, training: true, loss: ceLoss, signal: opts.signal, routingGradient: opts.routingGradient });
      return out.xAdv;
    }
    const cleanProbs = tf.tidy(() => tf.softmax(model.forward(x, { training: true, updateBnStats: false }).logits) as tf.Tensor2D);
    try {
      const out = await pgd(model, x, y, { ...attack, randomStart: true }, {
        rng: opts.rng,
        training: true,
        loss: klLoss(cleanProbs),
        signal: opts.signal,
        routingGradient: opts.routingGradient,
      });
      return out.xAdv;
    } finally {
      cleanProbs.dispose();
    }
  };
}
