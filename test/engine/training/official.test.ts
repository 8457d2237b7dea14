/**
 * Golden test of `official` against the reference loop (README "Methods"), with every quantity recomputed here
 * from the model's forward alone — none of the engine's loss or attack code:
 *   1. x′₁ = the reference attack (eval-mode BN, x + 0.001·N(0,1), sign steps on kl(f) + kl(r), ε-ball, [0,1]);
 *   2. expert update on CE(f(x), y) + β·kl(f(x′₁), f(x))/B (train-mode BN);
 *   3. x′₂ = the reference attack against the updated model;
 *   4. router update on CE(r(x), y mod N) + α·kl(r(x′₂), r(x))/B.
 * A twin model (same seed) replays the loop by hand; the engine's step must give the same adversarial inputs,
 * losses and parameters.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { AttackConfig, ModelConfig } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { ForwardOptions, Model, ParamGroup } from '../../../engine/models/types';
import { makeAdversary } from '../../../engine/training/adversary';
import { type AdversaryFn, createOptimizers, trainStep } from '../../../engine/training/methods';
import { Rng } from '../../../engine/util/rng';
import { setupTestBackend } from '../helpers';
import { methodConfig, quadrantBatch } from './fixtures';

const EVAL: ForwardOptions = { training: false, updateBnStats: false };
const TRAIN: ForwardOptions = { training: true, updateBnStats: false };
const ATTACK: AttackConfig = { norm: 'linf', eps: 0.1, stepSize: 0.04, steps: 3, randomStart: true, restarts: 1 };
const LR = 0.05;
const WD = 5e-4;
const ALPHA = 6;
const BETA = 6;

/** The reference router comes with the reference's gathered layout and PyTorch padding (official's defaults). */
function model(router: 'shared' | 'per-layer' | 'reference'): Model {
  const reference = router === 'reference';
  const config: ModelConfig = {
    backbone: 'resnet18',
    preset: 'tiny',
    widthMultiplier: 0.5,
    padding: reference ? 'symmetric' : 'same',
    moe: { enabled: true, experts: 2, topK: 1, expertWidth: 0.5, router, layout: reference ? 'gathered' : 'blocks', routerNorm: true, layers: 'all-blocks' },
  };
  return createModel(config, { inputShape: [8, 8, 1], numClasses: 4, mean: [0.5], std: [0.25] }, 11);
}

/** PyTorch's KLDivLoss(reduction="sum")(log_softmax(a), softmax(b)), written out. */
function klSum(a: tf.Tensor2D, b: tf.Tensor2D): tf.Scalar {
  const pb = tf.softmax(b);
  return tf.sum(tf.mul(pb, tf.sub(tf.logSoftmax(b), tf.logSoftmax(a))));
}

function ce(logits: tf.Tensor2D, labels: number[]): tf.Scalar {
  const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), logits.shape[1]).toFloat();
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** Logits of each distinct router (a shared router once). */
function routers(m: Model, routing: { logits: tf.Tensor2D }[]): tf.Tensor2D[] {
  const seen = new Set<number>();
  return routing.filter((_, i) => !seen.has(m.moeLayers[i].router) && seen.add(m.moeLayers[i].router) !== undefined).map((r) => r.logits);
}

/** The reference attack, written from its definition. */
function referenceAttack(m: Model, x: tf.Tensor4D, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const clean = m.forward(x, EVAL);
    const fNat = tf.keep(clean.logits.clone());
    const rNat = routers(m, clean.routing).map((r) => tf.keep(r.clone()));
    let xa = tf.add(x, tf.randomNormal(x.shape, 0, 0.001, 'float32', seed)) as tf.Tensor4D;
    const objective = (xi: tf.Tensor): tf.Scalar => {
      const out = m.forward(xi as tf.Tensor4D, EVAL);
      const rAdv = routers(m, out.routing);
      return tf.addN([klSum(out.logits, fNat), ...rAdv.map((r, i) => klSum(r, rNat[i]))]) as tf.Scalar;
    };
    for (let i = 0; i < ATTACK.steps; i++) {
      const g = tf.grad(objective)(xa);
      xa = tf.add(xa, tf.mul(tf.sign(g), ATTACK.stepSize)) as tf.Tensor4D;
      xa = tf.minimum(tf.maximum(xa, tf.sub(x, ATTACK.eps)), tf.add(x, ATTACK.eps)) as tf.Tensor4D;
      xa = tf.clipByValue(xa, 0, 1) as tf.Tensor4D;
    }
    tf.dispose([fNat, ...rNat]);
    return xa;
  });
}

