/**
 * The collapse remedies of `method.routing` (README "Routing that does not collapse"): each one, alone, moves a
 * collapsing router's decision share toward 1/N on a small task, where training without it keeps the router
 * collapsed. The router starts collapsed (a bias that sends every input to expert 1), as the routers of our
 * backbones do after a few steps.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { RoutingRemedies } from '../../../engine/config/types';
import { routerEntropyLoss } from '../../../engine/training/losses';
import { createOptimizers, trainStep } from '../../../engine/training/methods';
import { createModel } from '../../../engine/models/factory';
import { setupTestBackend } from '../helpers';
import { images, MNIST, modelConfig, moe } from '../models/fixtures';
import { changed, methodConfig, paramValues, quadrantBatch, TinyMoe, testAdversary } from './fixtures';

const NONE: RoutingRemedies = { classTarget: 0, balance: 0, entropy: 0, noise: 0, balanceBias: 0, balanceBiasOn: 'update-passes', tieExpertsEpochs: 0, freezeRoutersAfterEpochs: 0, straightThrough: 'every-pass' };
const STEPS = 150;
/** Steps over which the training passes' decision share is averaged (before the router adapts to the noise). */
const EARLY = 10;

/** Share of `x`'s inputs routed to the most common expert (clean, evaluation mode). */
function decisionShare(model: TinyMoe, x: tf.Tensor4D): number {
  return tf.tidy(() => {
    const mask = model.forward(x, { training: false }).routing[0].mask;
    return tf.max(tf.mean(mask, 0)).dataSync()[0];
  });
}

/**
 * Trains a TinyMoe whose router starts collapsed, with `routing`, and returns its clean decision share before and
 * after, and the mean share of the most loaded expert in the first training passes (`StepResult.expertLoad`).
 */
async function train(routing: RoutingRemedies): Promise<{ before: number; after: number; trainingShare: number }> {
  const model = new TinyMoe({ seed: 41 });
  model.params.find((p) => p.name === 'router.b')!.variable.assign(tf.tensor1d([-2, 2]));
  const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 5e-4 });
  const probe = quadrantBatch(256, 4, 999);
  const before = decisionShare(model, probe.x);
  const method = methodConfig('standard', { routing });
  let seed = 1;
  let trainingShare = 0;
  for (let step = 0; step < STEPS; step++) {
    const { x, y } = quadrantBatch(32, 4, 500 + step);
    const r = await trainStep(method, { model, optimizers, x, y, lr: 0.05, step, noiseSeed: () => seed++ });
    if (step < EARLY) trainingShare += Math.max(...r.expertLoad[0]) / EARLY;
    tf.dispose([x, y]);
  }
  const after = decisionShare(model, probe.x);
  tf.dispose([probe.x, probe.y]);
  optimizers.router.dispose();
  optimizers.expert.dispose();
  model.dispose();
  return { before, after, trainingShare };
}

