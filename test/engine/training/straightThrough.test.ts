/**
 * Routing gradients (docs/architecture.md "Routing gradients"): `ForwardOptions.routingGradient: 'none'` makes the
 * hard routing a constant of the pass, and `method.routing.straightThrough: "router-updates"` keeps the
 * straight-through estimator to the passes that train routers. Also `balanceBiasOn: "clean-inference"`, which
 * balances the routing that inference computes (running BN statistics).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { RoutingRemedies } from '../../../engine/config/types';
import { createModel } from '../../../engine/models/factory';
import type { ForwardOptions, Model } from '../../../engine/models/types';
import { makeAdversary } from '../../../engine/training/adversary';
import { createOptimizers, trainStep } from '../../../engine/training/methods';
import { Rng } from '../../../engine/util/rng';
import { setupTestBackend } from '../helpers';
import { images, MNIST, modelConfig, moe, randomize } from '../models/fixtures';
import { methodConfig, quadrantBatch, testAdversary, TinyMoe } from './fixtures';

const NONE: RoutingRemedies = { classTarget: 0, balance: 0, entropy: 0, noise: 0, balanceBias: 0, balanceBiasOn: 'update-passes', tieExpertsEpochs: 0, freezeRoutersAfterEpochs: 0, straightThrough: 'every-pass' };

/** A VGG `tiny` MoE (4 MoE convs, per-layer routers) whose routers split a batch: `routerNorm` centres their inputs. */
function vggMoe(): Model {
  const model = createModel(modelConfig('vgg16', moe({ routerNorm: true }), 'tiny', 0.5), MNIST, 5);
  randomize(model, 11, { routerScale: 3 });
  return model;
}

