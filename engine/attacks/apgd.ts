/**
 * APGD-CE (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks"), following the reference implementation (auto-attack, autopgd_base.py):
 *
 * - step size η starts at 2ε, per sample; momentum α = 0.75 (1 on the first step):
 *   z = P(x_k + η·sign(∇)),  x_{k+1} = P(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1}));
 * - checkpoints: the first after ⌈0.22·N⌉ steps, then the period shrinks by 0.03·N per checkpoint, down to
 *   0.06·N;
 * - at a checkpoint, per sample, η is halved and the iterate restarts from the best point so far when
 *   (1) the loss increased in at most ρ = 75% of the steps since the last checkpoint, or
 *   (2) η was not reduced at the last checkpoint and the best loss has not improved since it.
 *
 * `cfg.steps` is N (the reference default is 100); `cfg.stepSize` is ignored (APGD sets its own). Random
 * start (if asked) is uniform in the ball. The L2 variant uses ∇/‖∇‖₂ and the L2 projection, as the
 * reference does. The output follows PGD's rule: first misclassified point, else highest loss.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig } from '../config/types';
import type { Model } from '../models/types';
import {
  ascentStep,
  BestTracker,
  checkConfig,
  checkInputs,
  finish,
  forwardOptions,
  makeEvaluator,
  project,
  randomStart,
  throwIfCancelled,
  yieldToLoop,
} from './common';
import { ceSpec } from './pgd';
import type { AttackOptions, AttackOutput } from './types';

export const APGD_MOMENTUM = 0.75;
export const APGD_RHO = 0.75;

/** Checkpoint schedule of the reference code: first period, decrement and minimum, in steps. */
export function apgdSchedule(steps: number): { first: number; decrement: number; minimum: number } {
  return {
    first: Math.max(Math.floor(0.22 * steps), 1),
    decrement: Math.max(Math.floor(0.03 * steps), 1),
    minimum: Math.max(Math.floor(0.06 * steps), 1),
  };
}

export async function apgdCe(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, cfg: AttackConfig, opts: AttackOptions): Promise<AttackOutput> {
  checkConfig(cfg, 'APGD-CE');
  checkInputs(x, y, 'APGD-CE');
  const spec = ceSpec(y, opts);
  const evaluate = makeEvaluator(model, y, forwardOptions(opts), spec.loss, spec.primaryOf);
  const out = new BestTracker(spec.sticky);
  const { first, decrement, minimum } = apgdSchedule(cfg.steps);
  const B = x.shape[0];
  // Per-restart state; every field is a kept tensor released in `release`.
  const st: Record<string, tf.Tensor | null> = {};
  const set = (k: string, t: tf.Tensor) => {
    st[k]?.dispose();
    st[k] = t;
  };
  const release = () => {
    for (const k of Object.keys(st)) {
      st[k]?.dispose();
      st[k] = null;
    }
  };
  try {
    for (let r = 0; r < cfg.restarts; r++) {
      throwIfCancelled(opts.signal);
      const seed = opts.rng.seed();
      set('x', cfg.randomStart && cfg.eps > 0 ? randomStart(x, cfg.eps, cfg.norm, seed) : x.clone());
      const e0 = evaluate(st.x as tf.Tensor4D, cfg.steps > 0);
      out.update(st.x as tf.Tensor4D, e0);
      set('xPrev', (st.x as tf.Tensor4D).clone());
      set('xBest', (st.x as tf.Tensor4D).clone());
      set('lossBest', e0.loss.clone());
      set('lossPrev', e0.loss.clone());
      if (e0.grad) {
        set('grad', e0.grad.clone());
        set('gradBest', e0.grad.clone());
      }
      e0.dispose();
      set('eta', tf.fill([B, 1, 1, 1], 2 * cfg.eps));
      set('increases', tf.zeros([B]));
      set('reducedLast', tf.zeros([B], 'bool'));
      set('lossBestLastCheck', (st.lossBest as tf.Tensor).clone());
      let period = first;
      let sinceCheck = 0;
      for (let i = 0; i < cfg.steps; i++) {
        const a = i === 0 ? 1 : APGD_MOMENTUM;
        const cur = st.x as tf.Tensor4D;
        const next = tf.tidy(() => {
          const z = project(ascentStep(cur, st.grad as tf.Tensor4D, st.eta as tf.Tensor, cfg.norm), x, cfg.eps, cfg.norm);
          const moved = tf.add(tf.add(cur, tf.mul(tf.sub(z, cur), a)), tf.mul(tf.sub(cur, st.xPrev as tf.Tensor4D), 1 - a));
          return project(moved as tf.Tensor4D, x, cfg.eps, cfg.norm);
        });
        set('xPrev', cur.clone());
        set('x', next);
        const e = evaluate(next, true);
        try {
          out.update(next, e);
          const improved = tf.tidy(() => tf.greater(e.loss, st.lossBest as tf.Tensor));
          const improved4 = tf.tidy(() => tf.broadcastTo(tf.reshape(improved, [-1, 1, 1, 1]), x.shape));
          set('xBest', tf.where(improved4, next, st.xBest as tf.Tensor));
          set('gradBest', tf.where(improved4, e.grad!, st.gradBest as tf.Tensor));
          set('lossBest', tf.where(improved, e.loss, st.lossBest as tf.Tensor));
          improved.dispose();
          improved4.dispose();
          set('increases', tf.tidy(() => tf.add(st.increases as tf.Tensor, tf.cast(tf.greater(e.loss, st.lossPrev as tf.Tensor), 'float32'))));
          set('lossPrev', e.loss.clone());
          set('grad', e.grad!.clone());
        } finally {
          e.dispose();
        }
        sinceCheck++;
        if (sinceCheck === period) {
          const reduce = tf.tidy(() => {
            const oscillating = tf.lessEqual(st.increases as tf.Tensor, period * APGD_RHO);
            const stalled = tf.logicalAnd(tf.logicalNot(st.reducedLast as tf.Tensor), tf.greaterEqual(st.lossBestLastCheck as tf.Tensor, st.lossBest as tf.Tensor));
            return tf.logicalOr(oscillating, stalled);
          });
          const reduce4 = tf.tidy(() => tf.broadcastTo(tf.reshape(reduce, [-1, 1, 1, 1]), x.shape));
          set('eta', tf.tidy(() => tf.where(tf.reshape(reduce, [-1, 1, 1, 1]), tf.div(st.eta as tf.Tensor, 2), st.eta as tf.Tensor)));
          set('x', tf.where(reduce4, st.xBest as tf.Tensor, st.x as tf.Tensor));
          set('grad', tf.where(reduce4, st.gradBest as tf.Tensor, st.grad as tf.Tensor));
          reduce4.dispose();
          set('reducedLast', reduce);
          set('lossBestLastCheck', (st.lossBest as tf.Tensor).clone());
          set('increases', tf.zeros([B]));
          sinceCheck = 0;
          period = Math.max(period - decrement, minimum);
        }
        await yieldToLoop();
        throwIfCancelled(opts.signal);
      }
      release();
      if (!cfg.randomStart) break; // a deterministic restart would repeat the first exactly
    }
  } catch (err) {
    release();
    out.dispose();
    throw err;
  }
  return finish(out, spec.primaryIsSuccess);
}