describe('collapse remedies', () => {
  let baseline: { before: number; after: number; trainingShare: number };
  before(async () => {
    await setupTestBackend();
    baseline = await train(NONE);
  });

  it('without a remedy the collapsed router stays collapsed', () => {
    assert.equal(baseline.before, 1);
    assert.ok(baseline.after > 0.9, `decision share ${baseline.after}`);
  });

  const cases: Array<[string, Partial<RoutingRemedies>]> = [
    ['classTarget (CE to y mod N)', { classTarget: 1 }],
    ['balance (Switch loss)', { balance: 1 }],
    ['entropy of the batch-average distribution', { entropy: 2 }],
    ['balanceBias (auxiliary-loss-free selection bias)', { balanceBias: 0.1 }],
  ];
  for (const [name, remedy] of cases) {
    it(`${name} moves the decision share toward 1/N`, async () => {
      const r = await train({ ...NONE, ...remedy });
      assert.equal(r.before, 1);
      assert.ok(r.after < 0.75, `decision share ${r.after} (without the remedy ${baseline.after})`);
    });
  }

  // Noise alone changes which expert the training passes use, not the router's clean decision: the router answers
  // a fixed noise scale by widening its margin, and on this task the clean share stays at 1 (measured; README
  // "Routing that does not collapse"). What it does, at once, is hand the starved expert some of the training
  // inputs: the training passes' decision share moves toward 1/N.
  it('noise (noisy top-k gating) moves the training passes\' decision share toward 1/N', async () => {
    const r = await train({ ...NONE, noise: 2 });
    assert.ok(baseline.trainingShare > 0.99, `without noise the training passes' share is ${baseline.trainingShare}`);
    assert.ok(r.trainingShare < 0.97, `with noise σ = 2 the training passes' share is ${r.trainingShare}`);
  });

  // An "adversary" that blanks every input: the update pass sends the whole batch to one expert, while the clean
  // batch is split. The bias must follow the routing it is asked to balance.
  it('balanceBiasOn: the bias moves by the clean batch\'s load ("clean") or the update pass\'s (default)', async () => {
    const biasAfterOneStep = async (on: RoutingRemedies['balanceBiasOn']) => {
      const model = new TinyMoe({ seed: 41 });
      const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 0 });
      const { x, y } = quadrantBatch(64, 4, 77);
      const cleanLoad = tf.tidy(() => Array.from(tf.mean(model.forward(x, { training: true, updateBnStats: false }).routing[0].mask, 0).dataSync()));
      const blank = async (xs: tf.Tensor4D) => tf.zerosLike(xs) as tf.Tensor4D;
      model.params.find((p) => p.name === 'router.b')!.variable.assign(tf.tensor1d([0, 0]));
      const blankChoice = tf.tidy(() => tf.argMax(model.forward(tf.zeros([1, 4, 4, 1]), { training: false }).routing[0].mask, 1).dataSync()[0]);
      await trainStep(methodConfig('pgd-at', { routing: { ...NONE, balanceBias: 0.1, balanceBiasOn: on } }), { model, optimizers, x, y, lr: 0.01, step: 0, adversary: blank });
      const bias = Array.from(model.params.find((p) => p.name === 'router.selectionBias')!.variable.dataSync());
      tf.dispose([x, y]);
      optimizers.router.dispose();
      optimizers.expert.dispose();
      model.dispose();
      return { bias, cleanLoad, blankChoice };
    };
    const clean = await biasAfterOneStep('clean');
    assert.ok(Math.max(...clean.cleanLoad) < 0.95, `the clean batch must be split for this test: ${clean.cleanLoad}`);
    // bias += γ·N·(k/N − load): 0.1 · 2 · (0.5 − load)
    clean.bias.forEach((b, e) => assert.ok(Math.abs(b - 0.2 * (0.5 - clean.cleanLoad[e])) < 1e-6, `clean: bias ${clean.bias}, clean load ${clean.cleanLoad}`));
    const passes = await biasAfterOneStep('update-passes');
    const expected = [0, 1].map((e) => 0.2 * (0.5 - (e === passes.blankChoice ? 1 : 0)));
    passes.bias.forEach((b, e) => assert.ok(Math.abs(b - expected[e]) < 1e-6, `update passes: bias ${passes.bias}, expected ${expected}`));
  });

  it('freezeRoutersAfterEpochs: a frozen step changes no router parameter or selection bias, trains the experts, and AdvMoE and official skip their router step', async () => {
    // Every remedy that moves routers is on, so a router parameter that moved would show.
    const moving: RoutingRemedies = { ...NONE, classTarget: 1, balance: 1, entropy: 1, noise: 1, balanceBias: 0.1 };
    for (const kind of ['standard', 'pgd-at', 'trades', 'advmoe', 'official'] as const) {
      const stepOnce = async (routersFrozen: boolean) => {
        const model = new TinyMoe({ seed: 41 });
        const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 5e-4 });
        const { x, y } = quadrantBatch(32, 4, 78);
        const adversary = testAdversary(model);
        const before = paramValues(model);
        const r = await trainStep(methodConfig(kind, { routing: moving }), { model, optimizers, x, y, lr: 0.05, step: 0, adversary, routersFrozen, noiseSeed: () => 5 });
        const moved = changed(before, paramValues(model));
        const routerNames = new Set(model.params.filter((p) => p.group === 'router').map((p) => p.name));
        tf.dispose([x, y]);
        optimizers.router.dispose();
        optimizers.expert.dispose();
        model.dispose();
        return { router: moved.filter((n) => routerNames.has(n)), expert: moved.filter((n) => !routerNames.has(n)), attacks: adversary.calls, routerLoss: r.metrics.routerLoss };
      };
      const live = await stepOnce(false);
      const frozen = await stepOnce(true);
      assert.ok(live.router.includes('router.selectionBias') && live.router.length > 1, `${kind}: an unfrozen step moves the router and its bias (${live.router})`);
      assert.deepEqual(frozen.router, [], `${kind}: frozen, no router parameter moves`);
      assert.ok(frozen.expert.length > 0, `${kind}: frozen, the experts still train`);
      if (kind === 'advmoe' || kind === 'official') {
        assert.equal(live.attacks, 2, `${kind}: two attacks unfrozen`);
        assert.equal(frozen.attacks, 1, `${kind}: one attack frozen (no router step)`);
        assert.equal(frozen.routerLoss, undefined, `${kind}: no router loss frozen`);
      }
    }
  });

  it('freezeRoutersAfterEpochs: the BatchNorm layers of a frozen router keep their running statistics', async () => {
    for (const router of ['shared', 'reference', 'per-layer'] as const) {
      const stepOnce = async (routersFrozen: boolean) => {
        // per-layer with routerNorm: the routers' own BN; shared and reference: the image-level router's convs' BN.
        const model = createModel(modelConfig('resnet18', moe({ router, routerNorm: router === 'per-layer' }), 'tiny', 0.25), MNIST, 3);
        const optimizers = createOptimizers(model, { momentum: 0.9, weightDecay: 5e-4 });
        const x = images(8, MNIST, 13);
        const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
        const before = paramValues(model);
        await trainStep(methodConfig('advmoe'), { model, optimizers, x, y, lr: 0.05, step: 0, adversary: testAdversary(model), routersFrozen });
        const statistics = new Set(model.params.filter((p) => p.group === 'router' && /moving(Mean|Var)$/.test(p.name)).map((p) => p.name));
        const moved = changed(before, paramValues(model)).filter((n) => statistics.has(n));
        tf.dispose([x, y]);
        optimizers.router.dispose();
        optimizers.expert.dispose();
        model.dispose();
        return { statistics: statistics.size, moved };
      };
      const live = await stepOnce(false);
      assert.ok(live.statistics > 0 && live.moved.length > 0, `${router}: an unfrozen step folds the router's BN statistics (${live.moved.length} of ${live.statistics})`);
      assert.deepEqual((await stepOnce(true)).moved, [], `${router}: frozen, the router's BN statistics stay`);
    }
  });

  it('the entropy term is log N − H(batch-average probabilities): 0 when balanced, log N when collapsed', () => {
    const layers = [{ name: 'moe', router: 0, outChannels: 4, expertChannels: 2 }];
    const term = (probs: number[][]) =>
      tf.tidy(() => {
        const p = tf.tensor2d(probs);
        return routerEntropyLoss([{ logits: tf.log(p) as tf.Tensor2D, probs: p, mask: p }], layers, 2).dataSync()[0];
      });
    // Each input decided, the batch balanced: no penalty.
    assert.ok(Math.abs(term([[1, 0], [0, 1]])) < 1e-6);
    assert.ok(Math.abs(term([[1, 0], [1, 0]]) - Math.log(2)) < 1e-5);
    assert.ok(Math.abs(term([[0.9, 0.1], [0.9, 0.1]]) - (Math.log(2) + 0.9 * Math.log(0.9) + 0.1 * Math.log(0.1))) < 1e-5);
  });
});