/** Gradients of Σ logits·w (a fixed random read-out) with respect to the input and to every trainable parameter. */
function gradients(model: Model, x: tf.Tensor4D, opts: ForwardOptions): { input: Float32Array; params: Map<string, Float32Array> } {
  const params = model.params.filter((p) => p.trainable);
  const readout = tf.randomNormal([x.shape[0], model.numClasses], 0, 1, 'float32', 3);
  const f = (xi: tf.Tensor) => tf.sum(tf.mul(model.forward(xi as tf.Tensor4D, opts).logits, readout)) as tf.Scalar;
  const inputGrad = tf.tidy(() => tf.grad(f)(x));
  const { value, grads } = tf.variableGrads(() => f(x), params.map((p) => p.variable));
  const out = {
    input: inputGrad.dataSync() as Float32Array,
    // A variable the loss does not reach (a router, when nothing is differentiated through the routing) has no entry.
    params: new Map(params.map((p) => [p.name, (grads[p.variable.name]?.dataSync() as Float32Array | undefined) ?? new Float32Array(p.variable.size)])),
  };
  tf.dispose([readout, inputGrad, value, ...Object.values(grads)]);
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Records the options of every forward pass a model runs. */
function recording(model: Model): { passes: ForwardOptions[] } {
  const log = { passes: [] as ForwardOptions[] };
  const forward = model.forward.bind(model);
  model.forward = (x, opts) => {
    log.passes.push(opts);
    return forward(x, opts);
  };
  return log;
}

describe('routing gradients', () => {
  before(async () => {
    await setupTestBackend();
  });

  it("routingGradient 'none' differentiates the model as if its routing were fixed to the router's own choice", () => {
    const model = vggMoe();
    const x = images(16, MNIST, 21);
    const opts: ForwardOptions = { training: true, updateBnStats: false };
    const masks = tf.tidy(() => model.forward(x, opts).routing.map((r) => tf.keep(r.mask)));
    const shares = masks.map((m) => tf.tidy(() => tf.max(tf.mean(m, 0)).dataSync()[0]));
    assert.ok(shares.some((s) => s < 1), `the routers must split the batch for this test: shares ${shares}`);
    const none = gradients(model, x, { ...opts, routingGradient: 'none' });
    const fixed = gradients(model, x, { ...opts, routing: { kind: 'fixed', masks } });
    const ste = gradients(model, x, opts);
    assert.ok(maxAbsDiff(none.input, fixed.input) < 1e-5 * Math.max(1, maxAbs(fixed.input)), 'input gradient: none = fixed routing');
    for (const [name, g] of fixed.params) {
      assert.ok(maxAbsDiff(none.params.get(name)!, g) < 1e-5 * Math.max(1, maxAbs(g)), `${name}: none = fixed routing`);
    }
    const routerNames = model.params.filter((p) => p.trainable && p.group === 'router').map((p) => p.name);
    assert.ok(routerNames.length > 0);
    for (const name of routerNames) assert.equal(maxAbs(none.params.get(name)!), 0, `${name}: no gradient reaches a router`);
    assert.ok(routerNames.some((name) => maxAbs(ste.params.get(name)!) > 0), 'straight through, the routers get a gradient');
    assert.ok(maxAbsDiff(ste.input, none.input) > 0, 'straight through, the input gradient has the routers\' term');
    tf.dispose([x, ...masks]);
    model.dispose();
  });

  it("the training adversary attacks with the routing's gradient only when asked to (straightThrough)", async () => {
    for (const routingGradient of ['none', 'straight-through'] as const) {
      for (const loss of ['ce', 'trades-kl'] as const) {
        const model = new TinyMoe({ seed: 41 });
        const log = recording(model);
        const { x, y } = quadrantBatch(16, 4, 9);
        const adversary = makeAdversary(model, { norm: 'linf', eps: 0.1, stepSize: 0.05, steps: 2, randomStart: true, restarts: 1 }, { rng: new Rng(3), routingGradient });
        tf.dispose(await adversary(x, y, loss));
        const attackPasses = log.passes.filter((p) => p.routingGradient !== undefined);
        assert.ok(attackPasses.length >= 2, `${loss}: the attack's passes carry the option`);
        assert.ok(attackPasses.every((p) => p.routingGradient === routingGradient), `${loss}: ${routingGradient}`);
        tf.dispose([x, y]);
        model.dispose();
      }
    }
  });

  it('straightThrough "router-updates": AdvMoE\'s router step still trains the routers, its expert step treats the routing as a constant', async () => {
    for (const straightThrough of ['every-pass', 'router-updates'] as const) {
      const model = new TinyMoe({ seed: 41 });
      // No weight decay: a router weight that moves got a gradient, which only the straight-through estimator gives.
      const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 0 });
      const { x, y } = quadrantBatch(32, 4, 78);
      const adversary = testAdversary(model);
      const routerW = model.params.find((p) => p.name === 'router.w')!.variable;
      const before = Array.from(routerW.dataSync());
      const log = recording(model);
      await trainStep(methodConfig('advmoe', { routing: { ...NONE, straightThrough } }), { model, optimizers, x, y, lr: 0.05, step: 0, adversary });
      assert.ok(maxAbsDiff(Float32Array.from(before), routerW.dataSync() as Float32Array) > 0, `${straightThrough}: the router step moves the router`);
      // The expert step's update pass is the one that folds BN statistics.
      const expertPasses = log.passes.filter((p) => p.updateBnStats === true);
      assert.equal(expertPasses.length, 1);
      assert.equal(expertPasses[0].routingGradient, straightThrough === 'router-updates' ? 'none' : undefined, `${straightThrough}: expert step`);
      tf.dispose([x, y]);
      optimizers.router.dispose();
      optimizers.expert.dispose();
      model.dispose();
    }
  });

  it('straightThrough "router-updates": a joint update keeps the straight-through gradient until the routers are frozen', async () => {
    for (const routersFrozen of [false, true]) {
      const model = new TinyMoe({ seed: 41 });
      const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 5e-4 });
      const { x, y } = quadrantBatch(32, 4, 78);
      const adversary = testAdversary(model);
      const log = recording(model);
      await trainStep(methodConfig('pgd-at', { routing: { ...NONE, straightThrough: 'router-updates' } }), { model, optimizers, x, y, lr: 0.05, step: 0, adversary, routersFrozen });
      const update = log.passes.find((p) => p.updateBnStats === true);
      assert.equal(update?.routingGradient, routersFrozen ? 'none' : undefined, `frozen ${routersFrozen}`);
      tf.dispose([x, y]);
      optimizers.router.dispose();
      optimizers.expert.dispose();
      model.dispose();
    }
  });

  it('balanceBiasOn "clean-inference" moves the bias by the load of the clean batch routed with running BN statistics', async () => {
    const biasAfterOneStep = async (on: RoutingRemedies['balanceBiasOn']) => {
      const model = vggMoe();
      const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 0 });
      const x = images(32, MNIST, 23);
      const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 10), 'int32');
      const load = (opts: ForwardOptions) => tf.tidy(() => model.forward(x, opts).routing.map((r) => Array.from(tf.mean(r.mask, 0).dataSync())));
      const inference = load({ training: false });
      const training = load({ training: true, updateBnStats: false });
      await trainStep(methodConfig('pgd-at', { routing: { ...NONE, balanceBias: 0.1, balanceBiasOn: on } }), { model, optimizers, x, y, lr: 0.01, step: 0, adversary: testAdversary(model) });
      const biases = model.params.filter((p) => p.name.endsWith('router.selectionBias')).map((p) => Array.from(p.variable.dataSync()));
      tf.dispose([x, y]);
      optimizers.router.dispose();
      optimizers.expert.dispose();
      model.dispose();
      return { biases, inference, training };
    };
    const r = await biasAfterOneStep('clean-inference');
    assert.equal(r.biases.length, 4);
    assert.notDeepEqual(r.inference, r.training, 'inference and training must route the batch differently for this test');
    // bias += γ·N·(k/N − load): 0.1 · 2 · (0.5 − load), the load of inference's routing
    r.biases.forEach((bias, layer) =>
      bias.forEach((b, e) => assert.ok(Math.abs(b - 0.2 * (0.5 - r.inference[layer][e])) < 1e-6, `layer ${layer}: bias ${bias}, inference load ${r.inference[layer]}`)),
    );
    const clean = await biasAfterOneStep('clean');
    clean.biases.forEach((bias, layer) =>
      bias.forEach((b, e) => assert.ok(Math.abs(b - 0.2 * (0.5 - clean.training[layer][e])) < 1e-6, `clean, layer ${layer}: bias ${bias}, load ${clean.training[layer]}`)),
    );
  });
});
