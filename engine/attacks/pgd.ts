/**
 * FGSM and PGD (Madry et al. 2018) in L∞ and L2, with random start and restarts.
 *
 * PGD keeps, per sample, the best point over every iterate of every restart: the first misclassified
 * point if there is one, else the point of highest loss (with a loss override: highest loss). This is
 * at least as strong as returning the last iterate, and it makes "more restarts never do worse" exact.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig } from '../config/types';
import type { Model } from '../models/types';
import {
  ascentStep,
  BestTracker,
  ceLoss,
  checkConfig,
  checkInputs,
  finish,
  forwardOptions,
  makeEvaluator,
  misclassified,
  project,
  randomStart,
  throwIfCancelled,
  yieldToLoop,
} from './common';
import type { AttackLoss, AttackOptions, AttackOutput } from './types';

/** Zero primary score: with a loss override only the loss ranks points. */
const noPrimary = (y: tf.Tensor1D) => () => tf.zerosLike(y).asType('float32') as tf.Tensor1D;

export interface IterativeSpec {
  loss: AttackLoss;
  primaryOf: Parameters<typeof makeEvaluator>[4];
  sticky: boolean;
  primaryIsSuccess: boolean;
}

/** The objective of the CE attacks (or of the override), as the shared loop needs it. */
export function ceSpec(y: tf.Tensor1D, opts: AttackOptions): IterativeSpec {
  if (opts.loss) return { loss: opts.loss, primaryOf: noPrimary(y), sticky: false, primaryIsSuccess: false };
  return { loss: ceLoss, primaryOf: (out) => misclassified(out.logits, y), sticky: true, primaryIsSuccess: true };
}

/**
 * FGSM: one step of size ε along sign(∇) (L∞) or ∇/‖∇‖₂ (L2) from x, then clamped to [0,1].
 * `cfg.stepSize`, `steps`, `randomStart` and `restarts` are ignored: FGSM is defined by ε alone.
 */
export async function fgsm(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, cfg: AttackConfig, opts: AttackOptions): Promise<AttackOutput> {
  checkConfig({ ...cfg, steps: 1, restarts: 1 }, 'FGSM');
  checkInputs(x, y, 'FGSM');
  throwIfCancelled(opts.signal);
  const spec = ceSpec(y, opts);
  const evaluate = makeEvaluator(model, y, forwardOptions(opts), spec.loss, spec.primaryOf);
  const best = new BestTracker(false);
  const e0 = evaluate(x, true);
  let xa: tf.Tensor4D | null = null;
  let e1 = null;
  try {
    xa = tf.tidy(() => project(ascentStep(x, e0.grad!, cfg.eps, cfg.norm), x, cfg.eps, cfg.norm));
    e1 = evaluate(xa, false);
    // FGSM returns its one step, even where the step lowered the loss; the tracker only shapes the output.
    best.update(xa, e1);
  } finally {
    e0.dispose();
    e1?.dispose();
    xa?.dispose();
  }
  return finish(best, spec.primaryIsSuccess);
}

/** PGD-k: `restarts` runs of `steps` projected ascent steps of size `stepSize` (random start if asked). */
export async function pgd(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, cfg: AttackConfig, opts: AttackOptions): Promise<AttackOutput> {
  checkConfig(cfg, 'PGD');
  checkInputs(x, y, 'PGD');
  return iterativeAttack(model, x, y, cfg, opts, ceSpec(y, opts));
}

/** The PGD loop for any objective (CE, override, router loss). */
export async function iterativeAttack(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  cfg: AttackConfig,
  opts: AttackOptions,
  spec: IterativeSpec,
): Promise<AttackOutput> {
  const evaluate = makeEvaluator(model, y, forwardOptions(opts), spec.loss, spec.primaryOf);
  const best = new BestTracker(spec.sticky);
  let xa: tf.Tensor4D | null = null;
  try {
    for (let r = 0; r < cfg.restarts; r++) {
      throwIfCancelled(opts.signal);
      // One draw per restart even without a random start keeps the Rng stream independent of the flag.
      const seed = opts.rng.seed();
      xa = cfg.randomStart && cfg.eps > 0 ? randomStart(x, cfg.eps, cfg.norm, seed) : x.clone();
      for (let i = 0; i <= cfg.steps; i++) {
        const last = i === cfg.steps;
        const e = evaluate(xa, !last);
        try {
          best.update(xa, e);
          if (!last) {
            const cur: tf.Tensor4D = xa;
            xa = tf.tidy(() => project(ascentStep(cur, e.grad!, cfg.stepSize, cfg.norm), x, cfg.eps, cfg.norm));
            cur.dispose();
          }
        } finally {
          e.dispose();
        }
        if (!last) {
          await yieldToLoop();
          throwIfCancelled(opts.signal);
        }
      }
      xa.dispose();
      xa = null;
      if (!cfg.randomStart) break; // without randomness every restart would repeat the first exactly
    }
  } catch (err) {
    xa?.dispose();
    best.dispose();
    throw err;
  }
  return finish(best, spec.primaryIsSuccess);
}