/** Loss value and one plain SGD step (first step of momentum SGD: v = g + wd·w) on one parameter group. */
function sgdStep(m: Model, group: ParamGroup, lossFn: () => tf.Scalar): number {
  const params = m.params.filter((p) => p.group === group && p.trainable);
  const { value, grads } = tf.variableGrads(lossFn, params.map((p) => p.variable));
  const loss = value.dataSync()[0];
  tf.tidy(() => {
    for (const p of params) {
      const g = grads[p.variable.name];
      if (!g) continue;
      const d = p.decay ? tf.add(g, tf.mul(p.variable, WD)) : g;
      p.variable.assign(tf.sub(p.variable, tf.mul(d, LR)));
    }
  });
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe('official = the reference loop (golden test)', () => {
  before(setupTestBackend);
  const owned: tf.Tensor[] = [];
  after(() => tf.dispose(owned));

  for (const router of ['shared', 'per-layer', 'reference'] as const) {
    it(`${router} router: adversarial inputs, losses and updated parameters match a hand-written replay`, async () => {
      const engineModel = model(router);
      const replay = model(router);
      const { x, y } = quadrantBatch(8, 8, 31);
      owned.push(x, y);
      const labels = Array.from(y.dataSync());
      const optimizers = createOptimizers(engineModel, { momentum: 0.9, weightDecay: WD });

      // The engine's step, recording what its adversary returned.
      const rng = new Rng(77);
      const inner = makeAdversary(engineModel, ATTACK, { rng });
      const xAdv: tf.Tensor4D[] = [];
      const adversary: AdversaryFn = async (xx, yy, loss) => {
        assert.equal(loss, 'reference-trades');
        const out = await inner(xx, yy, loss);
        xAdv.push(tf.keep(out.clone()));
        return out;
      };
      const method = methodConfig('official', { attack: ATTACK, tradesBeta: BETA, officialRouterAlpha: ALPHA });
      const r = await trainStep(method, { model: engineModel, optimizers, x, y, lr: LR, step: 0, adversary });
      owned.push(...xAdv);
      assert.equal(xAdv.length, 2);

      // The replay: the same seeds in the same order (the adversary draws one per attack).
      const draw = new Rng(77);
      const seed1 = draw.seed();
      const seed2 = draw.seed();
      const x1 = referenceAttack(replay, x, seed1);
      owned.push(x1);
      assert.ok(maxAbsDiff(x1, xAdv[0]) < 1e-6, `first attack differs by ${maxAbsDiff(x1, xAdv[0])}`);
      assert.ok(maxAbsDiff(x1, x) <= ATTACK.eps + 1e-6 && maxAbsDiff(x1, x) > 0.5 * ATTACK.eps, 'the attack moved within the ε-ball');

      // The expert update's train-mode forwards fold their batch statistics (of the weights before the update)
      // into the running ones, as PyTorch's train() does; the loss itself uses batch statistics only.
      tf.tidy(() => {
        replay.forward(x, { training: true, updateBnStats: true });
        replay.forward(x1, { training: true, updateBnStats: true });
      });
      const expertLoss = sgdStep(replay, 'expert', () => {
        const nat = replay.forward(x, TRAIN).logits;
        const adv = replay.forward(x1, TRAIN).logits;
        return tf.add(ce(nat, labels), tf.mul(tf.div(klSum(adv, nat), labels.length), BETA)) as tf.Scalar;
      });
      assert.ok(Math.abs(r.metrics.expertLoss - expertLoss) < 1e-4 * Math.max(1, expertLoss), `expert loss ${r.metrics.expertLoss} vs ${expertLoss}`);

      const x2 = referenceAttack(replay, x, seed2);
      owned.push(x2);
      assert.ok(maxAbsDiff(x2, xAdv[1]) < 1e-5, `second attack differs by ${maxAbsDiff(x2, xAdv[1])}`);

      const n = replay.numExperts;
      const routerLoss = sgdStep(replay, 'router', () => {
        const rNat = routers(replay, replay.forward(x, TRAIN).routing);
        const rAdv = routers(replay, replay.forward(x2, TRAIN).routing);
        const terms = rNat.map((rn, i) =>
          tf.add(ce(rn, labels.map((l) => l % n)), tf.mul(tf.div(klSum(rAdv[i], rn), labels.length), ALPHA)),
        );
        return tf.div(tf.addN(terms), terms.length) as tf.Scalar;
      });
      assert.ok(Math.abs(r.metrics.routerLoss - routerLoss) < 1e-4 * Math.max(1, routerLoss), `router loss ${r.metrics.routerLoss} vs ${routerLoss}`);

      // Every parameter and BN statistic ends where the replay put it.
      for (let i = 0; i < engineModel.params.length; i++) {
        const a = engineModel.params[i];
        const d = maxAbsDiff(a.variable, replay.params[i].variable);
        const scale = tf.tidy(() => tf.max(tf.abs(a.variable)).dataSync()[0]);
        assert.ok(d <= 1e-4 * Math.max(1, scale), `${a.name} differs by ${d}`);
      }
      optimizers.router.dispose();
      optimizers.expert.dispose();
      engineModel.dispose();
      replay.dispose();
    });
  }
});
